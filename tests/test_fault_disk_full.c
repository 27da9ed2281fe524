/* A full disk (tests/support/fault_io: write()/pwrite() fail with ENOSPC) while a run
 * writes its files, in process through rm_run:
 * - appending epoch 2's metric row: the run fails with the reason naming the run file and
 *   the failed write, epoch 1's row and checkpoint stay readable; once there is room the
 *   same run resumes from epoch 1 and ends with the uninterrupted run's metrics;
 * - writing epoch 2's checkpoint: the run fails naming the checkpoint's temporary file, its
 *   status `failed` with that reason is in the run file, the epoch 1 checkpoint is intact,
 *   and the same run then resumes from it to the same end.
 * (The sweep index on a full disk: test_fault_sweep.) Small Fashion-MNIST runs (skipped
 * when the dataset is not installed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fault_io.h"
#include "proc.h"
#include "regmix/run.h"

static char workdir[256];

enum { EPOCHS = 3, MAX_COLS = 64 };

typedef struct {
    const char *arm_pattern; /* after epoch 1's EPOCH event: the disk is full for these files */
    int stopped_epoch;
} watcher;

static int watch(void *ctx, const rm_run_event *ev) {
    watcher *w = ctx;
    if (ev->kind == RM_RUN_EVENT_EPOCH && ev->epoch == 1 && w->arm_pattern) fault_io_fail_writes(w->arm_pattern, 0);
    if (ev->kind == RM_RUN_EVENT_STOPPED) w->stopped_epoch = ev->epoch;
    return 0;
}

static void config(rm_config *c, const char *dir, const char *run_id) {
    char od[512];
    snprintf(od, sizeof od, "%s/%s", workdir, dir);
    rm_config_defaults(c);
    assert_int_equal(rm_config_set(c, "train_subset", "128", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "test_subset", "32", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "batch", "64", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "epochs", "3", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "checkpoint_every", "1", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "threads", "1", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "eval_attacks", "clean", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "outdir", od, NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "run_id", run_id, NULL), RM_OK);
    assert_int_equal(rm_config_validate(c), RM_OK);
}

static int is_timing(const char *name) { return strstr(name, "seconds") || !strcmp(name, "images_per_s"); }

/* The file holds `rows` rows equal to want's (every column but the timings, exactly). */
static void assert_rows(const char *path, const rm_run_summary *want, int rows, rm_run_status status) {
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    assert_int_equal(s.rows, rows);
    assert_int_equal(s.status, status);
    for (int e = 0; e < rows; e++) {
        assert_int_equal(s.epoch[e], e + 1);
        for (int m = 0; m < s.n_metrics; m++) {
            if (is_timing(s.columns[m].name)) continue;
            double a = s.columns[m].values[e], b = want->columns[m].values[e];
            if (!((isnan(a) && isnan(b)) || a == b))
                fail_msg("%s: %s epoch %d is %.17g, uninterrupted %.17g", path, s.columns[m].name, e + 1, a, b);
        }
    }
    rm_run_summary_free(&s);
}

static int checkpoint_epoch(const char *path) {
    rm_checkpoint_reader *r;
    rm_checkpoint_meta meta;
    assert_int_equal(rm_checkpoint_open(path, &r, &meta), RM_OK);
    rm_checkpoint_close(r);
    return (int)meta.epoch;
}

/* `regmix train` with config()'s settings into dir (a new process each time: after a
 * failed close HDF5 still holds the file in the process that failed). */
static int train_command(const char *dir, const char *id) {
    char od[512], rid[64];
    snprintf(od, sizeof od, "outdir=%s/%s", workdir, dir);
    snprintf(rid, sizeof rid, "run_id=%s", id);
    fflush(stdout); /* or the child would print our buffered lines again */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout)) _exit(99);
        execl(REGMIX_BINARY, "regmix", "train", "train_subset=128", "test_subset=32", "batch=64", "epochs=3",
              "checkpoint_every=1", "threads=1", "eval_attacks=clean", "--quiet", od, rid, (char *)NULL);
        _exit(98);
    }
    return rm_test_wait_exit(pid);
}

/* The uninterrupted run's rows. */
static rm_run_summary fresh;

static void reference(void) {
    if (fresh.rows) return;
    assert_int_equal(train_command("fresh", "r"), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/fresh/r.h5", workdir);
    assert_int_equal(rm_runfile_read(path, &fresh), RM_OK);
    assert_int_equal(fresh.rows, EPOCHS);
}

/* What the child that ran into the full disk saw. */
typedef struct {
    rm_run_end end;
    rm_run_result res;
    int stopped_epoch;
    long long refused;
} outcome;

/* rm_run in a child process (this one keeps no HDF5 state of the failed file) with the
 * disk full for files containing `pattern` from the end of epoch 1 on. */
static outcome run_on_full_disk(const char *dir, const char *id, const char *pattern) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        rm_config c;
        config(&c, dir, id);
        watcher w = {.arm_pattern = pattern};
        rm_run_options o = {.mpi_size = 1, .threads = 1, .on_event = watch, .ctx = &w};
        outcome out = {0};
        out.end = rm_run(&c, &o, &out.res);
        out.refused = fault_io_refused();
        out.stopped_epoch = w.stopped_epoch;
        /* the disk stays full; leave as the regmix binary does (rm_exit: HDF5's exit
         * handler crashed on the run file it could not write, exit() gave SIGSEGV) */
        rm_exit(write(fds[1], &out, sizeof out) == (ssize_t)sizeof out ? 0 : 97);
    }
    close(fds[1]);
    outcome out;
    assert_int_equal(read(fds[0], &out, sizeof out), (ssize_t)sizeof out);
    close(fds[0]);
    assert_int_equal(rm_test_wait_exit(pid), 0);
    return out;
}

/* The run of `id` in dir fails in epoch 2 on a full disk for files containing `pattern`
 * with a reason naming `named` and the cause, after writing rows_written rows. */
static void fail_on_full_disk(const char *dir, const char *id, const char *pattern, const char *named,
                              int rows_written, rm_run_result *res) {
    outcome out = run_on_full_disk(dir, id, pattern);
    *res = out.res;
    printf("  full disk on %s: %lld writes refused; reason: %s\n", pattern, out.refused, res->reason);
    assert_true(out.refused > 0);
    assert_int_equal(out.end, RM_RUN_END_FAILED);
    assert_int_equal(res->status, RM_RUN_FAILED);
    assert_int_equal(res->epochs, rows_written);
    assert_int_equal(out.stopped_epoch, 2);
    assert_true(!strncmp(res->reason, "epoch 2: ", 9));
    assert_non_null(strstr(res->reason, named));
    assert_non_null(strstr(res->reason, "No space left on device (errno 28)"));
}

/* With room again the same command resumes from epoch 1 and ends like the uninterrupted
 * run. */
static void resume_completes(const char *dir, const char *id) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s/%s.h5", workdir, dir, id);
    assert_int_equal(train_command(dir, id), 0);
    assert_rows(path, &fresh, EPOCHS, RM_RUN_COMPLETED);
    assert_int_equal(checkpoint_epoch(path), EPOCHS);
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    assert_int_equal(s.resume_count, 1);
    rm_run_summary_free(&s);
}

static void test_full_disk_appending_metrics(void **state) {
    (void)state;
    reference();
    char path[600];
    snprintf(path, sizeof path, "%s/metrics/m.h5", workdir);
    rm_run_result res;
    fail_on_full_disk("metrics", "m", "/metrics/m.h5", "m.h5", 1, &res);
    /* epoch 1: its row and its checkpoint are readable */
    assert_rows(path, &fresh, 1, RM_RUN_RUNNING);
    assert_int_equal(checkpoint_epoch(path), 1);
    resume_completes("metrics", "m");
}

static void test_full_disk_writing_checkpoint(void **state) {
    (void)state;
    reference();
    char path[600];
    snprintf(path, sizeof path, "%s/ckpt/k.h5", workdir);
    rm_run_result res;
    fail_on_full_disk("ckpt", "k", "/ckpt/k.ckpt.h5", "k.ckpt.h5.tmp", 2, &res);
    /* the run file had room: status failed with the reason, both rows kept */
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    assert_int_equal(s.status, RM_RUN_FAILED);
    assert_string_equal(s.status_reason, res.reason);
    rm_run_summary_free(&s);
    assert_rows(path, &fresh, 2, RM_RUN_FAILED);
    assert_int_equal(checkpoint_epoch(path), 1);
    resume_completes("ckpt", "k");
}

static int setup(void **state) {
    (void)state;
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &sb) != 0) {
        printf("SKIPPED: Fashion-MNIST is not installed (package dataset-fashion-mnist)\n");
        exit(0);
    }
    snprintf(workdir, sizeof workdir, "/tmp/regmix-fault-disk-XXXXXX");
    return mkdtemp(workdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    rm_run_summary_free(&fresh);
    rm_test_remove_tree(workdir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_disk_appending_metrics),
        cmocka_unit_test(test_full_disk_writing_checkpoint),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
