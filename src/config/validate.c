/* Whole-configuration checks: every setting again (code may fill the struct directly),
 * then the rules that tie settings together. */
#include "regmix/config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int is(const char *a, const char *b) { return strcmp(a, b) == 0; }

/* The default of a numeric setting, from the table's text. */
static double default_number(const char *name) {
    double v = 0.0;
    rm_number_error(rm_config_setting_default(rm_config_setting_find(name)), &v);
    return v;
}

/* Every training attack takes sign steps from inside the eps-ball and projects back onto
 * it: a coordinate at -eps moved by more than 2 eps lands outside the ball and is clipped
 * to +eps, exactly as with a step of 2 eps. A step above 2 eps is therefore the same
 * attack as step = 2 eps under another name (and another hash); larger steps than eps
 * are legitimate below that (FGSM-RS uses 1.25 eps). eps = 0 (no perturbation at all)
 * accepts any step. The relative slack absorbs the rounding of fractions like 16/255. */
static rm_status check_step(const rm_config *c) {
    if (c->eps > 0.0 && c->step > 2.0 * c->eps * (1.0 + 1e-12)) {
        char step[40], eps[40], two[40];
        rm_format_number(c->step, step, sizeof step);
        rm_format_number(c->eps, eps, sizeof eps);
        rm_format_number(2.0 * c->eps, two, sizeof two);
        return rm_fail(RM_ERR_ARG, "step: %s is more than 2 x eps (eps %s): every sign step that large lands on the "
                       "eps-ball's boundary, exactly as step %s does; use step <= %s", step, eps, two, two);
    }
    return RM_OK;
}

/* final_test_subset and final_aa_images only shape the final evaluation: refused (not
 * ignored) where they would do nothing, so that one experiment has one hash. */
static rm_status check_final(const rm_config *c) {
    int aa = 0;
    for (int k = 0; k < c->n_final_eval && k < RM_CFG_MAX_EVAL; k++) aa |= c->final_eval[k].kind == RM_EVAL_AUTO;
    if (c->n_final_eval == 0 && c->final_test_subset != -1)
        return rm_fail(RM_ERR_ARG, "final_test_subset: %lld applies to the final_eval_attacks, and that list is "
                       "empty; name the final attacks (final_eval_attacks=clean,pgd20) or leave it at -1",
                       (long long)c->final_test_subset);
    if (c->final_aa_images > 0 && !aa)
        return rm_fail(RM_ERR_ARG, "final_aa_images: %lld applies to AutoAttack entries (aa, aa-fast, apgd-ce, "
                       "apgd-t, fab-t, square) of final_eval_attacks, and it has none; leave it at 0",
                       (long long)c->final_aa_images);
    return RM_OK;
}

rm_status rm_config_validate(const rm_config *c) {
    if (!c) return rm_fail(RM_ERR_ARG, "rm_config_validate: config is NULL");
    int n = rm_config_setting_count();
    for (int i = 0; i < n; i++) RM_TRY(rm_config_check_setting(c, i, NULL));

    /* No model/dataset rule: every model takes the dataset's image shape. */

    /* The regularisers are defined on the PGI / FGSM initial and final outputs; pgd-at
     * and trades have their own loss. Refuse rather than ignore, so that one experiment
     * never has two configurations (and two hashes). */
    if ((is(c->method, "pgd-at") || is(c->method, "trades")) && !is(c->reg, "none"))
        return rm_fail(RM_ERR_ARG, "reg: '%s' applies to methods pgi, pgk and fgsm-rs only; method %s needs reg: none",
                       c->reg, c->method);

    /* beta was also TRADES' weight before trades_beta existed: a command or sweep
     * written then means the TRADES weight by it, so refuse rather than ignore it. */
    if (is(c->method, "trades") && c->beta != default_number("beta")) {
        char beta[40];
        rm_format_number(c->beta, beta, sizeof beta);
        return rm_fail(RM_ERR_ARG, "beta: %s is the AMR weight (reg amr and regmix) and does nothing with method "
                       "trades; TRADES' weight is trades_beta (regmix 0.1 used beta for it: write trades_beta=%s)",
                       beta, beta);
    }
    RM_TRY(check_step(c));
    RM_TRY(check_final(c));

    /* the gate reads r, which only pgk's step has */
    if (c->ema_gate && (!is(c->method, "pgk") || !rm_config_ema_enabled(c)))
        return rm_fail(RM_ERR_ARG, "ema_gate: applies to method pgk with its EMA model on; method %s, ema %s",
                       c->method, c->ema);

    if (c->train_subset > 0 && c->val_size >= c->train_subset)
        return rm_fail(RM_ERR_ARG, "val_size %lld leaves no training samples out of train_subset %lld",
                       (long long)c->val_size, (long long)c->train_subset);
    if (c->train_subset > 0 && c->batch > c->train_subset - c->val_size)
        return rm_fail(RM_ERR_ARG, "batch %d is larger than the %lld training samples (train_subset %lld - "
                       "val_size %lld)", c->batch, (long long)(c->train_subset - c->val_size),
                       (long long)c->train_subset, (long long)c->val_size);
    return RM_OK;
}

rm_status rm_config_check_run(const rm_config *c, int64_t train_samples) {
    if (!c) return rm_fail(RM_ERR_ARG, "rm_config_check_run: config is NULL");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus > 0 && c->threads > cpus)
        return rm_fail(RM_ERR_ARG, "threads: %d is more than the %ld CPUs online on this machine; lower it (0 = "
                       "automatic)", c->threads, cpus);
    if (train_samples >= 0 && c->batch > train_samples)
        return rm_fail(RM_ERR_ARG, "batch %d is larger than the %lld training samples of %s (after train_subset "
                       "%lld and val_size %lld)", c->batch, (long long)train_samples, c->dataset,
                       (long long)c->train_subset, (long long)c->val_size);
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

int rm_config_ema_enabled(const rm_config *c) {
    return c && (is(c->ema, "on") || (is(c->ema, "auto") && is(c->method, "pgk")));
}
