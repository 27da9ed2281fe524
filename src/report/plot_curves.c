/* Plot: mean clean and robust accuracy against the epoch, one curve pair per group. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

/* ------------------------------------------------------------------ accuracy vs epoch */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Epochs any run of g has, sorted, without repeats. */
static int group_epochs(const rm_report_table *t, const rp_group *g, int64_t **out) {
    int64_t n = 0;
    for (int i = 0; i < t->runs->n_runs; i++)
        if (rp_plot_in_group(t, g, i)) n += t->runs->runs[i].sum.rows;
    *out = malloc((size_t)(n + 1) * sizeof **out);
    if (!*out) return -1;
    int k = 0;
    for (int i = 0; i < t->runs->n_runs; i++)
        if (rp_plot_in_group(t, g, i))
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

rm_status rp_plot_curves(rp_plotter *p) {
    const rm_report_table *t = p->t;
    const char *cols[2] = {"test_clean", t->robust};
    const char *name = "accuracy_vs_epoch";
    double *v = malloc((size_t)(t->runs->n_runs + 1) * sizeof *v);
    int *has = calloc((size_t)p->n_groups + 1, sizeof *has);
    FILE *f = NULL;
    rm_status st = v && has ? rp_plot_open(p, "accuracy_vs_epoch.dat", &f)
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
                    if (rp_plot_in_group(t, &p->groups[gi], i)) v[k++] = at_epoch(&t->runs->runs[i], cols[c], epochs[e]);
                rp_plot_stats(v, k, &mean[c], &std[c], &n[c]);
            }
            if (n[0] == 0 && n[1] == 0) continue;
            if (!wrote) fprintf(f, "%s# group %d: %s\n", blocks ? "\n\n" : "", blocks, p->groups[gi].label);
            wrote = 1;
            if (epochs[e] > last) last = epochs[e];
            fprintf(f, "%lld", (long long)epochs[e]);
            for (int c = 0; c < 2; c++) {
                rp_plot_num(f, mean[c]);
                rp_plot_num(f, std[c]);
                fprintf(f, " %d", n[c]);
            }
            fputc('\n', f);
        }
        free(epochs);
        has[gi] = wrote;
        blocks += wrote;
    }
    if (f && st == RM_OK) st = rp_plot_close(p, "accuracy_vs_epoch.dat", f);
    else if (f) fclose(f);
    if (st == RM_OK && blocks > 0) {
        st = rp_plot_open(p, "accuracy_vs_epoch.gp", &f);
        if (st == RM_OK) {
            rp_plot_head(f, p, name, "mean test accuracy over each group's runs");
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
                    rp_gp_string(f, title);
                }
                b++;
            }
            fputc('\n', f);
            rp_plot_tail(f, p, name);
            st = rp_plot_close(p, "accuracy_vs_epoch.gp", f);
        }
        if (st == RM_OK) st = rp_plot_finish(p, name);
    }
    free(v);
    free(has);
    return st;
}

