/* regmix report with AutoAttack columns and gradient-masking warnings: two hand-written
 * runs; the default metric set shows the robust accuracy after each component (plain
 * test_* columns) and the gm_* flags counted like co ("k/n (ep E)"), the caption names
 * them, a footnote names every run with a warning and its first epoch, and the CSV
 * carries the flags as runs / n / first epoch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

#include "regmix/report.h"

static char dir[64];

static const rm_metric_spec METRICS[] = {
    {"test_clean", "%", "clean"},      {"test_aa", "%", "aa"},
    {"test_aa.apgd-ce", "%", "after"}, {"test_aa.square", "%", "after"},
    {"gm_square", "1", "warning"},     {"gm_zero_grad", "1", "warning"},
};
enum { N_METRICS = 6 };

/* Per run, epochs 1 and 2 (--epoch last reads epoch 2):
 *   mse:    clean 70 72, aa 40 41, after APGD-CE 45 46, after Square 40 41,
 *           gm_square 0 0, gm_zero_grad NaN 0       -> square 0/1, zero_grad 0/1
 *   regmix: clean 74 76, aa 44 45, after APGD-CE 50 51, after Square 44 45,
 *           gm_square 0 1, gm_zero_grad 1 1         -> square 1/1 (ep 2), zero_grad 1/1 (ep 1)
 * Column totals: square 1 of 2 runs, first at epoch 2; zero_grad 1 of 2, first at 1. */
static const struct {
    const char *reg;
    double v[2][N_METRICS];
} RUNS[2] = {
    {"mse", {{70, 40, 45, 40, 0, NAN}, {72, 41, 46, 41, 0, 0}}},
    {"regmix", {{74, 44, 50, 44, 0, 1}, {76, 45, 51, 45, 1, 1}}},
};

static void check_ok(rm_status st, const char *what) {
    if (st != RM_OK) fail_msg("%s: %s", what, rm_error_message());
}

static int make_sweep(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/regmix-reportgm-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    for (int r = 0; r < 2; r++) {
        rm_config cfg;
        rm_config_defaults(&cfg);
        char path[256];
        check_ok(rm_config_set(&cfg, "reg", RUNS[r].reg, "test"), "reg");
        check_ok(rm_config_set(&cfg, "eval_attacks", "clean,aa", "test"), "eval_attacks");
        cfg.epochs = 2;
        snprintf(cfg.run_id, sizeof cfg.run_id, "reg-%s", RUNS[r].reg);
        snprintf(path, sizeof path, "%s/reg-%s.h5", dir, RUNS[r].reg);
        rm_run_info info = {.mpi_rank = 0, .mpi_size = 1, .threads = 1};
        rm_runfile *rf;
        check_ok(rm_runfile_create(path, &cfg, &info, METRICS, N_METRICS, &rf), path);
        for (int e = 0; e < 2; e++) check_ok(rm_runfile_append(rf, e + 1, RUNS[r].v[e]), "append");
        check_ok(rm_runfile_set_status(rf, RM_RUN_COMPLETED, ""), "status");
        check_ok(rm_runfile_close(rf), "close");
    }
    return 0;
}

static int remove_sweep(void **state) {
    (void)state;
    rm_test_remove_tree(dir);
    return 0;
}

static char *capture(rm_status (*writer)(const rm_report_table *, FILE *), const rm_report_table *t) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    check_ok(writer(t, f), "writer");
    assert_int_equal(fclose(f), 0);
    return text;
}

static void expect_text(const char *got, const char *want) {
    if (strcmp(got, want) != 0) fail_msg("text differs:\n--- got:\n%s\n--- want:\n%s", got, want);
}

static void test_default_table(void **state) {
    (void)state;
    rm_report_runs runs;
    rm_report_table *t;
    rm_report_options o;
    rm_report_options_default(&o);
    o.epoch_rule = RM_REPORT_EPOCH_LAST;
    check_ok(rm_report_load_dir(dir, &runs), "load");
    check_ok(rm_report_build(&runs, &o, &t), "build");
    char *md = capture(rm_report_write_markdown, t);
    char want[4096];
    snprintf(want, sizeof want,
             "Table: %s: 2 runs: 2 averaged; values at each run's last evaluated epoch; accuracies in %%; "
             "gm_square, gm_zero_grad = runs with that gradient-masking warning / runs checked (first epoch); cells: "
             "mean ± sample std (n-1) over the runs of a row, n = runs averaged, bold = best of a column.\n"
             "\n"
             "| reg    | n |        clean |           aa |   aa.apgd-ce |    aa.square |  gm_square | gm_zero_grad |\n"
             "|:-------|--:|-------------:|-------------:|-------------:|-------------:|-----------:|-------------:|\n"
             "| mse    | 1 |     72.0 ± — |     41.0 ± — |     46.0 ± — |     41.0 ± — |        0/1 |          0/1 |\n"
             "| regmix | 1 | **76.0 ± —** | **45.0 ± —** | **51.0 ± —** | **45.0 ± —** | 1/1 (ep 2) |   1/1 (ep 1) |\n"
             "\n"
             "- gradient-masking warning: reg-regmix (gm_square, first at epoch 2)\n"
             "- gradient-masking warning: reg-regmix (gm_zero_grad, first at epoch 1)\n",
             dir);
    expect_text(md, want);
    free(md);
    char *csv = capture(rm_report_write_csv, t);
    expect_text(csv, "reg,n,n_partial,n_failed,clean_mean,clean_std,clean_n,aa_mean,aa_std,aa_n,aa.apgd-ce_mean,"
                     "aa.apgd-ce_std,aa.apgd-ce_n,aa.square_mean,aa.square_std,aa.square_n,gm_square_runs,gm_square_n,"
                     "gm_square_first_epoch,gm_zero_grad_runs,gm_zero_grad_n,gm_zero_grad_first_epoch\n"
                     "mse,1,0,0,72,,1,41,,1,46,,1,41,,1,0,1,,0,1,\n"
                     "regmix,1,0,0,76,,1,45,,1,51,,1,45,,1,1,1,2,1,1,1\n");
    free(csv);
    rm_report_table_free(t);
    rm_report_runs_free(&runs);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_default_table)};
    return cmocka_run_group_tests(tests, make_sweep, remove_sweep);
}
