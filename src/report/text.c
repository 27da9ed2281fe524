/* Words shared by the Markdown and LaTeX tables: cell text, caption, footnotes, labels,
 * plus the small text buffer every writer uses. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

/* ------------------------------------------------------------------ buffer */

void rp_buf_init(rp_buf *b) { memset(b, 0, sizeof *b); }
void rp_buf_free(rp_buf *b) {
    free(b->p);
    rp_buf_init(b);
}
void rp_buf_clear(rp_buf *b) {
    b->n = 0;
    if (b->p) b->p[0] = '\0';
}

static int reserve(rp_buf *b, size_t more) {
    if (b->oom) return 0;
    if (b->n + more + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void rp_printf(rp_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0 || !reserve(b, (size_t)len)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)len;
}

void rp_puts(rp_buf *b, const char *s) {
    size_t len = strlen(s);
    if (!reserve(b, len)) return;
    memcpy(b->p + b->n, s, len + 1);
    b->n += len;
}

char *rp_buf_take(rp_buf *b) {
    if (b->oom) {
        rp_buf_free(b);
        return NULL;
    }
    char *p = b->p ? b->p : calloc(1, 1);
    rp_buf_init(b);
    return p;
}

void rp_escaped(rp_buf *b, const char *text, rp_style style) {
    for (const char *p = text; *p; p++) {
        char c[2] = {*p, '\0'};
        if (style == RP_MARKDOWN) {
            rp_puts(b, *p == '|' ? "\\|" : c);
            continue;
        }
        switch (*p) {
        case '_': case '%': case '&': case '#': case '$': case '{': case '}': rp_printf(b, "\\%c", *p); break;
        case '~': rp_puts(b, "\\textasciitilde{}"); break;
        case '^': rp_puts(b, "\\textasciicircum{}"); break;
        case '\\': rp_puts(b, "\\textbackslash{}"); break;
        default: rp_puts(b, c);
        }
    }
}

size_t rp_width(const char *s) {
    size_t w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

void rp_number(char *buf, size_t size, double v, int decimals) {
    snprintf(buf, size, "%.*f", decimals, v);
    if (buf[0] == '-' && strspn(buf + 1, "0.") == strlen(buf + 1)) memmove(buf, buf + 1, strlen(buf)); /* -0.0 */
}

/* ------------------------------------------------------------------ labels */

void rp_colkey_label(rp_buf *b, const rm_report_table *t, int k, const char *join) {
    for (int a = 0; a < t->n_col_axes; a++)
        rp_printf(b, "%s%s=%s", a ? join : "", rm_config_setting_name(t->col_axes[a]), rm_report_colkey_value(t, k, a));
}

void rp_row_label(rp_buf *b, const rm_report_table *t, int r, const char *join) {
    for (int a = 0; a < t->n_row_axes; a++)
        rp_printf(b, "%s%s=%s", a ? join : "", rm_config_setting_name(t->row_axes[a]), rm_report_row_value(t, r, a));
}

void rp_column_label(rp_buf *b, const rm_report_table *t, int m, int k, const char *sep) {
    if (t->n_col_axes > 0) {
        rp_colkey_label(b, t, k, ",");
        rp_puts(b, sep);
    }
    rp_puts(b, t->metrics[m].name);
}

/* ------------------------------------------------------------------ cells */

void rp_cell_text(rp_buf *b, const rm_report_table *t, int r, int m, int k, rp_style style) {
    const rm_report_cell *c = rm_report_cell_at(t, r, m, k);
    const rm_report_row *row = &t->rows[r];
    const rm_report_metric *mt = &t->metrics[m];
    int md = style == RP_MARKDOWN;
    if (c->n == 0) {
        rp_puts(b, row->n_used == 0 && row->n_failed > 0 ? "failed" : md ? "—" : "---");
        return;
    }
    if (c->best) rp_puts(b, md ? "**" : "\\textbf{");
    if (mt->kind == RM_REPORT_CO) {
        rp_printf(b, "%.0f/%d", c->mean, c->n);
        if (c->first_epoch > 0) rp_printf(b, " (ep %lld)", (long long)c->first_epoch);
    } else {
        char mean[64], std[64];
        rp_number(mean, sizeof mean, c->mean, mt->decimals);
        if (c->n > 1) rp_number(std, sizeof std, c->std, mt->decimals);
        else snprintf(std, sizeof std, "%s", md ? "—" : "---");
        /* LaTeX: a real minus sign, not a hyphen */
        rp_printf(b, "%s%s %s %s", !md && mean[0] == '-' ? "$-$" : "", !md && mean[0] == '-' ? mean + 1 : mean,
                  md ? "±" : "$\\pm$", std);
    }
    if (c->best) rp_puts(b, md ? "**" : "}");
    if (c->n_partial > 0) rp_puts(b, md ? "\\*" : "$^*$");
    if (c->n < row->n) rp_printf(b, " (n=%d)", c->n);
}

/* ------------------------------------------------------------------ caption */

static void runs_clause(rp_buf *b, const rm_report_table *t) {
    const rm_report_runs *runs = t->runs;
    int total = runs->n_runs + runs->n_unreadable + runs->n_missing;
    rp_printf(b, "%d run%s: %d averaged", total, total == 1 ? "" : "s", t->n_used);
    if (t->n_partial) rp_printf(b, " (%d in progress)", t->n_partial);
    if (t->n_failed) rp_printf(b, ", %d failed", t->n_failed);
    if (t->n_empty) rp_printf(b, ", %d without epochs", t->n_empty);
    if (runs->n_unreadable) rp_printf(b, ", %d unreadable", runs->n_unreadable);
    if (runs->n_missing) rp_printf(b, ", %d missing", runs->n_missing);
    if (runs->n_runs > t->n_selected) rp_printf(b, ", %d not selected", runs->n_runs - t->n_selected);
}

static void epoch_clause(rp_buf *b, const rm_report_table *t) {
    switch (t->epoch_rule) {
    case RM_REPORT_EPOCH_BEST:
        if (t->robust[0]) rp_printf(b, "values at each run's best epoch by %s (ties: the earliest)", t->robust);
        else rp_puts(b, "values at each run's last evaluated epoch (no pgd or cw column to pick the best by)");
        break;
    case RM_REPORT_EPOCH_LAST: rp_puts(b, "values at each run's last evaluated epoch"); break;
    case RM_REPORT_EPOCH_FIXED: rp_printf(b, "values at epoch %lld", (long long)t->epoch); break;
    }
}

static int has_kind(const rm_report_table *t, const char *name) { return rm_report_metric_find(t, name) >= 0; }

void rp_caption(rp_buf *b, const rm_report_table *t, rp_style style) {
    int md = style == RP_MARKDOWN;
    rp_buf plain;
    rp_buf_init(&plain);
    rp_printf(&plain, "%s: ", t->runs->dir);
    runs_clause(&plain, t);
    if (t->selection[0]) rp_printf(&plain, "; selection %s", t->selection);
    rp_puts(&plain, "; ");
    epoch_clause(&plain, t);
    int acc = 0;
    for (int m = 0; m < t->n_metrics; m++)
        acc |= t->metrics[m].kind == RM_REPORT_AT_EPOCH && strncmp(t->metrics[m].column, "test_", 5) == 0;
    if (acc) rp_puts(&plain, "; accuracies in %");
    int g = rm_report_metric_find(t, "gap");
    if (g >= 0) rp_printf(&plain, "; gap = %s - test_clean", t->metrics[g].column);
    if (has_kind(t, "epoch_s")) rp_puts(&plain, "; epoch_s = mean epoch time (s)");
    if (has_kind(t, "images_per_s")) rp_puts(&plain, "; images_per_s = mean training images per second");
    if (has_kind(t, "co")) rp_puts(&plain, "; co = runs flagged for catastrophic overfitting / runs evaluated (first epoch)");
    static const char *const gm[] = {"gm_square", "gm_zero_grad", "gm_monotone"};
    int n_gm = 0;
    for (int k = 0; k < 3; k++)
        if (has_kind(t, gm[k])) rp_printf(&plain, "%s%s", n_gm++ ? ", " : "; ", gm[k]);
    if (n_gm)
        rp_printf(&plain, " = runs with %s gradient-masking warning / runs checked (first epoch)",
                  n_gm > 1 ? "that" : "this");
    rp_escaped(b, plain.p ? plain.p : "", style);
    rp_buf_free(&plain);
    rp_printf(b, "; cells: mean %s sample std (n-1) over the runs of a %s, n = runs averaged, bold = best of a column",
              md ? "±" : "$\\pm$", t->n_col_axes ? "cell" : "row");
    if (t->n_best_within) {
        rp_puts(b, " among the rows of the same ");
        for (int i = 0; i < t->n_best_within; i++) {
            if (i) rp_puts(b, i + 1 < t->n_best_within ? ", " : " and ");
            rp_escaped(b, rm_config_setting_name(t->row_axes[t->best_within[i]]), style);
        }
    }
    rp_puts(b, ".");
}

/* ------------------------------------------------------------------ footnotes */

static int64_t last_epoch(const rm_report_run *run) { return run->sum.rows > 0 ? run->sum.epoch[run->sum.rows - 1] : 0; }

static void footnote(rp_buf *b, rp_style style, const char *lead, const char *text) {
    if (style == RP_MARKDOWN) {
        rp_printf(b, "- %s", lead);
        rp_escaped(b, text, style);
        rp_puts(b, "\n");
    } else {
        rp_puts(b, lead);
        rp_escaped(b, text, style);
        rp_puts(b, "\\par\n");
    }
}

void rp_footnotes(rp_buf *b, const rm_report_table *t, rp_style style) {
    const rm_report_runs *runs = t->runs;
    char text[RM_REPORT_PATH + 600];
    static const rm_report_role order[] = {RM_REPORT_PARTIAL, RM_REPORT_FAILED, RM_REPORT_EMPTY};
    for (size_t o = 0; o < sizeof order / sizeof *order; o++)
        for (int i = 0; i < runs->n_runs; i++) {
            if (t->role[i] != order[o]) continue;
            const rm_report_run *run = &runs->runs[i];
            const char *status = rm_run_status_name(run->sum.status);
            const char *reason = run->sum.status_reason;
            switch (order[o]) {
            case RM_REPORT_PARTIAL:
                snprintf(text, sizeof text, "%s (%s, epoch %lld/%d)", run->sum.run_id, status,
                         (long long)last_epoch(run), run->cfg.epochs);
                footnote(b, style, style == RP_MARKDOWN ? "\\* in progress: " : "$^*$ in progress: ", text);
                break;
            case RM_REPORT_FAILED:
                snprintf(text, sizeof text, "%s (%s, epoch %lld/%d%s%s)", run->sum.run_id, status,
                         (long long)last_epoch(run), run->cfg.epochs, reason[0] ? ": " : "", reason);
                footnote(b, style, "failed: ", text);
                break;
            default:
                snprintf(text, sizeof text, "%s (%s)", run->sum.run_id, status);
                footnote(b, style, "no epoch yet: ", text);
                break;
            }
        }
    for (int i = 0; i < runs->n_unreadable; i++) footnote(b, style, "unreadable: ", runs->unreadable[i]);
    for (int i = 0; i < runs->n_missing; i++) footnote(b, style, "missing (listed in sweep.h5, no run file): ", runs->missing[i]);
    /* every averaged run with a gradient-masking warning in a column of the table */
    for (int m = 0; m < t->n_metrics; m++) {
        if (t->metrics[m].kind != RM_REPORT_CO || strncmp(t->metrics[m].column, "gm_", 3) != 0) continue;
        for (int i = 0; i < runs->n_runs; i++) {
            int64_t first;
            if ((t->role[i] != RM_REPORT_USED && t->role[i] != RM_REPORT_PARTIAL) ||
                rp_run_flag(&runs->runs[i], t->metrics[m].column, &first) != 1)
                continue;
            snprintf(text, sizeof text, "%s (%s, first at epoch %lld)", runs->runs[i].sum.run_id,
                     t->metrics[m].column, (long long)first);
            footnote(b, style, "gradient-masking warning: ", text);
        }
    }
}
