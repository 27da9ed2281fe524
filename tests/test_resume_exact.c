/* Exact resume (issue 4): a run killed with SIGKILL after an epoch, and one killed in
 * the middle of writing a checkpoint (injected fault), are resumed by running the same
 * command again; their final metrics and weights are bit-identical to an uninterrupted
 * run with the same seed and threads. FGSM-PGI (method pgi) and FGSM-PGK (method pgk,
 * whose EMA model is part of the state: both weight sets must come back bit for bit).
 * Runs the real `regmix train` binary on a small Fashion-MNIST subset (skipped when the
 * dataset is not installed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"

#include "regmix/nn.h"
#include "regmix/runfile.h"

static char workdir[256];

/* regmix train with the test's settings and `method` (pgi, pgk) into outdir; env_value:
 * the fault-injection hook REGMIX_TEST_CKPT_EXIT_AFTER (NULL: none).
 * Returns the child's pid (not waited for). */
static pid_t start_train_method(const char *outdir, const char *env_value, const char *method) {
    fflush(stdout); /* or the child would print our buffered lines again */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (env_value) setenv("REGMIX_TEST_CKPT_EXIT_AFTER", env_value, 1);
        char od[512], me[64];
        snprintf(od, sizeof od, "outdir=%s", outdir);
        snprintf(me, sizeof me, "method=%s", method);
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(99);
        execl(REGMIX_BINARY, "regmix", "train", "train_subset=384", "test_subset=64", "batch=64",
              "epochs=4", "checkpoint_every=1", "threads=1", "eval_attacks=clean,fgsm,pgd3", "reg=regmix",
              "run_id=r", "--quiet", od, me, (char *)NULL);
        _exit(98);
    }
    return pid;
}

static pid_t start_train(const char *outdir, const char *env_value) {
    return start_train_method(outdir, env_value, "pgi");
}

static int64_t rows_of(const char *path) {
    rm_run_summary s;
    if (rm_runfile_read(path, &s) != RM_OK) {
        rm_error_clear();
        return -1;
    }
    int64_t rows = s.rows;
    rm_run_summary_free(&s);
    return rows;
}

/* One checkpoint tensor of a and b: same type, shape and bytes. */
static void assert_same_tensor(rm_checkpoint_reader *ra, rm_checkpoint_reader *rb, const char *name) {
    rm_dtype ta, tb;
    int na, nb;
    int64_t da[RM_CKPT_MAX_DIMS], db[RM_CKPT_MAX_DIMS];
    if (rm_checkpoint_shape(ra, name, &ta, &na, da) != RM_OK || rm_checkpoint_shape(rb, name, &tb, &nb, db) != RM_OK)
        fail_msg("checkpoint tensor %s: %s", name, rm_error_message());
    assert_int_equal(ta, tb);
    assert_int_equal(na, nb);
    size_t count = 1, esize = ta == RM_DT_U8 ? 1 : (ta == RM_DT_F32 ? 4 : 8);
    for (int d = 0; d < na; d++) count *= (size_t)da[d];
    void *va = malloc(count * esize), *vb = malloc(count * esize);
    assert_int_equal(rm_checkpoint_read(ra, name, ta, na, da, va), RM_OK);
    assert_int_equal(rm_checkpoint_read(rb, name, tb, nb, db, vb), RM_OK);
    if (memcmp(va, vb, count * esize) != 0) fail_msg("checkpoint tensor %s differs", name);
    free(va);
    free(vb);
}

/* Both weight sets of a run with an EMA model: model/<name> and ema/<name> for every
 * tensor of the network, and the EMA's update count; the two sets must differ. */
static void assert_same_ema_weights(rm_checkpoint_reader *ra, rm_checkpoint_reader *rb) {
    rm_net *net;
    assert_int_equal(rm_net_create("fmnist-cnn", 1, 28, 28, 10, &net), RM_OK);
    size_t np, differ = 0;
    rm_param *p = rm_net_params(net, &np);
    for (size_t i = 0; i < np; i++) {
        char m[128], e[128];
        snprintf(m, sizeof m, "model/%s", p[i].name);
        snprintf(e, sizeof e, "ema/%s", p[i].name);
        assert_same_tensor(ra, rb, m);
        assert_same_tensor(ra, rb, e);
        float *vm = malloc(p[i].numel * sizeof(float)), *ve = malloc(p[i].numel * sizeof(float));
        assert_int_equal(rm_checkpoint_read(ra, m, RM_DT_F32, p[i].ndim, p[i].dims, vm), RM_OK);
        assert_int_equal(rm_checkpoint_read(ra, e, RM_DT_F32, p[i].ndim, p[i].dims, ve), RM_OK);
        differ += memcmp(vm, ve, p[i].numel * sizeof(float)) != 0;
        free(vm);
        free(ve);
    }
    assert_same_tensor(ra, rb, "ema_updates");
    int64_t updates = -1;
    assert_int_equal(rm_checkpoint_read(ra, "ema_updates", RM_DT_I64, 0, NULL, &updates), RM_OK);
    printf("  both weight sets bit-identical: %zu tensors x (model, ema), ema_updates %lld; "
           "%zu of %zu tensors differ between the student and the EMA\n", np, (long long)updates, differ, np);
    assert_int_equal(updates, 4 * 6); /* an update after each of 6 steps per epoch (384 / 64) */
    assert_true(differ == np);
    rm_net_destroy(net);
}

/* Every metric except wall-clock timings must be bit-identical; then every tensor of
 * the final checkpoints (weights, BN statistics, momentum, PGI buffers, RNG states and,
 * with an EMA model, both weight sets). */
static void assert_same_run(const char *a_dir, const char *b_dir) {
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/r.h5", a_dir);
    snprintf(b, sizeof b, "%s/r.h5", b_dir);
    rm_run_summary sa, sb;
    assert_int_equal(rm_runfile_read(a, &sa), RM_OK);
    assert_int_equal(rm_runfile_read(b, &sb), RM_OK);
    assert_int_equal(sa.status, RM_RUN_COMPLETED);
    assert_int_equal(sb.status, RM_RUN_COMPLETED);
    assert_int_equal(sa.rows, 4);
    assert_int_equal(sb.rows, 4);
    assert_memory_equal(sa.epoch, sb.epoch, 4 * sizeof(int64_t));
    int compared = 0;
    for (int m = 0; m < sa.n_metrics; m++) {
        const char *name = sa.columns[m].name;
        if (strstr(name, "seconds") || strstr(name, "per_s")) continue;
        int k = rm_run_summary_find(&sb, name);
        assert_true(k >= 0);
        for (int r = 0; r < 4; r++) {
            if (memcmp(&sa.columns[m].values[r], &sb.columns[k].values[r], sizeof(double)) != 0) {
                printf("metric %s epoch %d: %.17g vs %.17g\n", name, r + 1, sa.columns[m].values[r],
                       sb.columns[k].values[r]);
                fail();
            }
        }
        compared++;
    }
    printf("  %d metric columns x 4 epochs bit-identical\n", compared);
    assert_true(compared >= 8);
    int ema_col = rm_run_summary_find(&sa, "eval_ema"); /* present exactly in runs with an EMA */
    rm_run_summary_free(&sa);
    rm_run_summary_free(&sb);

    rm_checkpoint_reader *ra, *rb;
    rm_checkpoint_meta ma, mb;
    assert_int_equal(rm_checkpoint_open(a, &ra, &ma), RM_OK);
    assert_int_equal(rm_checkpoint_open(b, &rb, &mb), RM_OK);
    assert_int_equal(ma.epoch, 4);
    assert_int_equal(mb.epoch, 4);
    assert_int_equal(ma.iteration, mb.iteration);
    static const char *tensors[] = {"model/conv1.weight", "model/bn1.running_var", "model/fc1.weight",
                                    "model/fc2.bias", "optimizer/fc1.weight.momentum", "attack/D",
                                    "attack/M", "attack/fresh", "rng/attack", "rng/shuffle"};
    for (size_t i = 0; i < sizeof tensors / sizeof *tensors; i++) assert_same_tensor(ra, rb, tensors[i]);
    printf("  %zu checkpoint tensors bit-identical\n", sizeof tensors / sizeof *tensors);
    assert_int_equal(rm_checkpoint_has(ra, "ema_updates"), ema_col >= 0);
    if (ema_col >= 0) assert_same_ema_weights(ra, rb);
    rm_checkpoint_close(ra);
    rm_checkpoint_close(rb);
}

static void make_dir(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/%s", workdir, name);
    assert_int_equal(mkdir(out, 0755), 0);
}

static char reference[300], reference_pgk[300];

static int setup(void **state) {
    (void)state;
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &sb) != 0) {
        printf("SKIPPED: Fashion-MNIST is not installed (package dataset-fashion-mnist)\n");
        exit(0);
    }
    snprintf(workdir, sizeof workdir, "/tmp/regmix-resume-XXXXXX");
    assert_non_null(mkdtemp(workdir));
    make_dir(reference, sizeof reference, "uninterrupted");
    assert_int_equal(rm_test_wait_exit(start_train(reference, NULL)), 0);
    make_dir(reference_pgk, sizeof reference_pgk, "uninterrupted-pgk");
    assert_int_equal(rm_test_wait_exit(start_train_method(reference_pgk, NULL, "pgk")), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_workdir(workdir);
    return 0;
}

static void sigkill_after_epoch_then_resume(const char *method, const char *ref) {
    char dir[300], path[400], name[24];
    snprintf(name, sizeof name, "killed-%s", method);
    make_dir(dir, sizeof dir, name);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    pid_t pid = start_train_method(dir, NULL, method);
    /* wait until the first epoch is in the file (the reader works while the run is
     * going); three epochs remain, ample time for the checks before the kill */
    int64_t rows = -1;
    for (int i = 0; i < 6000 && rows < 1; i++) {
        nanosleep(&(struct timespec){0, 10000000}, NULL);
        rows = rows_of(path);
    }
    assert_true(rows >= 1);
    /* a second writer of the same run is refused while the first one lives */
    assert_int_equal(rm_test_wait_exit(start_train_method(dir, NULL, method)), 1);
    kill(pid, SIGKILL);
    assert_int_equal(rm_test_wait_exit(pid), 128 + SIGKILL);
    printf("  killed with SIGKILL after %lld epochs in the file\n", (long long)rows);
    /* a killed run is still readable: every completed epoch is there */
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    assert_true(s.rows >= 1);
    assert_int_equal(s.status, RM_RUN_RUNNING);
    rm_run_summary_free(&s);
    assert_int_equal(rm_test_wait_exit(start_train_method(dir, NULL, method)), 0);
    assert_same_run(ref, dir);
}

static void test_sigkill_after_epoch_then_resume(void **state) {
    (void)state;
    sigkill_after_epoch_then_resume("pgi", reference);
}

/* FGSM-PGK with its EMA model: both weight sets come back bit for bit */
static void test_pgk_ema_sigkill_after_epoch_then_resume(void **state) {
    (void)state;
    sigkill_after_epoch_then_resume("pgk", reference_pgk);
}

static void test_fault_inside_checkpoint_write_then_resume(void **state) {
    (void)state;
    char dir[300], path[400];
    make_dir(dir, sizeof dir, "fault");
    snprintf(path, sizeof path, "%s/r.h5", dir);
    /* first attempt dies after the 5th tensor of its first checkpoint (epoch 1) */
    assert_int_equal(rm_test_wait_exit(start_train(dir, "5")), 86);
    assert_int_equal(rm_checkpoint_present(path), 0);
    /* second attempt: starts over (no checkpoint yet); killed once checkpoint 2 exists.
     * A third attempt resumes from it and dies inside writing the next checkpoint. */
    pid_t pid = start_train(dir, NULL);
    rm_checkpoint_meta meta = {0};
    for (int i = 0; i < 6000; i++) {
        nanosleep(&(struct timespec){0, 10000000}, NULL);
        rm_checkpoint_reader *r;
        if (rm_checkpoint_present(path) && rm_checkpoint_open(path, &r, &meta) == RM_OK) {
            rm_checkpoint_close(r);
            if (meta.epoch >= 2) break;
        }
        rm_error_clear();
    }
    kill(pid, SIGKILL);
    rm_test_wait_exit(pid);
    assert_true(meta.epoch >= 2);
    int64_t before = meta.epoch;
    assert_int_equal(rm_test_wait_exit(start_train(dir, "12")), 86);
    /* the previous checkpoint survived the half-written one */
    rm_checkpoint_reader *r;
    assert_int_equal(rm_checkpoint_open(path, &r, &meta), RM_OK);
    rm_checkpoint_close(r);
    assert_true(meta.epoch >= before);
    printf("  checkpoint of epoch %lld intact after a fault inside the next one\n", (long long)meta.epoch);
    assert_int_equal(rm_test_wait_exit(start_train(dir, NULL)), 0);
    assert_same_run(reference, dir);
}

/* SIGTERM (what Slurm / mpirun send before a time limit) stops the run at the next batch
 * boundary: it checkpoints the half-done epoch, records "preempted", exits with 4, and
 * the same command continues from the next batch to a bit-identical result. */
static void sigterm_preempts_mid_epoch_then_resume(const char *method, const char *ref) {
    char dir[300], path[400], name[24];
    snprintf(name, sizeof name, "preempted-%s", method);
    make_dir(dir, sizeof dir, name);
    snprintf(path, sizeof path, "%s/r.h5", dir);
    pid_t pid = start_train_method(dir, NULL, method);
    int64_t rows = -1;
    for (int i = 0; i < 6000 && rows < 1; i++) {
        nanosleep(&(struct timespec){0, 10000000}, NULL);
        rows = rows_of(path);
    }
    assert_true(rows >= 1);
    nanosleep(&(struct timespec){0, 300000000}, NULL); /* into the next epoch's batches */
    kill(pid, SIGTERM);
    int rc = rm_test_wait_exit(pid);
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    printf("  SIGTERM: exit %d, status %s after %lld epochs\n", rc, rm_run_status_name(s.status), (long long)s.rows);
    if (s.rows < 4) { /* unless it had already finished */
        assert_int_equal(rc, 4);
        assert_int_equal(s.status, RM_RUN_PREEMPTED);
    }
    rm_run_summary_free(&s);
    assert_int_equal(rm_test_wait_exit(start_train_method(dir, NULL, method)), 0);
    assert_same_run(ref, dir);
}

static void test_sigterm_preempts_mid_epoch_then_resume(void **state) {
    (void)state;
    sigterm_preempts_mid_epoch_then_resume("pgi", reference);
}

/* the EMA's update count and shadow of a half-done epoch */
static void test_pgk_ema_sigterm_preempts_mid_epoch_then_resume(void **state) {
    (void)state;
    sigterm_preempts_mid_epoch_then_resume("pgk", reference_pgk);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_after_epoch_then_resume),
        cmocka_unit_test(test_fault_inside_checkpoint_write_then_resume),
        cmocka_unit_test(test_sigterm_preempts_mid_epoch_then_resume),
        cmocka_unit_test(test_pgk_ema_sigkill_after_epoch_then_resume),
        cmocka_unit_test(test_pgk_ema_sigterm_preempts_mid_epoch_then_resume),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
