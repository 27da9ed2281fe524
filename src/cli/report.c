/* regmix report DIR: ablation tables (Markdown on stdout, optional CSV and LaTeX files)
 * and gnuplot plots from a sweep directory of run files. The work is in src/report/;
 * this file reads the options and reports errors. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "regmix/report.h"

static int report_usage(FILE *out) {
    fprintf(out,
            "usage: regmix report DIR [options]\n"
            "tables and plots of the run files (*.h5) of a sweep directory\n"
            "  --rows AXES      settings that make the rows, comma-separated ('none': one row);\n"
            "                   default: the settings that differ between runs, except seed\n"
            "  --cols AXES      settings that make column groups (default: the metrics alone)\n"
            "  --metric M[,M]   metrics, repeatable: clean fgsm pgd20 cw20 ... gap epoch_s\n"
            "                   images_per_s co, or any run-file column (default: every test\n"
            "                   accuracy, gap, epoch_s, images_per_s, co); final_clean,\n"
            "                   final_pgd20 ...: the final evaluation (with --epoch last)\n"
            "  --epoch RULE     best (default: each run's epoch with the highest PGD accuracy),\n"
            "                   last (last evaluated epoch), or an epoch number\n"
            "  --select S=V ... keep the runs whose setting S has value V (repeatable; the same\n"
            "                   setting twice keeps either value)\n"
            "  --best-within AXES  bold the best of a column among the rows that share these row\n"
            "                   settings (e.g. eps: accuracies at different budgets do not compete)\n"
            "  --csv FILE       also write the table as CSV (mean, std, n per metric)\n"
            "  --latex FILE     also write the table as LaTeX (booktabs)\n"
            "  --plot DIR       write plot data, gnuplot scripts and PNG/SVG images into DIR\n"
            "cells: mean ± sample std (n-1) over the runs of a row; failed runs are counted, not averaged\n");
    return out == stderr ? 2 : 0;
}

static int fail(rm_status st) {
    fprintf(stderr, "regmix report: %s: %s\n", rm_status_name(st), rm_error_message());
    return 1;
}

/* "--opt value" or "--opt=value": the value, advancing *i; NULL if opt does not match. */
static const char *option(int argc, char **argv, int *i, const char *opt, int *missing) {
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

static int write_file(const char *path, const rm_report_table *t,
                      rm_status (*writer)(const rm_report_table *, FILE *)) {
    FILE *f = fopen(path, "w");
    if (!f) return fail(rm_fail(RM_ERR_IO, "fopen(%s): %s", path, strerror(errno)));
    rm_status st = writer(t, f);
    if (fclose(f) != 0 && st == RM_OK) st = rm_fail(RM_ERR_IO, "fclose(%s): %s", path, strerror(errno));
    if (st != RM_OK) return fail(st);
    fprintf(stderr, "regmix report: wrote %s\n", path);
    return 0;
}

static int plots(const rm_report_table *t, const char *dir) {
    char gnuplot[1024];
    int have = rm_report_find_gnuplot(gnuplot, sizeof gnuplot);
    if (!have)
        fprintf(stderr, "regmix report: warning: gnuplot not found (Debian package gnuplot-nox); "
                        "writing plot data and scripts to %s without images\n", dir);
    rm_report_plot_result res;
    rm_status st = rm_report_write_plots(t, dir, have ? gnuplot : NULL, &res);
    if (st != RM_OK) return fail(st);
    if (have && !res.png_terminal[0]) fprintf(stderr, "regmix report: warning: %s has no png terminal\n", gnuplot);
    for (int i = 0; i < res.n_files; i++) fprintf(stderr, "regmix report: wrote %s\n", res.files[i]);
    if (res.n_files == 0) fprintf(stderr, "regmix report: no plot applies (no run with metric rows)\n");
    return 0;
}

int cmd_report(int argc, char **argv) {
    rm_report_options opt;
    rm_report_options_default(&opt);
    const char *dir = NULL, *csv = NULL, *latex = NULL, *plot_dir = NULL, *v;
    rm_status st = RM_OK;
    for (int i = 1; i < argc && st == RM_OK; i++) {
        int missing = 0;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return report_usage(stdout);
        if ((v = option(argc, argv, &i, "--rows", &missing))) st = rm_report_parse_axes(v, opt.rows, &opt.n_rows);
        else if ((v = option(argc, argv, &i, "--cols", &missing))) st = rm_report_parse_axes(v, opt.cols, &opt.n_cols);
        else if ((v = option(argc, argv, &i, "--metric", &missing))) st = rm_report_add_metrics(&opt, v);
        else if ((v = option(argc, argv, &i, "--epoch", &missing))) st = rm_report_parse_epoch(v, &opt);
        else if ((v = option(argc, argv, &i, "--best-within", &missing)))
            st = rm_report_parse_axes(v, opt.best_within, &opt.n_best_within);
        else if ((v = option(argc, argv, &i, "--csv", &missing))) csv = v;
        else if ((v = option(argc, argv, &i, "--latex", &missing))) latex = v;
        else if ((v = option(argc, argv, &i, "--plot", &missing))) plot_dir = v;
        else if ((v = option(argc, argv, &i, "--select", &missing))) {
            st = rm_report_add_select(&opt, v);
            while (st == RM_OK && i + 1 < argc && argv[i + 1][0] != '-' && strchr(argv[i + 1], '='))
                st = rm_report_add_select(&opt, argv[++i]); /* --select a=1 b=2 */
        } else if (missing) {
            fprintf(stderr, "regmix report: %s needs a value\n", argv[i]);
            return report_usage(stderr);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "regmix report: unknown option '%s'\n", argv[i]);
            return report_usage(stderr);
        } else if (dir) {
            fprintf(stderr, "regmix report: one directory at a time ('%s' and '%s')\n", dir, argv[i]);
            return report_usage(stderr);
        } else {
            dir = argv[i];
        }
    }
    if (st != RM_OK) {
        fprintf(stderr, "regmix report: %s\n", rm_error_message());
        return 2;
    }
    if (!dir) return report_usage(stderr);

    rm_report_runs runs;
    if ((st = rm_report_load_dir(dir, &runs)) != RM_OK) return fail(st);
    for (int i = 0; i < runs.n_unreadable; i++)
        fprintf(stderr, "regmix report: warning: skipping unreadable run file %s\n", runs.unreadable[i]);
    for (int i = 0; i < runs.n_missing; i++)
        fprintf(stderr, "regmix report: warning: no run file for %s\n", runs.missing[i]);
    if (runs.n_runs == 0) {
        fprintf(stderr, "regmix report: %s holds no readable run file (*.h5 other than sweep.h5 and *.ckpt.h5)\n", dir);
        rm_report_runs_free(&runs);
        return 1;
    }
    rm_report_table *t;
    if ((st = rm_report_build(&runs, &opt, &t)) != RM_OK) {
        rm_report_runs_free(&runs);
        return fail(st);
    }
    int rc = 0;
    if ((st = rm_report_write_markdown(t, stdout)) != RM_OK) rc = fail(st);
    if (rc == 0 && csv) rc = write_file(csv, t, rm_report_write_csv);
    if (rc == 0 && latex) rc = write_file(latex, t, rm_report_write_latex);
    if (rc == 0 && plot_dir) rc = plots(t, plot_dir);
    rm_report_table_free(t);
    rm_report_runs_free(&runs);
    return rc;
}
