/* regmix report and the sweep index: a directory whose sweep.h5 lists three runs
 * (seed 0, 1, 2) of which only two have run files. rm_sweep_index_read returns the table
 * as written; rm_report_load_dir names the run without a file as missing (with its
 * status in the index); the caption counts it and a footnote names it; the command
 * prints a warning. A broken sweep.h5 is reported as unreadable, never as missing runs,
 * and a directory without an index has no missing runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runfile_fixture.h"

#include "regmix/report.h"
#include "regmix/runfile.h"
#include "regmix/sweep.h"

static char dir[256];

static const rm_metric_spec METRICS[] = {{"test_clean", "%", "clean accuracy"}, {"test_pgd20", "%", "PGD-20 accuracy"}};

/* The sweep "idx": seeds 0..2 into dir; index written with run 0 completed and run 1
 * running; run files for seeds 0 and 1 only. */
static void make_sweep(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/idx.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "name: idx\nbase:\n  outdir: %s\n  epochs: 1\ngrid:\n  seed: [0, 1, 2]\n", dir);
    assert_int_equal(fclose(f), 0);
    rm_sweep s;
    rft_check_ok(rm_sweep_load(path, &s), "rm_sweep_load");
    assert_int_equal(s.n_runs, 3);

    snprintf(path, sizeof path, "%s/sweep.h5", dir);
    rm_sweep_index *ix;
    rft_check_ok(rm_sweep_index_create(path, &s, 2, 1, &ix), "rm_sweep_index_create");
    rft_check_ok(rm_sweep_index_update(ix, 0, "completed", "", 0, 1, 100.0, 160.5), "index update 0");
    rft_check_ok(rm_sweep_index_update(ix, 1, "running", "", 1, 0, 101.0, NAN), "index update 1");
    rft_check_ok(rm_sweep_index_close(ix), "rm_sweep_index_close");

    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s.h5", dir, s.runs[i].id);
        rm_run_info info = {.mpi_rank = 0, .mpi_size = 1, .threads = 1};
        rm_runfile *rf;
        rft_check_ok(rm_runfile_create(path, &s.runs[i].cfg, &info, METRICS, 2, &rf), "rm_runfile_create");
        double row[2] = {80.0 + i, 40.0 + i};
        rft_check_ok(rm_runfile_append(rf, 1, row), "rm_runfile_append");
        rft_check_ok(rm_runfile_set_status(rf, RM_RUN_COMPLETED, ""), "set status");
        rft_check_ok(rm_runfile_close(rf), "rm_runfile_close");
    }
    rm_sweep_free(&s);
}

static void test_index_reads_back(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/sweep.h5", dir);
    rm_sweep_index_table t;
    rft_check_ok(rm_sweep_index_read(path, &t), "rm_sweep_index_read");
    assert_string_equal(t.name, "idx");
    assert_int_equal(t.n_runs, 3);
    const char *ids[3] = {"seed-0", "seed-1", "seed-2"}, *status[3] = {"completed", "running", "pending"};
    const int64_t rank[3] = {0, 1, -1}, epochs[3] = {1, 0, 0};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(t.runs[i].id, ids[i]);
        char file[64];
        snprintf(file, sizeof file, "%s.h5", ids[i]);
        assert_string_equal(t.runs[i].file, file);
        assert_string_equal(t.runs[i].status, status[i]);
        assert_string_equal(t.runs[i].reason, "");
        assert_int_equal(t.runs[i].rank, rank[i]);
        assert_int_equal(t.runs[i].epochs, epochs[i]);
        assert_true(t.runs[i].cost > 0);
    }
    assert_true(t.runs[0].start_time == 100.0 && t.runs[0].end_time == 160.5);
    assert_true(t.runs[1].start_time == 101.0 && isnan(t.runs[1].end_time));
    assert_true(isnan(t.runs[2].start_time));
    rm_sweep_index_table_free(&t);
}

static void test_report_names_the_missing_run(void **state) {
    (void)state;
    rm_report_runs runs;
    rft_check_ok(rm_report_load_dir(dir, &runs), "rm_report_load_dir");
    assert_int_equal(runs.n_runs, 2);
    assert_int_equal(runs.n_unreadable, 0);
    assert_int_equal(runs.has_index, 1);
    assert_int_equal(runs.n_missing, 1);
    assert_string_equal(runs.missing[0], "seed-2 (pending in sweep.h5)");

    rm_report_options opt;
    rm_report_options_default(&opt);
    rm_report_table *t;
    rft_check_ok(rm_report_build(&runs, &opt, &t), "rm_report_build");
    char *text = NULL;
    size_t size = 0;
    FILE *mem = open_memstream(&text, &size);
    assert_non_null(mem);
    rft_check_ok(rm_report_write_markdown(t, mem), "markdown");
    assert_int_equal(fclose(mem), 0);
    if (!strstr(text, "3 runs: 2 averaged, 1 missing;")) fail_msg("caption without the missing run:\n%s", text);
    if (!strstr(text, "\n- missing (listed in sweep.h5, no run file): seed-2 (pending in sweep.h5)\n"))
        fail_msg("no footnote for the missing run:\n%s", text);
    free(text);
    rm_report_table_free(t);
    rm_report_runs_free(&runs);
}

static void test_command_warns_about_the_missing_run(void **state) {
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "'%s' report '%s' 2>&1", REGMIX_BINARY, dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[16384];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    if (!strstr(out, "regmix report: warning: no run file for seed-2 (pending in sweep.h5)\n"))
        fail_msg("no warning:\n%s", out);
}

static void test_broken_index_is_unreadable_not_missing(void **state) {
    (void)state;
    char path[512], saved[512];
    snprintf(path, sizeof path, "%s/sweep.h5", dir);
    snprintf(saved, sizeof saved, "%s/sweep.h5.saved", dir);
    assert_int_equal(rename(path, saved), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not an index\n", f);
    assert_int_equal(fclose(f), 0);
    rm_report_runs runs;
    rft_check_ok(rm_report_load_dir(dir, &runs), "rm_report_load_dir");
    assert_int_equal(runs.n_runs, 2);
    assert_int_equal(runs.has_index, 0);
    assert_int_equal(runs.n_missing, 0);
    assert_int_equal(runs.n_unreadable, 1);
    assert_true(strncmp(runs.unreadable[0], "sweep.h5: ", 10) == 0);
    assert_non_null(strstr(runs.unreadable[0], "not an HDF5 file"));
    rm_report_runs_free(&runs);

    assert_int_equal(unlink(path), 0); /* no index at all: nothing missing */
    rft_check_ok(rm_report_load_dir(dir, &runs), "rm_report_load_dir");
    assert_int_equal(runs.n_runs, 2);
    assert_int_equal(runs.has_index, 0);
    assert_int_equal(runs.n_missing + runs.n_unreadable, 0);
    rm_report_runs_free(&runs);
    assert_int_equal(rename(saved, path), 0);
}

static int setup(void **state) {
    (void)state;
    if (rft_tmpdir_make(dir, sizeof dir, "report-index") != 0) return -1;
    make_sweep();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return rft_tmpdir_remove(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_reads_back),
        cmocka_unit_test(test_report_names_the_missing_run),
        cmocka_unit_test(test_command_warns_about_the_missing_run),
        cmocka_unit_test(test_broken_index_is_unreadable_not_missing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
