/* The Markdown table: caption line, padded pipe table, footnote list. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

/* Number of table columns: the row axes (or "group"), n, metric x key columns, failed. */
static int column_count(const rm_report_table *t) {
    int axes = t->n_row_axes ? t->n_row_axes : 1;
    return axes + 1 + t->n_metrics * t->n_colkeys + (t->n_failed > 0);
}

/* Fills cell texts of row r (-1: the header) into grid[0..ncol). */
static void fill_line(char **grid, const rm_report_table *t, int r) {
    rp_buf b;
    rp_buf_init(&b);
    int c = 0;
    if (t->n_row_axes == 0) {
        rp_puts(&b, r < 0 ? "group" : "all");
        grid[c++] = rp_buf_take(&b);
    }
    for (int a = 0; a < t->n_row_axes; a++) {
        rp_escaped(&b, r < 0 ? rm_config_setting_name(t->row_axes[a]) : rm_report_row_value(t, r, a), RP_MARKDOWN);
        grid[c++] = rp_buf_take(&b);
    }
    if (r < 0) rp_puts(&b, "n");
    else rp_printf(&b, "%d", t->rows[r].n);
    grid[c++] = rp_buf_take(&b);
    for (int m = 0; m < t->n_metrics; m++)
        for (int k = 0; k < t->n_colkeys; k++) {
            if (r < 0) {
                rp_buf label;
                rp_buf_init(&label);
                rp_column_label(&label, t, m, k, ": ");
                rp_escaped(&b, label.p ? label.p : "", RP_MARKDOWN);
                rp_buf_free(&label);
            } else {
                rp_cell_text(&b, t, r, m, k, RP_MARKDOWN);
            }
            grid[c++] = rp_buf_take(&b);
        }
    if (t->n_failed > 0) {
        if (r < 0) rp_puts(&b, "failed");
        else rp_printf(&b, "%d", t->rows[r].n_failed);
        grid[c++] = rp_buf_take(&b);
    }
}

static void pad(FILE *out, const char *text, size_t width, int right) {
    size_t w = rp_width(text);
    if (right)
        for (size_t i = w; i < width; i++) fputc(' ', out);
    fputs(text, out);
    if (!right)
        for (size_t i = w; i < width; i++) fputc(' ', out);
}

rm_status rm_report_write_markdown(const rm_report_table *t, FILE *out) {
    int ncol = column_count(t), nline = t->n_rows + 1;
    int left = t->n_row_axes ? t->n_row_axes : 1; /* left-aligned columns */
    char **grid = calloc((size_t)ncol * (size_t)nline, sizeof *grid);
    size_t *width = calloc((size_t)ncol, sizeof *width);
    rm_status st = RM_OK;
    if (!grid || !width) {
        free(grid);
        free(width);
        return rm_fail(RM_ERR_NOMEM, "out of memory formatting the Markdown table");
    }
    for (int l = 0; l < nline; l++) fill_line(grid + (size_t)l * (size_t)ncol, t, l - 1);
    for (int i = 0; i < ncol * nline && st == RM_OK; i++)
        if (!grid[i]) st = rm_fail(RM_ERR_NOMEM, "out of memory formatting the Markdown table");
    for (int i = 0; i < ncol * nline && st == RM_OK; i++) {
        size_t w = rp_width(grid[i]);
        if (w > width[i % ncol]) width[i % ncol] = w;
    }
    rp_buf b;
    rp_buf_init(&b);
    if (st == RM_OK) {
        rp_caption(&b, t, RP_MARKDOWN);
        fprintf(out, "Table: %s\n\n", b.p ? b.p : "");
        for (int l = 0; l < nline; l++) {
            for (int c = 0; c < ncol; c++) {
                fputs("| ", out);
                pad(out, grid[(size_t)l * (size_t)ncol + (size_t)c], width[c], c >= left);
                fputc(' ', out);
            }
            fputs("|\n", out);
            if (l > 0) continue;
            for (int c = 0; c < ncol; c++) { /* alignment line: ":---" left, "---:" right */
                fputs(c < left ? "|:" : "|", out);
                for (size_t i = 0; i < width[c] + 1; i++) fputc('-', out);
                fputs(c < left ? "" : ":", out);
            }
            fputs("|\n", out);
        }
        rp_buf_clear(&b);
        rp_footnotes(&b, t, RP_MARKDOWN);
        if (b.n) fprintf(out, "\n%s", b.p);
        if (b.oom) st = rm_fail(RM_ERR_NOMEM, "out of memory formatting the Markdown table");
    }
    rp_buf_free(&b);
    for (int i = 0; i < ncol * nline; i++) free(grid[i]);
    free(grid);
    free(width);
    if (st == RM_OK && (fflush(out) != 0 || ferror(out)))
        st = rm_fail(RM_ERR_IO, "writing the Markdown table: %s", strerror(errno));
    return st;
}
