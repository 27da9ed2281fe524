/* The run life cycle through the library (include/regmix/run.h), without the binary:
 * - a fresh run: its events in order (STARTED, every batch, one EPOCH per epoch,
 *   FINISHED) and the run file holds exactly the rows the EPOCH events carried;
 * - the same run again: skipped (FINISHED with skipped = 1), its record unchanged;
 * - a run stopped by its event callback in epoch 2: PREEMPTED with a checkpoint; rm_run
 *   again resumes it (RESUMED, the rest of epoch 2's batches only) and ends with the
 *   uninterrupted run's metrics, bit for bit;
 * - rm_run_request_stop (the signal handlers' flag) preempts the same way;
 * - another configuration under the same run id: REFUSED, the file untouched;
 * - a held writer lock: FAILED naming the lock, no file created.
 * Small Fashion-MNIST runs (skipped when the dataset is not installed). */
#define _XOPEN_SOURCE 700 /* realpath */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"

#include "regmix/run.h"

static char workdir[256];

enum { MAX_EV = 256, BATCHES = 4 };

/* What the callback saw. */
typedef struct {
    int n;
    rm_run_event_kind kind[MAX_EV];
    int epoch[MAX_EV];
    int64_t done[MAX_EV], total[MAX_EV];
    double rows[8][64]; /* EPOCH rows, by epoch */
    int n_cols;
    rm_run_status status;  /* STOPPED / FINISHED */
    int skipped, finished_with_row, resume_epoch, resume_rows_kept;
    char message[512], reason[256];
    int stop_epoch, stop_done; /* ask to stop at this batch (0: never) */
    int stop_by_flag;          /* ... with rm_run_request_stop instead of the return value */
} recorder;

static int record(void *ctx, const rm_run_event *ev) {
    recorder *r = ctx;
    assert_true(r->n < MAX_EV);
    int i = r->n++;
    r->kind[i] = ev->kind;
    r->epoch[i] = ev->epoch;
    r->done[i] = ev->done;
    r->total[i] = ev->total;
    assert_non_null(ev->run_id);
    assert_non_null(ev->cfg);
    assert_int_equal(ev->dp_rank, 0);
    switch (ev->kind) {
    case RM_RUN_EVENT_EPOCH:
        r->n_cols = rm_trainer_metric_count(ev->trainer);
        assert_true(ev->epoch >= 1 && ev->epoch <= 8 && r->n_cols <= 64);
        memcpy(r->rows[ev->epoch - 1], ev->row, sizeof(double) * (size_t)r->n_cols);
        break;
    case RM_RUN_EVENT_RESUMED:
        r->resume_epoch = (int)ev->resume->checkpoint_epoch;
        r->resume_rows_kept = (int)ev->resume->rows_kept;
        break;
    case RM_RUN_EVENT_STOPPED:
    case RM_RUN_EVENT_ERROR:
        snprintf(r->message, sizeof r->message, "%s", ev->message ? ev->message : "");
        r->status = ev->status;
        break;
    case RM_RUN_EVENT_FINISHED:
        r->status = ev->status;
        r->skipped = ev->skipped;
        r->finished_with_row = ev->row != NULL;
        snprintf(r->reason, sizeof r->reason, "%s", ev->reason ? ev->reason : "");
        if (ev->skipped) assert_int_equal(ev->summary->rows, 2);
        break;
    case RM_RUN_EVENT_BATCH:
        if (ev->epoch == r->stop_epoch && ev->done == r->stop_done) {
            if (!r->stop_by_flag) return 1;
            rm_run_request_stop();
        }
        break;
    default:
        break;
    }
    return 0;
}

static void config(rm_config *c, const char *outdir, const char *run_id) {
    rm_config_defaults(c);
    assert_int_equal(rm_config_set(c, "train_subset", "256", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "test_subset", "64", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "batch", "64", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "epochs", "2", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "threads", "1", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "eval_attacks", "clean,pgd3", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "outdir", outdir, NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "run_id", run_id, NULL), RM_OK);
    assert_int_equal(rm_config_validate(c), RM_OK);
}

static rm_run_end run(const rm_config *c, recorder *r, rm_run_result *res) {
    rm_run_options o = {.mpi_size = 1, .threads = 1, .on_event = record, .ctx = r};
    return rm_run(c, &o, res);
}

static void path_of(char *out, size_t size, const char *dir, const char *id) {
    snprintf(out, size, "%s/%s/%s.h5", workdir, dir, id);
}

static void outdir_of(char *out, size_t size, const char *dir) { snprintf(out, size, "%s/%s", workdir, dir); }

/* Index of the first event of `kind` at or after `from`, or -1. */
static int find(const recorder *r, rm_run_event_kind kind, int from) {
    for (int i = from; i < r->n; i++)
        if (r->kind[i] == kind) return i;
    return -1;
}

static int is_timing(const char *name) { return strstr(name, "seconds") || !strcmp(name, "images_per_s"); }

/* The file's rows equal the EPOCH rows the recorder saw (every column, exactly). */
static void assert_file_has_rows(const char *path, const recorder *r, int rows) {
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    assert_int_equal(s.rows, rows);
    assert_int_equal(s.n_metrics, r->n_cols - 1);
    for (int e = 0; e < rows; e++) {
        assert_int_equal(s.epoch[e], e + 1);
        for (int m = 0; m < s.n_metrics; m++) {
            double a = s.columns[m].values[e], b = r->rows[e][m + 1];
            assert_true((isnan(a) && isnan(b)) || a == b);
        }
    }
    rm_run_summary_free(&s);
}

static rm_run_status file_status(const char *path, int64_t *rows) {
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    rm_run_status st = s.status;
    if (rows) *rows = s.rows;
    rm_run_summary_free(&s);
    return st;
}

/* The uninterrupted reference run (run id "r" in fresh/). */
static recorder fresh;

static void test_fresh_run_events_and_file(void **state) {
    (void)state;
    char od[512], path[600];
    outdir_of(od, sizeof od, "fresh");
    path_of(path, sizeof path, "fresh", "r");
    rm_config c;
    config(&c, od, "r");
    rm_run_result res;
    assert_int_equal(run(&c, &fresh, &res), RM_RUN_END_COMPLETED);
    assert_int_equal(res.status, RM_RUN_COMPLETED);
    assert_int_equal(res.epochs, 2);
    assert_int_equal(res.skipped, 0);
    assert_string_equal(res.reason, "");
    /* STARTED, then per epoch 4 BATCH (done 1..4 of 4) and one EPOCH, then FINISHED */
    assert_int_equal(fresh.n, 1 + 2 * (BATCHES + 1) + 1);
    assert_int_equal(fresh.kind[0], RM_RUN_EVENT_STARTED);
    for (int e = 0; e < 2; e++) {
        int base = 1 + e * (BATCHES + 1);
        for (int b = 0; b < BATCHES; b++) {
            assert_int_equal(fresh.kind[base + b], RM_RUN_EVENT_BATCH);
            assert_int_equal(fresh.epoch[base + b], e + 1);
            assert_int_equal(fresh.done[base + b], b + 1);
            assert_int_equal(fresh.total[base + b], BATCHES);
        }
        assert_int_equal(fresh.kind[base + BATCHES], RM_RUN_EVENT_EPOCH);
        assert_int_equal(fresh.epoch[base + BATCHES], e + 1);
        assert_true(fresh.rows[e][0] == e + 1);
    }
    assert_int_equal(fresh.kind[fresh.n - 1], RM_RUN_EVENT_FINISHED);
    assert_int_equal(fresh.status, RM_RUN_COMPLETED);
    assert_true(fresh.finished_with_row);
    assert_string_equal(fresh.reason, "");
    assert_int_equal(file_status(path, NULL), RM_RUN_COMPLETED);
    assert_file_has_rows(path, &fresh, 2);
    assert_int_equal(rm_checkpoint_present(path), 1);
    /* /provenance: where the data was read from (the default folder, absolute), one rank */
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    char want[PATH_MAX];
    assert_non_null(realpath("/usr/share/datasets/fashion-mnist", want));
    assert_string_equal(s.data_dir, want);
    assert_int_equal(s.ranks_per_run, 1);
    rm_run_summary_free(&s);
}

static void test_completed_run_is_skipped(void **state) {
    (void)state;
    char od[512], path[600];
    outdir_of(od, sizeof od, "fresh");
    path_of(path, sizeof path, "fresh", "r");
    rm_run_summary before, after;
    assert_int_equal(rm_runfile_read(path, &before), RM_OK);
    rm_config c;
    config(&c, od, "r");
    recorder r = {0};
    rm_run_result res;
    assert_int_equal(run(&c, &r, &res), RM_RUN_END_COMPLETED);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.kind[0], RM_RUN_EVENT_FINISHED);
    assert_int_equal(r.skipped, 1);
    assert_int_equal(res.skipped, 1);
    assert_int_equal(res.epochs, 2);
    /* the record is as it was: not counted as a resume, same end time and rows */
    assert_int_equal(rm_runfile_read(path, &after), RM_OK);
    assert_int_equal(after.status, RM_RUN_COMPLETED);
    assert_int_equal(after.resume_count, 0);
    assert_string_equal(after.end_time, before.end_time);
    assert_int_equal(after.rows, 2);
    rm_run_summary_free(&before);
    rm_run_summary_free(&after);
    assert_file_has_rows(path, &fresh, 2);
}

/* Stops in epoch 2 after its 2nd batch, then resumes; by_flag: through
 * rm_run_request_stop instead of the callback's return value. */
static void preempt_and_resume(const char *dir, int by_flag) {
    char od[512], path[600];
    outdir_of(od, sizeof od, dir);
    path_of(path, sizeof path, dir, "r");
    rm_config c;
    config(&c, od, "r");
    recorder r = {.stop_epoch = 2, .stop_done = 2, .stop_by_flag = by_flag};
    rm_run_result res;
    assert_int_equal(run(&c, &r, &res), RM_RUN_END_PREEMPTED);
    rm_run_clear_stop();
    int stopped = find(&r, RM_RUN_EVENT_STOPPED, 0);
    assert_true(stopped > 0);
    assert_int_equal(r.epoch[stopped], 2);
    assert_int_equal(r.kind[r.n - 1], RM_RUN_EVENT_FINISHED);
    assert_int_equal(r.status, RM_RUN_PREEMPTED);
    assert_string_equal(r.reason, "stopped by a signal; resumable");
    assert_int_equal(res.status, RM_RUN_PREEMPTED);
    assert_int_equal(res.epochs, 1);
    int64_t rows;
    assert_int_equal(file_status(path, &rows), RM_RUN_PREEMPTED);
    assert_int_equal(rows, 1);

    recorder again = {0};
    assert_int_equal(run(&c, &again, &res), RM_RUN_END_COMPLETED);
    assert_int_equal(again.kind[0], RM_RUN_EVENT_RESUMED);
    assert_int_equal(again.resume_epoch, 1);
    assert_int_equal(again.resume_rows_kept, 1);
    assert_int_equal(again.kind[1], RM_RUN_EVENT_STARTED);
    /* the rest of epoch 2 only: batches 3 and 4 */
    assert_int_equal(again.kind[2], RM_RUN_EVENT_BATCH);
    assert_int_equal(again.epoch[2], 2);
    assert_int_equal(again.done[2], 3);
    assert_int_equal(again.done[3], 4);
    assert_int_equal(again.kind[4], RM_RUN_EVENT_EPOCH);
    assert_int_equal(again.kind[5], RM_RUN_EVENT_FINISHED);
    assert_int_equal(again.n, 6);
    /* the same numbers as the uninterrupted run (timings aside) */
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    assert_int_equal(s.rows, 2);
    assert_int_equal(s.status, RM_RUN_COMPLETED);
    assert_int_equal(s.resume_count, 1);
    for (int e = 0; e < 2; e++)
        for (int m = 0; m < s.n_metrics; m++) {
            if (is_timing(s.columns[m].name)) continue;
            double a = s.columns[m].values[e], b = fresh.rows[e][m + 1];
            if (!((isnan(a) && isnan(b)) || a == b))
                fail_msg("epoch %d %s: resumed %.17g, uninterrupted %.17g", e + 1, s.columns[m].name, a, b);
        }
    rm_run_summary_free(&s);
}

static void test_callback_preempts_and_rm_run_resumes_exactly(void **state) {
    (void)state;
    preempt_and_resume("stopped", 0);
}

static void test_stop_request_preempts_and_rm_run_resumes_exactly(void **state) {
    (void)state;
    preempt_and_resume("flagged", 1);
}

static void test_other_configuration_is_refused(void **state) {
    (void)state;
    char od[512], path[600];
    outdir_of(od, sizeof od, "fresh");
    path_of(path, sizeof path, "fresh", "r");
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    rm_config c;
    config(&c, od, "r");
    assert_int_equal(rm_config_set(&c, "lr", "0.05", NULL), RM_OK);
    recorder r = {0};
    rm_run_result res;
    assert_int_equal(run(&c, &r, &res), RM_RUN_END_REFUSED);
    rm_error_clear();
    assert_int_equal(r.kind[0], RM_RUN_EVENT_ERROR);
    assert_non_null(strstr(r.message, "hash"));
    assert_int_equal(r.kind[r.n - 1], RM_RUN_EVENT_FINISHED);
    assert_int_equal(r.status, RM_RUN_FAILED);
    assert_string_equal(r.reason, r.message);
    assert_int_equal(res.end, RM_RUN_END_REFUSED);
    assert_int_equal(stat(path, &after), 0);
    assert_true(before.st_mtim.tv_sec == after.st_mtim.tv_sec && before.st_mtim.tv_nsec == after.st_mtim.tv_nsec);
    assert_int_equal(file_status(path, NULL), RM_RUN_COMPLETED);
}

static void test_held_lock_fails_without_touching_anything(void **state) {
    (void)state;
    char od[512], path[600], lock[700];
    outdir_of(od, sizeof od, "locked");
    path_of(path, sizeof path, "locked", "r");
    assert_int_equal(mkdir(od, 0755), 0);
    snprintf(lock, sizeof lock, "%s.lock", path);
    int fd = open(lock, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    rm_config c;
    config(&c, od, "r");
    recorder r = {0};
    assert_int_equal(run(&c, &r, NULL), RM_RUN_END_FAILED);
    rm_error_clear();
    assert_int_equal(r.n, 2);
    assert_int_equal(r.kind[0], RM_RUN_EVENT_ERROR);
    assert_non_null(strstr(r.message, "being written by another regmix process"));
    assert_int_equal(r.kind[1], RM_RUN_EVENT_FINISHED);
    assert_int_equal(r.status, RM_RUN_FAILED);
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0);
    close(fd);
}

static int setup(void **state) {
    (void)state;
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &sb) != 0) {
        printf("SKIPPED: Fashion-MNIST is not installed (package dataset-fashion-mnist)\n");
        exit(0);
    }
    snprintf(workdir, sizeof workdir, "/tmp/regmix-run-api-XXXXXX");
    return mkdtemp(workdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_tree(workdir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_run_events_and_file),
        cmocka_unit_test(test_completed_run_is_skipped),
        cmocka_unit_test(test_callback_preempts_and_rm_run_resumes_exactly),
        cmocka_unit_test(test_stop_request_preempts_and_rm_run_resumes_exactly),
        cmocka_unit_test(test_other_configuration_is_refused),
        cmocka_unit_test(test_held_lock_fails_without_touching_anything),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
