/* regmix report: ablation tables and gnuplot plots from a sweep directory.
 *
 * `regmix report results/SWEEP` reads every run file of the directory (*.h5 except
 * sweep.h5 and *.ckpt.h5), groups the runs by setting values (the table's rows, and
 * optionally column groups), and summarises each metric of each group as the mean and
 * the sample standard deviation (n-1) over the group's runs (normally the seeds).
 *
 * The library does the work in three steps, so that the command line stays thin and the
 * tests can look at every number:
 *   1. rm_report_load_dir: read the run files (unreadable ones become warnings);
 *   2. rm_report_build: select runs, resolve axes and metrics, pick each run's epoch,
 *      group, compute the cells and mark the best value of each column;
 *   3. rm_report_write_markdown / _csv / _latex (to a FILE *) and rm_report_write_plots
 *      (gnuplot data, scripts and images in a folder).
 *
 * Which runs are averaged. A run is
 *   - "used" when it has at least one metric row and its status is completed;
 *   - "partial" when it has rows and is running or preempted: it is averaged with the
 *     rows it has so far, and every cell it enters is marked (Markdown "\*", LaTeX
 *     "$^*$") with a footnote "in progress: ID (running, epoch 3/8)";
 *   - "failed" when its status is failed or diverged, whatever its rows: never averaged,
 *     counted in the column "failed" (shown when any run failed) and named in a footnote;
 *     a row whose runs all failed shows "failed" in its cells;
 *   - "empty" when it has no row yet (and did not fail): not averaged, named in a footnote.
 * The directory's run files are the truth for the numbers; the sweep index sweep.h5,
 * when present, only names the runs it lists whose run file does not exist ("missing":
 * never started, or deleted), counted in the caption and named in a footnote.
 *
 * Epoch rule (per run, for the metrics read at one epoch):
 *   - best: the row with the highest value of the robust column (ties: the earliest).
 *     The robust column is the first test_pgd* column (in the order the runs list their
 *     columns) evaluated at the run's own budget (no "_eps" suffix), else the first
 *     test_pgd* column, else the same for test_cw*; with none, best falls back to last
 *     and the caption says so;
 *   - last: the last row where any test_* value is present (else the last row);
 *   - N: the row of epoch N (none if the run did not reach it, e.g. in progress).
 *
 * Metrics (names for --metric; the default set is every test_* column found, then gap,
 * epoch_s, images_per_s, co and gm_square, gm_zero_grad, gm_monotone when their columns
 * exist). "better" decides the bold cell:
 *   clean, fgsm, pgd20, cw20, pgd20_eps0.04706, aa, aa.apgd-ce ...  test_<name> at the
 *                  epoch, %, higher (aa.<component>: robust after that AutoAttack component)
 *   gap            robust column minus test_clean at the epoch, percentage points; no
 *                  best (a trade-off, not a score: 0 is also what a useless model gets)
 *   epoch_s        epoch_seconds averaged over all the run's rows, s, lower
 *   train_seconds, eval_seconds: the same for those columns, lower
 *   images_per_s   averaged over all rows, 1/s, higher
 *   co             runs ever flagged (co_flag = 1) out of runs with a CO evaluation, and
 *                  the earliest flagged epoch; no best
 *   gm_square, gm_zero_grad, gm_monotone: the same for each gradient-masking warning
 *                  column; every averaged run with a warning is named in a footnote
 *   final_clean, final_pgd20, final_aa-fast ... the final evaluation (final_eval_attacks),
 *                  %, higher; present on the last epoch's row only, so read them with
 *                  epoch rule last (--epoch last)
 *   any other column of the run files (loss, loss_ce, train_acc, lr ...): its value at
 *   the epoch; train_acc higher, loss* lower, others no best.
 * A cell is bold when its mean, at the precision shown, equals the best one of its
 * column, and the column has at least two cells with values.
 *
 * Rows: by default the settings whose values differ between the selected runs, except
 * seed (the replicate axis) and the bookkeeping settings run_id, outdir, data_dir and
 * checkpoint_every. Rows are sorted by their axis values (numbers numerically, text
 * alphabetically), the first axis first. Setting values are compared as canonical text
 * (rm_config_setting_text), so "8/255" in a sweep file and 0.031372549019607843 in a
 * run file are the same value. */
#ifndef REGMIX_REPORT_H
#define REGMIX_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "regmix/common.h"
#include "regmix/config.h"
#include "regmix/runfile.h"

#define RM_REPORT_MAX_AXES 8
#define RM_REPORT_MAX_METRICS 32
#define RM_REPORT_MAX_SELECT 32
#define RM_REPORT_TEXT 512 /* one setting value as text (eval_attacks is the longest) */
#define RM_REPORT_PATH 1024

/* ------------------------------------------------------------------------- loading */

typedef struct {
    char file[256];                  /* base name, "reg-mse_seed-0.h5" */
    rm_run_summary sum;              /* owned: status, metric columns, epochs */
    rm_config cfg;                   /* parsed from sum.config_yaml */
    char (*setting)[RM_REPORT_TEXT]; /* owned: text of every setting, by setting index */
} rm_report_run;

typedef struct {
    char dir[RM_REPORT_PATH];
    int n_runs;
    rm_report_run *runs;              /* sorted by file name */
    int n_unreadable;
    char (*unreadable)[RM_REPORT_PATH]; /* "FILE: reason" of each file that could not be read */
    int has_index;                    /* dir/sweep.h5 was read */
    int n_missing;
    char (*missing)[RM_REPORT_PATH];  /* "ID (STATUS in sweep.h5)" of each run the index lists
                                         whose run file does not exist */
} rm_report_runs;

/* 1 when a directory entry is a run file: ends in ".h5", is not "sweep.h5" and does not
 * end in ".ckpt.h5". */
int rm_report_is_run_file(const char *name);

/* Reads every run file of dir, then dir/sweep.h5 if it exists (out->missing; an index
 * that cannot be read is recorded as an unreadable file). A file that cannot be read
 * (not HDF5, not a run file, configuration that no longer parses) is recorded in
 * out->unreadable and skipped; only
 * a directory that cannot be listed, or memory, fails (RM_ERR_IO / RM_ERR_NOMEM).
 * An empty directory is not an error (n_runs = 0). */
rm_status rm_report_load_dir(const char *dir, rm_report_runs *out);
void rm_report_runs_free(rm_report_runs *r);

/* ------------------------------------------------------------------------- options */

typedef enum { RM_REPORT_EPOCH_BEST, RM_REPORT_EPOCH_LAST, RM_REPORT_EPOCH_FIXED } rm_report_epoch_rule;

typedef struct {
    int setting;                   /* setting index */
    char value[RM_REPORT_TEXT];    /* canonical text */
} rm_report_select;

typedef struct {
    int n_rows;                    /* -1: default rows; 0: all runs in one row */
    int rows[RM_REPORT_MAX_AXES];  /* setting indices */
    int n_cols;                    /* 0: columns are the metrics only */
    int cols[RM_REPORT_MAX_AXES];
    int n_metrics;                 /* 0: the default set */
    char metrics[RM_REPORT_MAX_METRICS][RM_METRIC_NAME_MAX];
    rm_report_epoch_rule epoch_rule;
    int64_t epoch;                 /* RM_REPORT_EPOCH_FIXED */
    int n_select;                  /* a run is kept when, for every setting named, its value */
    rm_report_select select[RM_REPORT_MAX_SELECT]; /* equals one of the values given */
    int n_best_within;             /* 0: bold = best of the whole column; else best among */
    int best_within[RM_REPORT_MAX_AXES]; /* the rows that agree on these row settings */
} rm_report_options;

/* Defaults: rows -1, no cols, default metrics, epoch best, no selection. */
void rm_report_options_default(rm_report_options *o);
/* "reg,alpha" into setting indices (unknown names: RM_ERR_ARG naming them, with a
 * suggestion); "none" or "" gives 0 axes. */
rm_status rm_report_parse_axes(const char *text, int *axes, int *n);
/* "best", "last" or a positive integer. */
rm_status rm_report_parse_epoch(const char *text, rm_report_options *o);
/* One "setting=value"; the value is read as `regmix train` reads it (rm_config_set),
 * so 8/255 and 0.0313725... select the same runs, and "yes" means true. */
rm_status rm_report_add_select(rm_report_options *o, const char *setting_eq_value);
/* One metric name or several separated by commas (checked when the table is built). */
rm_status rm_report_add_metrics(rm_report_options *o, const char *names);

/* ------------------------------------------------------------------- the table */

typedef enum { RM_REPORT_AT_EPOCH, RM_REPORT_EPOCH_MEAN, RM_REPORT_GAP, RM_REPORT_CO } rm_report_metric_kind;
typedef enum { RM_REPORT_NO_BEST, RM_REPORT_HIGHER, RM_REPORT_LOWER } rm_report_better;

typedef struct {
    char name[RM_METRIC_NAME_MAX];    /* column label: "clean", "pgd20", "gap", "epoch_s", "co" */
    char column[RM_METRIC_NAME_MAX];  /* run-file column read ("test_clean"; GAP: robust one) */
    char column2[RM_METRIC_NAME_MAX]; /* GAP: the clean column, subtracted */
    rm_report_metric_kind kind;
    rm_report_better better;
    int decimals;                     /* digits after the point in tables */
} rm_report_metric;

typedef enum {
    RM_REPORT_UNSELECTED = 0, /* left out by --select */
    RM_REPORT_USED,
    RM_REPORT_PARTIAL,
    RM_REPORT_FAILED,
    RM_REPORT_EMPTY
} rm_report_role;

typedef struct {
    double mean;         /* NaN when n == 0; CO: the number of runs flagged */
    double std;          /* sample standard deviation (n-1); NaN when n < 2 and for CO */
    int n;               /* runs that gave a value */
    int n_partial;       /* of them, runs in progress */
    int64_t first_epoch; /* CO: earliest flagged epoch over the runs, 0 if none */
    int best;            /* bold */
} rm_report_cell;

typedef struct {
    int run;             /* a run of the row (its axis values are the row's) */
    int n_used;          /* runs averaged (used + partial) */
    int n_partial, n_failed, n_empty;
    int n;               /* the largest n among the row's cells: the "n" column */
} rm_report_row;

typedef struct {
    const rm_report_runs *runs;      /* not owned: must outlive the table */
    int n_row_axes, row_axes[RM_REPORT_MAX_AXES];
    int n_col_axes, col_axes[RM_REPORT_MAX_AXES];
    int n_metrics;
    rm_report_metric metrics[RM_REPORT_MAX_METRICS];
    int metrics_given;               /* 1: from --metric, 0: the default set */
    rm_report_epoch_rule epoch_rule;
    int64_t epoch;
    char robust[RM_METRIC_NAME_MAX]; /* column of the best rule; "" when there is none */
    char selection[RM_REPORT_PATH];  /* "reg=mse, seed=1" or "" */
    int n_best_within;               /* bold compares rows that agree on these row axes */
    int best_within[RM_REPORT_MAX_AXES]; /* (positions in row_axes) */
    /* per run, runs->n_runs entries */
    rm_report_role *role;
    int *run_row, *run_colkey;       /* -1 for unselected runs */
    int64_t *run_sel;                /* selected metric row (not epoch) of the run, -1: none */
    /* rows (sorted) and column keys (sorted; one key when there are no col axes) */
    int n_rows;
    rm_report_row *rows;
    int n_colkeys;
    int *colkey_run;                 /* a run of each column key */
    rm_report_cell *cells;           /* [row][metric][colkey] */
    /* totals over the selected runs */
    int n_selected, n_used, n_partial, n_failed, n_empty;
} rm_report_table;

/* Builds the table (see the top of this file for every rule). Errors (RM_ERR_ARG): a
 * --select, --rows or --cols setting that is also elsewhere, an axis on both sides, a
 * --best-within setting that is not a row axis, a
 * metric that no selected run has (the message lists the available ones), more column
 * keys x metrics than fit. No selected run is not an error (an empty table). */
rm_status rm_report_build(const rm_report_runs *runs, const rm_report_options *opt,
                          rm_report_table **out);
void rm_report_table_free(rm_report_table *t);

const rm_report_cell *rm_report_cell_at(const rm_report_table *t, int row, int metric, int colkey);
/* Text of axis `a` of row r / of column key k (the setting's value text). */
const char *rm_report_row_value(const rm_report_table *t, int r, int a);
const char *rm_report_colkey_value(const rm_report_table *t, int k, int a);
/* Index of the metric called name in the table, -1 if absent. */
int rm_report_metric_find(const rm_report_table *t, const char *name);

/* ------------------------------------------------------------------------ output */

/* Markdown: a pandoc caption line "Table: ...", a blank line, the table (columns padded,
 * axis columns left-aligned, numbers right-aligned, '|' in values escaped), then, after
 * a blank line, a list of footnotes (in progress, failed, without epochs, unreadable).
 * Cells read "mean ± std" ("± —" when n = 1), bold "**...**" for the best, "\*" for in
 * progress, " (n=k)" when k is below the row's n. CO cells read "k/n" and " (ep E)". */
rm_status rm_report_write_markdown(const rm_report_table *t, FILE *out);
/* CSV (RFC 4180 quoting): the row axes, n, n_partial, n_failed, then per metric column
 * LABEL_mean, LABEL_std, LABEL_n (CO: co_runs, co_n, co_first_epoch); numbers in the
 * shortest form that reads back exactly, empty for no value. With column axes LABEL is
 * "KEY:metric" where KEY is "axis=value[;axis=value]". */
rm_status rm_report_write_csv(const rm_report_table *t, FILE *out);
/* LaTeX (booktabs): a table environment with \caption, \toprule / \midrule /
 * \bottomrule, "$\pm$", best in \textbf{}, "$^*$" for in progress, the footnotes after
 * the tabular; text is escaped (_ % & # $ { } ~ ^ \). */
rm_status rm_report_write_latex(const rm_report_table *t, FILE *out);

/* ------------------------------------------------------------------------- plots */

/* Where gnuplot is: $REGMIX_GNUPLOT if set (an empty value means "none"), else the
 * first executable "gnuplot" on PATH. Returns 1 and the path in buf, or 0. */
int rm_report_find_gnuplot(char *buf, size_t size);

#define RM_REPORT_MAX_PLOTS 8
typedef struct {
    int ran_gnuplot;                 /* 0: data and scripts only */
    char png_terminal[16];           /* "pngcairo", "png" or "" (not available) */
    int svg;                         /* the svg terminal exists */
    int n_files;                     /* every file written (data, scripts, images) */
    char files[4 * RM_REPORT_MAX_PLOTS][RM_REPORT_PATH];
} rm_report_plot_result;

/* Writes into dir (created if missing) the plots that apply, each as NAME.dat (data,
 * with '#' header lines), NAME.gp (the gnuplot script) and, when gnuplot is given (a
 * path; NULL: scripts and data only), NAME.png and NAME.svg:
 *   accuracy_vs_epoch   mean clean and robust accuracy per epoch, one curve per group;
 *   heatmap_METRIC      METRIC over the two row axes, when there are exactly two, both
 *                       numeric, and no column axes; METRIC is the first --metric
 *                       (other than co) when metrics were given, else the robust one
 *                       (else the first metric); missing cells are left blank;
 *   robust_vs_eps       robust accuracy against the test budget per group, when a group's
 *                       runs give the attack family at two budgets or more (test_pgdK and
 *                       test_pgdK_eps<value> columns, or runs of different eps); the family
 *                       is that of the first PGD/CW metric of the table (final_ ones too),
 *                       else the robust column; x in 1/255 when every budget is k/255;
 *   co_flags            when the table shows co: per group the share of runs flagged for
 *                       catastrophic overfitting, flagged/evaluated and the first epoch.
 * The terminals are taken from `gnuplot -e "set terminal"` (pngcairo, else png; svg).
 * gnuplot runs once per script in dir; a non-zero exit is RM_ERR_IO naming the script. */
rm_status rm_report_write_plots(const rm_report_table *t, const char *dir, const char *gnuplot,
                                rm_report_plot_result *res);

#endif
