/* FGSM-PGI's regulariser: mean squared difference of the final and initial logits. */
#include "regmix/loss.h"

#include <math.h>

/* zf, zi, dzf, dzi are (B, K).
 * forward:  value = lambda/(B K) * sum (zf - zi)^2
 * backward: d/dzf = 2 lambda (zf - zi)/(B K),  d/dzi = -d/dzf. */
rm_status rm_mse_logits(const float *zf, const float *zi, int B, int K, double lambda,
                        double *value, float *dzf, float *dzi) {
    if (!zf || !zi) return rm_fail(RM_ERR_ARG, "rm_mse_logits: logits pointer is NULL");
    if (B < 1 || K < 2)
        return rm_fail(RM_ERR_ARG, "rm_mse_logits: shape (B=%d, K=%d) needs B >= 1 and K >= 2",
                       B, K);
    if (!isfinite(lambda))
        return rm_fail(RM_ERR_ARG, "rm_mse_logits: weight lambda = %g is not finite", lambda);
    const size_t n = (size_t)B * (size_t)K;
    const double scale = lambda / (double)n;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)zf[i] - (double)zi[i];
        sum += d * d;
        const double g = 2.0 * scale * d;
        if (dzf) dzf[i] = (float)((double)dzf[i] + g);
        if (dzi) dzi[i] = (float)((double)dzi[i] - g);
    }
    if (value) *value = scale * sum;
    return RM_OK;
}
