/* Data-parallel FGSM-PGK (`regmix sweep --ranks-per-run 2`): one pgk step (method pgk,
 * EMA on) on 1 rank and on 2. Its momentum weight 2 - r needs the counts n_i, n_f of the
 * whole global batch; with per-rank counts r (and so M) is off by 1e-1 (measured with
 * n_i counted per rank). eps = step = 0.01, so that the final pass classifies some
 * examples correctly (n_f = 0 would make r = 0 whatever n_i is). The momentum M, the EMA
 * model and the weights must agree to 1e-4: the two runs differ only in the order of
 * float32 sums (a few ulps of a gradient entry), a wrong split moves them at the 1e-2
 * level. Skipped (with a message) when Fashion-MNIST is not installed. */
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

static double max_rel(const float *a, const float *b, size_t n) {
    double diff = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)a[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

static char workdir[256];

/* extra: more `base` settings, one "  key: value\n" line each ("" for none) */
static void write_sweep_extra(const char *dir, int subset, int epochs, int threads, const char *extra) {
    char path[512];
    snprintf(path, sizeof path, "%s/dp.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "name: dp\n"
               "base:\n"
               "  model: fmnist-cnn\n  train_subset: %d\n  test_subset: 64\n  batch: 64\n  epochs: %d\n"
               "  threads: %d\n  eval_attacks: [clean, pgd3]\n  reg: regmix\n"
               "  outdir: %s/results\n%s", subset, epochs, threads, dir, extra);
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
    int rc = rm_test_wait_exit(pid);
    if (rc != 0) { /* the sweep's own words, before the directory goes */
        char log[400], line[1024];
        snprintf(log, sizeof log, "%s/sweep.log", dir);
        FILE *f = fopen(log, "r");
        printf("  mpirun -n %d sweep in %s: exit %d; its log:\n", ranks, dir, rc);
        while (f && fgets(line, sizeof line, f)) printf("    %s", line);
        if (f) fclose(f);
    }
    return rc;
}

static int setup(void **state) {
    (void)state;
    snprintf(workdir, sizeof workdir, "/tmp/regmix-dp-XXXXXX");
    assert_non_null(mkdtemp(workdir));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_tree(workdir);
    return 0;
}

/* max|diff| / max|a| over the checkpoint tensors "<group>/<name>" of every network tensor
 * (group "model" or "ema") */
static double compare_group(rm_checkpoint_reader *ra, rm_checkpoint_reader *rb, rm_net *net, const char *group) {
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    double worst = 0;
    for (size_t i = 0; i < np; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s/%s", group, p[i].name);
        float *a = rm_alloc(p[i].numel * sizeof(float)), *b = rm_alloc(p[i].numel * sizeof(float));
        assert_int_equal(rm_checkpoint_read(ra, name, RM_DT_F32, p[i].ndim, p[i].dims, a), RM_OK);
        assert_int_equal(rm_checkpoint_read(rb, name, RM_DT_F32, p[i].ndim, p[i].dims, b), RM_OK);
        double rel = max_rel(a, b, p[i].numel);
        printf("    %-28s max|diff|/max|w| = %.2e\n", name, rel);
        worst = fmax(worst, rel);
        rm_free(a), rm_free(b);
    }
    return worst;
}

static int have_data(void) {
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &sb) == 0) return 1;
    printf("SKIPPED: Fashion-MNIST is not installed (/usr/share/datasets/fashion-mnist)\n");
    return 0;
}

static void run_path(char *out, size_t size, const char *dir) { snprintf(out, size, "%s/results/dp.h5", dir); }

/* One pgk step (64 samples, batch 64) on 1 rank and on 2: the momentum buffer M (its
 * weight 2 - r from the global counts), the EMA model and the weights. */
static void test_pgk_one_step_two_ranks_equal_one_rank(void **state) {
    (void)state;
    if (!have_data()) skip();
    char one[300], two[300], pa[400], pb[400];
    const char *pgk = "  method: pgk\n  eps: 0.01\n  step: 0.01\n";
    snprintf(one, sizeof one, "%s/pgk-one-step-1", workdir);
    snprintf(two, sizeof two, "%s/pgk-one-step-2", workdir);
    assert_int_equal(mkdir(one, 0755), 0);
    assert_int_equal(mkdir(two, 0755), 0);
    write_sweep_extra(one, 64, 1, 1, pgk);
    write_sweep_extra(two, 64, 1, 1, pgk);
    assert_int_equal(run_sweep(one, 1, 1), 0);
    assert_int_equal(run_sweep(two, 2, 2), 0);
    run_path(pa, sizeof pa, one);
    run_path(pb, sizeof pb, two);
    rm_net *net;
    assert_int_equal(rm_net_create("fmnist-cnn", 1, 28, 28, 10, &net), RM_OK);
    rm_checkpoint_reader *ra, *rb;
    rm_checkpoint_meta ma, mb;
    assert_int_equal(rm_checkpoint_open(pa, &ra, &ma), RM_OK);
    assert_int_equal(rm_checkpoint_open(pb, &rb, &mb), RM_OK);
    double dw = compare_group(ra, rb, net, "model"), de = compare_group(ra, rb, net, "ema");
    int64_t dims[2] = {64, 784};
    float *ma_ = rm_alloc(64 * 784 * sizeof(float)), *mb_ = rm_alloc(64 * 784 * sizeof(float));
    assert_int_equal(rm_checkpoint_read(ra, "attack/M", RM_DT_F32, 2, dims, ma_), RM_OK);
    assert_int_equal(rm_checkpoint_read(rb, "attack/M", RM_DT_F32, 2, dims, mb_), RM_OK);
    double dm = max_rel(ma_, mb_, 64 * 784);
    printf("  pgk one step, 1 vs 2 ranks: momentum M %.2e, weights %.2e, EMA %.2e (tolerance 1e-4)\n", dm, dw, de);
    assert_true(dm <= 1e-4);
    assert_true(dw <= 1e-4);
    assert_true(de <= 1e-4);
    rm_free(ma_), rm_free(mb_);
    rm_checkpoint_close(ra);
    rm_checkpoint_close(rb);
    rm_net_destroy(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pgk_one_step_two_ranks_equal_one_rank),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
