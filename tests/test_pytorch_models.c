/* The training engine against PyTorch, in the style of llm.c's test_gpt2: every model,
 * on the input shape its fixture holds, weights from the shared hash formula
 * (tests/support/fixture.c), references computed in float64 by
 * tests/pytorch/gen_model_fixtures.py. Every tensor's max difference is printed; each
 * fixture ends with one verdict line. Also: the state_dict names and shapes of models too
 * big for a fixture (wrn-34-10) and of models on other image shapes, and one
 * forward/backward of wrn-34-10.
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
#include "proc.h"
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
    int c, h, w; /* input image shape: the fixture's "input" record is (BATCH, c, h, w) */
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
    CHECK_OK(rm_net_create(r->model, r->c, r->h, r->w, NUM_CLASSES, &net));
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

/* fixture: tests/data/model_<fixture>.rmfx, a reference run of `model` */
static void check_model(const char *fixture, const char *model) {
    char path[1024];
    snprintf(path, sizeof path, "%s/model_%s.rmfx", REGMIX_TEST_DATA_DIR, fixture);
    run r = {.model = model};
    rm_error_clear(); /* the first error wins: start clean */
    CHECK_OK(fixture_load(path, &r.fx));
    const fixture_record *in = fixture_find(r.fx, "input");
    assert_non_null(in);
    assert_int_equal(in->ndim, 4);
    assert_int_equal(in->dims[0], BATCH);
    r.c = (int)in->dims[1], r.h = (int)in->dims[2], r.w = (int)in->dims[3];
    printf("[%s] %s on %dx%dx%d images, %s: %zu records\n", fixture, model, r.c, r.h, r.w, path, r.fx->count);
    double t0 = rm_now_seconds();
    train_sequence(&r);
    eval_sequence(&r);
    size_t unused = fixture_report_unused(r.fx);
    tally(&r, unused == 0);
    printf("[%s] %s: %d of %d checks OK (%.2f s)%s\n", fixture, r.bad == 0 ? "OK" : "NOT OK",
           r.checked - r.bad, r.checked, rm_now_seconds() - t0,
           unused ? ", some fixture records never compared" : "");
    fflush(stdout);
    fixture_free(r.fx);
    assert_int_equal(r.bad, 0);
}

static void test_fmnist_cnn(void **state) {
    (void)state;
    check_model("fmnist-cnn", "fmnist-cnn");
}

static void test_preact_resnet18(void **state) {
    (void)state;
    check_model("preact-resnet18", "preact-resnet18");
}

static void test_resnet18(void **state) {
    (void)state;
    check_model("resnet18", "resnet18");
}

/* one builder serves every wrn-D-W: a small one against PyTorch */
static void test_wrn_10_2(void **state) {
    (void)state;
    check_model("wrn-10-2", "wrn-10-2");
}

static void test_wrn_10_2_fmnist_shape(void **state) {
    (void)state;
    check_model("wrn-10-2_1x28x28", "wrn-10-2");
}

/* wrn-34-10 on CIFAR-10, by hand (tests/pytorch/gen_model_fixtures.py, SHAPES) and by
 * PyTorch's count of its twin: the shapes test below checks both agree with the net. */
#define WRN_34_10_WEIGHTS 46160474

/* tests/data/model_shapes.rmfx: per (model, input shape, classes) the PyTorch twin's
 * state_dict, one record "sd:<model>:<C>x<H>x<W>:<classes>:<entry>" per entry in order,
 * with its shape and the value 1 for a buffer, 0 for a parameter. The net built for the
 * same arguments must list exactly these, in this order. */
static void test_state_dict_shapes(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/model_shapes.rmfx", REGMIX_TEST_DATA_DIR);
    fixture_file *fx = NULL;
    rm_error_clear();
    CHECK_OK(fixture_load(path, &fx));
    int groups = 0, bad_groups = 0;
    int64_t wrn_34_10_weights = -1;
    for (size_t i = 0; i < fx->count;) {
        char model[64], head[160];
        int c, h, w, k, used = 0;
        const char *name = fx->records[i].name;
        if (sscanf(name, "sd:%63[^:]:%dx%dx%d:%d:%n", model, &c, &h, &w, &k, &used) != 5 || used == 0)
            fail_msg("%s: record '%s' is not sd:<model>:<C>x<H>x<W>:<classes>:<entry>", path, name);
        snprintf(head, sizeof head, "%.*s", used, name);
        rm_net *net = NULL;
        if (rm_net_create(model, c, h, w, k, &net) != RM_OK) fail_msg("%s: %s", head, rm_error_message());
        size_t n, j = 0, problems = 0;
        int64_t weights = 0;
        rm_param *p = rm_net_params(net, &n);
        for (; i < fx->count && !strncmp(fx->records[i].name, head, (size_t)used); i++, j++) {
            const fixture_record *rec = fixture_find(fx, fx->records[i].name);
            const char *entry = rec->name + used;
            int same = j < n && !strcmp(p[j].name, entry) && rec->ndim == p[j].ndim &&
                       rec->count == 1 && (rec->data[0] != 0.0f) == (p[j].is_buffer != 0);
            for (int d = 0; same && d < rec->ndim; d++) same = rec->dims[d] == p[j].dims[d];
            if (!same) {
                printf("  %s: PyTorch entry %zu \"%s\" differs from the net's (\"%s\")\n", head, j, entry,
                       j < n ? p[j].name : "none");
                problems++;
            }
        }
        for (size_t q = 0; q < n; q++)
            if (!p[q].is_buffer) weights += (int64_t)p[q].numel;
        problems += j != n;
        printf("  %-32s %3zu state_dict entries (PyTorch %3zu), %9lld weights: %s\n", head, n, j,
               (long long)weights, problems ? "NOT OK" : "OK");
        if (!strcmp(head, "sd:wrn-34-10:3x32x32:10:")) wrn_34_10_weights = weights;
        groups++;
        bad_groups += problems != 0;
        rm_net_destroy(net);
    }
    fixture_free(fx);
    printf("  wrn-34-10 on CIFAR-10: %lld weights (by hand: %d)\n", (long long)wrn_34_10_weights,
           WRN_34_10_WEIGHTS);
    assert_true(groups >= 6);
    assert_int_equal(bad_groups, 0);
    assert_int_equal(wrn_34_10_weights, WRN_34_10_WEIGHTS);
}

/* mean CE of a train-mode forward */
static double ce_of(rm_net *net, rm_tape *tape, const float *x, const int *y, int batch, float *logits,
                    float *dlogits) {
    CHECK_OK(rm_net_forward(net, tape, RM_MODE_TRAIN, x, batch, logits));
    return cross_entropy(logits, y, batch, NUM_CLASSES, dlogits);
}

/* the directional checks: cur = base + t dir (the input, or all weights concatenated) */
typedef struct {
    float *base, *cur, *dir;
    size_t n;
} line;

static void line_set(line *l, double t) {
    for (size_t i = 0; i < l->n; i++) l->cur[i] = (float)((double)l->base[i] + t * (double)l->dir[i]);
}

/* the weights of the net <-> one flat array */
static size_t weights_copy(rm_net *net, float *flat, int to_net) {
    size_t n, off = 0;
    rm_param *p = rm_net_params(net, &n);
    for (size_t k = 0; k < n; k++) {
        if (p[k].is_buffer) continue;
        if (flat && to_net) memcpy(p[k].data, flat + off, p[k].numel * sizeof(float));
        else if (flat) memcpy(flat + off, p[k].data, p[k].numel * sizeof(float));
        off += p[k].numel;
    }
    if (flat && to_net) rm_net_params_changed(net);
    return off;
}

static double unit_direction(float *dir, const float *g, size_t n) {
    double norm = 0.0;
    for (size_t i = 0; i < n; i++) norm += (double)g[i] * g[i];
    norm = sqrt(norm);
    for (size_t i = 0; i < n; i++) dir[i] = (float)(g[i] / norm);
    return norm;
}

/* wrn-34-10 (the paper's model, 46 M weights) builds, and one train-mode forward and
 * backward at batch 2 is consistent: the input gradient and the weight gradient each
 * predict the change of the loss along their own direction (central differences, 5 %),
 * every gradient is finite and every weight tensor gets a nonzero gradient. The running
 * statistics move with each forward; they do not enter a train-mode loss. */
static void test_wrn_34_10_forward_backward(void **state) {
    (void)state;
    enum { B = 2 };
    rm_net *net = NULL;
    double t0 = rm_now_seconds();
    CHECK_OK(rm_net_create("wrn-34-10", 3, 32, 32, NUM_CLASSES, &net));
    rm_net_init(net, 1);
    rm_tape *tape = NULL;
    CHECK_OK(rm_tape_create(net, &tape));
    size_t d = rm_net_input_size(net), nx = B * d;
    float *x = xcalloc(nx, sizeof(float)), *dx = xcalloc(nx, sizeof(float)), *xdir = xcalloc(nx, sizeof(float));
    float logits[B * NUM_CLASSES], dlogits[B * NUM_CLASSES];
    int y[B] = {3, 7};
    rm_rng rng;
    rm_rng_seed(&rng, 5);
    for (size_t i = 0; i < nx; i++) x[i] = rm_rng_uniform(&rng);
    double loss = ce_of(net, tape, x, y, B, logits, dlogits);
    rm_net_zero_grad(net);
    CHECK_OK(rm_net_backward(net, tape, dlogits, dx, RM_GRAD_INPUT | RM_GRAD_WEIGHTS));
    printf("  wrn-34-10: built, forward and backward at batch 2 in %.1f s; loss %.4f\n", rm_now_seconds() - t0, loss);
    assert_true(isfinite(loss));

    size_t np, nw = weights_copy(net, NULL, 0), zero_tensors = 0, nonfinite = 0;
    rm_param *p = rm_net_params(net, &np);
    float *w0 = xcalloc(nw, sizeof(float)), *g = xcalloc(nw, sizeof(float)), *wdir = xcalloc(nw, sizeof(float));
    float *wcur = xcalloc(nw, sizeof(float));
    weights_copy(net, w0, 0);
    for (size_t k = 0, off = 0; k < np; k++) {
        if (p[k].is_buffer) continue;
        size_t nonzero = 0;
        for (size_t i = 0; i < p[k].numel; i++) {
            nonfinite += !isfinite(p[k].grad[i]);
            nonzero += p[k].grad[i] != 0.0f;
        }
        memcpy(g + off, p[k].grad, p[k].numel * sizeof(float));
        off += p[k].numel;
        if (!nonzero) printf("  %s: all-zero gradient\n", p[k].name);
        zero_tensors += nonzero == 0;
    }
    for (size_t i = 0; i < nx; i++) nonfinite += !isfinite(dx[i]);
    printf("  %zu weights; %zu non-finite gradient values, %zu weight tensors with an all-zero gradient\n", nw,
           nonfinite, zero_tensors);
    assert_int_equal(nw, WRN_34_10_WEIGHTS);
    assert_int_equal(nonfinite, 0);
    assert_int_equal(zero_tensors, 0);

    /* input: x + t u, u = dx/|dx|; predicted slope |dx| */
    float *xcur = xcalloc(nx, sizeof(float));
    line lx = {x, xcur, xdir, nx};
    double gnorm = unit_direction(xdir, dx, nx), h = 1e-3;
    line_set(&lx, h);
    double lp = ce_of(net, tape, xcur, y, B, logits, dlogits);
    line_set(&lx, -h);
    double lm = ce_of(net, tape, xcur, y, B, logits, dlogits);
    double fd = (lp - lm) / (2 * h), rel_x = fabs(fd - gnorm) / gnorm;
    printf("  input direction:  |dL/dx| %.6e, central difference %.6e, rel diff %.2e (<= 5e-2)\n", gnorm, fd, rel_x);

    /* weights: w + t v, v = g/|g|; predicted slope |g| */
    line lw = {w0, wcur, wdir, nw};
    double wnorm = unit_direction(wdir, g, nw), hw = 1e-4;
    line_set(&lw, hw);
    weights_copy(net, wcur, 1);
    lp = ce_of(net, tape, x, y, B, logits, dlogits);
    line_set(&lw, -hw);
    weights_copy(net, wcur, 1);
    lm = ce_of(net, tape, x, y, B, logits, dlogits);
    double fdw = (lp - lm) / (2 * hw), rel_w = fabs(fdw - wnorm) / wnorm;
    printf("  weight direction: |dL/dw| %.6e, central difference %.6e, rel diff %.2e (<= 5e-2)\n", wnorm, fdw, rel_w);
    assert_true(rel_x <= 5e-2);
    assert_true(rel_w <= 5e-2);

    free(x);
    free(dx);
    free(xdir);
    free(xcur);
    free(w0);
    free(g);
    free(wdir);
    free(wcur);
    rm_tape_destroy(tape);
    rm_net_destroy(net);
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

    rm_test_remove_tree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_reader_errors),
        cmocka_unit_test(test_fmnist_cnn),
        cmocka_unit_test(test_preact_resnet18),
        cmocka_unit_test(test_resnet18),
        cmocka_unit_test(test_wrn_10_2),
        cmocka_unit_test(test_wrn_10_2_fmnist_shape),
        cmocka_unit_test(test_state_dict_shapes),
        cmocka_unit_test(test_wrn_34_10_forward_backward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
