/* The training engine against PyTorch, in the style of llm.c's test_gpt2: both models,
 * weights from the shared hash formula (tests/support/fixture.c), references computed in
 * float64 by tests/pytorch/gen_model_fixtures.py. Every tensor's max difference is printed;
 * each model ends with one verdict line.
 *
 * Sequence (batch 4), as in the generator:
 *   train forward -> logits, mean CE; backward (input + weights) -> dx, every weight
 *   gradient, the running statistics after one train pass; SGD (lr 0.1, momentum 0.9,
 *   wd 5e-4) step, a second train forward/backward, step -> every parameter and buffer;
 *   a fresh net in eval mode -> logits, loss, input gradient (no weight gradients). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "regmix/nn.h"
#include "regmix/optim.h"

#define BATCH 4
#define NUM_CLASSES 10

/* float32 engine vs float64 reference, relative to the largest reference element */
#define TOL_LOGITS 1e-4
#define TOL_LOSS 1e-4
#define TOL_GRAD_INPUT 1e-4
#define TOL_GRAD_WEIGHT 1e-3
#define TOL_RUNNING 1e-4
#define TOL_AFTER_SGD 1e-3
#define SGD_LR 0.1

/* The fixture's input is the formula input moved by at most this much (see the generator). */
#define INPUT_NUDGE_MAX 1e-3

#define CHECK_OK(call)                                                                          \
    do {                                                                                       \
        rm_status st_ = (call);                                                                \
        if (st_ != RM_OK) fail_msg("%s -> %s: %s", #call, rm_status_name(st_), rm_error_message()); \
    } while (0)

typedef struct {
    const char *model;
    fixture_file *fx;
    int checked, bad; /* tensors compared / failed */
} run;

static void tally(run *r, int ok) {
    r->checked++;
    if (!ok) r->bad++;
}

static void compare(run *r, const char *label, const float *ours, size_t numel, const char *record,
                    double tol) {
    tally(r, fixture_compare(label, ours, numel, fixture_find(r->fx, record), tol));
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) fail_msg("calloc(%zu, %zu) failed", n, size);
    return p;
}

/* The net's parameter list must be the fixture's state_dict: same names, same order
 * (nn.h promises state_dict order), same shapes, and a gradient exactly for the
 * non-buffers. The fixture lists the state_dict as its "init:<name>" records. */
static void check_names(run *r, rm_net *net) {
    size_t n;
    rm_param *params = rm_net_params(net, &n);
    const char *prefix = "init:";
    size_t plen = strlen(prefix), in_fixture = 0, problems = 0;
    for (size_t i = 0; i < r->fx->count; i++) {
        const fixture_record *rec = &r->fx->records[i];
        if (strncmp(rec->name, prefix, plen) != 0) continue;
        const char *name = rec->name + plen;
        if (!rm_net_find_param(net, name)) {
            printf("  name check: fixture tensor \"%s\" is not a parameter of the net\n", name);
            problems++;
        } else if (in_fixture >= n || strcmp(params[in_fixture].name, name) != 0) {
            printf("  name check: state_dict entry %zu is \"%s\" in PyTorch, \"%s\" in the net\n",
                   in_fixture, name, in_fixture < n ? params[in_fixture].name : "(none)");
            problems++;
        }
        in_fixture++;
    }
    for (size_t k = 0; k < n; k++) {
        const rm_param *p = &params[k];
        char key[128];
        snprintf(key, sizeof key, "init:%s", p->name);
        const fixture_record *rec = NULL;
        for (size_t i = 0; i < r->fx->count && !rec; i++)
            if (strcmp(r->fx->records[i].name, key) == 0) rec = &r->fx->records[i];
        if (!rec) {
            printf("  name check: net parameter \"%s\" is not in the PyTorch state_dict\n", p->name);
            problems++;
            continue;
        }
        int same_shape = rec->ndim == p->ndim;
        for (int d = 0; same_shape && d < p->ndim; d++) same_shape = rec->dims[d] == p->dims[d];
        if (!same_shape) {
            printf("  name check: \"%s\" has another shape in the net than in PyTorch\n", p->name);
            problems++;
        }
        snprintf(key, sizeof key, "grad:%s", p->name);
        int has_grad_record = 0;
        for (size_t i = 0; i < r->fx->count; i++)
            if (strcmp(r->fx->records[i].name, key) == 0) has_grad_record = 1;
        if (has_grad_record != (p->grad != NULL) || has_grad_record == p->is_buffer) {
            printf("  name check: \"%s\" is %s in PyTorch but has is_buffer %d, grad %s in the net\n",
                   p->name, has_grad_record ? "a parameter" : "a buffer", p->is_buffer,
                   p->grad ? "set" : "NULL");
            problems++;
        }
    }
    printf("  name check: %zu net tensors, %zu in the PyTorch state_dict: %s\n", n, in_fixture,
           problems || n != in_fixture ? "NOT OK" : "OK");
    tally(r, problems == 0 && n == in_fixture);
}

/* The fixture input (the formula input, nudged away from ReLU/pool branch points) and the
 * formula labels; both are also checked against the formula itself. */
static void load_batch(run *r, const rm_net *net, float *x, int *labels) {
    size_t in = rm_net_input_size(net), numel = (size_t)BATCH * in;
    const fixture_record *rx = fixture_find(r->fx, "input");
    const fixture_record *ry = fixture_find(r->fx, "labels");
    assert_non_null(rx);
    assert_non_null(ry);
    assert_int_equal(rx->numel, numel);
    assert_int_equal(rx->stride, 1);
    assert_int_equal(ry->numel, BATCH);
    uint64_t kx = fixture_name_key("input"), ky = fixture_name_key("labels");
    double nudge = 0.0;
    for (size_t i = 0; i < numel; i++) {
        x[i] = rx->data[i];
        nudge = fmax(nudge, fabs((double)x[i] - (double)(float)fixture_u(kx, i)));
    }
    int labels_ok = 1;
    for (int b = 0; b < BATCH; b++) {
        labels[b] = (int)ry->data[b];
        labels_ok &= labels[b] == (int)floor(fixture_u(ky, (uint64_t)b) * NUM_CLASSES);
    }
    printf("  input: the formula moved by at most %.2e (<= %.0e: %s); labels %d %d %d %d: %s\n",
           nudge, INPUT_NUDGE_MAX, nudge <= INPUT_NUDGE_MAX ? "OK" : "NOT OK", labels[0],
           labels[1], labels[2], labels[3], labels_ok ? "OK" : "NOT OK");
    tally(r, nudge <= INPUT_NUDGE_MAX);
    tally(r, labels_ok);
}

/* Mean cross-entropy of float logits (batch, K) in double, and d loss / d logits
 * = (softmax - onehot) / batch. */
static double cross_entropy(const float *logits, const int *labels, int batch, int k,
                            float *dlogits) {
    double total = 0.0;
    for (int b = 0; b < batch; b++) {
        const float *z = logits + (size_t)b * k;
        double m = z[0], s = 0.0;
        for (int j = 1; j < k; j++) m = fmax(m, z[j]);
        for (int j = 0; j < k; j++) s += exp((double)z[j] - m);
        double lse = m + log(s);
        total += lse - z[labels[b]];
        for (int j = 0; j < k; j++)
            dlogits[(size_t)b * k + j] =
                (float)((exp((double)z[j] - lse) - (j == labels[b] ? 1.0 : 0.0)) / batch);
    }
    return total / batch;
}

static rm_net *fresh_net(run *r) {
    rm_net *net = NULL;
    CHECK_OK(rm_net_create(r->model, NUM_CLASSES, &net));
    fixture_fill_params(net);
    return net;
}

/* Every tensor (data) against the records "<prefix><name>". */
static void compare_all_data(run *r, rm_net *net, const char *prefix, int buffers, int params,
                             double tol) {
    size_t n;
    rm_param *p = rm_net_params(net, &n);
    for (size_t k = 0; k < n; k++) {
        if (p[k].is_buffer ? !buffers : !params) continue;
        char record[128];
        snprintf(record, sizeof record, "%s%s", prefix, p[k].name);
        compare(r, record, p[k].data, p[k].numel, record, tol);
    }
}

static void train_sequence(run *r) {
    rm_net *net = fresh_net(r);
    check_names(r, net);
    printf("  -- weights from the formula (bit-exact) --\n");
    compare_all_data(r, net, "init:", 1, 1, 0.0);

    size_t in = rm_net_input_size(net);
    float *x = xcalloc((size_t)BATCH * in, sizeof(float));
    float *dx = xcalloc((size_t)BATCH * in, sizeof(float));
    float *logits = xcalloc(BATCH * NUM_CLASSES, sizeof(float));
    float *dlogits = xcalloc(BATCH * NUM_CLASSES, sizeof(float));
    int labels[BATCH];
    load_batch(r, net, x, labels);

    rm_tape *tape = NULL;
    CHECK_OK(rm_tape_create(net, &tape));
    printf("  -- train pass 1: forward --\n");
    CHECK_OK(rm_net_forward(net, tape, RM_MODE_TRAIN, x, BATCH, logits));
    compare(r, "logits", logits, BATCH * NUM_CLASSES, "logits", TOL_LOGITS);
    float loss = (float)cross_entropy(logits, labels, BATCH, NUM_CLASSES, dlogits);
    compare(r, "loss", &loss, 1, "loss", TOL_LOSS);

    printf("  -- train pass 1: backward (input and weights) --\n");
    rm_net_zero_grad(net);
    CHECK_OK(rm_net_backward(net, tape, dlogits, dx, RM_GRAD_INPUT | RM_GRAD_WEIGHTS));
    compare(r, "grad_input", dx, (size_t)BATCH * in, "grad_input", TOL_GRAD_INPUT);
    size_t n;
    rm_param *p = rm_net_params(net, &n);
    for (size_t k = 0; k < n; k++) {
        char record[128];
        if (p[k].is_buffer) continue;
        snprintf(record, sizeof record, "grad:%s", p[k].name);
        if (!p[k].grad) { /* reported by the name check already */
            tally(r, 0);
            continue;
        }
        compare(r, record, p[k].grad, p[k].numel, record, TOL_GRAD_WEIGHT);
    }
    compare_all_data(r, net, "running_after1:", 1, 0, TOL_RUNNING);

    printf("  -- SGD step, train pass 2, SGD step --\n");
    rm_sgd *opt = NULL;
    CHECK_OK(rm_sgd_create(p, n, (rm_sgd_config){.momentum = 0.9, .weight_decay = 5e-4}, &opt));
    rm_sgd_step(opt, SGD_LR);
    rm_net_params_changed(net);
    rm_net_zero_grad(net);
    CHECK_OK(rm_net_forward(net, tape, RM_MODE_TRAIN, x, BATCH, logits));
    cross_entropy(logits, labels, BATCH, NUM_CLASSES, dlogits);
    CHECK_OK(rm_net_backward(net, tape, dlogits, NULL, RM_GRAD_WEIGHTS));
    rm_sgd_step(opt, SGD_LR);
    rm_net_params_changed(net);
    compare_all_data(r, net, "after_sgd2:", 1, 1, TOL_AFTER_SGD);

    rm_sgd_destroy(opt);
    rm_tape_destroy(tape);
    rm_net_destroy(net);
    free(x);
    free(dx);
    free(logits);
    free(dlogits);
}

static void eval_sequence(run *r) {
    rm_net *net = fresh_net(r);
    size_t in = rm_net_input_size(net);
    float *x = xcalloc((size_t)BATCH * in, sizeof(float));
    float *dx = xcalloc((size_t)BATCH * in, sizeof(float));
    float *logits = xcalloc(BATCH * NUM_CLASSES, sizeof(float));
    float *dlogits = xcalloc(BATCH * NUM_CLASSES, sizeof(float));
    int labels[BATCH];
    const fixture_record *rx = fixture_find(r->fx, "input");
    assert_non_null(rx);
    assert_int_equal(rx->numel, (size_t)BATCH * in);
    memcpy(x, rx->data, (size_t)BATCH * in * sizeof(float));
    for (int b = 0; b < BATCH; b++) labels[b] = (int)fixture_find(r->fx, "labels")->data[b];

    rm_tape *tape = NULL;
    CHECK_OK(rm_tape_create(net, &tape));
    printf("  -- eval mode (fresh net): forward, backward to the input only --\n");
    CHECK_OK(rm_net_forward(net, tape, RM_MODE_EVAL, x, BATCH, logits));
    compare(r, "eval_logits", logits, BATCH * NUM_CLASSES, "eval_logits", TOL_LOGITS);
    float loss = (float)cross_entropy(logits, labels, BATCH, NUM_CLASSES, dlogits);
    compare(r, "eval_loss", &loss, 1, "eval_loss", TOL_LOSS);
    rm_net_zero_grad(net);
    CHECK_OK(rm_net_backward(net, tape, dlogits, dx, RM_GRAD_INPUT));
    compare(r, "eval_grad_input", dx, (size_t)BATCH * in, "eval_grad_input", TOL_GRAD_INPUT);

    /* An input-only backward leaves the weight gradients alone, and an eval forward
     * leaves the running statistics alone (still the formula values, bit for bit). */
    size_t n, touched = 0;
    rm_param *p = rm_net_params(net, &n);
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; p[k].grad && i < p[k].numel; i++) touched += p[k].grad[i] != 0.0f;
    printf("  %-44s %zu nonzero weight-gradient elements  %s\n", "RM_GRAD_INPUT-only backward",
           touched, touched == 0 ? "OK" : "NOT OK");
    tally(r, touched == 0);
    compare_all_data(r, net, "init:", 1, 0, 0.0);

    rm_tape_destroy(tape);
    rm_net_destroy(net);
    free(x);
    free(dx);
    free(logits);
    free(dlogits);
}

static void check_model(const char *model) {
    char path[1024];
    snprintf(path, sizeof path, "%s/model_%s.rmfx", REGMIX_TEST_DATA_DIR, model);
    run r = {.model = model};
    CHECK_OK(fixture_load(path, &r.fx));
    printf("[%s] %s: %zu records\n", model, path, r.fx->count);
    double t0 = rm_now_seconds();
    train_sequence(&r);
    eval_sequence(&r);
    size_t unused = fixture_report_unused(r.fx);
    tally(&r, unused == 0);
    printf("[%s] %s: %d of %d checks OK (%.2f s)%s\n", model, r.bad == 0 ? "OK" : "NOT OK",
           r.checked - r.bad, r.checked, rm_now_seconds() - t0,
           unused ? ", some fixture records never compared" : "");
    fflush(stdout);
    fixture_free(r.fx);
    assert_int_equal(r.bad, 0);
}

static void test_fmnist_cnn(void **state) {
    (void)state;
    check_model("fmnist-cnn");
}

static void test_preact_resnet18(void **state) {
    (void)state;
    check_model("preact-resnet18");
}

/* The reader's error paths: wrong magic and a truncated copy of a real fixture. */
static void test_fixture_reader_errors(void **state) {
    (void)state;
    char dir[] = "/tmp/regmix_fixture_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char bad[1100], cut[1100], src[1024];
    snprintf(bad, sizeof bad, "%s/bad.rmfx", dir);
    snprintf(cut, sizeof cut, "%s/cut.rmfx", dir);
    snprintf(src, sizeof src, "%s/model_fmnist-cnn.rmfx", REGMIX_TEST_DATA_DIR);

    FILE *fp = fopen(bad, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite("NOTAFIXT\0\0\0\0", 1, 12, fp), 12);
    assert_int_equal(fclose(fp), 0);
    fixture_file *f = NULL;
    rm_error_clear();
    assert_int_equal(fixture_load(bad, &f), RM_ERR_FORMAT);
    assert_null(f);
    assert_non_null(strstr(rm_error_message(), "bad.rmfx"));
    printf("  bad magic: %s\n", rm_error_message());

    /* the first 5000 bytes of a real file end inside a record */
    FILE *in = fopen(src, "rb");
    assert_non_null(in);
    char buf[5000];
    assert_int_equal(fread(buf, 1, sizeof buf, in), sizeof buf);
    fclose(in);
    fp = fopen(cut, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, sizeof buf, fp), sizeof buf);
    assert_int_equal(fclose(fp), 0);
    rm_error_clear();
    assert_int_equal(fixture_load(cut, &f), RM_ERR_FORMAT);
    assert_non_null(strstr(rm_error_message(), "cut.rmfx"));
    assert_non_null(strstr(rm_error_message(), "truncated"));
    printf("  truncated: %s\n", rm_error_message());

    rm_error_clear();
    char missing[1100];
    snprintf(missing, sizeof missing, "%s/missing.rmfx", dir);
    assert_int_equal(fixture_load(missing, &f), RM_ERR_IO);
    printf("  missing: %s\n", rm_error_message());
    rm_error_clear();

    remove(bad);
    remove(cut);
    remove(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_reader_errors),
        cmocka_unit_test(test_fmnist_cnn),
        cmocka_unit_test(test_preact_resnet18),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
