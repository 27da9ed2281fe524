/* Plot: catastrophic-overfitting flags, one bar per group: the share of its runs that
 * were ever flagged (co_flag = 1), labelled "flagged/evaluated, first epoch". Drawn when
 * the table shows the co metric. */
#include <stdio.h>
#include <string.h>

#include "report/report_internal.h"

rm_status rp_plot_co(rp_plotter *p) {
    const rm_report_table *t = p->t;
    int m = rm_report_metric_find(t, "co");
    if (m < 0 || t->metrics[m].kind != RM_REPORT_CO) return RM_OK;
    const char *name = "co_flags";
    FILE *f;
    RM_TRY(rp_plot_open(p, "co_flags.dat", &f));
    fputs("# catastrophic overfitting: runs ever flagged (co_flag = 1) per group\n"
          "# columns: index flagged_percent flagged evaluated first_epoch label\n",
          f);
    int bars = 0;
    for (int gi = 0; gi < p->n_groups; gi++) {
        const rm_report_cell *c = rm_report_cell_at(t, p->groups[gi].row, m, p->groups[gi].colkey);
        if (!c || c->n == 0) continue;
        fprintf(f, "%d", bars++);
        rp_plot_num(f, 100.0 * c->mean / c->n);
        fprintf(f, " %d %d %lld ", (int)c->mean, c->n, (long long)c->first_epoch);
        /* one double-quoted field (gnuplot's data-file quoting), spaces and all */
        fputc('"', f);
        for (const char *c2 = p->groups[gi].label; *c2; c2++) fputc(*c2 == '"' ? '\'' : *c2, f);
        fputs("\"\n", f);
    }
    rm_status st = rp_plot_close(p, "co_flags.dat", f);
    if (st != RM_OK || bars == 0) return st;
    RM_TRY(rp_plot_open(p, "co_flags.gp", &f));
    rp_plot_head(f, p, name, "catastrophic overfitting: share of runs flagged (label: flagged/runs, first epoch)");
    fprintf(f, "set style fill solid 0.6 border -1\nset boxwidth 0.7\nset yrange [0:119]\nset ylabel 'runs flagged (%%)'\n"
               "set xrange [-0.6:%d.6]\nset xtics rotate by -40 left\nset bmargin 12\nunset key\n"
               "plot 'co_flags.dat' using 1:2:xticlabels(6) with boxes lt 1, \\\n"
               "  '' using 1:2:(sprintf('%%d/%%d%%s', $3, $4, $5 > 0 ? sprintf(', ep %%d', $5) : '')) "
               "with labels offset 0,1\n",
            bars - 1);
    rp_plot_tail(f, p, name);
    RM_TRY(rp_plot_close(p, "co_flags.gp", f));
    return rp_plot_finish(p, name);
}
