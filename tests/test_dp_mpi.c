/* Data-parallel training (issue 5 item 5): `regmix sweep --ranks-per-run K`.
 *
 * 1. Synchronised batch norm, alone: with an allreduce that is the identity (a group of
 *    one), the global-statistics path of bn_sync.c (local stats -> group sums ->
 *    use_global_stats forward; global-stats backward + the mean/variance correction)
 *    must equal oneDNN's own training-mode batch norm: logits, input gradient, every
 *    weight gradient and the running statistics. The reference is the independent
 *    oneDNN batch-statistics primitive, so this checks the correction formula.
 * 2. The real thing: one tiny PGI + RegMix sweep (fmnist-cnn, 256 samples, batch 64,
 *    2 epochs = 8 SGD steps, eval clean + PGD-3) run with `mpirun -n 1` and with
 *    `mpirun -n 2 --ranks-per-run 2`. Final weights and BN statistics of the two
 *    checkpoints agree to max|diff| <= 1e-4 * max|w| per tensor, and the per-epoch
 *    training losses to 1e-5 relative.
 *    Why these tolerances: the two runs differ only in the order of float32 sums (each
 *    rank's convolution sums over 32 images instead of 64, BN statistics are combined
 *    from two halves, gradients are added in two parts); each such difference is a few
 *    float32 ulps (~1e-7 relative) of a gradient entry. Eight SGD steps (lr 0.1,
 *    momentum 0.9) accumulate at most ~8 * lr * |g| * 1e-6, far below 1e-4 * max|w|; a
 *    wrong split (a missing 1/K, unsynchronised BN, a slice computed twice) changes the
 *    weights at the 1e-2 level and the losses at the 1e-3 level.
 * Skipped (with a message) when Fashion-MNIST is not installed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"

#include "regmix/loss.h"
#include "regmix/nn.h"
#include "regmix/runfile.h"

/* ---------------------------------------------------------------- part 1 */

static int identity_calls;

static rm_status identity_allreduce(void *ctx, double *buf, int n) {
    (void)ctx, (void)buf, (void)n;
    identity_calls++;
    return RM_OK;
}

enum { B = 8, K = 10 };

typedef struct {
    float logits[B * K];
    float *dx;
    float *tensors; /* every param's data and grad, concatenated */
    size_t total;
} pass_result;

/* One training-mode forward + backward (weights and input) on fixed data. */
static void one_pass(int synced, pass_result *out) {
    rm_net *net;
    assert_int_equal(rm_net_create("fmnist-cnn", 1, 28, 28, K, &net), RM_OK);
    rm_net_init(net, 7);
    if (synced) rm_net_set_allreduce(net, identity_allreduce, NULL);
    rm_tape *tape;
    assert_int_equal(rm_tape_create(net, &tape), RM_OK);
    size_t nx = (size_t)B * rm_net_input_size(net);
    float *x = rm_alloc(nx * sizeof(float));
    out->dx = rm_alloc(nx * sizeof(float));
    int32_t y[B];
    rm_rng r;
    rm_rng_seed(&r, 3);
    for (size_t i = 0; i < nx; i++) x[i] = rm_rng_uniform(&r);
    for (int b = 0; b < B; b++) y[b] = (int32_t)rm_rng_below(&r, K);
    assert_int_equal(rm_net_forward(net, tape, RM_MODE_TRAIN, x, B, out->logits), RM_OK);
    float dz[B * K];
    memset(dz, 0, sizeof dz);
    assert_int_equal(rm_ce_ls(out->logits, y, B, K, 1.0, NULL, dz), RM_OK);
    rm_net_zero_grad(net);
    assert_int_equal(rm_net_backward(net, tape, dz, out->dx, RM_GRAD_WEIGHTS | RM_GRAD_INPUT), RM_OK);
    size_t np, total = 0;
    rm_param *p = rm_net_params(net, &np);
    for (size_t i = 0; i < np; i++) total += p[i].numel * (p[i].grad ? 2 : 1);
    out->tensors = rm_alloc(total * sizeof(float));
    out->total = total;
    size_t at = 0;
    for (size_t i = 0; i < np; i++) {
        memcpy(out->tensors + at, p[i].data, p[i].numel * sizeof(float));
        at += p[i].numel;
        if (p[i].grad) {
            memcpy(out->tensors + at, p[i].grad, p[i].numel * sizeof(float));
            at += p[i].numel;
        }
    }
    rm_free(x);
    rm_tape_destroy(tape);
    rm_net_destroy(net);
}

static double max_rel(const float *a, const float *b, size_t n) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)a[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

static void test_sync_bn_alone_equals_batch_statistics(void **state) {
    (void)state;
    pass_result ref, syn;
    one_pass(0, &ref);
    identity_calls = 0;
    one_pass(1, &syn);
    size_t nx = (size_t)B * 28 * 28;
    double dl = max_rel(ref.logits, syn.logits, B * K), dd = max_rel(ref.dx, syn.dx, nx),
           dt = max_rel(ref.tensors, syn.tensors, ref.total);
    printf("  sync BN (group of one) vs oneDNN batch statistics: logits %.2e, dx %.2e, "
           "params+grads+running stats %.2e (max |diff| / max |ref|); %d group sums\n", dl, dd, dt,
           identity_calls);
    assert_true(identity_calls > 0); /* the synchronised path really ran */
    assert_true(dl <= 1e-5);
    assert_true(dd <= 1e-4);
    assert_true(dt <= 1e-4);
    rm_free(ref.dx), rm_free(syn.dx), rm_free(ref.tensors), rm_free(syn.tensors);
}

/* ---------------------------------------------------------------- part 2 */

static char workdir[256];

static void write_sweep(const char *dir, int subset, int epochs, int threads) {
    char path[512];
    snprintf(path, sizeof path, "%s/dp.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "name: dp\n"
               "base:\n"
               "  model: fmnist-cnn\n  train_subset: %d\n  test_subset: 64\n  batch: 64\n  epochs: %d\n"
               "  threads: %d\n  eval_attacks: [clean, pgd3]\n  reg: regmix\n"
               "  outdir: %s/results\n", subset, epochs, threads, dir);
    assert_int_equal(fclose(f), 0);
}

static int run_sweep(const char *dir, int ranks, int per_run) {
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rm_test_mpi_env();
        if (chdir(dir) != 0) _exit(97);
        if (!freopen("sweep.log", "w", stdout) || !freopen("sweep.log", "a", stderr)) _exit(99);
        char n[8], k[8];
        snprintf(n, sizeof n, "%d", ranks);
        snprintf(k, sizeof k, "%d", per_run);
        execlp("mpirun", "mpirun", "-n", n, REGMIX_BINARY, "sweep", "dp.yaml", "--ranks-per-run", k,
               (char *)NULL);
        _exit(98);
    }
    return rm_test_wait_exit(pid);
}

static void make_case(char *out, size_t size, const char *name, int subset, int epochs, int threads) {
    snprintf(out, size, "%s/%s", workdir, name);
    assert_int_equal(mkdir(out, 0755), 0);
    write_sweep(out, subset, epochs, threads);
}

static int setup(void **state) {
    (void)state;
    snprintf(workdir, sizeof workdir, "/tmp/regmix-dp-XXXXXX");
    assert_non_null(mkdtemp(workdir));
    return 0;
}

static double compare_weights(const char *run_a, const char *run_b, long steps) {
    rm_net *net;
    assert_int_equal(rm_net_create("fmnist-cnn", 1, 28, 28, 10, &net), RM_OK);
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    rm_checkpoint_reader *ra, *rb;
    rm_checkpoint_meta ma, mb;
    assert_int_equal(rm_checkpoint_open(run_a, &ra, &ma), RM_OK);
    assert_int_equal(rm_checkpoint_open(run_b, &rb, &mb), RM_OK);
    printf("  checkpoints: epoch %lld / %lld, %lld / %lld SGD steps\n", (long long)ma.epoch,
           (long long)mb.epoch, (long long)ma.steps, (long long)mb.steps);
    assert_int_equal(ma.steps, steps);
    assert_int_equal(mb.steps, steps);
    double worst = 0;
    for (size_t i = 0; i < np; i++) {
        char name[128];
        snprintf(name, sizeof name, "model/%s", p[i].name);
        float *a = rm_alloc(p[i].numel * sizeof(float)), *b = rm_alloc(p[i].numel * sizeof(float));
        assert_int_equal(rm_checkpoint_read(ra, name, RM_DT_F32, p[i].ndim, p[i].dims, a), RM_OK);
        assert_int_equal(rm_checkpoint_read(rb, name, RM_DT_F32, p[i].ndim, p[i].dims, b), RM_OK);
        double rel = max_rel(a, b, p[i].numel);
        printf("    %-22s max|diff|/max|w| = %.2e\n", p[i].name, rel);
        worst = fmax(worst, rel);
        rm_free(a), rm_free(b);
    }
    printf("  weights: worst %.2e\n", worst);
    rm_checkpoint_close(ra);
    rm_checkpoint_close(rb);
    rm_net_destroy(net);
    return worst;
}

/* The largest relative difference of the training-loss columns of two runs. */
static double compare_losses(const char *pa, const char *pb, int rows) {
    rm_run_summary sa, sb2;
    assert_int_equal(rm_runfile_read(pa, &sa), RM_OK);
    assert_int_equal(rm_runfile_read(pb, &sb2), RM_OK);
    assert_int_equal(sa.rows, rows);
    assert_int_equal(sb2.rows, rows);
    const char *cols[] = {"loss", "loss_ce", "loss_amr", "loss_agr", "train_acc", "test_clean", "test_pgd3"};
    double worst = 0;
    for (size_t c = 0; c < sizeof cols / sizeof *cols; c++) {
        int ia = rm_run_summary_find(&sa, cols[c]), ib = rm_run_summary_find(&sb2, cols[c]);
        assert_true(ia >= 0 && ib >= 0);
        for (int r = 0; r < rows; r++) {
            double a = sa.columns[ia].values[r], b = sb2.columns[ib].values[r];
            double rel = fabs(a - b) / fmax(fabs(a), 1e-30);
            printf("    epoch %d %-11s %.9g vs %.9g  rel %.2e\n", r + 1, cols[c], a, b, rel);
            if (!strncmp(cols[c], "loss", 4)) worst = fmax(worst, rel);
        }
    }
    rm_run_summary_free(&sa);
    rm_run_summary_free(&sb2);
    return worst;
}

static int have_data(void) {
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &sb) == 0) return 1;
    printf("SKIPPED: Fashion-MNIST is not installed (/usr/share/datasets/fashion-mnist)\n");
    return 0;
}

static void run_path(char *out, size_t size, const char *dir) { snprintf(out, size, "%s/results/dp.h5", dir); }

/* One SGD step (64 samples, batch 64): the strict check. Both runs take the same
 * step from the same weights; only float32 summation order differs. */
static void test_one_step_two_ranks_equal_one_rank(void **state) {
    (void)state;
    if (!have_data()) skip();
    char one[300], two[300], pa[400], pb[400];
    make_case(one, sizeof one, "one-step-1", 64, 1, 1);
    make_case(two, sizeof two, "one-step-2", 64, 1, 1);
    int rc1 = run_sweep(one, 1, 1), rc2 = run_sweep(two, 2, 2);
    printf("  mpirun -n 1 sweep: exit %d; mpirun -n 2 sweep --ranks-per-run 2: exit %d\n", rc1, rc2);
    assert_int_equal(rc1, 0);
    assert_int_equal(rc2, 0);
    run_path(pa, sizeof pa, one);
    run_path(pb, sizeof pb, two);
    double dl = compare_losses(pa, pb, 1), dw = compare_weights(pa, pb, 1);
    printf("  one step: losses %.2e (tolerance 1e-5), weights %.2e (tolerance 1e-4)\n", dl, dw);
    assert_true(dl <= 1e-5);
    assert_true(dw <= 1e-4);
}

/* Eight steps (2 epochs of 4 batches; the PGI buffers are reused in epoch 2). FGSM-PGI
 * amplifies float rounding: sign(g) of near-zero gradient entries and the trajectory of
 * SGD on a small batch make a 1e-7 difference grow about x3-x10 per step, whatever its
 * cause. The yardstick is therefore measured, not assumed: the same run on one rank
 * with 2 OpenMP threads instead of 1 (a pure change of summation order). Data-parallel
 * must stay within 10x of that noise (floor 1e-5); a real error (a missing 1/K, a
 * slice trained twice, BN on half batches) shows from the first step on. */
static void test_eight_steps_within_reordering_noise(void **state) {
    (void)state;
    if (!have_data()) skip();
    char one[300], thr[300], two[300], pa[400], pt[400], pb[400];
    make_case(one, sizeof one, "eight-1", 256, 2, 1);
    make_case(thr, sizeof thr, "eight-1-threads2", 256, 2, 2);
    make_case(two, sizeof two, "eight-2", 256, 2, 1);
    assert_int_equal(run_sweep(one, 1, 1), 0);
    assert_int_equal(run_sweep(thr, 1, 1), 0);
    assert_int_equal(run_sweep(two, 2, 2), 0);
    run_path(pa, sizeof pa, one);
    run_path(pt, sizeof pt, thr);
    run_path(pb, sizeof pb, two);
    printf("  reference noise: 1 rank, 1 thread vs 2 threads\n");
    double nl = compare_losses(pa, pt, 2), nw = compare_weights(pa, pt, 8);
    printf("  data parallel: 1 rank vs 2 ranks (--ranks-per-run 2)\n");
    double dl = compare_losses(pa, pb, 2), dw = compare_weights(pa, pb, 8);
    double tl = 10 * fmax(nl, 1e-5), tw = 10 * fmax(nw, 1e-5);
    printf("  eight steps: losses %.2e (noise %.2e, tolerance %.2e), weights %.2e (noise %.2e, tolerance %.2e)\n",
           dl, nl, tl, dw, nw, tw);
    assert_true(dl <= tl);
    assert_true(dw <= tw);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_bn_alone_equals_batch_statistics),
        cmocka_unit_test(test_one_step_two_ranks_equal_one_rank),
        cmocka_unit_test(test_eight_steps_within_reordering_noise),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
