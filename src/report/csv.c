/* The CSV table: plain numbers (mean, std, n per metric column), one line per row. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/report_internal.h"

/* One field, quoted (RFC 4180) when it holds a comma, a quote or a line break. */
static void field(FILE *out, const char *text, int first) {
    if (!first) fputc(',', out);
    if (!strpbrk(text, ",\"\r\n")) {
        fputs(text, out);
        return;
    }
    fputc('"', out);
    for (const char *p = text; *p; p++) {
        if (*p == '"') fputc('"', out);
        fputc(*p, out);
    }
    fputc('"', out);
}

static void number_field(FILE *out, double v) {
    char buf[64] = "";
    if (isfinite(v)) rm_format_number(v, buf, sizeof buf);
    field(out, buf, 0);
}

static void int_field(FILE *out, long long v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    field(out, buf, 0);
}

/* "KEY:name_suffix" with KEY = axis=value;axis=value, or "name_suffix". */
static void label_field(FILE *out, const rm_report_table *t, int m, int k, const char *suffix) {
    rp_buf b;
    rp_buf_init(&b);
    if (t->n_col_axes) {
        rp_colkey_label(&b, t, k, ";");
        rp_puts(&b, ":");
    }
    rp_printf(&b, "%s%s", t->metrics[m].name, suffix);
    field(out, b.p ? b.p : "", 0);
    rp_buf_free(&b);
}

rm_status rm_report_write_csv(const rm_report_table *t, FILE *out) {
    if (t->n_row_axes == 0) field(out, "group", 1);
    for (int a = 0; a < t->n_row_axes; a++) field(out, rm_config_setting_name(t->row_axes[a]), a == 0);
    field(out, "n", 0);
    field(out, "n_partial", 0);
    field(out, "n_failed", 0);
    for (int m = 0; m < t->n_metrics; m++)
        for (int k = 0; k < t->n_colkeys; k++) {
            int co = t->metrics[m].kind == RM_REPORT_CO;
            label_field(out, t, m, k, co ? "_runs" : "_mean");
            label_field(out, t, m, k, co ? "_n" : "_std");
            label_field(out, t, m, k, co ? "_first_epoch" : "_n");
        }
    fputc('\n', out);
    for (int r = 0; r < t->n_rows; r++) {
        if (t->n_row_axes == 0) field(out, "all", 1);
        for (int a = 0; a < t->n_row_axes; a++) field(out, rm_report_row_value(t, r, a), a == 0);
        int_field(out, t->rows[r].n);
        int_field(out, t->rows[r].n_partial);
        int_field(out, t->rows[r].n_failed);
        for (int m = 0; m < t->n_metrics; m++)
            for (int k = 0; k < t->n_colkeys; k++) {
                const rm_report_cell *c = rm_report_cell_at(t, r, m, k);
                if (t->metrics[m].kind == RM_REPORT_CO) {
                    number_field(out, c->n ? c->mean : NAN);
                    int_field(out, c->n);
                    number_field(out, c->first_epoch > 0 ? (double)c->first_epoch : NAN);
                } else {
                    number_field(out, c->mean);
                    number_field(out, c->std);
                    int_field(out, c->n);
                }
            }
        fputc('\n', out);
    }
    if (fflush(out) != 0 || ferror(out)) return rm_fail(RM_ERR_IO, "writing the CSV table: %s", strerror(errno));
    return RM_OK;
}
