/* Data-parallel training (issue 5 item 5, issue 9 item 0): `regmix sweep --ranks-per-run K`.
 *
 * The tolerances here do not depend on which kernels oneDNN picks (ISA, thread count):
 * every check compares against a reference that float32 rounding in any summation order
 * cannot move by more than a fraction of its bound. (Comparing K ranks with one rank over
 * several PGI steps on Fashion-MNIST cannot be such a check: sign(g) of near-zero input
 * gradients and the sums over constant image backgrounds, which BN's backward makes
 * cancel, turn a 1e-7 reordering into 1e-2 after one to eight steps, by amounts that
 * depend on the CPU's kernels: AVX2 kernels gave 1e-2 after one step.)
 *
 * 1. Synchronised batch norm, alone: with an allreduce that is the identity (a group of
 *    one), the global-statistics path of bn_sync.c (local stats -> group sums ->
 *    use_global_stats forward; global-stats backward + the mean/variance correction)
 *    must equal oneDNN's own training-mode batch norm: logits, input gradient, every
 *    weight gradient and the running statistics. The reference is the independent
 *    oneDNN batch-statistics primitive, so this checks the correction formula.
 * 2. One PGI step of a data-parallel group against PyTorch in float64: this executable,
 *    started by `mpirun -n 2` (and `-n 3`: uneven slices 3/3/2) in its worker mode, runs
 *    rm_method_gradients with rm_method_set_dp on the batch of tests/data/pgi_step_*.rmfx
 *    and every rank checks what it holds (loss terms, every weight gradient, d, the next
 *    PGI buffers D and M of all 8 samples, BN running statistics) with the bounds of
 *    test_pytorch_pgi_step (tests/support/pgi_step_check.h): the float64 reference and
 *    the generator's margins make them hold for one rank and for K ranks alike.
 * 3. The check catches data-parallel faults: each injected once into the worker, each
 *    must make some rank's comparison fail (a wrong verdict, not a crash):
 *      grad-scale       the gradient sum not scaled to the global batch mean (x K);
 *      no-allreduce     the weight gradients not summed over the group;
 *      local-bn         batch norm normalising with each rank's own slice statistics;
 *      no-gather        the attack's input gradient g not gathered (PGI buffers of the
 *                       other ranks' samples left stale).
 *    They are injected by the linker (--wrap of dp_allreduce_floats / dp_allgather_rows,
 *    tests/CMakeLists.txt) and by rm_net_set_allreduce, so regmix itself has no test switch.
 * 4. End to end, the real binary: `mpirun -n 2 regmix sweep --ranks-per-run 2` against
 *    `mpirun -n 1`, one SGD step on synthetic data that keeps the sums well conditioned
 *    (dense random pixels: no constant background) with eps = step = 1e-5 (a sign(g)
 *    decision that rounding flips moves one pixel by 2e-5 at most): loss and CE term
 *    rel <= 1e-5; every weight and every SGD momentum buffer (the first step's gradient
 *    plus weight decay) max|diff| <= 1e-3 * max|tensor|. Measured (AMD EPYC Zen 4, with
 *    ONEDNN_MAX_CPU_ISA unset, AVX2 and AVX512_CORE, 1 and 2 threads): <= 3e-5; a
 *    wrong split changes gradients at the 1e-1 level. */
#include <math.h>
#include <mpi.h>
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

#include "pgi_step_check.h"
#include "proc.h"
#include "synthetic_data.h"

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

/* ---------------------------------------------------------------- parts 2 and 3 */

typedef enum { FAULT_NONE, FAULT_GRAD_SCALE, FAULT_NO_ALLREDUCE, FAULT_LOCAL_BN, FAULT_NO_GATHER } dp_fault;
static const char *const fault_names[] = {"none", "grad-scale", "no-allreduce", "local-bn", "no-gather"};
static dp_fault fault; /* the worker's injected fault */

/* The linker routes regmix's calls of these two internal functions (train/dp_internal.h)
 * here (-Wl,--wrap); without a fault they are the real ones. */
rm_status __real_dp_allreduce_floats(rm_dp *g, float *buf, size_t n);
rm_status __wrap_dp_allreduce_floats(rm_dp *g, float *buf, size_t n);
rm_status __real_dp_allgather_rows(rm_dp *g, float *buf, int B, size_t d);
rm_status __wrap_dp_allgather_rows(rm_dp *g, float *buf, int B, size_t d);

rm_status __wrap_dp_allreduce_floats(rm_dp *g, float *buf, size_t n) {
    if (fault == FAULT_NO_ALLREDUCE) return RM_OK;
    RM_TRY(__real_dp_allreduce_floats(g, buf, n));
    if (fault == FAULT_GRAD_SCALE)
        for (size_t i = 0; i < n; i++) buf[i] *= (float)rm_dp_size(g);
    return RM_OK;
}

rm_status __wrap_dp_allgather_rows(rm_dp *g, float *buf, int B, size_t d) {
    if (fault == FAULT_NO_GATHER) return RM_OK;
    return __real_dp_allgather_rows(g, buf, B, d);
}

static rm_status local_statistics(void *ctx, double *buf, int n) {
    (void)ctx, (void)buf, (void)n;
    return RM_OK; /* each rank keeps its own slice's sums */
}

static void inject_fault(rm_net *net, rm_method *m, void *ctx) {
    (void)m, (void)ctx;
    if (fault == FAULT_LOCAL_BN) rm_net_set_allreduce(net, local_statistics, NULL);
}

/* Worker mode, under mpirun: argv = self --dp-worker REG FAULT LOGDIR. Each rank writes
 * LOGDIR/rank<r>.log; exit status 0: every comparison agreed, 1: some did not, else an
 * error (a failed CMocka assertion outside a test exits with 255). */
static int dp_worker(int argc, char **argv) {
    if (argc != 5) return 2;
    fault = FAULT_NONE;
    while (fault <= FAULT_NO_GATHER && strcmp(argv[3], fault_names[fault])) fault++;
    if (fault > FAULT_NO_GATHER) return 2;
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) return 3;
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char log[512];
    snprintf(log, sizeof log, "%s/rank%d.log", argv[4], rank);
    if (!freopen(log, "w", stdout)) return 4;
    rm_dp *dp;
    if (rm_dp_create(MPI_COMM_WORLD, &dp) != RM_OK) return 5;
    printf("injected fault: %s\n", fault_names[fault]);
    int fails = pgi_step_check(argv[2], dp, inject_fault, NULL);
    fflush(stdout);
    rm_dp_destroy(dp);
    MPI_Finalize();
    return fails ? 1 : 0;
}

static char workdir[256];
static char self_exe[4096];

static int setup(void **state) {
    (void)state;
    snprintf(workdir, sizeof workdir, "/tmp/regmix-dp-XXXXXX");
    assert_non_null(mkdtemp(workdir));
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    assert_true(n > 0);
    self_exe[n] = '\0';
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_tree(workdir);
    return 0;
}

/* Prints a rank's log: every line, or (only_failed) just the comparisons that failed. */
static void print_log(const char *dir, int rank, int only_failed) {
    char path[512], line[512];
    snprintf(path, sizeof path, "%s/rank%d.log", dir, rank);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("  (rank %d wrote no log %s)\n", rank, path);
        return;
    }
    while (fgets(line, sizeof line, f))
        if (!only_failed || strstr(line, "NOT OK")) printf("  rank %d |%s", rank, line);
    fclose(f);
}

/* mpirun -n RANKS self --dp-worker REG FAULT DIR; returns the exit status, printing the
 * ranks' logs (only their failed comparisons when a fault was injected). */
static int run_worker(int ranks, const char *reg, dp_fault f) {
    char dir[400];
    snprintf(dir, sizeof dir, "%s/step-%s-%d-%s", workdir, reg, ranks, fault_names[f]);
    assert_int_equal(mkdir(dir, 0755), 0);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rm_test_mpi_env();
        char log[512], n[8];
        snprintf(log, sizeof log, "%s/mpirun.log", dir);
        if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr)) _exit(99);
        snprintf(n, sizeof n, "%d", ranks);
        execlp("mpirun", "mpirun", "-n", n, self_exe, "--dp-worker", reg, fault_names[f], dir, (char *)NULL);
        _exit(98);
    }
    int rc = rm_test_wait_exit(pid);
    printf("mpirun -n %d (PGI step, reg %s, fault %s): exit %d\n", ranks, reg, fault_names[f], rc);
    for (int r = 0; r < ranks; r++) print_log(dir, r, f != FAULT_NONE);
    return rc;
}

static void test_dp_step_matches_float64_reference(void **state) {
    (void)state;
    assert_int_equal(run_worker(2, "regmix", FAULT_NONE), 0);
    assert_int_equal(run_worker(2, "mse", FAULT_NONE), 0);
    assert_int_equal(run_worker(3, "regmix", FAULT_NONE), 0);
}

/* mpirun exits with the first failing rank's status: 1 is a mismatch found by the
 * check; anything else (a crash, an MPI error) would not show that the check works. */
static void test_dp_check_catches_injected_faults(void **state) {
    (void)state;
    for (dp_fault f = FAULT_GRAD_SCALE; f <= FAULT_NO_GATHER; f++)
        assert_int_equal(run_worker(2, "regmix", f), 1);
}

/* ---------------------------------------------------------------- part 4 */

enum { E2E_SAMPLES = 64 };

/* threads: OMP_NUM_THREADS when set (ctest sets 1; emulating other CPUs' kernels sets 2),
 * else 1, for both runs. */
static void write_sweep(const char *dir, const char *data_dir) {
    const char *omp = getenv("OMP_NUM_THREADS");
    int threads = omp && atoi(omp) > 0 ? atoi(omp) : 1;
    char path[512];
    snprintf(path, sizeof path, "%s/dp.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "name: dp\n"
               "base:\n"
               "  model: fmnist-cnn\n  data_dir: %s\n  train_subset: %d\n  test_subset: %d\n"
               "  batch: %d\n  epochs: 1\n  lr_schedule: constant\n  threads: %d\n"
               "  eval_attacks: [clean]\n  reg: regmix\n  eps: 1e-5\n  step: 1e-5\n"
               "  outdir: %s/results\n", data_dir, E2E_SAMPLES, E2E_SAMPLES, E2E_SAMPLES, threads, dir);
    assert_int_equal(fclose(f), 0);
}

static int run_sweep(const char *dir, int ranks) {
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rm_test_mpi_env();
        if (chdir(dir) != 0) _exit(97);
        if (!freopen("sweep.log", "w", stdout) || !freopen("sweep.log", "a", stderr)) _exit(99);
        char n[8];
        snprintf(n, sizeof n, "%d", ranks);
        execlp("mpirun", "mpirun", "-n", n, REGMIX_BINARY, "sweep", "dp.yaml", "--ranks-per-run", n,
               (char *)NULL);
        _exit(98);
    }
    return rm_test_wait_exit(pid);
}

/* The worst per-tensor max_rel over the model's tensors (weights and BN statistics) and
 * the parameters' SGD momentum buffers of two checkpoints after `steps` steps. */
static double compare_checkpoints(const char *run_a, const char *run_b, long steps) {
    rm_net *net;
    assert_int_equal(rm_net_create("fmnist-cnn", 1, 28, 28, 10, &net), RM_OK);
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    rm_checkpoint_reader *ra, *rb;
    rm_checkpoint_meta ma, mb;
    assert_int_equal(rm_checkpoint_open(run_a, &ra, &ma), RM_OK);
    assert_int_equal(rm_checkpoint_open(run_b, &rb, &mb), RM_OK);
    assert_int_equal(ma.steps, steps);
    assert_int_equal(mb.steps, steps);
    double worst = 0;
    for (size_t i = 0; i < np; i++) {
        for (int momentum = 0; momentum < 2; momentum++) {
            if (momentum && p[i].is_buffer) continue;
            char name[128];
            snprintf(name, sizeof name, momentum ? "optimizer/%s.momentum" : "model/%s", p[i].name);
            float *a = rm_alloc(p[i].numel * sizeof(float)), *b = rm_alloc(p[i].numel * sizeof(float));
            assert_int_equal(rm_checkpoint_read(ra, name, RM_DT_F32, p[i].ndim, p[i].dims, a), RM_OK);
            assert_int_equal(rm_checkpoint_read(rb, name, RM_DT_F32, p[i].ndim, p[i].dims, b), RM_OK);
            double rel = max_rel(a, b, p[i].numel);
            printf("    %-32s max|diff|/max|x| = %.2e\n", name, rel);
            worst = fmax(worst, rel);
            rm_free(a), rm_free(b);
        }
    }
    rm_checkpoint_close(ra);
    rm_checkpoint_close(rb);
    rm_net_destroy(net);
    return worst;
}

/* The largest relative difference of the loss and CE columns (the AMR / AGR terms are
 * ~1e-10 at this eps: their relative rounding error says nothing). */
static double compare_losses(const char *pa, const char *pb) {
    rm_run_summary sa, sb;
    assert_int_equal(rm_runfile_read(pa, &sa), RM_OK);
    assert_int_equal(rm_runfile_read(pb, &sb), RM_OK);
    assert_int_equal(sa.rows, 1);
    assert_int_equal(sb.rows, 1);
    const char *cols[] = {"loss", "loss_ce"};
    double worst = 0;
    for (size_t c = 0; c < sizeof cols / sizeof *cols; c++) {
        int ia = rm_run_summary_find(&sa, cols[c]), ib = rm_run_summary_find(&sb, cols[c]);
        assert_true(ia >= 0 && ib >= 0);
        double a = sa.columns[ia].values[0], b = sb.columns[ib].values[0];
        double rel = fabs(a - b) / fmax(fabs(a), 1e-30);
        printf("    %-8s %.9g vs %.9g  rel %.2e\n", cols[c], a, b, rel);
        worst = fmax(worst, isnan(rel) ? INFINITY : rel);
    }
    rm_run_summary_free(&sa);
    rm_run_summary_free(&sb);
    return worst;
}

static void test_sweep_one_step_two_ranks_equal_one_rank(void **state) {
    (void)state;
    char data[300], one[300], two[300], pa[400], pb[400];
    snprintf(data, sizeof data, "%s/data", workdir);
    assert_int_equal(mkdir(data, 0755), 0);
    rm_test_write_idx_dataset(data, E2E_SAMPLES, E2E_SAMPLES, 11);
    const char *names[2] = {"sweep-1", "sweep-2"};
    char *dirs[2] = {one, two};
    for (int k = 0; k < 2; k++) {
        snprintf(dirs[k], 300, "%s/%s", workdir, names[k]);
        assert_int_equal(mkdir(dirs[k], 0755), 0);
        write_sweep(dirs[k], data);
    }
    int rc1 = run_sweep(one, 1), rc2 = run_sweep(two, 2);
    printf("  mpirun -n 1 sweep: exit %d; mpirun -n 2 sweep --ranks-per-run 2: exit %d\n", rc1, rc2);
    assert_int_equal(rc1, 0);
    assert_int_equal(rc2, 0);
    snprintf(pa, sizeof pa, "%s/results/dp.h5", one);
    snprintf(pb, sizeof pb, "%s/results/dp.h5", two);
    double dl = compare_losses(pa, pb), dw = compare_checkpoints(pa, pb, 1);
    printf("  one step: losses %.2e (tolerance 1e-5), weights and momentum %.2e (tolerance 1e-3)\n", dl, dw);
    assert_true(dl <= 1e-5);
    assert_true(dw <= 1e-3);
    /* /provenance records how many ranks trained each run */
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(pa, &s), RM_OK);
    assert_int_equal(s.ranks_per_run, 1);
    rm_run_summary_free(&s);
    assert_int_equal(rm_runfile_read(pb, &s), RM_OK);
    assert_int_equal(s.ranks_per_run, 2);
    assert_int_equal(s.mpi_size, 2);
    rm_run_summary_free(&s);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--dp-worker")) return dp_worker(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_bn_alone_equals_batch_statistics),
        cmocka_unit_test(test_dp_step_matches_float64_reference),
        cmocka_unit_test(test_dp_check_catches_injected_faults),
        cmocka_unit_test(test_sweep_one_step_two_ranks_equal_one_rank),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
