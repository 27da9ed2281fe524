/* The LaTeX table: booktabs rules, escaped text, best in \textbf{}, footnotes below. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "report/report_internal.h"

rm_status rm_report_write_latex(const rm_report_table *t, FILE *out) {
    rp_buf b;
    rp_buf_init(&b);
    int axes = t->n_row_axes ? t->n_row_axes : 1;
    rp_puts(&b, "\\begin{table}[htbp]\n\\centering\n\\caption{");
    rp_caption(&b, t, RP_LATEX);
    rp_puts(&b, "}\n\\begin{tabular}{");
    for (int a = 0; a < axes; a++) rp_puts(&b, "l");
    for (int c = 0; c < 1 + t->n_metrics * t->n_colkeys + (t->n_failed > 0); c++) rp_puts(&b, "r");
    rp_puts(&b, "}\n\\toprule\n");
    /* header */
    if (t->n_row_axes == 0) rp_puts(&b, "group");
    for (int a = 0; a < t->n_row_axes; a++) {
        if (a) rp_puts(&b, " & ");
        rp_escaped(&b, rm_config_setting_name(t->row_axes[a]), RP_LATEX);
    }
    rp_puts(&b, " & n");
    for (int m = 0; m < t->n_metrics; m++)
        for (int k = 0; k < t->n_colkeys; k++) {
            rp_buf label;
            rp_buf_init(&label);
            rp_column_label(&label, t, m, k, ": ");
            rp_puts(&b, " & ");
            rp_escaped(&b, label.p ? label.p : "", RP_LATEX);
            rp_buf_free(&label);
        }
    if (t->n_failed > 0) rp_puts(&b, " & failed");
    rp_puts(&b, " \\\\\n\\midrule\n");
    for (int r = 0; r < t->n_rows; r++) {
        if (t->n_row_axes == 0) rp_puts(&b, "all");
        for (int a = 0; a < t->n_row_axes; a++) {
            if (a) rp_puts(&b, " & ");
            rp_escaped(&b, rm_report_row_value(t, r, a), RP_LATEX);
        }
        rp_printf(&b, " & %d", t->rows[r].n);
        for (int m = 0; m < t->n_metrics; m++)
            for (int k = 0; k < t->n_colkeys; k++) {
                rp_puts(&b, " & ");
                rp_cell_text(&b, t, r, m, k, RP_LATEX);
            }
        if (t->n_failed > 0) rp_printf(&b, " & %d", t->rows[r].n_failed);
        rp_puts(&b, " \\\\\n");
    }
    rp_puts(&b, "\\bottomrule\n\\end{tabular}\n");
    size_t before = b.n;
    rp_footnotes(&b, t, RP_LATEX);
    if (b.n > before) { /* put the footnotes in small type under the table */
        rp_buf notes;
        rp_buf_init(&notes);
        rp_puts(&notes, b.p + before);
        b.n = before;
        b.p[before] = '\0';
        rp_printf(&b, "\\par\\smallskip\\footnotesize\n%s", notes.p ? notes.p : "");
        if (notes.oom) b.oom = 1;
        rp_buf_free(&notes);
    }
    rp_puts(&b, "\\end{table}\n");
    rm_status st = RM_OK;
    if (b.oom) st = rm_fail(RM_ERR_NOMEM, "out of memory formatting the LaTeX table");
    else if (fputs(b.p, out) < 0 || fflush(out) != 0 || ferror(out))
        st = rm_fail(RM_ERR_IO, "writing the LaTeX table: %s", strerror(errno));
    rp_buf_free(&b);
    return st;
}
