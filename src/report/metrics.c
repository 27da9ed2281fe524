/* Metrics of the report: which run-file columns a table metric reads, the epoch rule,
 * and the value one run gives. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/report_internal.h"

static int starts_with(const char *s, const char *head) { return strncmp(s, head, strlen(head)) == 0; }

int rp_column_union(const rm_report_runs *runs, const rm_report_role *role, char (*names)[RM_METRIC_NAME_MAX],
                    int max) {
    int n = 0;
    for (int i = 0; i < runs->n_runs; i++) {
        if (role[i] == RM_REPORT_UNSELECTED) continue;
        const rm_run_summary *s = &runs->runs[i].sum;
        for (int c = 0; c < s->n_metrics; c++) {
            int seen = 0;
            for (int k = 0; k < n && !seen; k++) seen = strcmp(names[k], s->columns[c].name) == 0;
            if (!seen && n < max) snprintf(names[n++], RM_METRIC_NAME_MAX, "%s", s->columns[c].name);
        }
    }
    return n;
}

/* First column starting with prefix: at the run's own budget when own_budget, else any. */
static const char *first_attack(char (*names)[RM_METRIC_NAME_MAX], int n, const char *prefix, int own_budget) {
    for (int k = 0; k < n; k++)
        if (starts_with(names[k], prefix) && (!own_budget || !strstr(names[k], "_eps"))) return names[k];
    return NULL;
}

void rp_find_robust(char (*names)[RM_METRIC_NAME_MAX], int n, char *out) {
    const char *r = first_attack(names, n, "test_pgd", 1);
    if (!r) r = first_attack(names, n, "test_pgd", 0);
    if (!r) r = first_attack(names, n, "test_cw", 1);
    if (!r) r = first_attack(names, n, "test_cw", 0);
    snprintf(out, RM_METRIC_NAME_MAX, "%s", r ? r : "");
}

static int has_column(char (*cols)[RM_METRIC_NAME_MAX], int n, const char *name) {
    for (int k = 0; k < n; k++)
        if (strcmp(cols[k], name) == 0) return 1;
    return 0;
}

static void set_metric(rm_report_metric *m, const char *label, const char *column, rm_report_metric_kind kind,
                       rm_report_better better, int decimals) {
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", label);
    snprintf(m->column, sizeof m->column, "%s", column);
    m->kind = kind;
    m->better = better;
    m->decimals = decimals;
}

/* A plain column read at the selected epoch; direction and precision by its name. */
static void column_metric(rm_report_metric *m, const char *column) {
    if (starts_with(column, "test_"))
        set_metric(m, column + 5, column, RM_REPORT_AT_EPOCH, RM_REPORT_HIGHER, 1);
    else if (starts_with(column, "final_") && !starts_with(column, "final_gm_") &&
             !starts_with(column, "final_zero_grad_")) /* final evaluation: last epoch's row only */
        set_metric(m, column, column, RM_REPORT_AT_EPOCH, RM_REPORT_HIGHER, 1);
    else if (strcmp(column, "train_acc") == 0)
        set_metric(m, column, column, RM_REPORT_AT_EPOCH, RM_REPORT_HIGHER, 1);
    else if (starts_with(column, "loss"))
        set_metric(m, column, column, RM_REPORT_AT_EPOCH, RM_REPORT_LOWER, 4);
    else
        set_metric(m, column, column, RM_REPORT_AT_EPOCH, RM_REPORT_NO_BEST, 4);
}

/* Metrics averaged over epochs, or derived: 0 when name is none of them; *needs names
 * the missing column when the runs lack what the metric reads. */
static int derived_metric(const char *name, char (*cols)[RM_METRIC_NAME_MAX], int n_cols, const char *robust,
                          rm_report_metric *m, const char **needs) {
    *needs = NULL;
    if (!strcmp(name, "epoch_s") || !strcmp(name, "epoch_seconds") || !strcmp(name, "epoch_time")) {
        set_metric(m, "epoch_s", "epoch_seconds", RM_REPORT_EPOCH_MEAN, RM_REPORT_LOWER, 2);
    } else if (!strcmp(name, "train_seconds") || !strcmp(name, "eval_seconds")) {
        set_metric(m, name, name, RM_REPORT_EPOCH_MEAN, RM_REPORT_LOWER, 2);
    } else if (!strcmp(name, "images_per_s")) {
        set_metric(m, name, name, RM_REPORT_EPOCH_MEAN, RM_REPORT_HIGHER, 0);
    } else if (!strcmp(name, "co") || !strcmp(name, "co_flag")) {
        set_metric(m, "co", "co_flag", RM_REPORT_CO, RM_REPORT_NO_BEST, 0);
    } else if (!strcmp(name, "gm_square") || !strcmp(name, "gm_zero_grad") || !strcmp(name, "gm_monotone")) {
        set_metric(m, name, name, RM_REPORT_CO, RM_REPORT_NO_BEST, 0); /* flags, counted like co */
    } else if (!strcmp(name, "gap")) {
        set_metric(m, "gap", robust, RM_REPORT_GAP, RM_REPORT_NO_BEST, 1);
        snprintf(m->column2, sizeof m->column2, "test_clean");
        *needs = robust[0] && has_column(cols, n_cols, "test_clean") ? NULL : "a pgd or cw column and test_clean";
        return 1;
    } else {
        return 0;
    }
    if (!has_column(cols, n_cols, m->column)) *needs = m->column;
    return 1;
}

rm_status rp_resolve_metric(const char *name, char (*cols)[RM_METRIC_NAME_MAX], int n_cols, const char *robust,
                            rm_report_metric *m) {
    const char *needs;
    if (derived_metric(name, cols, n_cols, robust, m, &needs)) {
        if (!needs) return RM_OK;
    } else {
        char test[RM_METRIC_NAME_MAX + 8];
        snprintf(test, sizeof test, "test_%s", name);
        if (!starts_with(name, "test_") && has_column(cols, n_cols, test)) {
            column_metric(m, test);
            return RM_OK;
        }
        if (has_column(cols, n_cols, name)) {
            column_metric(m, name);
            return RM_OK;
        }
        needs = name;
    }
    char list[2048];
    size_t k = 0;
    list[0] = '\0';
    for (int c = 0; c < n_cols && k < sizeof list; c++)
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", c ? ", " : "",
                              starts_with(cols[c], "test_") ? cols[c] + 5 : cols[c]);
    if (k < sizeof list) snprintf(list + k, sizeof list - k, "%sgap, epoch_s, co", n_cols ? ", " : "");
    return rm_fail(RM_ERR_ARG, "--metric %s: the selected runs have no column %s (available: %s)", name, needs, list);
}

void rp_default_metrics(rm_report_table *t, char (*cols)[RM_METRIC_NAME_MAX], int n_cols) {
    t->n_metrics = 0;
    for (int c = 0; c < n_cols && t->n_metrics < RM_REPORT_MAX_METRICS; c++)
        if (starts_with(cols[c], "test_")) column_metric(&t->metrics[t->n_metrics++], cols[c]);
    static const char *const extra[] = {"gap", "epoch_s", "images_per_s", "co", "gm_square", "gm_zero_grad",
                                        "gm_monotone"};
    for (size_t e = 0; e < sizeof extra / sizeof *extra && t->n_metrics < RM_REPORT_MAX_METRICS; e++) {
        const char *needs;
        rm_report_metric m;
        derived_metric(extra[e], cols, n_cols, t->robust, &m, &needs);
        if (!needs) t->metrics[t->n_metrics++] = m;
    }
}

/* Last row where any test_* value is present; the last row if the run has no test_*. */
static int64_t last_evaluated(const rm_run_summary *s) {
    int any_test = 0;
    for (int64_t r = s->rows - 1; r >= 0; r--)
        for (int c = 0; c < s->n_metrics; c++) {
            if (!starts_with(s->columns[c].name, "test_")) continue;
            any_test = 1;
            if (!isnan(s->columns[c].values[r])) return r;
        }
    return any_test ? -1 : s->rows - 1;
}

int64_t rp_select_row(const rm_report_table *t, const rm_report_run *run) {
    const rm_run_summary *s = &run->sum;
    if (s->rows <= 0) return -1;
    switch (t->epoch_rule) {
    case RM_REPORT_EPOCH_FIXED:
        for (int64_t r = 0; r < s->rows; r++)
            if (s->epoch[r] == t->epoch) return r;
        return -1;
    case RM_REPORT_EPOCH_BEST:
        if (t->robust[0]) {
            int c = rm_run_summary_find(s, t->robust);
            if (c < 0) return -1;
            int64_t best = -1;
            for (int64_t r = 0; r < s->rows; r++) {
                double v = s->columns[c].values[r];
                if (!isnan(v) && (best < 0 || v > s->columns[c].values[best])) best = r; /* ties: earliest */
            }
            return best;
        }
        return last_evaluated(s);
    case RM_REPORT_EPOCH_LAST: return last_evaluated(s);
    }
    return -1;
}

static double at_row(const rm_run_summary *s, const char *column, int64_t row) {
    int c = rm_run_summary_find(s, column);
    if (c < 0 || row < 0 || row >= s->rows) return NAN;
    return s->columns[c].values[row];
}

double rp_run_value(const rm_report_table *t, int run, int m) {
    const rm_report_metric *mt = &t->metrics[m];
    const rm_run_summary *s = &t->runs->runs[run].sum;
    int64_t row = t->run_sel[run];
    switch (mt->kind) {
    case RM_REPORT_AT_EPOCH: return at_row(s, mt->column, row);
    case RM_REPORT_GAP: return at_row(s, mt->column, row) - at_row(s, mt->column2, row); /* NaN propagates */
    case RM_REPORT_EPOCH_MEAN: {
        int c = rm_run_summary_find(s, mt->column);
        double sum = 0;
        int n = 0;
        for (int64_t r = 0; c >= 0 && r < s->rows; r++)
            if (isfinite(s->columns[c].values[r])) {
                sum += s->columns[c].values[r];
                n++;
            }
        return n ? sum / n : NAN;
    }
    case RM_REPORT_CO: break;
    }
    return NAN;
}

int rp_run_flag(const rm_report_run *run, const char *column, int64_t *first_epoch) {
    const rm_run_summary *s = &run->sum;
    *first_epoch = 0;
    int c = rm_run_summary_find(s, column), evaluated = 0;
    for (int64_t r = 0; c >= 0 && r < s->rows; r++) {
        double v = s->columns[c].values[r];
        if (isnan(v)) continue;
        evaluated = 1;
        if (v >= 0.5) {
            *first_epoch = s->epoch[r];
            return 1;
        }
    }
    return evaluated ? 0 : -1;
}
