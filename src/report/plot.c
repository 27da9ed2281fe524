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

typedef struct {
    int row, colkey;
    char label[512];
} group;

typedef struct {
    const rm_report_table *t;
    const char *dir;
    rm_report_plot_result *res;
    group *groups;
    int n_groups;
} plotter;

static int averaged(const rm_report_table *t, int i) {
    return t->role[i] == RM_REPORT_USED || t->role[i] == RM_REPORT_PARTIAL;
}

static int in_group(const rm_report_table *t, const group *g, int i) {
    return averaged(t, i) && t->run_row[i] == g->row && t->run_colkey[i] == g->colkey;
}

/* mean, sample std (n-1; NaN below 2) and n of the finite values */
static void stats(const double *v, int n_in, double *mean, double *std, int *n) {
    double sum = 0, dev = 0;
    *n = 0;
    for (int i = 0; i < n_in; i++)
        if (isfinite(v[i])) sum += v[i], (*n)++;
    *mean = *n ? sum / *n : NAN;
    for (int i = 0; i < n_in; i++)
        if (isfinite(v[i])) dev += (v[i] - *mean) * (v[i] - *mean);
    *std = *n > 1 ? sqrt(dev / (*n - 1)) : NAN;
}

static void write_num(FILE *f, double v) {
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

static rm_status open_file(plotter *p, const char *name, FILE **f) {
    char path[RM_REPORT_PATH];
    snprintf(path, sizeof path, "%s/%s", p->dir, name);
    *f = fopen(path, "w");
    if (!*f) return rm_fail(RM_ERR_IO, "fopen(%s): %s", path, strerror(errno));
    return RM_OK;
}

static void note_file(plotter *p, const char *name) {
    rm_report_plot_result *res = p->res;
    if (res->n_files < (int)(sizeof res->files / sizeof *res->files))
        snprintf(res->files[res->n_files++], RM_REPORT_PATH, "%s/%s", p->dir, name);
}

static rm_status close_file(plotter *p, const char *name, FILE *f) {
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return rm_fail(RM_ERR_IO, "writing %s/%s: %s", p->dir, name, strerror(errno));
    note_file(p, name);
    return RM_OK;
}

/* A gnuplot single-quoted string ('' stands for '). */
static void gp_string(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* Script head: settings, then the first terminal; the plot command follows. */
static void script_head(FILE *f, const plotter *p, const char *name, const char *png, const char *title) {
    fprintf(f, "# regmix report: %s; run `gnuplot %s.gp` in this folder\n", name, name);
    fputs("set encoding utf8\nset datafile missing 'NaN'\nset grid\n", f);
    fputs("set title ", f);
    gp_string(f, title);
    fputc('\n', f);
    (void)p;
    if (png[0]) fprintf(f, "set terminal %s size 960,600 noenhanced\nset output '%s.png'\n", png, name);
    else fprintf(f, "set terminal svg size 960,600 noenhanced\nset output '%s.svg'\n", name);
}

/* Script tail: the same plot again in SVG when PNG came first. */
static void script_tail(FILE *f, const char *name, const char *png, int svg) {
    if (png[0] && svg) fprintf(f, "set terminal svg size 960,600 noenhanced\nset output '%s.svg'\nreplot\n", name);
    fputs("unset output\n", f);
}

/* Writes the script, runs it, records the images. */
static rm_status finish_plot(plotter *p, const char *name, const char *gnuplot) {
    char script[300], img[300];
    snprintf(script, sizeof script, "%s.gp", name);
    if (!gnuplot) return RM_OK;
    RM_TRY(rp_gnuplot_run(gnuplot, p->dir, script));
    p->res->ran_gnuplot = 1;
    if (p->res->png_terminal[0]) {
        snprintf(img, sizeof img, "%s.png", name);
        note_file(p, img);
    }
    if (p->res->svg) {
        snprintf(img, sizeof img, "%s.svg", name);
        note_file(p, img);
    }
    return RM_OK;
}

/* ------------------------------------------------------------------ accuracy vs epoch */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Epochs any run of g has, sorted, without repeats. */
static int group_epochs(const rm_report_table *t, const group *g, int64_t **out) {
    int64_t n = 0;
    for (int i = 0; i < t->runs->n_runs; i++)
        if (in_group(t, g, i)) n += t->runs->runs[i].sum.rows;
    *out = malloc((size_t)(n + 1) * sizeof **out);
    if (!*out) return -1;
    int k = 0;
    for (int i = 0; i < t->runs->n_runs; i++)
        if (in_group(t, g, i))
            for (int64_t r = 0; r < t->runs->runs[i].sum.rows; r++) (*out)[k++] = t->runs->runs[i].sum.epoch[r];
    qsort(*out, (size_t)k, sizeof **out, cmp_i64);
    int u = 0;
    for (int j = 0; j < k; j++)
        if (u == 0 || (*out)[u - 1] != (*out)[j]) (*out)[u++] = (*out)[j];
    return u;
}

/* Value of column at epoch e in run i, NaN when absent. */
static double at_epoch(const rm_report_run *run, const char *column, int64_t e) {
    int c = column[0] ? rm_run_summary_find(&run->sum, column) : -1;
    for (int64_t r = 0; c >= 0 && r < run->sum.rows; r++)
        if (run->sum.epoch[r] == e) return run->sum.columns[c].values[r];
    return NAN;
}

static rm_status accuracy_vs_epoch(plotter *p, const char *gnuplot, const char *png, int svg) {
    const rm_report_table *t = p->t;
    const char *cols[2] = {"test_clean", t->robust};
    const char *name = "accuracy_vs_epoch";
    double *v = malloc((size_t)(t->runs->n_runs + 1) * sizeof *v);
    int *has = calloc((size_t)p->n_groups + 1, sizeof *has);
    FILE *f = NULL;
    rm_status st = v && has ? open_file(p, "accuracy_vs_epoch.dat", &f)
                            : rm_fail(RM_ERR_NOMEM, "out of memory writing %s", name);
    int blocks = 0;
    int64_t last = 0; /* the largest epoch plotted: few epochs get one tic each */
    if (st == RM_OK)
        fprintf(f, "# mean test accuracy (%%) per epoch over the runs of each group (NaN: none)\n"
                   "# one block per group (gnuplot index), columns:\n"
                   "# epoch clean_mean clean_std clean_n %s_mean %s_std %s_n\n",
                t->robust[0] ? t->robust + 5 : "robust", t->robust[0] ? t->robust + 5 : "robust",
                t->robust[0] ? t->robust + 5 : "robust");
    for (int gi = 0; gi < p->n_groups && st == RM_OK; gi++) {
        int64_t *epochs;
        int ne = group_epochs(t, &p->groups[gi], &epochs);
        if (ne < 0) {
            st = rm_fail(RM_ERR_NOMEM, "out of memory writing %s", name);
            break;
        }
        int wrote = 0;
        for (int e = 0; e < ne; e++) {
            double mean[2], std[2];
            int n[2];
            for (int c = 0; c < 2; c++) {
                int k = 0;
                for (int i = 0; i < t->runs->n_runs; i++)
                    if (in_group(t, &p->groups[gi], i)) v[k++] = at_epoch(&t->runs->runs[i], cols[c], epochs[e]);
                stats(v, k, &mean[c], &std[c], &n[c]);
            }
            if (n[0] == 0 && n[1] == 0) continue;
            if (!wrote) fprintf(f, "%s# group %d: %s\n", blocks ? "\n\n" : "", blocks, p->groups[gi].label);
            wrote = 1;
            if (epochs[e] > last) last = epochs[e];
            fprintf(f, "%lld", (long long)epochs[e]);
            for (int c = 0; c < 2; c++) {
                write_num(f, mean[c]);
                write_num(f, std[c]);
                fprintf(f, " %d", n[c]);
            }
            fputc('\n', f);
        }
        free(epochs);
        has[gi] = wrote;
        blocks += wrote;
    }
    if (f && st == RM_OK) st = close_file(p, "accuracy_vs_epoch.dat", f);
    else if (f) fclose(f);
    if (st == RM_OK && blocks > 0) {
        st = open_file(p, "accuracy_vs_epoch.gp", &f);
        if (st == RM_OK) {
            script_head(f, p, name, png, "mean test accuracy over each group's runs");
            fputs("set key outside right top\nset xlabel 'epoch'\nset ylabel 'test accuracy (%)'\n", f);
            if (last <= 20) fputs("set xtics 1\n", f);
            fputs("set offsets graph 0.02, graph 0.02, graph 0.02, graph 0.02\nplot", f);
            for (int gi = 0, b = 0; gi < p->n_groups; gi++) {
                if (!has[gi]) continue;
                for (int c = 0; c < 2; c++) {
                    if (!cols[c][0]) continue;
                    char title[600];
                    snprintf(title, sizeof title, "%s %s", p->groups[gi].label, cols[c] + 5);
                    fprintf(f, "%s \\\n  'accuracy_vs_epoch.dat' index %d using 1:%d with linespoints lt %d dt %d title ",
                            b || c ? "," : "", b, 2 + 3 * c, b + 1, c + 1);
                    gp_string(f, title);
                }
                b++;
            }
            fputc('\n', f);
            script_tail(f, name, png, svg);
            st = close_file(p, "accuracy_vs_epoch.gp", f);
        }
        if (st == RM_OK) st = finish_plot(p, name, gnuplot);
    }
    free(v);
    free(has);
    return st;
}

/* ------------------------------------------------------------------ heat map */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Index of v in the sorted distinct values u[0..n), -1 if absent. */
static int find_value(const double *u, int n, double v) {
    for (int i = 0; i < n; i++)
        if (u[i] == v) return i;
    return -1;
}

static int heat_metric(const rm_report_table *t) {
    if (!t->metrics_given && t->robust[0]) {
        int m = rm_report_metric_find(t, t->robust + 5);
        if (m >= 0) return m;
    }
    for (int m = 0; m < t->n_metrics; m++)
        if (t->metrics[m].kind != RM_REPORT_CO) return m;
    return -1;
}

static rm_status heatmap(plotter *p, const char *gnuplot, const char *png, int svg) {
    const rm_report_table *t = p->t;
    int m = heat_metric(t);
    if (t->n_row_axes != 2 || t->n_col_axes != 0 || m < 0 || t->n_rows == 0) return RM_OK;
    for (int a = 0; a < 2; a++)
        if (rm_config_setting_type(t->row_axes[a]) == RM_SETTING_STRING) return RM_OK;
    double *u[2];
    int nu[2];
    u[0] = malloc((size_t)t->n_rows * sizeof(double));
    u[1] = malloc((size_t)t->n_rows * sizeof(double));
    if (!u[0] || !u[1]) {
        free(u[0]), free(u[1]);
        return rm_fail(RM_ERR_NOMEM, "out of memory writing the heat map");
    }
    for (int a = 0; a < 2; a++) { /* distinct values of each axis, sorted */
        nu[a] = 0;
        for (int r = 0; r < t->n_rows; r++) {
            double x;
            rm_config_setting_value(&t->runs->runs[t->rows[r].run].cfg, t->row_axes[a], &x, NULL, 0);
            if (find_value(u[a], nu[a], x) < 0) u[a][nu[a]++] = x;
        }
        qsort(u[a], (size_t)nu[a], sizeof(double), cmp_double);
    }
    char name[RM_METRIC_NAME_MAX + 16], file[RM_METRIC_NAME_MAX + 32];
    snprintf(name, sizeof name, "heatmap_%s", t->metrics[m].name);
    snprintf(file, sizeof file, "%s.dat", name);
    FILE *f;
    rm_status st = open_file(p, file, &f);
    if (st == RM_OK) {
        fprintf(f, "# %s (mean over runs) over %s (x) and %s (y); NaN: no value\n# x_index y_index %s_mean n\n",
                t->metrics[m].name, rm_config_setting_name(t->row_axes[0]), rm_config_setting_name(t->row_axes[1]),
                t->metrics[m].name);
        for (int xi = 0; xi < nu[0]; xi++) {
            for (int yi = 0; yi < nu[1]; yi++) {
                const rm_report_cell *c = NULL;
                for (int r = 0; r < t->n_rows && !c; r++) {
                    double x, y;
                    const rm_config *cfg = &t->runs->runs[t->rows[r].run].cfg;
                    rm_config_setting_value(cfg, t->row_axes[0], &x, NULL, 0);
                    rm_config_setting_value(cfg, t->row_axes[1], &y, NULL, 0);
                    if (x == u[0][xi] && y == u[1][yi]) c = rm_report_cell_at(t, r, m, 0);
                }
                fprintf(f, "%d %d", xi, yi);
                write_num(f, c && c->n ? c->mean : NAN);
                fprintf(f, " %d\n", c ? c->n : 0);
            }
            fputc('\n', f);
        }
        st = close_file(p, file, f);
    }
    if (st == RM_OK) {
        snprintf(file, sizeof file, "%s.gp", name);
        st = open_file(p, file, &f);
    }
    if (st == RM_OK) {
        char title[200];
        snprintf(title, sizeof title, "%s: mean over each cell's runs", t->metrics[m].name);
        script_head(f, p, name, png, title);
        for (int a = 0; a < 2; a++) {
            fprintf(f, "set %ctics (", a ? 'y' : 'x');
            for (int i = 0; i < nu[a]; i++) {
                char num[40];
                rm_format_number(u[a][i], num, sizeof num);
                fprintf(f, "%s'%s' %d", i ? ", " : "", num, i);
            }
            fprintf(f, ")\nset %crange [-0.5:%d.5]\nset %clabel ", a ? 'y' : 'x', nu[a] - 1, a ? 'y' : 'x');
            gp_string(f, rm_config_setting_name(t->row_axes[a]));
            fputc('\n', f);
        }
        fputs("set cblabel ", f);
        gp_string(f, t->metrics[m].name);
        fprintf(f, "\nset palette rgbformulae 33,13,10\nunset key\n"
                   "plot '%s.dat' using 1:2:3 with image, \\\n"
                   "  '' using 1:2:($4 > 0 ? sprintf('%%.%df', $3) : '') with labels\n",
                name, t->metrics[m].decimals);
        script_tail(f, name, png, svg);
        st = close_file(p, file, f);
    }
    if (st == RM_OK) st = finish_plot(p, name, gnuplot);
    free(u[0]), free(u[1]);
    return st;
}

/* ------------------------------------------------------------------ robust vs eps */

/* The attack family of the robust column: "test_pgd20" for test_pgd20 and
 * test_pgd20_eps0.04706. */
static void family_of(const char *robust, char *out, size_t size) {
    const char *e = strstr(robust, "_eps");
    snprintf(out, size, "%.*s", (int)(e ? (size_t)(e - robust) : strlen(robust)), robust);
}

/* Budget of column `name` of run: the run's eps for the family itself, the suffix's
 * value for FAMILY_eps<v>, NaN for other columns. */
static double column_eps(const rm_report_run *run, const char *family, const char *name) {
    size_t n = strlen(family);
    if (strncmp(name, family, n) != 0) return NAN;
    if (name[n] == '\0') return run->cfg.eps;
    if (strncmp(name + n, "_eps", 4) != 0) return NAN;
    char *end;
    double v = strtod(name + n + 4, &end);
    return *end == '\0' && end != name + n + 4 ? v : NAN;
}

static rm_status robust_vs_eps(plotter *p, const char *gnuplot, const char *png, int svg) {
    const rm_report_table *t = p->t;
    if (!t->robust[0]) return RM_OK;
    char family[RM_METRIC_NAME_MAX];
    family_of(t->robust, family, sizeof family);
    /* every budget evaluated by some run, as the %.4g text the metric names use */
    int cap = 64, ne = 0;
    double *eps = malloc((size_t)cap * sizeof *eps), *v = malloc((size_t)(t->runs->n_runs + 1) * sizeof *v);
    if (!eps || !v) {
        free(eps), free(v);
        return rm_fail(RM_ERR_NOMEM, "out of memory writing robust_vs_eps");
    }
    for (int i = 0; i < t->runs->n_runs; i++) {
        if (!averaged(t, i)) continue;
        const rm_run_summary *s = &t->runs->runs[i].sum;
        for (int c = 0; c < s->n_metrics && ne < cap; c++) {
            double e = column_eps(&t->runs->runs[i], family, s->columns[c].name);
            char a[32], b[32];
            snprintf(a, sizeof a, "%.4g", e);
            int seen = isnan(e);
            for (int k = 0; k < ne && !seen; k++) {
                snprintf(b, sizeof b, "%.4g", eps[k]);
                seen = strcmp(a, b) == 0;
            }
            if (!seen) eps[ne++] = e;
        }
    }
    rm_status st = RM_OK;
    if (ne >= 2) {
        qsort(eps, (size_t)ne, sizeof *eps, cmp_double);
        const char *name = "robust_vs_eps";
        FILE *f;
        int blocks = 0;
        st = open_file(p, "robust_vs_eps.dat", &f);
        if (st == RM_OK) {
            fprintf(f, "# %s accuracy (%%) against the test budget, mean over each group's runs at the epoch rule's epoch\n"
                       "# one block per group (gnuplot index), columns:\n# eps_255 eps mean std n\n", family + 5);
            for (int gi = 0; gi < p->n_groups; gi++) {
                int wrote = 0;
                for (int k = 0; k < ne; k++) {
                    int nv = 0;
                    char want[32], have[32];
                    snprintf(want, sizeof want, "%.4g", eps[k]);
                    for (int i = 0; i < t->runs->n_runs; i++) {
                        if (!in_group(t, &p->groups[gi], i)) continue;
                        const rm_report_run *run = &t->runs->runs[i];
                        double val = NAN;
                        for (int c = 0; c < run->sum.n_metrics; c++) {
                            double e = column_eps(run, family, run->sum.columns[c].name);
                            snprintf(have, sizeof have, "%.4g", e);
                            if (!isnan(e) && strcmp(have, want) == 0 && t->run_sel[i] >= 0)
                                val = run->sum.columns[c].values[t->run_sel[i]];
                        }
                        v[nv++] = val;
                    }
                    double mean, std;
                    int n;
                    stats(v, nv, &mean, &std, &n);
                    if (n == 0) continue;
                    if (!wrote) fprintf(f, "%s# group %d: %s\n", blocks ? "\n\n" : "", blocks, p->groups[gi].label);
                    wrote = 1;
                    fprintf(f, "%.6g %.6g", eps[k] * 255.0, eps[k]);
                    write_num(f, mean);
                    write_num(f, std);
                    fprintf(f, " %d\n", n);
                }
                blocks += wrote;
            }
            st = close_file(p, "robust_vs_eps.dat", f);
        }
        if (st == RM_OK && blocks > 0) {
            st = open_file(p, "robust_vs_eps.gp", &f);
            if (st == RM_OK) {
                script_head(f, p, name, png, "robust accuracy against the test budget");
                fprintf(f, "set key outside right top\nset xlabel 'test eps (x 1/255)'\nset ylabel '%s accuracy (%%)'\nplot",
                        family + 5);
                for (int gi = 0, b = 0; gi < p->n_groups && b < blocks; gi++) {
                    fprintf(f, "%s \\\n  'robust_vs_eps.dat' index %d using 1:3:4 with yerrorlines lt %d title ",
                            b ? "," : "", b, b + 1);
                    gp_string(f, p->groups[gi].label);
                    b++;
                }
                fputc('\n', f);
                script_tail(f, name, png, svg);
                st = close_file(p, "robust_vs_eps.gp", f);
            }
            if (st == RM_OK) st = finish_plot(p, name, gnuplot);
        }
    }
    free(eps);
    free(v);
    return st;
}

/* ------------------------------------------------------------------ entry */

static rm_status collect_groups(plotter *p) {
    const rm_report_table *t = p->t;
    p->groups = calloc((size_t)t->n_rows * (size_t)t->n_colkeys + 1, sizeof *p->groups);
    if (!p->groups) return rm_fail(RM_ERR_NOMEM, "out of memory listing plot groups");
    for (int r = 0; r < t->n_rows; r++)
        for (int k = 0; k < t->n_colkeys; k++) {
            group g = {.row = r, .colkey = k};
            int any = 0;
            for (int i = 0; i < t->runs->n_runs && !any; i++) any = in_group(t, &g, i);
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
    char png[16] = "pngcairo";
    int svg = 1;
    if (gnuplot) {
        RM_TRY(rp_gnuplot_terminals(gnuplot, png, &svg));
        if (!png[0] && !svg) gnuplot = NULL; /* nothing to draw with: data and scripts only */
    }
    snprintf(res->png_terminal, sizeof res->png_terminal, "%s", png);
    res->svg = svg;
    plotter p = {.t = t, .dir = dir, .res = res};
    rm_status st = collect_groups(&p);
    if (st == RM_OK && p.n_groups > 0) st = accuracy_vs_epoch(&p, gnuplot, png, svg);
    if (st == RM_OK && p.n_groups > 0) st = heatmap(&p, gnuplot, png, svg);
    if (st == RM_OK && p.n_groups > 0) st = robust_vs_eps(&p, gnuplot, png, svg);
    free(p.groups);
    return st;
}
