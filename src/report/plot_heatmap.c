/* Plot: a heat map of one metric over two numeric row axes. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

/* ------------------------------------------------------------------ heat map */

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

rm_status rp_plot_heatmap(rp_plotter *p) {
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
        qsort(u[a], (size_t)nu[a], sizeof(double), rp_cmp_double);
    }
    char name[RM_METRIC_NAME_MAX + 16], file[RM_METRIC_NAME_MAX + 32];
    snprintf(name, sizeof name, "heatmap_%s", t->metrics[m].name);
    snprintf(file, sizeof file, "%s.dat", name);
    FILE *f;
    rm_status st = rp_plot_open(p, file, &f);
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
                rp_plot_num(f, c && c->n ? c->mean : NAN);
                fprintf(f, " %d\n", c ? c->n : 0);
            }
            fputc('\n', f);
        }
        st = rp_plot_close(p, file, f);
    }
    if (st == RM_OK) {
        snprintf(file, sizeof file, "%s.gp", name);
        st = rp_plot_open(p, file, &f);
    }
    if (st == RM_OK) {
        char title[200];
        snprintf(title, sizeof title, "%s: mean over each cell's runs", t->metrics[m].name);
        rp_plot_head(f, p, name, title);
        for (int a = 0; a < 2; a++) {
            fprintf(f, "set %ctics (", a ? 'y' : 'x');
            for (int i = 0; i < nu[a]; i++) {
                char num[40];
                rm_format_number(u[a][i], num, sizeof num);
                fprintf(f, "%s'%s' %d", i ? ", " : "", num, i);
            }
            fprintf(f, ")\nset %crange [-0.5:%d.5]\nset %clabel ", a ? 'y' : 'x', nu[a] - 1, a ? 'y' : 'x');
            rp_gp_string(f, rm_config_setting_name(t->row_axes[a]));
            fputc('\n', f);
        }
        fputs("set cblabel ", f);
        rp_gp_string(f, t->metrics[m].name);
        fprintf(f, "\nset palette rgbformulae 33,13,10\nunset key\nunset grid\n"
                   "plot '%s.dat' using 1:2:(0.5):(0.5):3 with boxxyerror fillstyle solid 1.0 noborder lc palette, \\\n"
                   "  '' using 1:2:($4 > 0 ? sprintf('%%.%df', $3) : '') with labels\n",
                name, t->metrics[m].decimals);
        rp_plot_tail(f, p, name);
        st = rp_plot_close(p, file, f);
    }
    if (st == RM_OK) st = rp_plot_finish(p, name);
    free(u[0]), free(u[1]);
    return st;
}

