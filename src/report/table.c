/* Building the table: select runs, resolve axes and metrics, pick each run's epoch,
 * group runs into rows and column keys, compute mean / sample std per cell, mark the
 * best cell of each column. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

/* ------------------------------------------------------------------ selection */

static int selected(const rm_report_run *run, const rm_report_options *o) {
    for (int s = 0; s < o->n_select; s++) {
        int setting = o->select[s].setting, match = 0, first = 1;
        for (int k = 0; k < s; k++) first &= o->select[k].setting != setting;
        if (!first) continue; /* this setting was checked with its first entry */
        for (int k = s; k < o->n_select && !match; k++)
            match = o->select[k].setting == setting && strcmp(run->setting[setting], o->select[k].value) == 0;
        if (!match) return 0;
    }
    return 1;
}

static rm_report_role role_of(const rm_report_run *run) {
    if (run->sum.status == RM_RUN_FAILED || run->sum.status == RM_RUN_DIVERGED) return RM_REPORT_FAILED;
    if (run->sum.rows <= 0) return RM_REPORT_EMPTY;
    if (run->sum.status == RM_RUN_COMPLETED) return RM_REPORT_USED;
    return RM_REPORT_PARTIAL; /* running or preempted */
}

/* ------------------------------------------------------------------ axes */

static int in_list(const int *list, int n, int v) {
    for (int i = 0; i < n; i++)
        if (list[i] == v) return 1;
    return 0;
}

/* Settings that never make a row: the replicate axis and bookkeeping. */
static int bookkeeping(int setting) {
    static const char *const names[] = {"seed", "run_id", "outdir", "data_dir", "checkpoint_every"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (setting == rm_config_setting_find(names[i])) return 1;
    return 0;
}

static rm_status default_rows(rm_report_table *t) {
    const rm_report_runs *runs = t->runs;
    int first = -1;
    t->n_row_axes = 0;
    for (int i = 0; i < runs->n_runs && first < 0; i++)
        if (t->role[i] != RM_REPORT_UNSELECTED) first = i;
    if (first < 0) return RM_OK;
    for (int s = 0; s < rm_config_setting_count(); s++) {
        if (bookkeeping(s) || in_list(t->col_axes, t->n_col_axes, s)) continue;
        int varies = 0;
        for (int i = first + 1; i < runs->n_runs && !varies; i++)
            varies = t->role[i] != RM_REPORT_UNSELECTED &&
                     strcmp(runs->runs[i].setting[s], runs->runs[first].setting[s]) != 0;
        if (!varies) continue;
        if (t->n_row_axes == RM_REPORT_MAX_AXES)
            return rm_fail(RM_ERR_ARG, "%s: more than %d settings vary between the runs; choose the rows with --rows",
                           runs->dir, RM_REPORT_MAX_AXES);
        t->row_axes[t->n_row_axes++] = s;
    }
    return RM_OK;
}

/* ------------------------------------------------------------------ ordering */

static int cmp_axis(const rm_report_runs *runs, int a, int i, int j) {
    const rm_report_run *x = &runs->runs[i], *y = &runs->runs[j];
    if (rm_config_setting_type(a) != RM_SETTING_STRING) {
        double u, v;
        rm_config_setting_value(&x->cfg, a, &u, NULL, 0);
        rm_config_setting_value(&y->cfg, a, &v, NULL, 0);
        if (u != v) return u < v ? -1 : 1;
    }
    return strcmp(x->setting[a], y->setting[a]);
}

static int cmp_key(const rm_report_runs *runs, const int *axes, int n, int i, int j) {
    for (int a = 0; a < n; a++) {
        int c = cmp_axis(runs, axes[a], i, j);
        if (c) return c;
    }
    return 0;
}

/* Stable merge sort of run indices by the key of `axes` (qsort has no context). */
static void sort_runs(const rm_report_runs *runs, const int *axes, int n_axes, int *idx, int *tmp, int n) {
    if (n < 2) return;
    int h = n / 2;
    sort_runs(runs, axes, n_axes, idx, tmp, h);
    sort_runs(runs, axes, n_axes, idx + h, tmp, n - h);
    int i = 0, j = h, k = 0;
    while (i < h || j < n)
        tmp[k++] = (j >= n || (i < h && cmp_key(runs, axes, n_axes, idx[i], idx[j]) <= 0)) ? idx[i++] : idx[j++];
    memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

/* Assigns key numbers in sorted order: out[run] = key, reps[key] = a run of the key. */
static int number_keys(const rm_report_runs *runs, const int *axes, int n_axes, int *idx, int *tmp, int n,
                       int *out, int *reps) {
    sort_runs(runs, axes, n_axes, idx, tmp, n);
    int keys = 0;
    for (int s = 0; s < n; s++) {
        if (s == 0 || cmp_key(runs, axes, n_axes, idx[s - 1], idx[s]) != 0) reps[keys++] = idx[s];
        out[idx[s]] = keys - 1;
    }
    return keys;
}

/* ------------------------------------------------------------------ cells */

static rm_report_cell *cell(rm_report_table *t, int r, int m, int k) {
    return &t->cells[((size_t)r * (size_t)t->n_metrics + (size_t)m) * (size_t)t->n_colkeys + (size_t)k];
}

static void fill_cell(rm_report_table *t, int r, int m, int k) {
    rm_report_cell *c = cell(t, r, m, k);
    const rm_report_metric *mt = &t->metrics[m];
    double sum = 0;
    c->mean = c->std = NAN;
    c->first_epoch = 0;
    for (int pass = 0; pass < 2; pass++) { /* two passes: mean, then squared deviations */
        double dev = 0;
        for (int i = 0; i < t->runs->n_runs; i++) {
            if (t->run_row[i] != r || t->run_colkey[i] != k) continue;
            if (t->role[i] != RM_REPORT_USED && t->role[i] != RM_REPORT_PARTIAL) continue;
            if (mt->kind == RM_REPORT_CO) {
                int64_t first;
                int co = rp_run_flag(&t->runs->runs[i], mt->column, &first);
                if (pass || co < 0) continue;
                c->n++;
                c->n_partial += t->role[i] == RM_REPORT_PARTIAL;
                sum += co;
                if (co && (c->first_epoch == 0 || first < c->first_epoch)) c->first_epoch = first;
                continue;
            }
            double v = rp_run_value(t, i, m);
            if (isnan(v)) continue;
            if (pass == 0) {
                c->n++;
                c->n_partial += t->role[i] == RM_REPORT_PARTIAL;
                sum += v;
            } else {
                dev += (v - c->mean) * (v - c->mean);
            }
        }
        if (pass == 0 && c->n > 0) c->mean = mt->kind == RM_REPORT_CO ? sum : sum / c->n;
        if (pass == 1 && c->n > 1 && mt->kind != RM_REPORT_CO) c->std = sqrt(dev / (c->n - 1));
    }
}

/* Rows r and q agree on the --best-within axes (always, without them). */
static int same_best_group(const rm_report_table *t, int r, int q) {
    for (int i = 0; i < t->n_best_within; i++)
        if (strcmp(rm_report_row_value(t, r, t->best_within[i]), rm_report_row_value(t, q, t->best_within[i])))
            return 0;
    return 1;
}

/* Bold: cells whose mean, at the precision shown, equals the best mean of the column
 * among the rows of group g's (every row without --best-within). */
static void mark_best_in(rm_report_table *t, int m, int k, int g) {
    const rm_report_metric *mt = &t->metrics[m];
    int best = -1, with_values = 0;
    for (int r = 0; r < t->n_rows; r++) {
        const rm_report_cell *c = rm_report_cell_at(t, r, m, k);
        if (c->n == 0 || !same_best_group(t, r, g)) continue;
        with_values++;
        double b = best < 0 ? 0 : rm_report_cell_at(t, best, m, k)->mean;
        if (best < 0 || (mt->better == RM_REPORT_HIGHER ? c->mean > b : c->mean < b)) best = r;
    }
    if (with_values < 2) return;
    char want[64], have[64];
    rp_number(want, sizeof want, rm_report_cell_at(t, best, m, k)->mean, mt->decimals);
    for (int r = 0; r < t->n_rows; r++) {
        rm_report_cell *c = cell(t, r, m, k);
        if (c->n == 0 || !same_best_group(t, r, g)) continue;
        rp_number(have, sizeof have, c->mean, mt->decimals);
        c->best = strcmp(have, want) == 0;
    }
}

static void mark_best(rm_report_table *t, int m, int k) {
    if (t->metrics[m].better == RM_REPORT_NO_BEST) return;
    for (int g = 0; g < t->n_rows; g++) {
        int first = 1; /* g is the first row of its group */
        for (int r = 0; r < g && first; r++) first = !same_best_group(t, r, g);
        if (first) mark_best_in(t, m, k, g);
    }
}

/* ------------------------------------------------------------------ build */

static rm_status resolve_metrics(rm_report_table *t, const rm_report_options *o) {
    char (*cols)[RM_METRIC_NAME_MAX] = calloc(256, sizeof *cols);
    if (!cols) return rm_fail(RM_ERR_NOMEM, "out of memory resolving metrics");
    int n_cols = rp_column_union(t->runs, t->role, cols, 256);
    rp_find_robust(cols, n_cols, t->robust);
    rm_status st = RM_OK;
    if (o->n_metrics == 0) {
        rp_default_metrics(t, cols, n_cols);
    } else {
        for (int i = 0; i < o->n_metrics && st == RM_OK; i++) {
            st = rp_resolve_metric(o->metrics[i], cols, n_cols, t->robust, &t->metrics[i]);
            for (int j = 0; j < i && st == RM_OK; j++)
                if (strcmp(t->metrics[j].name, t->metrics[i].name) == 0)
                    st = rm_fail(RM_ERR_ARG, "--metric: '%s' and '%s' are the same metric", o->metrics[j],
                                 o->metrics[i]);
        }
        t->n_metrics = o->n_metrics;
        t->metrics_given = 1;
    }
    free(cols);
    return st;
}

/* --best-within: each setting must be a row axis; kept as its position there. */
static rm_status set_best_within(rm_report_table *t, const rm_report_options *o) {
    t->n_best_within = 0;
    for (int i = 0; i < o->n_best_within; i++) {
        int at = -1;
        for (int a = 0; a < t->n_row_axes && at < 0; a++)
            if (t->row_axes[a] == o->best_within[i]) at = a;
        if (at < 0) {
            char rows[256] = "none";
            for (int a = 0, n = 0; a < t->n_row_axes && n < (int)sizeof rows; a++)
                n += snprintf(rows + n, sizeof rows - (size_t)n, "%s%s", a ? ", " : "",
                              rm_config_setting_name(t->row_axes[a]));
            return rm_fail(RM_ERR_ARG, "--best-within: setting %s is not a row axis (rows: %s)",
                           rm_config_setting_name(o->best_within[i]), rows);
        }
        t->best_within[t->n_best_within++] = at;
    }
    return RM_OK;
}

static rm_status set_axes(rm_report_table *t, const rm_report_options *o) {
    t->n_col_axes = o->n_cols;
    memcpy(t->col_axes, o->cols, sizeof t->col_axes);
    if (o->n_rows < 0) {
        RM_TRY(default_rows(t));
        return set_best_within(t, o);
    }
    t->n_row_axes = o->n_rows;
    memcpy(t->row_axes, o->rows, sizeof t->row_axes);
    for (int a = 0; a < t->n_row_axes; a++)
        if (in_list(t->col_axes, t->n_col_axes, t->row_axes[a]))
            return rm_fail(RM_ERR_ARG, "setting %s is both a row and a column axis",
                           rm_config_setting_name(t->row_axes[a]));
    return set_best_within(t, o);
}

static void describe_selection(rm_report_table *t, const rm_report_options *o) {
    size_t n = 0;
    t->selection[0] = '\0';
    for (int s = 0; s < o->n_select && n < sizeof t->selection; s++)
        n += (size_t)snprintf(t->selection + n, sizeof t->selection - n, "%s%s=%s", s ? ", " : "",
                              rm_config_setting_name(o->select[s].setting), o->select[s].value);
}

static rm_status group(rm_report_table *t) {
    const rm_report_runs *runs = t->runs;
    int n = 0, nr = runs->n_runs;
    int *idx = malloc((size_t)(nr + 1) * sizeof *idx), *tmp = malloc((size_t)(nr + 1) * sizeof *tmp);
    int *reps = malloc((size_t)(nr + 1) * sizeof *reps);
    t->colkey_run = malloc((size_t)(nr + 1) * sizeof *t->colkey_run);
    if (!idx || !tmp || !reps || !t->colkey_run) {
        free(idx), free(tmp), free(reps);
        return rm_fail(RM_ERR_NOMEM, "out of memory grouping %d runs", nr);
    }
    for (int i = 0; i < nr; i++)
        if (t->role[i] != RM_REPORT_UNSELECTED) idx[n++] = i;
    t->n_rows = number_keys(runs, t->row_axes, t->n_row_axes, idx, tmp, n, t->run_row, reps);
    t->n_colkeys = number_keys(runs, t->col_axes, t->n_col_axes, idx, tmp, n, t->run_colkey, t->colkey_run);
    if (t->n_col_axes == 0) t->n_colkeys = 1; /* the metrics alone make the columns */
    rm_status st = RM_OK;
    if ((int64_t)t->n_colkeys * t->n_metrics > 4096)
        st = rm_fail(RM_ERR_ARG, "%d column keys x %d metrics: too many table columns; fewer --cols or --metric",
                     t->n_colkeys, t->n_metrics);
    if (st == RM_OK) {
        t->rows = calloc((size_t)(t->n_rows + 1), sizeof *t->rows);
        t->cells = calloc((size_t)t->n_rows * (size_t)t->n_metrics * (size_t)t->n_colkeys + 1, sizeof *t->cells);
        if (!t->rows || !t->cells) st = rm_fail(RM_ERR_NOMEM, "out of memory for a table of %d rows", t->n_rows);
    }
    for (int r = 0; st == RM_OK && r < t->n_rows; r++) t->rows[r].run = reps[r];
    free(idx), free(tmp), free(reps);
    return st;
}

rm_status rm_report_build(const rm_report_runs *runs, const rm_report_options *o, rm_report_table **out) {
    *out = NULL;
    rm_report_table *t = calloc(1, sizeof *t);
    if (!t) return rm_fail(RM_ERR_NOMEM, "out of memory building the report");
    t->runs = runs;
    t->epoch_rule = o->epoch_rule;
    t->epoch = o->epoch;
    int nr = runs->n_runs;
    t->role = calloc((size_t)nr + 1, sizeof *t->role);
    t->run_row = malloc(((size_t)nr + 1) * sizeof *t->run_row);
    t->run_colkey = malloc(((size_t)nr + 1) * sizeof *t->run_colkey);
    t->run_sel = malloc(((size_t)nr + 1) * sizeof *t->run_sel);
    if (!t->role || !t->run_row || !t->run_colkey || !t->run_sel) {
        rm_report_table_free(t);
        return rm_fail(RM_ERR_NOMEM, "out of memory building the report of %d runs", nr);
    }
    for (int i = 0; i < nr; i++) {
        t->run_row[i] = t->run_colkey[i] = -1;
        t->run_sel[i] = -1;
        t->role[i] = selected(&runs->runs[i], o) ? role_of(&runs->runs[i]) : RM_REPORT_UNSELECTED;
        t->n_selected += t->role[i] != RM_REPORT_UNSELECTED;
        t->n_used += t->role[i] == RM_REPORT_USED || t->role[i] == RM_REPORT_PARTIAL;
        t->n_partial += t->role[i] == RM_REPORT_PARTIAL;
        t->n_failed += t->role[i] == RM_REPORT_FAILED;
        t->n_empty += t->role[i] == RM_REPORT_EMPTY;
    }
    describe_selection(t, o);
    rm_status st = resolve_metrics(t, o);
    if (st == RM_OK) st = set_axes(t, o);
    if (st == RM_OK) st = group(t);
    if (st != RM_OK) {
        rm_report_table_free(t);
        return st;
    }
    for (int i = 0; i < nr; i++) {
        if (t->role[i] == RM_REPORT_USED || t->role[i] == RM_REPORT_PARTIAL)
            t->run_sel[i] = rp_select_row(t, &runs->runs[i]);
        if (t->run_row[i] < 0) continue;
        rm_report_row *row = &t->rows[t->run_row[i]];
        row->n_used += t->role[i] == RM_REPORT_USED || t->role[i] == RM_REPORT_PARTIAL;
        row->n_partial += t->role[i] == RM_REPORT_PARTIAL;
        row->n_failed += t->role[i] == RM_REPORT_FAILED;
        row->n_empty += t->role[i] == RM_REPORT_EMPTY;
    }
    for (int r = 0; r < t->n_rows; r++)
        for (int m = 0; m < t->n_metrics; m++)
            for (int k = 0; k < t->n_colkeys; k++) {
                fill_cell(t, r, m, k);
                int cn = rm_report_cell_at(t, r, m, k)->n;
                if (cn > t->rows[r].n) t->rows[r].n = cn;
            }
    for (int m = 0; m < t->n_metrics; m++)
        for (int k = 0; k < t->n_colkeys; k++) mark_best(t, m, k);
    *out = t;
    return RM_OK;
}

void rm_report_table_free(rm_report_table *t) {
    if (!t) return;
    free(t->role);
    free(t->run_row);
    free(t->run_colkey);
    free(t->run_sel);
    free(t->rows);
    free(t->colkey_run);
    free(t->cells);
    free(t);
}

const rm_report_cell *rm_report_cell_at(const rm_report_table *t, int row, int metric, int colkey) {
    if (!t || row < 0 || row >= t->n_rows || metric < 0 || metric >= t->n_metrics || colkey < 0 ||
        colkey >= t->n_colkeys)
        return NULL;
    return cell((rm_report_table *)t, row, metric, colkey);
}

const char *rm_report_row_value(const rm_report_table *t, int r, int a) {
    if (!t || r < 0 || r >= t->n_rows || a < 0 || a >= t->n_row_axes) return "";
    return t->runs->runs[t->rows[r].run].setting[t->row_axes[a]];
}

const char *rm_report_colkey_value(const rm_report_table *t, int k, int a) {
    if (!t || k < 0 || k >= t->n_colkeys || a < 0 || a >= t->n_col_axes) return "";
    return t->runs->runs[t->colkey_run[k]].setting[t->col_axes[a]];
}

int rm_report_metric_find(const rm_report_table *t, const char *name) {
    for (int m = 0; t && name && m < t->n_metrics; m++)
        if (strcmp(t->metrics[m].name, name) == 0) return m;
    return -1;
}
