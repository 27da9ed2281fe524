/* Resuming a run file: metric rows after the checkpoint are dropped (no duplicated
 * epochs, also with sparse evaluation epochs), no checkpoint means a fresh start, the
 * previous status is reported; a configuration hash mismatch is refused (file
 * unchanged) and accepted with force (/config rewritten, old hashes kept); other
 * metric columns and a checkpoint of another configuration are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regmix/config.h"
#include "regmix/runfile.h"
#include "runfile_fixture.h"

typedef rft_fixture fixture; /* dir, path, default cfg */

static const rm_metric_spec METRICS[] = {
    {"loss", "nats", "training loss"},
    {"acc", "fraction", "test accuracy"},
};
enum { N_METRICS = 2 };
static const rm_run_info INFO = {.mpi_rank = 1, .mpi_size = 2, .threads = 4};

static int setup(void **state) {
    fixture *f = rft_fixture_new("rfresume", "r.h5");
    if (!f) return -1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    *state = f;
    return 0;
}

/* Values of the first run (gen 0) and of the resumed one (gen 1) differ. */
static double cell(int64_t e, int m, int gen) { return (double)e + 0.25 * m + 100.0 * gen; }

static void append(rm_runfile *rf, int64_t e, int gen) {
    double v[N_METRICS];
    for (int m = 0; m < N_METRICS; m++) v[m] = cell(e, m, gen);
    rft_check_ok(rm_runfile_append(rf, e, v), "append");
}

static void checkpoint(const fixture *f, int64_t epoch, const char *hash) {
    rm_checkpoint_writer *w = NULL;
    rft_check_ok(rm_checkpoint_begin(f->path, hash, &w), "begin");
    const int64_t one[] = {1};
    float x = (float)epoch;
    rft_check_ok(rm_checkpoint_add(w, "model/x", RM_DT_F32, 1, one, &x), "add");
    rm_checkpoint_meta meta = {.epoch = epoch, .iteration = epoch * 10, .steps = epoch * 10};
    rft_check_ok(rm_checkpoint_commit(w, &meta), "commit");
}

/* A closed run with rows for `epochs` (in order), status `st`, checkpoint at ckpt_epoch (0: none). */
static void make_run(fixture *f, const int64_t *epochs, int n, int64_t ckpt_epoch, rm_run_status st) {
    rm_runfile *rf = NULL;
    rft_check_ok(rm_runfile_create(f->path, &f->cfg, &INFO, METRICS, N_METRICS, &rf), "create");
    for (int i = 0; i < n; i++) {
        append(rf, epochs[i], 0);
        if (epochs[i] == ckpt_epoch) checkpoint(f, ckpt_epoch, rm_runfile_config_hash(rf));
    }
    if (ckpt_epoch > 0 && !rm_checkpoint_present(f->path)) checkpoint(f, ckpt_epoch, rm_runfile_config_hash(rf));
    rft_check_ok(rm_runfile_set_status(rf, st, st == RM_RUN_PREEMPTED ? "SIGTERM" : ""), "status");
    rft_check_ok(rm_runfile_close(rf), "close");
}

/* Extent of a 1-D dataset, read with plain HDF5. */
static hsize_t extent(const char *path, const char *obj) {
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
    assert_true(file >= 0);
    hid_t d = H5Dopen2(file, obj, H5P_DEFAULT);
    assert_true(d >= 0);
    hid_t s = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(s, &n, NULL);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(file);
    return n;
}

static void test_truncates_to_checkpoint(void **state) {
    fixture *f = *state;
    const int64_t epochs[] = {1, 2, 3, 4, 5};
    make_run(f, epochs, 5, 3, RM_RUN_PREEMPTED);
    rm_runfile *rf = NULL;
    rm_resume_report rep;
    rft_check_ok(rm_runfile_resume(f->path, &f->cfg, &INFO, METRICS, N_METRICS, 0, &rf, &rep), "resume");
    assert_int_equal(rep.previous_status, RM_RUN_PREEMPTED);
    assert_string_equal(rep.previous_reason, "SIGTERM");
    assert_int_equal(rep.rows_before, 5);
    assert_int_equal(rep.has_checkpoint, 1);
    assert_int_equal(rep.checkpoint_epoch, 3);
    assert_int_equal(rep.rows_kept, 3);
    assert_int_equal(rep.config_replaced, 0);
    assert_int_equal(rm_runfile_rows(rf), 3);
    /* datasets are shrunk, not just the counter */
    assert_int_equal(extent(f->path, "/metrics/epoch"), 3);
    assert_int_equal(extent(f->path, "/metrics/acc"), 3);
    rm_run_summary s;
    rft_check_ok(rm_runfile_read(f->path, &s), "read while resumed");
    assert_int_equal(s.status, RM_RUN_RUNNING);
    assert_string_equal(s.status_reason, "");
    assert_string_equal(s.end_time, "");
    assert_int_equal(s.resume_count, 1);
    assert_int_equal(strlen(s.resume_time), 20);
    assert_int_equal(s.rows, 3);
    rm_run_summary_free(&s);
    /* epoch 3 again is refused (not after the last kept row), 4 and 5 are redone */
    double v[N_METRICS] = {0, 0};
    assert_int_equal(rm_runfile_append(rf, 3, v), RM_ERR_ARG);
    rm_error_clear();
    append(rf, 4, 1);
    append(rf, 5, 1);
    rft_check_ok(rm_runfile_set_status(rf, RM_RUN_COMPLETED, ""), "status");
    rft_check_ok(rm_runfile_close(rf), "close");

    rft_check_ok(rm_runfile_read(f->path, &s), "read");
    assert_int_equal(s.rows, 5);
    for (int r = 0; r < 5; r++) {
        assert_int_equal(s.epoch[r], r + 1);
        int gen = r < 3 ? 0 : 1;
        for (int m = 0; m < N_METRICS; m++) assert_true(s.columns[m].values[r] == cell(r + 1, m, gen));
    }
    rm_run_summary_free(&s);
    assert_int_equal(extent(f->path, "/metrics/loss"), 5);

    /* the resume log records it */
    hid_t file = H5Fopen(f->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t g = H5Gopen2(file, "/provenance", H5P_DEFAULT);
    hid_t a = H5Aopen(g, "resume_log", H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    char *log = NULL;
    assert_true(H5Aread(a, t, &log) >= 0);
    assert_non_null(strstr(log, "previous=preempted rows_kept=3"));
    assert_non_null(strstr(log, "rank=1/2 threads=4"));
    H5free_memory(log);
    H5Tclose(t);
    H5Aclose(a);
    H5Gclose(g);
    H5Fclose(file);
}

/* eval_every > 1: rows only at some epochs; the checkpoint falls between two rows. */
static void test_sparse_epochs_and_no_checkpoint(void **state) {
    fixture *f = *state;
    const int64_t epochs[] = {2, 4, 6, 8};
    make_run(f, epochs, 4, 5, RM_RUN_FAILED);
    rm_runfile *rf = NULL;
    rm_resume_report rep;
    rft_check_ok(rm_runfile_resume(f->path, &f->cfg, &INFO, METRICS, N_METRICS, 0, &rf, &rep), "resume");
    assert_int_equal(rep.previous_status, RM_RUN_FAILED);
    assert_int_equal(rep.rows_kept, 2); /* epochs 2 and 4 */
    append(rf, 6, 1);
    rft_check_ok(rm_runfile_close(rf), "close");
    rm_run_summary s;
    rft_check_ok(rm_runfile_read(f->path, &s), "read");
    assert_int_equal(s.rows, 3);
    assert_int_equal(s.epoch[2], 6);
    assert_true(s.columns[0].values[2] == cell(6, 0, 1));
    rm_run_summary_free(&s);

    /* without a checkpoint everything is redone */
    unlink(f->path);
    char ck[600];
    rft_check_ok(rm_runfile_checkpoint_path(f->path, ck, sizeof ck), "ckpt path");
    unlink(ck);
    const int64_t e3[] = {1, 2, 3};
    make_run(f, e3, 3, 0, RM_RUN_DIVERGED);
    rft_check_ok(rm_runfile_resume(f->path, &f->cfg, &INFO, METRICS, N_METRICS, 0, &rf, &rep), "resume");
    assert_int_equal(rep.previous_status, RM_RUN_DIVERGED);
    assert_int_equal(rep.has_checkpoint, 0);
    assert_int_equal(rep.rows_before, 3);
    assert_int_equal(rep.rows_kept, 0);
    assert_int_equal(rm_runfile_rows(rf), 0);
    rft_check_ok(rm_runfile_close(rf), "close");
}

/* A completed run reopened with its own configuration is left as it was. */
static void test_completed_run_untouched(void **state) {
    fixture *f = *state;
    const int64_t epochs[] = {1, 2, 3, 4};
    make_run(f, epochs, 4, 2, RM_RUN_COMPLETED);
    rm_runfile *rf = NULL;
    rm_resume_report rep;
    rft_check_ok(rm_runfile_resume(f->path, &f->cfg, &INFO, METRICS, N_METRICS, 0, &rf, &rep), "resume");
    assert_int_equal(rep.previous_status, RM_RUN_COMPLETED);
    assert_int_equal(rep.rows_before, 4);
    assert_int_equal(rep.rows_kept, 4);
    assert_int_equal(rm_runfile_rows(rf), 4);
    rft_check_ok(rm_runfile_close(rf), "close");
    rm_run_summary s;
    rft_check_ok(rm_runfile_read(f->path, &s), "read");
    assert_int_equal(s.status, RM_RUN_COMPLETED);
    assert_int_equal(s.rows, 4);
    assert_int_equal(s.resume_count, 0);
    assert_true(s.end_time[0] != '\0');
    for (int r = 0; r < 4; r++) assert_true(s.columns[1].values[r] == cell(r + 1, 1, 0));
    rm_run_summary_free(&s);
    /* with another configuration (force) it is resumed from its checkpoint */
    rm_config more = f->cfg;
    more.epochs = f->cfg.epochs + 4;
    rft_check_ok(rm_runfile_resume(f->path, &more, &INFO, METRICS, N_METRICS, 1, &rf, &rep), "forced");
    assert_int_equal(rep.config_replaced, 1);
    assert_int_equal(rep.rows_kept, 2);
    rft_check_ok(rm_runfile_close(rf), "close");
    rft_check_ok(rm_runfile_read(f->path, &s), "read");
    assert_int_equal(s.status, RM_RUN_RUNNING);
    assert_int_equal(s.resume_count, 1);
    rm_run_summary_free(&s);
}

static void test_config_hash_mismatch(void **state) {
    fixture *f = *state;
    const int64_t epochs[] = {1, 2};
    make_run(f, epochs, 2, 2, RM_RUN_PREEMPTED);
    char old_hash[17], new_hash[17];
    rm_config_hash(&f->cfg, old_hash);
    rm_config other = f->cfg;
    other.lr = 0.05;
    rm_config_hash(&other, new_hash);
    assert_string_not_equal(old_hash, new_hash);

    size_t n0 = 0, n1 = 0;
    char *before = rft_slurp(f->path, &n0);
    rm_runfile *rf = NULL;
    rm_resume_report rep;
    assert_int_equal(rm_runfile_resume(f->path, &other, &INFO, METRICS, N_METRICS, 0, &rf, &rep), RM_ERR_STATE);
    assert_null(rf);
    const char *msg = rm_error_message();
    assert_non_null(strstr(msg, f->path));
    assert_non_null(strstr(msg, old_hash));
    assert_non_null(strstr(msg, new_hash));
    rm_error_clear();
    char *after = rft_slurp(f->path, &n1);
    assert_int_equal(n1, n0);
    assert_memory_equal(after, before, n0);
    free(after);
    free(before);

    /* Settings outside the hash (outdir, run_id, checkpoint_every) resume without force. */
    rm_config moved = f->cfg;
    snprintf(moved.outdir, sizeof moved.outdir, "elsewhere");
    moved.checkpoint_every = 5;
    rft_check_ok(rm_runfile_resume(f->path, &moved, &INFO, METRICS, N_METRICS, 0, &rf, &rep), "resume moved");
    rft_check_ok(rm_runfile_close(rf), "close");

    /* force: accepted, /config rewritten, the old hash kept */
    rft_check_ok(rm_runfile_resume(f->path, &other, &INFO, METRICS, N_METRICS, 1, &rf, &rep), "forced resume");
    assert_int_equal(rep.config_replaced, 1);
    assert_string_equal(rep.file_hash, old_hash);
    assert_string_equal(rm_runfile_config_hash(rf), new_hash);
    assert_int_equal(rep.rows_kept, 2); /* the checkpoint of the old configuration is accepted too */
    rft_check_ok(rm_runfile_close(rf), "close");
    rm_run_summary s;
    rft_check_ok(rm_runfile_read(f->path, &s), "read");
    assert_string_equal(s.config_hash, new_hash);
    assert_non_null(strstr(s.config_yaml, "lr: 0.05\n"));
    rm_run_summary_free(&s);
    hid_t file = H5Fopen(f->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t g = H5Gopen2(file, "/config", H5P_DEFAULT);
    double lr = 0;
    hid_t a = H5Aopen(g, "lr", H5P_DEFAULT);
    assert_true(H5Aread(a, H5T_NATIVE_DOUBLE, &lr) >= 0);
    H5Aclose(a);
    assert_true(lr == 0.05);
    a = H5Aopen(g, "previous_hashes", H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    char *prev = NULL;
    assert_true(H5Aread(a, t, &prev) >= 0);
    assert_string_equal(prev, old_hash);
    H5free_memory(prev);
    H5Tclose(t);
    H5Aclose(a);
    H5Gclose(g);
    H5Fclose(file);

    /* Back to the original configuration: now that one differs from the file's. */
    assert_int_equal(rm_runfile_resume(f->path, &f->cfg, &INFO, METRICS, N_METRICS, 0, &rf, &rep), RM_ERR_STATE);
    rm_error_clear();
}

static void test_other_columns_and_foreign_checkpoint(void **state) {
    fixture *f = *state;
    const int64_t epochs[] = {1, 2};
    make_run(f, epochs, 2, 0, RM_RUN_PREEMPTED);
    size_t n0 = 0, n1 = 0;
    char *before = rft_slurp(f->path, &n0);
    rm_runfile *rf = NULL;
    rm_resume_report rep;
    const rm_metric_spec other[] = {{"loss", "nats", ""}, {"pgd20_acc", "fraction", ""}};
    assert_int_equal(rm_runfile_resume(f->path, &f->cfg, &INFO, other, 2, 1, &rf, &rep), RM_ERR_STATE);
    assert_non_null(strstr(rm_error_message(), "[loss,acc]"));
    assert_non_null(strstr(rm_error_message(), "[loss,pgd20_acc]"));
    rm_error_clear();
    /* a checkpoint written by another configuration */
    checkpoint(f, 2, "0123456789abcdef");
    assert_int_equal(rm_runfile_resume(f->path, &f->cfg, &INFO, METRICS, N_METRICS, 0, &rf, &rep), RM_ERR_STATE);
    assert_non_null(strstr(rm_error_message(), "0123456789abcdef"));
    rm_error_clear();
    char *after = rft_slurp(f->path, &n1);
    assert_int_equal(n1, n0);
    assert_memory_equal(after, before, n0);
    free(after);
    free(before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_truncates_to_checkpoint, setup, rft_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_sparse_epochs_and_no_checkpoint, setup, rft_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_completed_run_untouched, setup, rft_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_config_hash_mismatch, setup, rft_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_other_columns_and_foreign_checkpoint, setup, rft_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
