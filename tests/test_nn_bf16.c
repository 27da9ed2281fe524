/* precision: bf16 against f32 (the same weights, images and labels).
 *
 * 1. Fallback: with oneDNN capped below AVX-512 BF16 (ONEDNN_MAX_CPU_ISA=AVX512_CORE, in
 *    a child process, set before oneDNN starts), a bf16 request must run f32, say so in
 *    rm_precision_effective's note and in a run file's /provenance (precision "f32",
 *    precision_note), and give bit-identical results to an f32 network. This runs on
 *    every CPU: it is what a CPU without bf16 units does. Where bf16 runs, the run file
 *    says "bf16", with an empty note on AMX and a note naming the f32 Winograd layers
 *    with AVX-512 BF16 alone (rm_precision_winograd_f32).
 * 2. Where the CPU has bf16 (AVX-512 BF16 or AMX): the sequence of the PyTorch model
 *    fixtures (formula weights, the stored batch of 4 images and labels; a train-mode
 *    CE forward/backward, and an eval-mode one from fresh weights), run in bf16 and in
 *    f32; per result the relative L2 error |a_bf16 - a_f32| / |a_f32| over the tensor
 *    (f32 is within 1e-6 of float64: test_pytorch_models). Elsewhere this part reports
 *    the fallback (checked in 1) and is skipped.
 *
 * Tolerances, derived, not fitted to regmix's output:
 * - logits: bf16 keeps 8 significant bits, so one rounding costs at most u = 2^-8
 *   relative. The forward pass rounds k times along its longest path (the input image,
 *   every weight copy, every stored conv/linear/BN/add output; ReLU and pooling only pick
 *   bf16 values). To first order these relative errors add, with a gain of about 1 per
 *   layer because batch norm renormalises each layer: |error| <= k u, allowed 2 k u.
 * - gradients: the first-order bound does not hold. Train-mode batch norm subtracts the
 *   batch means of dy and dy*xhat (a small difference of large terms at batch 4) and a
 *   max-pool window whose two largest inputs round to one bf16 value sends its gradient
 *   elsewhere; both amplify the roundings by a factor that belongs to the network and
 *   the data. The yardstick is PyTorch's mixed precision (torch.autocast bf16, an
 *   independent implementation users train with) on the identical computation, measured
 *   against float64 by tests/pytorch/gen_bf16_fixtures.py: regmix must stay within 2x
 *   of PyTorch's error (two implementations round at different points).
 * Either error is of order 1 for a layout or data-type mistake.
 * 3. bf16 is deterministic (two runs, the same bits), and the data-parallel batch norm
 *    works in bf16 (see check_sync).
 * 4. The closeness of 2. at batch 128, where the 3x3 layers of a bf16 network stay f32
 *    Winograd on CPUs without AMX (the kernels are checked, then the same bounds). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <hdf5.h>

#include "fixture.h"
#include "proc.h"
#include "regmix/runfile.h"
#include "regmix/loss.h"
#include "regmix/nn.h"

enum { K = 10 };
static const double U = 1.0 / 256; /* 2^-8: bf16 unit roundoff */

typedef struct {
    int B;
    float *logits, *dx, *grads; /* grads: every parameter's gradient, concatenated */
    size_t nx, ngrads;
} pass_out;

static void pass_free(pass_out *o) {
    rm_free(o->logits);
    rm_free(o->dx);
    rm_free(o->grads);
}

static fixture_file *model_fixture(const char *model) {
    char path[512];
    snprintf(path, sizeof path, "%s/model_%s.rmfx", REGMIX_TEST_DATA_DIR, model);
    fixture_file *fx = NULL;
    if (fixture_load(path, &fx) != RM_OK) fail_msg("%s", rm_error_message());
    return fx;
}

/* One pass in `mode` on the model fixture's formula weights, images and labels: forward,
 * CE, backward (input and, in training mode, weights). */
static rm_status identity_allreduce(void *ctx, double *buf, int n) {
    (void)ctx, (void)buf, (void)n;
    return RM_OK;
}

static void run_pass_sync(const char *model, rm_precision prec, rm_mode mode, int synced, int tile, pass_out *o);

static void run_pass(const char *model, rm_precision prec, rm_mode mode, pass_out *o) {
    run_pass_sync(model, prec, mode, 0, 1, o);
}

/* The image shape the model was written for: 1x28x28 (fmnist-cnn), 32x32x32 (tiny:wino,
 * Winograd-sized), else 3x32x32. */
static void usual_shape(const char *model, int *c, int *h, int *w) {
    if (!strcmp(model, "fmnist-cnn")) *c = 1, *h = *w = 28;
    else if (!strcmp(model, "tiny:wino")) *c = 32, *h = *w = 32;
    else *c = 3, *h = *w = 32;
}

/* synced: batch norm through the data-parallel path (bn_sync.c) with a group of one.
 * tile: the fixture's B images repeated `tile` times as one batch of B * tile, which
 * changes no result (batch statistics and the CE mean's weight gradient are the same;
 * the input gradient of the first copy is scaled back by `tile`) but the batch size,
 * and with it the kernels oneDNN picks (Winograd at 128). o keeps the first copy. */
static void run_pass_sync(const char *model, rm_precision prec, rm_mode mode, int synced, int tile, pass_out *o) {
    fixture_file *fx = model_fixture(model);
    fixture_record *xin = fixture_find(fx, "input"), *lab = fixture_find(fx, "labels");
    assert_non_null(xin);
    assert_non_null(lab);
    assert_int_equal(xin->stride, 1);
    int B = (int)lab->numel, BT = B * tile;
    rm_net *net;
    int c, h, w;
    usual_shape(model, &c, &h, &w);
    assert_int_equal(rm_net_create(model, c, h, w, K, &net), RM_OK);
    fixture_fill_params(net);
    assert_int_equal(rm_net_set_precision(net, prec), RM_OK);
    if (synced) rm_net_set_allreduce(net, identity_allreduce, NULL);
    rm_tape *tape;
    assert_int_equal(rm_tape_create(net, &tape), RM_OK);
    o->B = B;
    o->nx = (size_t)B * rm_net_input_size(net);
    assert_int_equal(xin->numel, o->nx);
    float *x = rm_alloc(o->nx * tile * sizeof(float)), *dx = rm_alloc(o->nx * tile * sizeof(float));
    float *logits = rm_alloc((size_t)BT * K * sizeof(float)), *dz = rm_alloc((size_t)BT * K * sizeof(float));
    int32_t *y = rm_alloc((size_t)BT * sizeof(int32_t));
    for (int t = 0; t < tile; t++) {
        memcpy(x + o->nx * t, xin->data, o->nx * sizeof(float));
        for (int b = 0; b < B; b++) y[t * B + b] = (int32_t)lab->data[b];
    }
    assert_int_equal(rm_net_forward(net, tape, mode, x, BT, logits), RM_OK);
    assert_int_equal(rm_ce_ls(logits, y, BT, K, 1.0, NULL, dz), RM_OK);
    rm_net_zero_grad(net);
    unsigned flags = RM_GRAD_INPUT | (mode == RM_MODE_TRAIN ? RM_GRAD_WEIGHTS : 0);
    assert_int_equal(rm_net_backward(net, tape, dz, dx, flags), RM_OK);
    o->logits = rm_alloc((size_t)B * K * sizeof(float));
    memcpy(o->logits, logits, (size_t)B * K * sizeof(float));
    o->dx = rm_alloc(o->nx * sizeof(float));
    for (size_t i = 0; i < o->nx; i++) o->dx[i] = dx[i] * (float)tile;
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    o->ngrads = 0;
    for (size_t i = 0; i < np; i++) o->ngrads += p[i].grad ? p[i].numel : 0;
    o->grads = rm_alloc(o->ngrads * sizeof(float));
    for (size_t i = 0, at = 0; i < np; i++)
        if (p[i].grad) {
            memcpy(o->grads + at, p[i].grad, p[i].numel * sizeof(float));
            at += p[i].numel;
        }
    rm_free(x);
    rm_free(dx);
    rm_free(logits);
    rm_free(dz);
    rm_free(y);
    rm_tape_destroy(tape);
    rm_net_destroy(net);
    fixture_free(fx);
}

static double rel_l2(const float *a, const float *ref, size_t n) {
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - ref[i]) * ((double)a[i] - ref[i]);
        r += (double)ref[i] * ref[i];
    }
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

/* ---------------------------------------------------------------- 1. fallback */

static void prov_str(hid_t g, const char *name, char *buf, size_t size) {
    hid_t a = H5Aopen(g, name, H5P_DEFAULT);
    if (a < 0) fail_msg("/provenance has no attribute %s", name);
    hid_t t = H5Aget_type(a);
    char *v = NULL;
    assert_true(H5Aread(a, t, &v) >= 0);
    snprintf(buf, size, "%s", v);
    H5free_memory(v);
    H5Tclose(t);
    H5Aclose(a);
}

/* A run file of a precision=bf16 configuration records what ran: the effective
 * precision and, for a fallback, the note. Returns 1 when both are right. */
static int provenance_records_precision(void) {
    char dir[] = "/tmp/regmix-bf16-XXXXXX", path[128], prec[16], note[256], want[256];
    if (!mkdtemp(dir)) return 0;
    snprintf(path, sizeof path, "%s/run.h5", dir);
    rm_config cfg;
    rm_config_defaults(&cfg);
    assert_int_equal(rm_config_set(&cfg, "precision", "bf16", "test"), RM_OK);
    rm_run_info info = {.mpi_rank = 0, .mpi_size = 1, .threads = 1};
    rm_metric_spec m = {"loss", "nats", "loss"};
    rm_runfile *rf;
    assert_int_equal(rm_runfile_create(path, &cfg, &info, &m, 1, &rf), RM_OK);
    assert_int_equal(rm_runfile_close(rf), RM_OK);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t g = H5Gopen2(f, "/provenance", H5P_DEFAULT);
    assert_true(g >= 0);
    prov_str(g, "precision", prec, sizeof prec);
    prov_str(g, "precision_note", note, sizeof note);
    H5Gclose(g);
    H5Fclose(f);
    rm_test_remove_tree(dir);
    rm_precision eff = rm_precision_effective(RM_PRECISION_BF16, want, sizeof want);
    printf("  run file with precision: bf16: /provenance precision \"%s\", precision_note \"%s\"\n", prec, note);
    /* a fallback always says why; bf16 says only how it mixes in f32 Winograd (no AMX) */
    int fallback_noted = eff == RM_PRECISION_F32 ? strstr(note, "running f32") != NULL
                                                 : rm_precision_winograd_f32() == (strstr(note, "Winograd") != NULL);
    return !strcmp(prec, rm_precision_name(eff)) && !strcmp(note, want) && fallback_noted;
}

static const char *CHILD_ENV = "REGMIX_TEST_BF16_FALLBACK_CHILD";

/* In the child (ISA capped): a bf16 request is reported and runs f32, bit for bit. */
static int fallback_child(void) {
    char note[256];
    rm_precision eff = rm_precision_effective(RM_PRECISION_BF16, note, sizeof note);
    printf("  child: oneDNN ISA %s; bf16 request -> %s; note: \"%s\"\n", rm_dnnl_isa(),
           rm_precision_name(eff), note);
    if (eff != RM_PRECISION_F32 || !strstr(note, "running f32") || !strstr(note, rm_dnnl_isa())) return 3;
    if (!provenance_records_precision()) return 5;
    pass_out a, b;
    run_pass("fmnist-cnn", RM_PRECISION_BF16, RM_MODE_TRAIN, &a);
    run_pass("fmnist-cnn", RM_PRECISION_F32, RM_MODE_TRAIN, &b);
    int same = !memcmp(a.logits, b.logits, (size_t)a.B * K * sizeof(float)) &&
               !memcmp(a.dx, b.dx, a.nx * sizeof(float)) && !memcmp(a.grads, b.grads, a.ngrads * sizeof(float));
    printf("  child: bf16-requested network %s the f32 one bit for bit\n", same ? "equals" : "DIFFERS from");
    pass_free(&a);
    pass_free(&b);
    return same ? 0 : 4;
}

static void test_fallback_without_bf16_is_reported(void **state) {
    (void)state;
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* before oneDNN reads it: the child starts fresh through exec */
        setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE", 1);
        setenv(CHILD_ENV, "1", 1);
        execl("/proc/self/exe", "test_nn_bf16", (char *)NULL);
        _exit(98);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---------------------------------------------------------------- 2. closeness */

/* Skips (after reporting the fallback) where the CPU has no bf16. */
static int have_bf16(void) {
    char note[256];
    if (rm_precision_effective(RM_PRECISION_BF16, note, sizeof note) == RM_PRECISION_BF16) return 1;
    printf("  this CPU runs bf16 requests in f32: %s\n", note);
    assert_true(strstr(note, "running f32") != NULL);
    return 0;
}

/* PyTorch autocast's relative error for one result (gen_bf16_fixtures.py). */
static double autocast_error(fixture_file *fx, const char *model, const char *part) {
    char name[96];
    snprintf(name, sizeof name, "%s:%s", model, part);
    fixture_record *r = fixture_find(fx, name);
    if (!r) fail_msg("bf16_autocast_errors.rmfx has no record %s", name);
    return r->data[0];
}

static int check(const char *what, double err, double tol, double pytorch) {
    printf("    %-18s bf16 vs f32 %.3e  tolerance %.3e  (PyTorch autocast vs float64 %.3e)  %s\n", what, err,
           tol, pytorch, err <= tol ? "OK" : "NOT OK");
    return err <= tol;
}

/* k: bf16 roundings on the longest forward path (see the comment at the top); tile:
 * see run_pass_sync. */
static void check_model(const char *model, int k, int tile) {
    if (!have_bf16()) skip();
    assert_true(provenance_records_precision());
    char path[512];
    snprintf(path, sizeof path, "%s/bf16_autocast_errors.rmfx", REGMIX_TEST_DATA_DIR);
    fixture_file *ac = NULL;
    if (fixture_load(path, &ac) != RM_OK) fail_msg("%s", rm_error_message());
    int ok = 1;
    for (int m = 0; m < 2; m++) {
        rm_mode mode = m ? RM_MODE_EVAL : RM_MODE_TRAIN;
        const char *mn = m ? "eval" : "train";
        char part[32];
        pass_out h, f;
        run_pass_sync(model, RM_PRECISION_BF16, mode, 0, tile, &h);
        run_pass_sync(model, RM_PRECISION_F32, mode, 0, tile, &f);
        printf("  %s, %s mode, batch %d x %d, k = %d roundings on the forward path:\n", model, mn, h.B, tile, k);
        double el = rel_l2(h.logits, f.logits, (size_t)h.B * K);
        snprintf(part, sizeof part, "%s:logits", mn);
        ok &= check("logits", el, 2 * k * U, autocast_error(ac, model, part));
        /* not vacuous: bf16 really ran (two f32 runs agree to ~1e-7) */
        ok &= el > 1e-5;
        snprintf(part, sizeof part, "%s:grad_input", mn);
        double pe = autocast_error(ac, model, part);
        ok &= check("input gradient", rel_l2(h.dx, f.dx, f.nx), 2 * pe, pe);
        if (mode == RM_MODE_TRAIN) {
            pe = autocast_error(ac, model, "train:grads");
            ok &= check("weight gradients", rel_l2(h.grads, f.grads, f.ngrads), 2 * pe, pe);
        }
        pass_free(&h);
        pass_free(&f);
    }
    fixture_free(ac);
    assert_true(ok);
}

/* fmnist-cnn: x, w1, conv1 out, bn1 out, w2, conv2 out, bn2 out, w3, fc1 out, w4 */
static void test_fmnist_cnn_close_to_f32(void **state) {
    (void)state;
    check_model("fmnist-cnn", 10, 1);
}

/* preact-resnet18: x, stem w, stem out; per block (8) bn1 out, conv1 w, conv1 out,
 * bn2 out, conv2 w, conv2 out, add out; final bn out, pool out, linear w: 3 + 56 + 3 */
static void test_preact_resnet18_close_to_f32(void **state) {
    (void)state;
    check_model("preact-resnet18", 62, 1);
}

/* 4. The same at batch 128 (the fixture's 4 images 32 times), where oneDNN takes
 * Winograd: on AVX-512 BF16 without AMX the 3x3 stride-1 layers with >= 64 channels then
 * stay f32 (rm_precision_winograd_f32), a network of mixed data types whose layers hand
 * over through reorders in both directions; on AMX everything is bf16. Either must meet
 * the bounds above (the mixed network rounds a subset of what the all-bf16 one rounds). */
static void test_preact_resnet18_batch128_close_to_f32(void **state) {
    (void)state;
    if (!have_bf16()) skip();
    rm_net *net;
    char kernels[512];
    assert_int_equal(rm_net_create("preact-resnet18", 3, 32, 32, K, &net), RM_OK);
    assert_int_equal(rm_net_set_precision(net, RM_PRECISION_BF16), RM_OK);
    assert_int_equal(rm_net_conv_kernels(net, 128, kernels, sizeof kernels), RM_OK);
    rm_net_destroy(net);
    printf("  preact-resnet18 bf16, convolutions at batch 128 (ISA %s): %s\n", rm_dnnl_isa(), kernels);
    assert_non_null(strstr(kernels, "bf16"));
    /* the 13 3x3 stride-1 layers after the stem, in each pass */
    if (rm_precision_winograd_f32()) assert_non_null(strstr(kernels, "jit_wino_4x3:avx512_core x13"));
    else assert_null(strstr(kernels, "wino"));
    check_model("preact-resnet18", 62, 32);
}

/* Same seed, same thread count: the same bits, in bf16 too. */
static void test_bf16_deterministic(void **state) {
    (void)state;
    if (!have_bf16()) skip();
    pass_out a, b;
    run_pass("preact-resnet18", RM_PRECISION_BF16, RM_MODE_TRAIN, &a);
    run_pass("preact-resnet18", RM_PRECISION_BF16, RM_MODE_TRAIN, &b);
    assert_memory_equal(a.logits, b.logits, (size_t)a.B * K * sizeof(float));
    assert_memory_equal(a.dx, b.dx, a.nx * sizeof(float));
    assert_memory_equal(a.grads, b.grads, a.ngrads * sizeof(float));
    printf("  preact-resnet18 bf16, two runs: logits, input gradient and %zu weight-gradient values identical\n",
           a.ngrads);
    pass_free(&a);
    pass_free(&b);
}

/* Data-parallel batch norm (bn_sync.c) in bf16, in a group of one, against oneDNN's own
 * batch-statistics batch norm: the same statistics, so the forward pass may differ only
 * by one rounding of a BN output (2u allowed); the backward pass adds the mean/variance
 * terms to an already rounded bf16 diff_src and rounds again: one extra rounding per
 * batch norm on the path, so 2 n_bn u. */
static void check_sync(const char *model, int n_bn) {
    if (!have_bf16()) skip();
    pass_out a, b;
    run_pass_sync(model, RM_PRECISION_BF16, RM_MODE_TRAIN, 0, 1, &a);
    run_pass_sync(model, RM_PRECISION_BF16, RM_MODE_TRAIN, 1, 1, &b);
    double el = rel_l2(b.logits, a.logits, (size_t)a.B * K), ed = rel_l2(b.dx, a.dx, a.nx),
           eg = rel_l2(b.grads, a.grads, a.ngrads), tb = 2 * n_bn * U;
    printf("  %s bf16, synchronised BN (group of one) vs batch statistics: logits %.2e (tol %.2e), "
           "input grad %.2e, weight grads %.2e (tol %.2e)\n", model, el, 2 * U, ed, eg, tb);
    assert_true(el <= 2 * U);
    assert_true(ed <= tb);
    assert_true(eg <= tb);
    pass_free(&a);
    pass_free(&b);
}

static void test_sync_bn_bf16_fmnist_cnn(void **state) {
    (void)state;
    check_sync("fmnist-cnn", 2);
}

static void test_sync_bn_bf16_preact_resnet18(void **state) {
    (void)state;
    check_sync("preact-resnet18", 17); /* 2 per block, 8 blocks, and the final one */
}

int main(void) {
    if (getenv(CHILD_ENV)) return fallback_child();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fallback_without_bf16_is_reported),
        cmocka_unit_test(test_fmnist_cnn_close_to_f32),
        cmocka_unit_test(test_preact_resnet18_close_to_f32),
        cmocka_unit_test(test_preact_resnet18_batch128_close_to_f32),
        cmocka_unit_test(test_bf16_deterministic),
        cmocka_unit_test(test_sync_bn_bf16_fmnist_cnn),
        cmocka_unit_test(test_sync_bn_bf16_preact_resnet18),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
