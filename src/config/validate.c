/* Whole-configuration checks: every setting again (code may fill the struct directly),
 * then the rules that tie settings together. */
#include "regmix/config.h"

#include <string.h>

static int is(const char *a, const char *b) { return strcmp(a, b) == 0; }

rm_status rm_config_validate(const rm_config *c) {
    if (!c) return rm_fail(RM_ERR_ARG, "rm_config_validate: config is NULL");
    int n = rm_config_setting_count();
    for (int i = 0; i < n; i++) RM_TRY(rm_config_check_setting(c, i, NULL));

    /* No model/dataset rule: every model takes the dataset's image shape. */

    /* The regularisers are defined on the PGI / FGSM initial and final outputs; pgd-at
     * and trades have their own loss. Refuse rather than ignore, so that one experiment
     * never has two configurations (and two hashes). */
    if ((is(c->method, "pgd-at") || is(c->method, "trades")) && !is(c->reg, "none"))
        return rm_fail(RM_ERR_ARG, "reg: '%s' applies to methods pgi and fgsm-rs only; method %s needs reg: none",
                       c->reg, c->method);

    if (c->train_subset > 0 && c->val_size >= c->train_subset)
        return rm_fail(RM_ERR_ARG, "val_size %lld leaves no training samples out of train_subset %lld",
                       (long long)c->val_size, (long long)c->train_subset);
    return RM_OK;
}

int rm_config_co_attacks(const rm_config *c, int *fgsm_index, int *pgd_index) {
    int f = -1, p = -1;
    for (int k = 0; c && k < c->n_eval && k < RM_CFG_MAX_EVAL; k++) {
        if (c->eval[k].eps != 0.0) continue; /* only attacks at the run's budget */
        if (c->eval[k].kind == RM_EVAL_FGSM && f < 0) f = k;
        if (c->eval[k].kind == RM_EVAL_PGD && p < 0) p = k;
    }
    if (f < 0 || p < 0) f = p = -1;
    if (fgsm_index) *fgsm_index = f;
    if (pgd_index) *pgd_index = p;
    return f >= 0;
}

int rm_config_co_flag(const rm_config *c, double fgsm_acc, double pgd_acc) {
    return fgsm_acc > 0.3 && pgd_acc < c->co_threshold * fgsm_acc;
}
