/* Internals of the report module shared by its files: a growable text buffer, number
 * and cell formatting, the caption and the footnotes (the same words in every format). */
#ifndef REGMIX_REPORT_INTERNAL_H
#define REGMIX_REPORT_INTERNAL_H

#include <stddef.h>
#include <stdio.h>

#include "regmix/report.h"

/* Growable NUL-terminated text; a failed allocation sets oom and drops later text. */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} rp_buf;

void rp_buf_init(rp_buf *b);
void rp_buf_free(rp_buf *b);
void rp_buf_clear(rp_buf *b);
void rp_printf(rp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rp_puts(rp_buf *b, const char *s);
/* Moves the text out (caller frees with free); "" when empty; NULL if memory failed. */
char *rp_buf_take(rp_buf *b);

/* The styles differ in symbols and escaping only. */
typedef enum { RP_MARKDOWN, RP_LATEX } rp_style;

/* Appends text escaped for the style: Markdown escapes '|' (table cells) and nothing
 * else; LaTeX escapes _ % & # $ { } ~ ^ \. */
void rp_escaped(rp_buf *b, const char *text, rp_style style);

/* v with `decimals` digits after the point, never "-0.0". */
void rp_number(char *buf, size_t size, double v, int decimals);

/* The text of one cell: see rm_report_write_markdown. */
void rp_cell_text(rp_buf *b, const rm_report_table *t, int r, int m, int k, rp_style style);
/* The caption (without "Table: " or \caption{}). */
void rp_caption(rp_buf *b, const rm_report_table *t, rp_style style);
/* Footnote lines, each ending in '\n' for Markdown ("- " items) or in "\par\n" for LaTeX;
 * nothing when there is no footnote. */
void rp_footnotes(rp_buf *b, const rm_report_table *t, rp_style style);

/* Header label of table column (m, k): the metric name, prefixed by the column key
 * ("reg=mse: pgd20") when there are column axes. sep is the separator after the key. */
void rp_column_label(rp_buf *b, const rm_report_table *t, int m, int k, const char *sep);
/* "axis=value,axis=value" of a column key; axis values of a row joined by ", ". */
void rp_colkey_label(rp_buf *b, const rm_report_table *t, int k, const char *join);
void rp_row_label(rp_buf *b, const rm_report_table *t, int r, const char *join);

/* ---- metrics.c ---- */
/* Column names found in the selected runs (role != UNSELECTED), in the order the runs
 * list them, without repeats; *n of at most `max`. */
int rp_column_union(const rm_report_runs *runs, const rm_report_role *role, char (*names)[RM_METRIC_NAME_MAX],
                    int max);
/* The robust column (see report.h), "" if none. */
void rp_find_robust(char (*names)[RM_METRIC_NAME_MAX], int n, char *out);
/* Resolves a --metric name against the columns present; RM_ERR_ARG listing the
 * available names when it is not there. */
rm_status rp_resolve_metric(const char *name, char (*cols)[RM_METRIC_NAME_MAX], int n_cols, const char *robust,
                            rm_report_metric *m);
/* The default metric set into t->metrics. */
void rp_default_metrics(rm_report_table *t, char (*cols)[RM_METRIC_NAME_MAX], int n_cols);
/* The row of the run the epoch rule picks, -1 for none. */
int64_t rp_select_row(const rm_report_table *t, const rm_report_run *run);

/* Value of a run's metric under the table's rules; NaN when it has none. */
double rp_run_value(const rm_report_table *t, int run, int m);
/* A 0/1 flag column of a run (co_flag, gm_*): 1 and the first flagged epoch when it was
 * ever flagged, 0 when checked and never flagged, -1 when never checked (or no such
 * column). */
int rp_run_flag(const rm_report_run *run, const char *column, int64_t *first_epoch);

/* ---- gnuplot.c ---- */
/* Terminals of this gnuplot: png is "pngcairo", "png" or "" ; *svg 0/1. */
rm_status rp_gnuplot_terminals(const char *gnuplot, char png[16], int *svg);
/* Runs `gnuplot script` with dir as the working directory; RM_ERR_IO on a non-zero exit. */
rm_status rp_gnuplot_run(const char *gnuplot, const char *dir, const char *script);

/* ---- plot*.c ---- */
/* A plotted group: one (row, column key) pair of the table with runs to average. */
typedef struct {
    int row, colkey;
    char label[512]; /* "alpha=0.5,beta=1", "all" */
} rp_group;

typedef struct {
    const rm_report_table *t;
    const char *dir;
    rm_report_plot_result *res;
    rp_group *groups;
    int n_groups;
    const char *gnuplot; /* NULL: data and scripts only */
    char png[16];        /* terminal for PNG, "" none */
    int svg;
} rp_plotter;

/* The plots; each writes NAME.dat and NAME.gp and runs gnuplot, or does nothing
 * when it does not apply. */
rm_status rp_plot_curves(rp_plotter *p);
rm_status rp_plot_heatmap(rp_plotter *p);
rm_status rp_plot_eps(rp_plotter *p);
rm_status rp_plot_co(rp_plotter *p);
/* Run i is averaged (used or partial), and in group g. */
int rp_plot_averaged(const rm_report_table *t, int i);
int rp_plot_in_group(const rm_report_table *t, const rp_group *g, int i);
/* mean, sample std (n-1; NaN below 2) and n of the finite values of v[0..n_in). */
void rp_plot_stats(const double *v, int n_in, double *mean, double *std, int *n);
int rp_cmp_double(const void *a, const void *b);
/* " %.6g", or " NaN" for a missing value. */
void rp_plot_num(FILE *f, double v);
/* Files in p->dir: open for writing; close (checking every write) and record in res. */
rm_status rp_plot_open(rp_plotter *p, const char *name, FILE **f);
rm_status rp_plot_close(rp_plotter *p, const char *name, FILE *f);
void rp_plot_note(rp_plotter *p, const char *name);
/* A gnuplot single-quoted string. */
void rp_gp_string(FILE *f, const char *s);
/* Script head (settings, the first terminal and output) and tail (SVG replot). */
void rp_plot_head(FILE *f, const rp_plotter *p, const char *name, const char *title);
void rp_plot_tail(FILE *f, const rp_plotter *p, const char *name);
/* Runs NAME.gp when gnuplot is there and records the images. */
rm_status rp_plot_finish(rp_plotter *p, const char *name);

/* Display width of UTF-8 text (code points). */
size_t rp_width(const char *s);

#endif
