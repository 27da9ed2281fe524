/* Weighted batchmean KL divergence between the softmaxes of two logit arrays: the
 * building block of AMR, AGR and TRADES. */
#include "regmix/loss.h"

#include <math.h>

/* a, b, da, db are (B, K);  p = softmax(a_b), q = softmax(b_b) per row.
 * forward:  kl_b = sum_k p_k (log p_k - log q_k);  value = w/B sum_b kl_b
 * backward: d kl_b / d b_k = q_k - p_k
 *           d kl_b / d a_j = p_j (log p_j - log q_j - kl_b)
 *             (from d p_k / d a_j = p_k (delta_kj - p_j) and sum_k d p_k = 0). */
rm_status rm_kl(const float *a, const float *b, int B, int K, double w, double *value,
                float *da, float *db) {
    if (!a || !b) return rm_fail(RM_ERR_ARG, "rm_kl: logits pointer is NULL");
    if (B < 1 || K < 2)
        return rm_fail(RM_ERR_ARG, "rm_kl: shape (B=%d, K=%d) needs B >= 1 and K >= 2", B, K);
    if (!isfinite(w)) return rm_fail(RM_ERR_ARG, "rm_kl: weight w = %g is not finite", w);
    const double scale = w / B;
    double total = 0.0;
    for (int r = 0; r < B; r++) {
        const float *ar = a + (size_t)r * K, *br = b + (size_t)r * K;
        const double lse_a = rm_logsumexp(ar, K), lse_b = rm_logsumexp(br, K);
        /* Log-probabilities come from the logits, never from log(p): an underflowed
         * p_k = 0 contributes 0 * finite = 0 instead of 0 * -inf = NaN. */
        double kl = 0.0;
        for (int k = 0; k < K; k++) {
            const double logp = (double)ar[k] - lse_a, logq = (double)br[k] - lse_b;
            kl += exp(logp) * (logp - logq);
        }
        total += kl;
        if (!da && !db) continue;
        for (int k = 0; k < K; k++) {
            const double logp = (double)ar[k] - lse_a, logq = (double)br[k] - lse_b;
            const double p = exp(logp), q = exp(logq);
            if (da) {
                float *g = da + (size_t)r * K + k;
                *g = (float)((double)*g + scale * p * (logp - logq - kl));
            }
            if (db) {
                float *g = db + (size_t)r * K + k;
                *g = (float)((double)*g + scale * (q - p));
            }
        }
    }
    if (value) *value = scale * total;
    return RM_OK;
}
