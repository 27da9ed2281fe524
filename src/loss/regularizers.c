/* RegMix's regularisers as weighted sums of rm_kl: AMR on (final, initial) adversarial
 * logits, AGR on (clean, final), and their sum. A stopped / detached side simply gets a
 * NULL gradient buffer, which is exactly PyTorch's .detach() on that side's logits. */
#include "regmix/loss.h"

#include <math.h>
#include <string.h>

/* Settings are checked before anything is added, so a failed call leaves every
 * gradient buffer untouched (rm_regmix checks both before either term runs). */
static rm_status check_amr(const rm_amr_config *cfg) {
    if (!cfg) return rm_fail(RM_ERR_ARG, "rm_amr: config pointer is NULL");
    if (!isfinite(cfg->alpha) || !isfinite(cfg->beta))
        return rm_fail(RM_ERR_ARG, "rm_amr: weights alpha = %g, beta = %g must be finite",
                       cfg->alpha, cfg->beta);
    return RM_OK;
}

static rm_status check_agr(const rm_agr_config *cfg) {
    if (!cfg) return rm_fail(RM_ERR_ARG, "rm_agr: config pointer is NULL");
    if (!isfinite(cfg->gamma))
        return rm_fail(RM_ERR_ARG, "rm_agr: weight gamma = %g is not finite", cfg->gamma);
    if (cfg->dir != RM_AGR_C_F && cfg->dir != RM_AGR_F_C && cfg->dir != RM_AGR_BOTH)
        return rm_fail(RM_ERR_ARG, "rm_agr: direction %d is not c||f, f||c or both",
                       (int)cfg->dir);
    return RM_OK;
}

/* zf, zi, dzf, dzi are (B, K).
 * value = alpha KL(p_f || p_i) + beta KL(p_i || p_f); each KL adds into both sides. */
rm_status rm_amr(const float *zf, const float *zi, int B, int K, const rm_amr_config *cfg,
                 double *value, float *dzf, float *dzi) {
    RM_TRY(check_amr(cfg));
    float *gf = cfg->stop_f ? NULL : dzf;
    float *gi = cfg->stop_i ? NULL : dzi;
    double main_term = 0.0, aux_term = 0.0;
    RM_TRY(rm_kl(zf, zi, B, K, cfg->alpha, &main_term, gf, gi));
    RM_TRY(rm_kl(zi, zf, B, K, cfg->beta, &aux_term, gi, gf));
    if (value) *value = main_term + aux_term;
    return RM_OK;
}

/* zc, zf, dzc, dzf are (B, K).
 * value = gamma KL(p_c || p_f), gamma KL(p_f || p_c), or the sum of both (cfg->dir). */
rm_status rm_agr(const float *zc, const float *zf, int B, int K, const rm_agr_config *cfg,
                 double *value, float *dzc, float *dzf) {
    RM_TRY(check_agr(cfg));
    float *gc = cfg->detach_clean ? NULL : dzc;
    double cf = 0.0, fc = 0.0;
    if (cfg->dir != RM_AGR_F_C) RM_TRY(rm_kl(zc, zf, B, K, cfg->gamma, &cf, gc, dzf));
    if (cfg->dir != RM_AGR_C_F) RM_TRY(rm_kl(zf, zc, B, K, cfg->gamma, &fc, dzf, gc));
    if (value) *value = cf + fc;
    return RM_OK;
}

rm_status rm_regmix(const float *zf, const float *zi, const float *zc, int B, int K,
                    const rm_amr_config *amr, const rm_agr_config *agr, double *value,
                    float *dzf, float *dzi, float *dzc) {
    if (!zf || !zi || !zc) return rm_fail(RM_ERR_ARG, "rm_regmix: logits pointer is NULL");
    RM_TRY(check_amr(amr));
    RM_TRY(check_agr(agr));
    double v_amr = 0.0, v_agr = 0.0;
    RM_TRY(rm_amr(zf, zi, B, K, amr, &v_amr, dzf, dzi));
    RM_TRY(rm_agr(zc, zf, B, K, agr, &v_agr, dzc, dzf));
    if (value) *value = v_amr + v_agr;
    return RM_OK;
}

static const char *const agr_direction_names[] = {"c||f", "f||c", "both"};

rm_status rm_agr_direction_parse(const char *name, rm_agr_direction *out) {
    for (int d = RM_AGR_C_F; d <= RM_AGR_BOTH; d++) {
        if (name && strcmp(name, agr_direction_names[d]) == 0) {
            *out = (rm_agr_direction)d;
            return RM_OK;
        }
    }
    return rm_fail(RM_ERR_ARG, "AGR direction '%s' is not one of c||f, f||c, both",
                   name ? name : "(null)");
}

const char *rm_agr_direction_name(rm_agr_direction dir) {
    if ((int)dir < 0 || (int)dir > (int)RM_AGR_BOTH) return "unknown";
    return agr_direction_names[dir];
}
