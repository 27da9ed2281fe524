/* regmix report plots and command line: a 2 x 2 grid of two numeric axes (alpha x beta,
 * one combination missing) x 2 seeds, evaluated at the training budget 8/255 and at
 * 16/255, with a final evaluation at the fixed budgets 0.1 and 0.2 and one run flagged
 * for catastrophic overfitting, written through the run-file writer with hand-chosen
 * accuracies. Checks the plot data files against the hand values, the images (PNG signature, SVG text) when
 * gnuplot is installed, the data-and-scripts-only mode without gnuplot, a gnuplot that
 * fails, and `regmix report` itself (exit codes, stdout, --csv). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"

#include "regmix/report.h"

static char dir[64];   /* the sweep */
static char plots[96]; /* dir/plots */

static void check_ok(rm_status st, const char *what) {
    if (st != RM_OK) {
        char m[1100];
        snprintf(m, sizeof m, "%s", rm_error_message());
        rm_error_clear();
        fail_msg("%s: %s: %s", what, rm_status_name(st), m);
    }
}

/* pgd20 at epoch 2 = 40 + 10 ai + 2 bi + 2 seed (epoch 1: 5 less, so epoch 2 is the best);
 * clean = pgd20 + 30; pgd20 at 16/255 = pgd20 - 20. Per cell the seeds give b and b+2, so
 * the mean pgd20 is 41 (a 0.5, b 0.25), 43 (0.5, 1), 51 (2, 0.25); (2, 1) is not run.
 * Final evaluation (last row only): pgd20 at 0.1 = pgd20 - 10, at 0.2 = pgd20 - 25.
 * co_flag: 1 at epoch 2 for alpha 2, beta 0.25, seed 1 only. */
static double pgd_at(int ai, int bi, int seed, int epoch) { return 40 + 10 * ai + 2 * bi + 2 * seed - (epoch == 1 ? 5 : 0); }

static void write_run(int ai, int bi, int seed) {
    static const char *const alphas[] = {"0.5", "2"}, *const betas[] = {"0.25", "1"};
    rm_config cfg;
    rm_config_defaults(&cfg);
    check_ok(rm_config_set(&cfg, "alpha", alphas[ai], "test"), "alpha");
    check_ok(rm_config_set(&cfg, "beta", betas[bi], "test"), "beta");
    check_ok(rm_config_set(&cfg, "eps", "8/255", "test"), "eps");
    check_ok(rm_config_set(&cfg, "eval_attacks", "clean,pgd20,pgd20@16/255", "test"), "eval");
    cfg.seed = (uint64_t)seed;
    cfg.epochs = 2;
    /* metric columns named the way the trainer names them: test_<attack name> */
    char names[3][48];
    rm_metric_spec specs[7];
    for (int i = 0; i < 3; i++) {
        snprintf(names[i], sizeof names[i], "test_%s", cfg.eval[i].name);
        specs[i] = (rm_metric_spec){names[i], "%", "accuracy"};
    }
    assert_string_equal(names[2], "test_pgd20_eps0.06275");
    specs[3] = (rm_metric_spec){"co_flag", "1", "CO"};
    specs[4] = (rm_metric_spec){"epoch_seconds", "s", "time"};
    specs[5] = (rm_metric_spec){"final_pgd20_eps0.1", "%", "final accuracy"};
    specs[6] = (rm_metric_spec){"final_pgd20_eps0.2", "%", "final accuracy"};
    char path[256];
    snprintf(path, sizeof path, "%s/alpha-%s_beta-%s_seed-%d.h5", dir, alphas[ai], betas[bi], seed);
    rm_run_info info = {.mpi_rank = 0, .mpi_size = 1, .threads = 1};
    rm_runfile *rf;
    check_ok(rm_runfile_create(path, &cfg, &info, specs, 7, &rf), path);
    for (int e = 1; e <= 2; e++) {
        double p = pgd_at(ai, bi, seed, e);
        const int co = e == 2 && ai == 1 && bi == 0 && seed == 1;
        double row[7] = {p + 30, p, p - 20, co, 3.0, e == 2 ? p - 10 : NAN, e == 2 ? p - 25 : NAN};
        check_ok(rm_runfile_append(rf, e, row), "append");
    }
    check_ok(rm_runfile_set_status(rf, RM_RUN_COMPLETED, ""), "status");
    check_ok(rm_runfile_close(rf), "close");
}

static int make_sweep(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/regmix-reportplot-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(plots, sizeof plots, "%s/plots", dir);
    for (int ai = 0; ai < 2; ai++)
        for (int bi = 0; bi < 2; bi++)
            if (!(ai == 1 && bi == 1))
                for (int s = 0; s < 2; s++) write_run(ai, bi, s);
    return 0;
}

static int remove_sweep(void **state) {
    (void)state;
    rm_test_remove_tree(dir);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

static char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    char *buf = NULL;
    size_t n = 0, cap = 0, got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (n + got + 1 > cap) {
            cap = 2 * (n + got + 1);
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        memcpy(buf + n, chunk, got);
        n += got;
    }
    fclose(f);
    if (!buf) buf = calloc(1, 1);
    buf[n] = '\0';
    if (size) *size = n;
    return buf;
}

static int exists(const char *name) {
    char path[256];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", plots, name);
    return stat(path, &sb) == 0 && sb.st_size > 0;
}

/* The data lines of a .dat file (without '#' lines). */
static char *data_lines(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", plots, name);
    char *text = slurp(path, NULL), *out = calloc(strlen(text) + 1, 1), *o = out;
    for (char *line = text; *line;) {
        size_t n = strcspn(line, "\n");
        if (line[0] != '#') {
            memcpy(o, line, n);
            o += n;
            *o++ = '\n';
        }
        line += n + (line[n] == '\n');
    }
    free(text);
    return out;
}

typedef struct {
    rm_report_runs runs;
    rm_report_table *t;
} report;

static void build(report *r) {
    rm_report_options o;
    rm_report_options_default(&o);
    check_ok(rm_report_load_dir(dir, &r->runs), "load");
    check_ok(rm_report_build(&r->runs, &o, &r->t), "build");
}

static void done(report *r) {
    rm_report_table_free(r->t);
    rm_report_runs_free(&r->runs);
}

/* ---------------------------------------------------------------- tests */

static void test_plot_data(void **state) {
    (void)state;
    report r;
    build(&r);
    /* rows: alpha and beta vary (seed does not make rows), both numeric */
    assert_int_equal(r.t->n_row_axes, 2);
    assert_string_equal(r.t->robust, "test_pgd20"); /* at the run's budget, not the _eps one */
    rm_test_remove_tree_now(plots); /* a fresh folder, REGMIX_TEST_KEEP or not */
    rm_report_plot_result res;
    check_ok(rm_report_write_plots(r.t, plots, NULL, &res), "plots without gnuplot");
    assert_int_equal(res.ran_gnuplot, 0);
    /* heat map of pgd20 over alpha (x) and beta (y); (2, 1) has no run */
    char *heat = data_lines("heatmap_pgd20.dat");
    assert_string_equal(heat, "0 0 41 2\n0 1 43 2\n\n1 0 51 2\n1 1 NaN 0\n\n");
    free(heat);
    /* curves per group: epoch, clean mean/std/n, pgd20 mean/std/n; seeds b and b+2 give
     * std sqrt(2) = 1.41421; first group (0.5, 0.25): epoch 1 pgd 35 and 37, epoch 2 40, 42 */
    char *curves = data_lines("accuracy_vs_epoch.dat");
    assert_non_null(strstr(curves, "1 66 1.41421 2 36 1.41421 2\n2 71 1.41421 2 41 1.41421 2\n\n\n"));
    assert_non_null(strstr(curves, "2 81 1.41421 2 51 1.41421 2\n"));
    free(curves);
    /* robust accuracy against the budget: 8/255 (the runs' eps) and 16/255 (the _eps
     * column, pgd20 - 20), per group at the best epoch */
    char *eps = data_lines("robust_vs_eps.dat");
    double x1, e1, m1, s1, x2, e2, m2, s2;
    int n1, n2;
    assert_int_equal(sscanf(eps, "%lf %lf %lf %lf %d %lf %lf %lf %lf %d", &x1, &e1, &m1, &s1, &n1, &x2, &e2, &m2, &s2, &n2), 10);
    assert_true(fabs(x1 - 8.0) < 1e-9 && fabs(e1 - 8.0 / 255) < 1e-6 && m1 == 41 && n1 == 2);
    assert_true(fabs(x2 - 16.0) < 0.01 && fabs(e2 - 16.0 / 255) < 1e-4 && m2 == 21 && n2 == 2);
    assert_true(fabs(s1 - sqrt(2.0)) < 1e-5 && fabs(s2 - sqrt(2.0)) < 1e-5);
    free(eps);
    /* the default table shows co: one bar per group, flagged/evaluated and first epoch */
    char *co = data_lines("co_flags.dat");
    assert_string_equal(co, "0 0 0 2 0 \"alpha=0.5,beta=0.25\"\n1 0 0 2 0 \"alpha=0.5,beta=1\"\n"
                            "2 50 1 2 2 \"alpha=2,beta=0.25\"\n");
    free(co);
    /* scripts are there to be run later; no image without gnuplot */
    assert_true(exists("accuracy_vs_epoch.gp") && exists("heatmap_pgd20.gp") && exists("robust_vs_eps.gp") &&
                exists("co_flags.gp"));
    assert_false(exists("accuracy_vs_epoch.png"));
    done(&r);
}

static void test_plot_images(void **state) {
    (void)state;
    char gnuplot[512];
    if (!rm_report_find_gnuplot(gnuplot, sizeof gnuplot)) {
        printf("gnuplot not installed: image test skipped\n");
        skip();
    }
    report r;
    build(&r);
    rm_test_remove_tree_now(plots); /* a fresh folder, REGMIX_TEST_KEEP or not */
    rm_report_plot_result res;
    check_ok(rm_report_write_plots(r.t, plots, gnuplot, &res), "plots");
    assert_int_equal(res.ran_gnuplot, 1);
    static const char *const names[] = {"accuracy_vs_epoch", "heatmap_pgd20", "robust_vs_eps", "co_flags"};
    for (int i = 0; i < 4; i++) {
        char path[256];
        size_t size;
        if (res.png_terminal[0]) {
            snprintf(path, sizeof path, "%s/%s.png", plots, names[i]);
            char *png = slurp(path, &size);
            assert_true(size > 8);
            assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
            free(png);
        }
        if (res.svg) {
            snprintf(path, sizeof path, "%s/%s.svg", plots, names[i]);
            char *svg = slurp(path, &size);
            assert_true(size > 100);
            assert_non_null(strstr(svg, "<svg"));
            free(svg);
        }
    }
    assert_int_equal(res.n_files, 4 * (2 + (res.png_terminal[0] != 0) + res.svg));
    done(&r);
}

/* A table of final-evaluation columns at fixed budgets (--epoch last --metric
 * final_pgd20_eps0.1,final_pgd20_eps0.2): the eps plot follows the listed family, not
 * the per-epoch robust column, and its x axis is in pixel units (0.1 is not k/255). */
static void test_plot_final_family(void **state) {
    (void)state;
    report r;
    rm_report_options o;
    rm_report_options_default(&o);
    check_ok(rm_report_parse_epoch("last", &o), "epoch");
    check_ok(rm_report_add_metrics(&o, "final_pgd20_eps0.1,final_pgd20_eps0.2"), "metrics");
    check_ok(rm_report_load_dir(dir, &r.runs), "load");
    check_ok(rm_report_build(&r.runs, &o, &r.t), "build");
    rm_test_remove_tree_now(plots); /* a fresh folder, REGMIX_TEST_KEEP or not */
    rm_report_plot_result res;
    check_ok(rm_report_write_plots(r.t, plots, NULL, &res), "plots");
    /* first group (0.5, 0.25): mean pgd20 41 at the last epoch: 31 at 0.1, 16 at 0.2 */
    char *eps = data_lines("robust_vs_eps.dat");
    double x1, e1, m1, s1, x2, e2, m2, s2;
    int n1, n2;
    assert_int_equal(sscanf(eps, "%lf %lf %lf %lf %d %lf %lf %lf %lf %d", &x1, &e1, &m1, &s1, &n1, &x2, &e2, &m2, &s2, &n2), 10);
    assert_true(e1 == 0.1 && m1 == 31 && n1 == 2 && e2 == 0.2 && m2 == 16 && n2 == 2);
    free(eps);
    char path[256];
    snprintf(path, sizeof path, "%s/robust_vs_eps.gp", plots);
    char *gp = slurp(path, NULL);
    assert_non_null(strstr(gp, "set xlabel 'test eps'\n"));
    assert_non_null(strstr(gp, "set ylabel 'final_pgd20 accuracy (%)'\n"));
    assert_non_null(strstr(gp, "index 0 using 2:3 with linespoints"));
    assert_non_null(strstr(gp, "index 0 using 2:3:4 with yerrorbars"));
    free(gp);
    /* co is not in this table: no bars */
    assert_false(exists("co_flags.dat"));
    done(&r);
}

static void test_gnuplot_failure_is_an_error(void **state) {
    (void)state;
    report r;
    build(&r);
    rm_report_plot_result res;
    assert_int_equal(rm_report_write_plots(r.t, plots, "/bin/false", &res), RM_ERR_IO);
    assert_non_null(strstr(rm_error_message(), "exited with status 1"));
    rm_error_clear();
    /* REGMIX_GNUPLOT="" means "no gnuplot" */
    char buf[256];
    setenv("REGMIX_GNUPLOT", "", 1);
    assert_int_equal(rm_report_find_gnuplot(buf, sizeof buf), 0);
    unsetenv("REGMIX_GNUPLOT");
    done(&r);
}

/* Runs the binary through the shell; returns the exit status, stdout in *out. */
static int run_cli(const char *args, char **out) {
    char cmd[1024], path[128];
    snprintf(path, sizeof path, "%s/stdout.txt", dir);
    snprintf(cmd, sizeof cmd, "%s report %s >%s 2>/dev/null", REGMIX_BINARY, args, path);
    int st = system(cmd);
    if (out) *out = slurp(path, NULL);
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_command_line(void **state) {
    (void)state;
    char args[512], *out;
    snprintf(args, sizeof args, "%s --metric pgd20,clean --csv %s/t.csv --latex %s/t.tex", dir, dir, dir);
    assert_int_equal(run_cli(args, &out), 0);
    assert_true(strncmp(out, "Table: ", 7) == 0);
    assert_non_null(strstr(out, "| alpha | beta | n |          pgd20 |          clean |\n"));
    /* best pgd20 is alpha 2 beta 0.25: 51 and 81 */
    assert_non_null(strstr(out, "| 2     | 0.25 | 2 | **51.0 ± 1.4** | **81.0 ± 1.4** |\n"));
    free(out);
    char path[128];
    snprintf(path, sizeof path, "%s/t.csv", dir);
    char *csv = slurp(path, NULL);
    static const char head[] = "alpha,beta,n,n_partial,n_failed,pgd20_mean,pgd20_std,pgd20_n,clean_mean";
    assert_true(strncmp(csv, head, strlen(head)) == 0);
    assert_non_null(strstr(csv, "\n0.5,1,2,0,0,43,1.4142135623730951,2,73,1.4142135623730951,2\n"));
    free(csv);
    snprintf(path, sizeof path, "%s/t.tex", dir);
    char *tex = slurp(path, NULL);
    assert_non_null(strstr(tex, "\\toprule\nalpha & beta & n & pgd20 & clean \\\\\n\\midrule\n"));
    free(tex);
    /* --select, several at once; --rows */
    snprintf(args, sizeof args, "%s --rows beta --select alpha=1/2 seed=0 --metric clean", dir);
    assert_int_equal(run_cli(args, &out), 0);
    /* alpha 0.5, seed 0: clean 70 (beta 0.25) and 72 (beta 1); n = 1, so no std */
    assert_non_null(strstr(out, "| 0.25 | 1 |     70.0 ± — |\n| 1    | 1 | **72.0 ± —** |\n"));
    free(out);
    /* errors: usage 2, bad value 2, missing directory 1 */
    assert_int_equal(run_cli("", NULL), 2);
    snprintf(args, sizeof args, "%s --epoch soon", dir);
    assert_int_equal(run_cli(args, NULL), 2);
    snprintf(args, sizeof args, "%s --frobnicate", dir);
    assert_int_equal(run_cli(args, NULL), 2);
    snprintf(args, sizeof args, "%s/absent", dir);
    assert_int_equal(run_cli(args, NULL), 1);
    snprintf(args, sizeof args, "%s --metric pgd50", dir);
    assert_int_equal(run_cli(args, NULL), 1);
    /* plots without gnuplot: tables and a warning, exit 0 */
    snprintf(args, sizeof args, "%s --plot %s/cli-plots", dir, dir);
    setenv("REGMIX_GNUPLOT", "", 1);
    assert_int_equal(run_cli(args, NULL), 0);
    unsetenv("REGMIX_GNUPLOT");
    snprintf(path, sizeof path, "%s/cli-plots/accuracy_vs_epoch.dat", dir);
    assert_int_equal(access(path, F_OK), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plot_data),
        cmocka_unit_test(test_plot_images),
        cmocka_unit_test(test_plot_final_family),
        cmocka_unit_test(test_gnuplot_failure_is_an_error),
        cmocka_unit_test(test_command_line),
    };
    return cmocka_run_group_tests(tests, make_sweep, remove_sweep);
}
