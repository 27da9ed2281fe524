/* Plot: robust accuracy against the test budget, one curve per group. The attack family
 * is that of the first PGD or CW metric the table shows (final_pgd20 when the table
 * lists final_pgd20_eps0.1, ...), else the robust column that picks the best epoch. The
 * x axis is in 1/255 when every budget is a whole number of 1/255 (CIFAR habits), else
 * in pixel units (Fashion-MNIST's 0.1, 0.2, ...). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

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

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* The column whose family is plotted: the first listed PGD/CW accuracy, else t->robust. */
static const char *plotted_column(const rm_report_table *t) {
    static const char *const prefixes[] = {"test_pgd", "test_cw", "final_pgd", "final_cw"};
    for (int m = 0; m < t->n_metrics; m++)
        for (int k = 0; k < 4; k++)
            if (t->metrics[m].kind == RM_REPORT_AT_EPOCH && starts_with(t->metrics[m].column, prefixes[k]))
                return t->metrics[m].column;
    return t->robust;
}

/* Every budget is k/255 for a whole k (to 4 significant digits, as metric names keep). */
static int all_in_255ths(const double *eps, int n) {
    for (int k = 0; k < n; k++)
        if (fabs(eps[k] * 255.0 - round(eps[k] * 255.0)) > 5e-4 * eps[k] * 255.0) return 0;
    return 1;
}

rm_status rp_plot_eps(rp_plotter *p) {
    const rm_report_table *t = p->t;
    const char *column = plotted_column(t);
    if (!column[0]) return RM_OK;
    char family[RM_METRIC_NAME_MAX];
    family_of(column, family, sizeof family);
    /* the label: the family without its "test_" prefix, final_ kept */
    const char *label = starts_with(family, "test_") ? family + 5 : family;
    /* every budget evaluated by some run, as the %.4g text the metric names use */
    int cap = 64, ne = 0;
    double *eps = malloc((size_t)cap * sizeof *eps), *v = malloc((size_t)(t->runs->n_runs + 1) * sizeof *v);
    if (!eps || !v) {
        free(eps), free(v);
        return rm_fail(RM_ERR_NOMEM, "out of memory writing robust_vs_eps");
    }
    for (int i = 0; i < t->runs->n_runs; i++) {
        if (!rp_plot_averaged(t, i)) continue;
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
        qsort(eps, (size_t)ne, sizeof *eps, rp_cmp_double);
        const char *name = "robust_vs_eps";
        FILE *f;
        int blocks = 0;
        st = rp_plot_open(p, "robust_vs_eps.dat", &f);
        if (st == RM_OK) {
            fprintf(f, "# %s accuracy (%%) against the test budget, mean over each group's runs at the epoch rule's epoch\n"
                       "# one block per group (gnuplot index), columns:\n# eps_255 eps mean std n\n", label);
            for (int gi = 0; gi < p->n_groups; gi++) {
                int wrote = 0;
                for (int k = 0; k < ne; k++) {
                    int nv = 0;
                    char want[32], have[32];
                    snprintf(want, sizeof want, "%.4g", eps[k]);
                    for (int i = 0; i < t->runs->n_runs; i++) {
                        if (!rp_plot_in_group(t, &p->groups[gi], i)) continue;
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
                    rp_plot_stats(v, nv, &mean, &std, &n);
                    if (n == 0) continue;
                    if (!wrote) fprintf(f, "%s# group %d: %s\n", blocks ? "\n\n" : "", blocks, p->groups[gi].label);
                    wrote = 1;
                    fprintf(f, "%.6g %.6g", eps[k] * 255.0, eps[k]);
                    rp_plot_num(f, mean);
                    rp_plot_num(f, std);
                    fprintf(f, " %d\n", n);
                }
                blocks += wrote;
            }
            st = rp_plot_close(p, "robust_vs_eps.dat", f);
        }
        if (st == RM_OK && blocks > 0) {
            st = rp_plot_open(p, "robust_vs_eps.gp", &f);
            if (st == RM_OK) {
                const int in_255ths = all_in_255ths(eps, ne);
                rp_plot_head(f, p, name, "robust accuracy against the test budget");
                fprintf(f, "set key outside right top\nset xlabel '%s'\nset ylabel '%s accuracy (%%)'\n"
                           "set offsets graph 0.05, graph 0.05, graph 0.05, graph 0.05\nplot",
                        in_255ths ? "test eps (x 1/255)" : "test eps", label);
                /* the line and the error bars apart: a group of one run has no std (NaN,
                 * a missing value), which would drop its points from yerrorlines */
                const int x = in_255ths ? 1 : 2;
                for (int gi = 0, b = 0; gi < p->n_groups && b < blocks; gi++) {
                    fprintf(f, "%s \\\n  'robust_vs_eps.dat' index %d using %d:3 with linespoints lt %d title ",
                            b ? "," : "", b, x, b + 1);
                    rp_gp_string(f, p->groups[gi].label);
                    fprintf(f, ", \\\n  'robust_vs_eps.dat' index %d using %d:3:4 with yerrorbars lt %d notitle", b, x,
                            b + 1);
                    b++;
                }
                fputc('\n', f);
                rp_plot_tail(f, p, name);
                st = rp_plot_close(p, "robust_vs_eps.gp", f);
            }
            if (st == RM_OK) st = rp_plot_finish(p, name);
        }
    }
    free(eps);
    free(v);
    return st;
}

