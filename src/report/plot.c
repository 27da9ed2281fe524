/* Plots of the report: for each plot a data file (NAME.dat), a gnuplot script (NAME.gp)
 * and, when gnuplot is there, NAME.png / NAME.svg. Groups are the table's (row, column
 * key) pairs that have runs to average. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "report/report_internal.h"

int rp_plot_averaged(const rm_report_table *t, int i) {
    return t->role[i] == RM_REPORT_USED || t->role[i] == RM_REPORT_PARTIAL;
}

int rp_plot_in_group(const rm_report_table *t, const rp_group *g, int i) {
    return rp_plot_averaged(t, i) && t->run_row[i] == g->row && t->run_colkey[i] == g->colkey;
}

int rp_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* mean, sample std (n-1; NaN below 2) and n of the finite values */
void rp_plot_stats(const double *v, int n_in, double *mean, double *std, int *n) {
    double sum = 0, dev = 0;
    *n = 0;
    for (int i = 0; i < n_in; i++)
        if (isfinite(v[i])) sum += v[i], (*n)++;
    *mean = *n ? sum / *n : NAN;
    for (int i = 0; i < n_in; i++)
        if (isfinite(v[i])) dev += (v[i] - *mean) * (v[i] - *mean);
    *std = *n > 1 ? sqrt(dev / (*n - 1)) : NAN;
}

void rp_plot_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, " %.6g", v);
    else fputs(" NaN", f);
}

/* ------------------------------------------------------------------ files */

static rm_status make_dir(const char *dir) {
    char path[RM_REPORT_PATH];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return rm_fail(RM_ERR_ARG, "plot folder name too long: %s", dir);
    for (char *p = path + 1;; p++) { /* mkdir -p */
        if (*p != '/' && *p != '\0') continue;
        char keep = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) return rm_fail(RM_ERR_IO, "mkdir(%s): %s", path, strerror(errno));
        *p = keep;
        if (!keep) break;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return rm_fail(RM_ERR_IO, "%s is not a folder", dir);
    return RM_OK;
}

rm_status rp_plot_open(rp_plotter *p, const char *name, FILE **f) {
    char path[RM_REPORT_PATH];
    snprintf(path, sizeof path, "%s/%s", p->dir, name);
    *f = fopen(path, "w");
    if (!*f) return rm_fail(RM_ERR_IO, "fopen(%s): %s", path, strerror(errno));
    return RM_OK;
}

void rp_plot_note(rp_plotter *p, const char *name) {
    rm_report_plot_result *res = p->res;
    if (res->n_files < (int)(sizeof res->files / sizeof *res->files))
        snprintf(res->files[res->n_files++], RM_REPORT_PATH, "%s/%s", p->dir, name);
}

rm_status rp_plot_close(rp_plotter *p, const char *name, FILE *f) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return rm_fail(RM_ERR_IO, "writing %s/%s: %s", p->dir, name, strerror(errno));
    rp_plot_note(p, name);
    return RM_OK;
}

/* A gnuplot single-quoted string ('' stands for '). */
void rp_gp_string(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* Script head: settings, then the first terminal; the plot command follows. */
void rp_plot_head(FILE *f, const rp_plotter *p, const char *name, const char *title) {
    fprintf(f, "# regmix report: %s; run `gnuplot %s.gp` in this folder\n", name, name);
    fputs("set encoding utf8\nset datafile missing 'NaN'\nset grid\n", f);
    fputs("set title ", f);
    rp_gp_string(f, title);
    fputc('\n', f);
    if (p->png[0]) fprintf(f, "set terminal %s size 960,600 noenhanced\nset output '%s.png'\n", p->png, name);
    else fprintf(f, "set terminal svg size 960,600 noenhanced\nset output '%s.svg'\n", name);
}

/* Script tail: the same plot again in SVG when PNG came first. */
void rp_plot_tail(FILE *f, const rp_plotter *p, const char *name) {
    if (p->png[0] && p->svg) fprintf(f, "set terminal svg size 960,600 noenhanced\nset output '%s.svg'\nreplot\n", name);
    fputs("unset output\n", f);
}

rm_status rp_plot_finish(rp_plotter *p, const char *name) {
    char script[300], img[300];
    snprintf(script, sizeof script, "%s.gp", name);
    if (!p->gnuplot) return RM_OK;
    RM_TRY(rp_gnuplot_run(p->gnuplot, p->dir, script));
    p->res->ran_gnuplot = 1;
    if (p->png[0]) {
        snprintf(img, sizeof img, "%s.png", name);
        rp_plot_note(p, img);
    }
    if (p->svg) {
        snprintf(img, sizeof img, "%s.svg", name);
        rp_plot_note(p, img);
    }
    return RM_OK;
}

/* ------------------------------------------------------------------ entry */

static rm_status collect_groups(rp_plotter *p) {
    const rm_report_table *t = p->t;
    p->groups = calloc((size_t)t->n_rows * (size_t)t->n_colkeys + 1, sizeof *p->groups);
    if (!p->groups) return rm_fail(RM_ERR_NOMEM, "out of memory listing plot groups");
    for (int r = 0; r < t->n_rows; r++)
        for (int k = 0; k < t->n_colkeys; k++) {
            rp_group g = {.row = r, .colkey = k};
            int any = 0;
            for (int i = 0; i < t->runs->n_runs && !any; i++) any = rp_plot_in_group(t, &g, i);
            if (!any) continue;
            rp_buf b;
            rp_buf_init(&b);
            rp_row_label(&b, t, r, ",");
            if (t->n_col_axes) {
                if (t->n_row_axes) rp_puts(&b, ",");
                rp_colkey_label(&b, t, k, ",");
            }
            snprintf(g.label, sizeof g.label, "%s", b.n ? b.p : "all");
            rp_buf_free(&b);
            p->groups[p->n_groups++] = g;
        }
    return RM_OK;
}

rm_status rm_report_write_plots(const rm_report_table *t, const char *dir, const char *gnuplot,
                                rm_report_plot_result *res) {
    memset(res, 0, sizeof *res);
    RM_TRY(make_dir(dir));
    rp_plotter p = {.t = t, .dir = dir, .res = res, .gnuplot = gnuplot, .png = "pngcairo", .svg = 1};
    if (gnuplot) {
        RM_TRY(rp_gnuplot_terminals(gnuplot, p.png, &p.svg));
        if (!p.png[0] && !p.svg) p.gnuplot = NULL; /* nothing to draw with: data and scripts only */
    }
    snprintf(res->png_terminal, sizeof res->png_terminal, "%s", p.png);
    res->svg = p.svg;
    rm_status st = collect_groups(&p);
    if (st == RM_OK && p.n_groups > 0) st = rp_plot_curves(&p);
    if (st == RM_OK && p.n_groups > 0) st = rp_plot_heatmap(&p);
    if (st == RM_OK && p.n_groups > 0) st = rp_plot_eps(&p);
    if (st == RM_OK && p.n_groups > 0) st = rp_plot_co(&p);
    free(p.groups);
    return st;
}
