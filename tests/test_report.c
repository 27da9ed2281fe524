/* regmix report: a sweep directory written through the run-file writer with hand-chosen
 * numbers (2 regularisers x seeds, one diverged run, one run still in progress with
 * fewer rows, one run without any row, plus files the report must skip or flag), then
 * every rule checked against values worked out by hand in the comments: the best-epoch
 * choice, the grouping, mean and sample std (n-1), failed / missing handling, the
 * epoch rules, selection, column axes, and the exact Markdown, CSV and LaTeX text. */
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

/* ---------------------------------------------------------------- the sweep */

static const rm_metric_spec METRICS[] = {
    {"lr", "1", "learning rate"},         {"loss", "nats", "training loss"},
    {"train_acc", "%", "train accuracy"}, {"test_clean", "%", "clean accuracy"},
    {"test_fgsm", "%", "FGSM accuracy"},  {"test_pgd20", "%", "PGD-20 accuracy"},
    {"co_flag", "1", "CO flag"},          {"epoch_seconds", "s", "epoch time"},
    {"images_per_s", "1/s", "throughput"},
};
enum { N_METRICS = 9, MAX_ROWS = 3 };

typedef struct {
    const char *reg;
    int seed;
    rm_run_status status;
    const char *reason;
    int rows;
    double clean[MAX_ROWS], pgd[MAX_ROWS], co[MAX_ROWS], seconds[MAX_ROWS], ips[MAX_ROWS];
} run_spec;

/* Per run, per epoch 1..3. fgsm = clean - 20 everywhere. Best epoch by pgd20 (ties:
 * earliest) and the values there:
 *   mse s0    pgd 30 42 40 -> epoch 2: clean 70, pgd 42          seconds 10 -> 10
 *   mse s1    pgd 31 44 44 -> epoch 2 (tie with 3): clean 72, pgd 44    12 -> 12
 *   mse s2    running, 2 rows: pgd 29 43 -> epoch 2: clean 74, pgd 43  11 -> 11
 *   mse s3    running, no row
 *   regmix s0 pgd 35 45 47 -> epoch 3: clean 78, pgd 47          20 22 24 -> 22
 *   regmix s1 pgd 36 49 47 -> epoch 2: clean 76, pgd 49          18 -> 18
 *   regmix s2 pgd 34 48 48 -> epoch 2 (tie): clean 74, pgd 48    20 -> 20
 *   regmix s3 diverged after 1 row
 * mse:    clean {70,72,74} mean 72 std 2; pgd {42,44,43} mean 43 std 1;
 *         epoch_s {10,12,11} mean 11 std 1; images/s {1000,900,950} mean 950 std 50
 * regmix: clean {78,76,74} mean 76 std 2; pgd {47,49,48} mean 48 std 1;
 *         epoch_s {22,18,20} mean 20 std 2; images/s {500,600,550} mean 550 std 50
 * co: mse never (0/3); regmix s0 flagged at epoch 2, s1 at epoch 3 -> 2/3, first 2. */
static const run_spec RUNS[] = {
    {"mse", 0, RM_RUN_COMPLETED, "", 3, {60, 70, 75}, {30, 42, 40}, {0, 0, 0}, {10, 10, 10}, {1000, 1000, 1000}},
    {"mse", 1, RM_RUN_COMPLETED, "", 3, {62, 72, 76}, {31, 44, 44}, {0, 0, 0}, {12, 12, 12}, {900, 900, 900}},
    {"mse", 2, RM_RUN_RUNNING, "", 2, {61, 74}, {29, 43}, {0, 0}, {11, 11}, {950, 950}},
    {"mse", 3, RM_RUN_RUNNING, "", 0, {0}, {0}, {0}, {0}, {0}},
    {"regmix", 0, RM_RUN_COMPLETED, "", 3, {64, 71, 78}, {35, 45, 47}, {0, 1, 0}, {20, 22, 24}, {500, 500, 500}},
    {"regmix", 1, RM_RUN_COMPLETED, "", 3, {66, 76, 80}, {36, 49, 47}, {NAN, 0, 1}, {18, 18, 18}, {600, 600, 600}},
    {"regmix", 2, RM_RUN_COMPLETED, "", 3, {65, 74, 77}, {34, 48, 48}, {0, 0, 0}, {20, 20, 20}, {550, 550, 550}},
    {"regmix", 3, RM_RUN_DIVERGED, "loss is NaN", 1, {50}, {20}, {0}, {30}, {100}},
};
enum { N_RUNS = 8 };

static void check_ok(rm_status st, const char *what) {
    if (st != RM_OK) {
        char m[1100];
        snprintf(m, sizeof m, "%s", rm_error_message());
        rm_error_clear();
        fail_msg("%s: %s: %s", what, rm_status_name(st), m);
    }
}

static void write_run(const run_spec *r) {
    rm_config cfg;
    rm_config_defaults(&cfg);
    char id[64], path[256];
    snprintf(id, sizeof id, "reg-%s_seed-%d", r->reg, r->seed);
    snprintf(path, sizeof path, "%s/%s.h5", dir, id);
    check_ok(rm_config_set(&cfg, "reg", r->reg, "test"), "reg");
    cfg.seed = (uint64_t)r->seed;
    cfg.epochs = 3;
    snprintf(cfg.run_id, sizeof cfg.run_id, "%s", id);
    snprintf(cfg.outdir, sizeof cfg.outdir, "%s", dir);
    check_ok(rm_config_set(&cfg, "eval_attacks", "clean,fgsm,pgd20", "test"), "eval_attacks");
    rm_run_info info = {.mpi_rank = 0, .mpi_size = 1, .threads = 1};
    rm_runfile *rf;
    check_ok(rm_runfile_create(path, &cfg, &info, METRICS, N_METRICS, &rf), path);
    for (int e = 0; e < r->rows; e++) {
        double row[N_METRICS] = {0.1, 1.0, 50.0, r->clean[e], r->clean[e] - 20, r->pgd[e], r->co[e], r->seconds[e], r->ips[e]};
        check_ok(rm_runfile_append(rf, e + 1, row), "append");
    }
    if (r->status != RM_RUN_RUNNING) check_ok(rm_runfile_set_status(rf, r->status, r->reason), "status");
    check_ok(rm_runfile_close(rf), "close");
}

static void write_junk(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not an HDF5 file\n", f);
    assert_int_equal(fclose(f), 0);
}

static int make_sweep(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/regmix-report-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    for (int i = 0; i < N_RUNS; i++) write_run(&RUNS[i]);
    return 0;
}

static void remove_file(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

static int remove_sweep(void **state) {
    (void)state;
    rm_test_remove_tree(dir);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

typedef struct {
    rm_report_runs runs;
    rm_report_table *t;
} report;

static void build(report *r, const rm_report_options *o) {
    check_ok(rm_report_load_dir(dir, &r->runs), "load");
    check_ok(rm_report_build(&r->runs, o, &r->t), "build");
}

static void done(report *r) {
    rm_report_table_free(r->t);
    rm_report_runs_free(&r->runs);
}

static int run_index(const report *r, const char *file) {
    for (int i = 0; i < r->runs.n_runs; i++)
        if (!strcmp(r->runs.runs[i].file, file)) return i;
    fail_msg("no run file %s", file);
    return -1;
}

/* The row whose first axis reads reg and, unless seed is NULL, whose second reads seed. */
static int row_where(const report *r, const char *reg, const char *seed) {
    for (int i = 0; i < r->t->n_rows; i++)
        if (!strcmp(rm_report_row_value(r->t, i, 0), reg) && (!seed || !strcmp(rm_report_row_value(r->t, i, 1), seed)))
            return i;
    fail_msg("no row %s, seed %s", reg, seed ? seed : "(any)");
    return -1;
}

static int row_of(const report *r, const char *reg) { return row_where(r, reg, NULL); }

static const rm_report_cell *cell(const report *r, const char *reg, const char *metric) {
    int m = rm_report_metric_find(r->t, metric);
    if (m < 0) fail_msg("no metric %s", metric);
    return rm_report_cell_at(r->t, row_of(r, reg), m, 0);
}

/* Independent mean and sample std of hand-listed values. */
static void mean_std(const double *v, int n, double *mean, double *std) {
    double s = 0, d = 0;
    for (int i = 0; i < n; i++) s += v[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) d += (v[i] - *mean) * (v[i] - *mean);
    *std = n > 1 ? sqrt(d / (n - 1)) : NAN;
}

static void expect_cell(const rm_report_cell *c, const double *v, int n, int n_partial) {
    double mean, std;
    mean_std(v, n, &mean, &std);
    assert_int_equal(c->n, n);
    assert_int_equal(c->n_partial, n_partial);
    assert_true(fabs(c->mean - mean) < 1e-12);
    if (n > 1) assert_true(fabs(c->std - std) < 1e-12);
    else assert_true(isnan(c->std));
}

/* Text a writer produced, through a memory stream. */
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
    if (strcmp(got, want) != 0) {
        size_t i = 0;
        while (got[i] && got[i] == want[i]) i++;
        fail_msg("text differs at byte %zu:\n--- got:\n%s\n--- want:\n%s\n--- got from there: %.80s\n--- want from there: %.80s",
                 i, got, want, got + i, want + i);
    }
}

/* ---------------------------------------------------------------- tests */

static void test_run_file_names(void **state) {
    (void)state;
    assert_true(rm_report_is_run_file("reg-mse_seed-0.h5"));
    assert_false(rm_report_is_run_file("sweep.h5"));
    assert_false(rm_report_is_run_file("reg-mse_seed-0.ckpt.h5"));
    assert_false(rm_report_is_run_file("reg-mse_seed-0.ckpt.h5.tmp"));
    assert_false(rm_report_is_run_file("notes.txt"));
    assert_false(rm_report_is_run_file(".hidden.h5"));
}

static void test_load_skips_index_and_checkpoints(void **state) {
    (void)state;
    write_junk("sweep.h5");
    write_junk("reg-mse_seed-0.ckpt.h5");
    write_junk("broken.h5");
    rm_report_runs runs;
    check_ok(rm_report_load_dir(dir, &runs), "load");
    remove_file("sweep.h5");
    remove_file("reg-mse_seed-0.ckpt.h5");
    remove_file("broken.h5");
    assert_int_equal(runs.n_runs, N_RUNS);
    /* the junk index is not a run file, but the report reads it for missing runs */
    assert_int_equal(runs.n_unreadable, 2);
    assert_true(strncmp(runs.unreadable[0], "broken.h5: ", 11) == 0);
    assert_true(strncmp(runs.unreadable[1], "sweep.h5: ", 10) == 0);
    /* sorted by name, settings parsed back from the stored YAML */
    assert_string_equal(runs.runs[0].file, "reg-mse_seed-0.h5");
    assert_string_equal(runs.runs[7].file, "reg-regmix_seed-3.h5");
    assert_string_equal(runs.runs[4].cfg.reg, "regmix");
    assert_int_equal(runs.runs[5].cfg.seed, 1);
    assert_string_equal(runs.runs[5].setting[rm_config_setting_find("eval_attacks")], "clean,fgsm,pgd20");
    assert_int_equal(runs.runs[2].sum.rows, 2);
    rm_report_runs_free(&runs);
    /* a missing directory is an error naming it */
    assert_int_equal(rm_report_load_dir("/nonexistent/regmix-report", &runs), RM_ERR_IO);
    assert_non_null(strstr(rm_error_message(), "/nonexistent/regmix-report"));
    rm_error_clear();
}

static void test_roles_and_best_epoch(void **state) {
    (void)state;
    rm_report_options o;
    rm_report_options_default(&o);
    report r;
    build(&r, &o);
    const rm_report_table *t = r.t;
    assert_string_equal(t->robust, "test_pgd20");
    assert_int_equal(t->role[run_index(&r, "reg-mse_seed-0.h5")], RM_REPORT_USED);
    assert_int_equal(t->role[run_index(&r, "reg-mse_seed-2.h5")], RM_REPORT_PARTIAL);
    assert_int_equal(t->role[run_index(&r, "reg-mse_seed-3.h5")], RM_REPORT_EMPTY);
    assert_int_equal(t->role[run_index(&r, "reg-regmix_seed-3.h5")], RM_REPORT_FAILED);
    /* selected rows (0-based) by the highest pgd20, ties to the earliest */
    static const struct {
        const char *file;
        int64_t row;
    } want[] = {{"reg-mse_seed-0.h5", 1},    {"reg-mse_seed-1.h5", 1},    {"reg-mse_seed-2.h5", 1},
                {"reg-mse_seed-3.h5", -1},   {"reg-regmix_seed-0.h5", 2}, {"reg-regmix_seed-1.h5", 1},
                {"reg-regmix_seed-2.h5", 1}, {"reg-regmix_seed-3.h5", -1}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        assert_int_equal(t->run_sel[run_index(&r, want[i].file)], want[i].row);
    assert_int_equal(t->n_selected, 8);
    assert_int_equal(t->n_used, 6);
    assert_int_equal(t->n_partial, 1);
    assert_int_equal(t->n_failed, 1);
    assert_int_equal(t->n_empty, 1);
    done(&r);
}

static void test_grouping_and_cells(void **state) {
    (void)state;
    rm_report_options o;
    rm_report_options_default(&o);
    report r;
    build(&r, &o);
    const rm_report_table *t = r.t;
    /* rows: only reg varies (seed, run_id and outdir are not axes) */
    assert_int_equal(t->n_row_axes, 1);
    assert_string_equal(rm_config_setting_name(t->row_axes[0]), "reg");
    assert_int_equal(t->n_rows, 2);
    assert_string_equal(rm_report_row_value(t, 0, 0), "mse");
    assert_string_equal(rm_report_row_value(t, 1, 0), "regmix");
    /* default metrics */
    static const char *const names[] = {"clean", "fgsm", "pgd20", "gap", "epoch_s", "images_per_s", "co"};
    assert_int_equal(t->n_metrics, 7);
    for (int m = 0; m < 7; m++) assert_string_equal(t->metrics[m].name, names[m]);
    /* row counts: mse 3 averaged (1 partial) + 1 empty; regmix 3 + 1 failed */
    assert_int_equal(t->rows[0].n_used, 3);
    assert_int_equal(t->rows[0].n_partial, 1);
    assert_int_equal(t->rows[0].n_empty, 1);
    assert_int_equal(t->rows[0].n_failed, 0);
    assert_int_equal(t->rows[1].n_used, 3);
    assert_int_equal(t->rows[1].n_failed, 1);
    assert_int_equal(t->rows[0].n, 3);
    assert_int_equal(t->rows[1].n, 3);

    expect_cell(cell(&r, "mse", "clean"), (double[]){70, 72, 74}, 3, 1);
    expect_cell(cell(&r, "mse", "fgsm"), (double[]){50, 52, 54}, 3, 1);
    expect_cell(cell(&r, "mse", "pgd20"), (double[]){42, 44, 43}, 3, 1);
    expect_cell(cell(&r, "mse", "gap"), (double[]){42 - 70, 44 - 72, 43 - 74}, 3, 1);
    expect_cell(cell(&r, "mse", "epoch_s"), (double[]){10, 12, 11}, 3, 1);
    expect_cell(cell(&r, "mse", "images_per_s"), (double[]){1000, 900, 950}, 3, 1);
    /* the diverged run (clean 50, pgd 20) never enters regmix's cells */
    expect_cell(cell(&r, "regmix", "clean"), (double[]){78, 76, 74}, 3, 0);
    expect_cell(cell(&r, "regmix", "pgd20"), (double[]){47, 49, 48}, 3, 0);
    expect_cell(cell(&r, "regmix", "gap"), (double[]){47 - 78, 49 - 76, 48 - 74}, 3, 0);
    expect_cell(cell(&r, "regmix", "epoch_s"), (double[]){22, 18, 20}, 3, 0);
    /* the same numbers written out: mean and sample std (n-1) */
    assert_true(fabs(cell(&r, "mse", "clean")->mean - 72.0) < 1e-12);
    assert_true(fabs(cell(&r, "mse", "clean")->std - 2.0) < 1e-12);
    assert_true(fabs(cell(&r, "mse", "gap")->mean - (-29.0)) < 1e-12);
    assert_true(fabs(cell(&r, "mse", "gap")->std - sqrt(3.0)) < 1e-12);   /* (1+1+4)/2 */
    assert_true(fabs(cell(&r, "regmix", "gap")->std - sqrt(7.0)) < 1e-12); /* (9+1+4)/2 */

    /* CO: regmix s0 flagged at epoch 2, s1 at 3, s2 never; mse never */
    const rm_report_cell *co = cell(&r, "regmix", "co");
    assert_int_equal(co->n, 3);
    assert_true(co->mean == 2.0);
    assert_int_equal(co->first_epoch, 2);
    co = cell(&r, "mse", "co");
    assert_int_equal(co->n, 3);
    assert_true(co->mean == 0.0);
    assert_int_equal(co->first_epoch, 0);

    /* best per column: accuracies higher, time lower, gap and co none */
    assert_false(cell(&r, "mse", "clean")->best);
    assert_true(cell(&r, "regmix", "clean")->best);
    assert_true(cell(&r, "regmix", "pgd20")->best);
    assert_true(cell(&r, "mse", "epoch_s")->best);
    assert_false(cell(&r, "regmix", "epoch_s")->best);
    assert_true(cell(&r, "mse", "images_per_s")->best);
    assert_false(cell(&r, "mse", "gap")->best || cell(&r, "regmix", "gap")->best);
    assert_false(cell(&r, "mse", "co")->best || cell(&r, "regmix", "co")->best);
    /* negative gap: a hyphen in Markdown, a minus sign in LaTeX; 2.6458 shows as 2.6 */
    char *md = capture(rm_report_write_markdown, t), *tex = capture(rm_report_write_latex, t);
    assert_non_null(strstr(md, " | -29.0 ± 1.7\\* | "));
    assert_non_null(strstr(md, " |   -28.0 ± 2.6 | "));
    assert_non_null(strstr(tex, " & $-$29.0 $\\pm$ 1.7$^*$ & "));
    free(md);
    free(tex);
    done(&r);
}

static void test_epoch_rules(void **state) {
    (void)state;
    rm_report_options o;
    rm_report_options_default(&o);
    report r;
    /* last evaluated epoch: mse (75,40) (76,44) (74,43, the partial run's epoch 2) */
    check_ok(rm_report_parse_epoch("last", &o), "last");
    build(&r, &o);
    expect_cell(cell(&r, "mse", "clean"), (double[]){75, 76, 74}, 3, 1);
    expect_cell(cell(&r, "mse", "pgd20"), (double[]){40, 44, 43}, 3, 1);
    expect_cell(cell(&r, "regmix", "clean"), (double[]){78, 80, 77}, 3, 0);
    done(&r);
    /* epoch 3: the partial run has not reached it, so clean has n = 2 while epoch_s
     * (averaged over all rows) keeps n = 3 */
    check_ok(rm_report_parse_epoch("3", &o), "3");
    build(&r, &o);
    expect_cell(cell(&r, "mse", "clean"), (double[]){75, 76}, 2, 0);
    expect_cell(cell(&r, "mse", "epoch_s"), (double[]){10, 12, 11}, 3, 1);
    assert_int_equal(r.t->rows[row_of(&r, "mse")].n, 3);
    done(&r);
    /* epoch 1 */
    check_ok(rm_report_parse_epoch("1", &o), "1");
    build(&r, &o);
    expect_cell(cell(&r, "mse", "clean"), (double[]){60, 62, 61}, 3, 1);
    expect_cell(cell(&r, "regmix", "pgd20"), (double[]){35, 36, 34}, 3, 0);
    done(&r);
    assert_int_equal(rm_report_parse_epoch("0", &o), RM_ERR_ARG);
    rm_error_clear();
    assert_int_equal(rm_report_parse_epoch("best3", &o), RM_ERR_ARG);
    rm_error_clear();
}

static void test_select_and_only_failed(void **state) {
    (void)state;
    rm_report_options o;
    rm_report_options_default(&o);
    report r;
    check_ok(rm_report_add_select(&o, "reg=regmix"), "select");
    build(&r, &o);
    assert_int_equal(r.t->n_selected, 4);
    assert_int_equal(r.t->n_rows, 1);
    assert_int_equal(r.t->n_row_axes, 0); /* nothing varies among the selected runs but seed */
    assert_int_equal(r.t->role[run_index(&r, "reg-mse_seed-0.h5")], RM_REPORT_UNSELECTED);
    const rm_report_cell *c = rm_report_cell_at(r.t, 0, rm_report_metric_find(r.t, "clean"), 0);
    expect_cell(c, (double[]){78, 76, 74}, 3, 0);
    assert_false(c->best); /* a single row has no best */
    assert_string_equal(r.t->selection, "reg=regmix");
    done(&r);

    /* seeds 3 only: mse's is empty ("—"), regmix's diverged ("failed") */
    rm_report_options_default(&o);
    check_ok(rm_report_add_select(&o, "seed=3"), "select");
    check_ok(rm_report_add_metrics(&o, "clean"), "metric");
    build(&r, &o);
    assert_int_equal(r.t->n_rows, 2);
    assert_int_equal(r.t->n_used, 0);
    char *md = capture(rm_report_write_markdown, r.t);
    assert_non_null(strstr(md, "\n| mse    | 0 |      — |      0 |\n"));
    assert_non_null(strstr(md, "\n| regmix | 0 | failed |      1 |\n"));
    free(md);
    done(&r);

    /* two values of one setting: either; numbers compared as values (1/1 is 1) */
    rm_report_options_default(&o);
    check_ok(rm_report_add_select(&o, "seed=0"), "select");
    check_ok(rm_report_add_select(&o, "seed=2"), "select");
    check_ok(rm_report_add_select(&o, "alpha=1/1"), "select");
    build(&r, &o);
    assert_int_equal(r.t->n_selected, 4);
    expect_cell(cell(&r, "mse", "clean"), (double[]){70, 74}, 2, 1);
    done(&r);
    assert_int_equal(rm_report_add_select(&o, "lamda=1"), RM_ERR_ARG);
    assert_non_null(strstr(rm_error_message(), "lambda"));
    rm_error_clear();
    assert_int_equal(rm_report_add_select(&o, "seed"), RM_ERR_ARG);
    rm_error_clear();
}

static void test_column_axes(void **state) {
    (void)state;
    rm_report_options o;
    rm_report_options_default(&o);
    check_ok(rm_report_parse_axes("none", o.rows, &o.n_rows), "rows");
    check_ok(rm_report_parse_axes("reg", o.cols, &o.n_cols), "cols");
    check_ok(rm_report_add_metrics(&o, "pgd20,test_clean"), "metrics");
    report r;
    build(&r, &o);
    const rm_report_table *t = r.t;
    assert_int_equal(t->n_rows, 1);
    assert_int_equal(t->n_colkeys, 2);
    assert_string_equal(rm_report_colkey_value(t, 0, 0), "mse");
    assert_string_equal(rm_report_colkey_value(t, 1, 0), "regmix");
    assert_string_equal(t->metrics[0].name, "pgd20");
    assert_string_equal(t->metrics[1].name, "clean");
    expect_cell(rm_report_cell_at(t, 0, 0, 0), (double[]){42, 44, 43}, 3, 1);
    expect_cell(rm_report_cell_at(t, 0, 0, 1), (double[]){47, 49, 48}, 3, 0);
    expect_cell(rm_report_cell_at(t, 0, 1, 1), (double[]){78, 76, 74}, 3, 0);
    char *csv = capture(rm_report_write_csv, t);
    expect_text(csv, "group,n,n_partial,n_failed,reg=mse:pgd20_mean,reg=mse:pgd20_std,reg=mse:pgd20_n,"
                     "reg=regmix:pgd20_mean,reg=regmix:pgd20_std,reg=regmix:pgd20_n,reg=mse:clean_mean,"
                     "reg=mse:clean_std,reg=mse:clean_n,reg=regmix:clean_mean,reg=regmix:clean_std,reg=regmix:clean_n\n"
                     "all,3,1,1,43,1,3,48,1,3,72,2,3,76,2,3\n");
    free(csv);
    done(&r);
}

/* --best-within: rows reg x seed, pgd20 at each run's best epoch (the table at the top):
 * mse 42 44 43 (seed 3: no row), regmix 47 49 48 (seed 3 diverged). Over the whole
 * column only regmix seed 1 (49) is best; within each reg, mse seed 1 (44) too. */
static void test_best_within(void **state) {
    (void)state;
    static const char *const seeds[] = {"0", "1", "2"};
    static const int whole[2][3] = {{0, 0, 0}, {0, 1, 0}}, within[2][3] = {{0, 1, 0}, {0, 1, 0}};
    for (int pass = 0; pass < 2; pass++) {
        rm_report_options o;
        rm_report_options_default(&o);
        check_ok(rm_report_parse_axes("reg,seed", o.rows, &o.n_rows), "rows");
        check_ok(rm_report_add_metrics(&o, "pgd20"), "metrics");
        if (pass) check_ok(rm_report_parse_axes("reg", o.best_within, &o.n_best_within), "best-within");
        report r;
        build(&r, &o);
        for (int g = 0; g < 2; g++)
            for (int s = 0; s < 3; s++) {
                const rm_report_cell *c = rm_report_cell_at(r.t, row_where(&r, g ? "regmix" : "mse", seeds[s]), 0, 0);
                assert_int_equal(c->best, pass ? within[g][s] : whole[g][s]);
            }
        char *md = capture(rm_report_write_markdown, r.t);
        const char *tail = "bold = best of a column among the rows of the same reg.";
        assert_true((strstr(md, tail) != NULL) == pass);
        free(md);
        done(&r);
    }
    /* a setting that is not a row axis */
    rm_report_options o;
    rm_report_options_default(&o);
    check_ok(rm_report_parse_axes("reg,seed", o.rows, &o.n_rows), "rows");
    check_ok(rm_report_parse_axes("alpha", o.best_within, &o.n_best_within), "best-within");
    rm_report_runs runs;
    rm_report_table *t;
    check_ok(rm_report_load_dir(dir, &runs), "load");
    assert_int_equal(rm_report_build(&runs, &o, &t), RM_ERR_ARG);
    assert_non_null(strstr(rm_error_message(), "--best-within: setting alpha is not a row axis (rows: reg, seed)"));
    rm_error_clear();
    rm_report_runs_free(&runs);
}

static void test_errors(void **state) {
    (void)state;
    rm_report_options o;
    rm_report_options_default(&o);
    rm_report_runs runs;
    rm_report_table *t;
    check_ok(rm_report_load_dir(dir, &runs), "load");
    check_ok(rm_report_add_metrics(&o, "pgd50"), "metric");
    assert_int_equal(rm_report_build(&runs, &o, &t), RM_ERR_ARG);
    assert_non_null(strstr(rm_error_message(), "pgd50"));
    assert_non_null(strstr(rm_error_message(), "available: lr, loss, train_acc, clean, fgsm, pgd20"));
    rm_error_clear();
    rm_report_options_default(&o);
    check_ok(rm_report_add_metrics(&o, "clean,test_clean"), "metric");
    assert_int_equal(rm_report_build(&runs, &o, &t), RM_ERR_ARG);
    rm_error_clear();
    rm_report_options_default(&o);
    check_ok(rm_report_parse_axes("reg", o.rows, &o.n_rows), "rows");
    check_ok(rm_report_parse_axes("reg", o.cols, &o.n_cols), "cols");
    assert_int_equal(rm_report_build(&runs, &o, &t), RM_ERR_ARG);
    assert_non_null(strstr(rm_error_message(), "both a row and a column axis"));
    rm_error_clear();
    rm_report_runs_free(&runs);
    int axes[RM_REPORT_MAX_AXES], n;
    assert_int_equal(rm_report_parse_axes("reg,aplha", axes, &n), RM_ERR_ARG);
    assert_non_null(strstr(rm_error_message(), "alpha"));
    rm_error_clear();
    assert_int_equal(rm_report_parse_axes("reg,reg", axes, &n), RM_ERR_ARG);
    rm_error_clear();
    check_ok(rm_report_parse_axes("alpha,beta", axes, &n), "axes");
    assert_int_equal(n, 2);
    assert_int_equal(axes[1], rm_config_setting_find("beta"));
}

/* ---------------------------------------------------------------- exact text */

static void small_table(report *r) {
    rm_report_options o;
    rm_report_options_default(&o);
    check_ok(rm_report_add_metrics(&o, "clean,pgd20"), "metrics");
    check_ok(rm_report_add_metrics(&o, "epoch_s,co"), "metrics");
    build(r, &o);
}

static void test_markdown_exact(void **state) {
    (void)state;
    report r;
    small_table(&r);
    char *md = capture(rm_report_write_markdown, r.t);
    char want[4096];
    snprintf(want, sizeof want,
             "Table: %s: 8 runs: 6 averaged (1 in progress), 1 failed, 1 without epochs; values at each run's best "
             "epoch by test_pgd20 (ties: the earliest); accuracies in %%; epoch_s = mean epoch time (s); co = runs "
             "flagged for catastrophic overfitting / runs evaluated (first epoch); cells: mean ± sample std (n-1) over "
             "the runs of a row, n = runs averaged, bold = best of a column.\n"
             "\n"
             "| reg    | n |          clean |          pgd20 |            epoch_s |         co | failed |\n"
             "|:-------|--:|---------------:|---------------:|-------------------:|-----------:|-------:|\n"
             "| mse    | 3 |   72.0 ± 2.0\\* |   43.0 ± 1.0\\* | **11.00 ± 1.00**\\* |      0/3\\* |      0 |\n"
             "| regmix | 3 | **76.0 ± 2.0** | **48.0 ± 1.0** |       20.00 ± 2.00 | 2/3 (ep 2) |      1 |\n"
             "\n"
             "- \\* in progress: reg-mse_seed-2 (running, epoch 2/3)\n"
             "- failed: reg-regmix_seed-3 (diverged, epoch 1/3: loss is NaN)\n"
             "- no epoch yet: reg-mse_seed-3 (running)\n",
             dir);
    expect_text(md, want);
    free(md);
    done(&r);
}

static void test_csv_exact(void **state) {
    (void)state;
    report r;
    small_table(&r);
    char *csv = capture(rm_report_write_csv, r.t);
    expect_text(csv, "reg,n,n_partial,n_failed,clean_mean,clean_std,clean_n,pgd20_mean,pgd20_std,pgd20_n,"
                     "epoch_s_mean,epoch_s_std,epoch_s_n,co_runs,co_n,co_first_epoch\n"
                     "mse,3,1,0,72,2,3,43,1,3,11,1,3,0,3,\n"
                     "regmix,3,0,1,76,2,3,48,1,3,20,2,3,2,3,2\n");
    free(csv);
    done(&r);
}

static void test_latex_exact(void **state) {
    (void)state;
    report r;
    small_table(&r);
    char *tex = capture(rm_report_write_latex, r.t);
    char want[4096];
    snprintf(want, sizeof want,
             "\\begin{table}[htbp]\n"
             "\\centering\n"
             "\\caption{%s: 8 runs: 6 averaged (1 in progress), 1 failed, 1 without epochs; values at each run's best "
             "epoch by test\\_pgd20 (ties: the earliest); accuracies in \\%%; epoch\\_s = mean epoch time (s); co = runs "
             "flagged for catastrophic overfitting / runs evaluated (first epoch); cells: mean $\\pm$ sample std (n-1) "
             "over the runs of a row, n = runs averaged, bold = best of a column.}\n"
             "\\begin{tabular}{lrrrrrr}\n"
             "\\toprule\n"
             "reg & n & clean & pgd20 & epoch\\_s & co & failed \\\\\n"
             "\\midrule\n"
             "mse & 3 & 72.0 $\\pm$ 2.0$^*$ & 43.0 $\\pm$ 1.0$^*$ & \\textbf{11.00 $\\pm$ 1.00}$^*$ & 0/3$^*$ & 0 \\\\\n"
             "regmix & 3 & \\textbf{76.0 $\\pm$ 2.0} & \\textbf{48.0 $\\pm$ 1.0} & 20.00 $\\pm$ 2.00 & 2/3 (ep 2) & 1 \\\\\n"
             "\\bottomrule\n"
             "\\end{tabular}\n"
             "\\par\\smallskip\\footnotesize\n"
             "$^*$ in progress: reg-mse\\_seed-2 (running, epoch 2/3)\\par\n"
             "failed: reg-regmix\\_seed-3 (diverged, epoch 1/3: loss is NaN)\\par\n"
             "no epoch yet: reg-mse\\_seed-3 (running)\\par\n"
             "\\end{table}\n",
             dir);
    expect_text(tex, want);
    free(tex);
    done(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_file_names),
        cmocka_unit_test(test_load_skips_index_and_checkpoints),
        cmocka_unit_test(test_roles_and_best_epoch),
        cmocka_unit_test(test_best_within),
        cmocka_unit_test(test_grouping_and_cells),
        cmocka_unit_test(test_epoch_rules),
        cmocka_unit_test(test_select_and_only_failed),
        cmocka_unit_test(test_column_axes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_markdown_exact),
        cmocka_unit_test(test_csv_exact),
        cmocka_unit_test(test_latex_exact),
    };
    return cmocka_run_group_tests(tests, make_sweep, remove_sweep);
}
