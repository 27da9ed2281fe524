/* The final evaluation: final_eval_attacks after the last epoch only, on
 * final_test_subset's images (AutoAttack entries on test_subset=final_aa_images's, a subset
 * of them: a seeded subset of the test set contains every smaller one),
 * recorded in the last epoch's row as final_<attack> and the final_ forms of the
 * evaluation's extra columns. Cheap per-epoch curves and an expensive final number in
 * one run. */
#include <stdio.h>
#include <string.h>

#include "train/trainer_internal.h"

/* c with the final list in place of eval[], for rm_eval_extra_metrics / _values. */
static void final_view(const rm_config *c, rm_config *out) {
    *out = *c;
    memcpy(out->eval, c->final_eval, sizeof out->eval);
    out->n_eval = c->n_final_eval;
}

/* "final_" + name, or name with its "test_" prefix replaced: test_aa.apgd-ce ->
 * final_aa.apgd-ce, zero_grad_aa -> final_zero_grad_aa. */
static rm_status put_metric(rm_trainer *t, const char *name, const char *units, const char *desc) {
    const char *base = strncmp(name, "test_", 5) == 0 ? name + 5 : name;
    rm_metric_def *m = &t->metrics[t->n_metrics];
    int n = snprintf(m->name, sizeof m->name, "final_%s", base);
    if (n < 0 || (size_t)n >= sizeof m->name)
        return rm_fail(RM_ERR_ARG, "final_eval_attacks: metric name final_%s is longer than %zu characters",
                       base, sizeof m->name - 1);
    m->units = units;
    m->description = desc;
    t->n_metrics++;
    return RM_OK;
}

rm_status rm_final_define_metrics(rm_trainer *t) {
    const rm_config *c = &t->cfg;
    t->m_final0 = -1;
    if (c->n_final_eval == 0) return RM_OK; /* runs without it keep their columns */
    rm_config fc;
    final_view(c, &fc);
    rm_metric_def extra[MAX_METRICS];
    const int n_extra = rm_eval_extra_metrics(&fc, extra, MAX_METRICS);
    const int need = t->n_metrics + c->n_final_eval + n_extra;
    if (need > MAX_METRICS)
        return rm_fail(RM_ERR_ARG, "final_eval_attacks: these %d attacks need %d more metric columns (%d in all), "
                       "more than the %d a run records (each aa adds 5 besides its own: its 4 components and its "
                       "zero-gradient share); use fewer attacks in final_eval_attacks or eval_attacks",
                       c->n_final_eval, need - t->n_metrics, need, MAX_METRICS);
    t->m_final0 = t->n_metrics;
    for (int i = 0; i < c->n_final_eval; i++)
        RM_TRY(put_metric(t, c->final_eval[i].name, "%",
                          "test accuracy under this final attack after the last epoch, on final_test_subset's "
                          "samples (AutoAttack entries: test_subset=final_aa_images's, among them); NaN on every other row"));
    for (int i = 0; i < n_extra; i++) RM_TRY(put_metric(t, extra[i].name, extra[i].units, extra[i].description));
    return RM_OK;
}

rm_status rm_final_evaluate(rm_trainer *t, double *row) {
    const rm_config *c = &t->cfg;
    if (t->m_final0 < 0) return RM_OK;
    /* the per-epoch test set serves when it is the same subset; else the final one and
     * the AutoAttack one are read again (only now, so they cost no memory before) */
    const int64_t subset = c->final_test_subset < 0 ? c->test_subset : c->final_test_subset;
    rm_dataset final_set, aa_set;
    memset(&final_set, 0, sizeof final_set);
    memset(&aa_set, 0, sizeof aa_set);
    const rm_dataset *fs = &t->test;
    rm_status st = RM_OK;
    if (subset != c->test_subset) {
        st = rm_trainer_load_test(c, subset, &final_set);
        fs = &final_set;
    }
    const rm_dataset *as = fs;
    if (st == RM_OK && c->final_aa_images > 0 && c->final_aa_images < fs->n) {
        /* the shuffle behind a subset does not depend on its size: a subset of fs */
        st = rm_trainer_load_test(c, c->final_aa_images, &aa_set);
        as = &aa_set;
    }
    rm_eval_result res[RM_CFG_MAX_EVAL];
    for (int i = 0; i < c->n_final_eval && st == RM_OK; i++) {
        const rm_eval_attack *a = &c->final_eval[i];
        st = rm_trainer_evaluate_as(t, a->kind == RM_EVAL_AUTO ? as : fs, a, "final", &res[i]);
        if (st == RM_OK) row[t->m_final0 + i] = res[i].accuracy;
    }
    if (st == RM_OK) {
        rm_config fc;
        final_view(c, &fc);
        rm_eval_extra_values(&fc, res, row + t->m_final0 + c->n_final_eval);
    }
    if (fs == &final_set) rm_dataset_free(&final_set);
    if (as == &aa_set) rm_dataset_free(&aa_set);
    return st;
}
