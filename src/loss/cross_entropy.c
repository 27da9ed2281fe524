/* The two label-based terms: label-smoothed cross-entropy (the training loss and the
 * attack objective) and the CW margin (the CW-inf attack objective). */
#include "regmix/loss.h"

#include <math.h>

static rm_status check_labels(const char *fn, const float *z, const int32_t *y, int B,
                              int K) {
    if (!z || !y) return rm_fail(RM_ERR_ARG, "%s: logits or labels pointer is NULL", fn);
    if (B < 1 || K < 2)
        return rm_fail(RM_ERR_ARG, "%s: shape (B=%d, K=%d) needs B >= 1 and K >= 2", fn, B, K);
    for (int b = 0; b < B; b++)
        if (y[b] < 0 || y[b] >= K)
            return rm_fail(RM_ERR_ARG, "%s: label y[%d] = %d outside [0, %d)", fn, b,
                           (int)y[b], K);
    return RM_OK;
}

/* z, dz are (B, K); y is (B).
 * forward:  loss_b = -sum_k t_k log p_k,  log p_k = z_k - lse(z),  value = mean_b loss_b
 * backward: d loss_b / d z_k = p_k - t_k   (because sum_k t_k = 1), times 1/B. */
rm_status rm_ce_ls(const float *z, const int32_t *y, int B, int K, double s, double *value,
                   float *dz) {
    RM_TRY(check_labels("rm_ce_ls", z, y, B, K));
    if (!(s >= 0.0 && s <= 1.0))
        return rm_fail(RM_ERR_ARG, "rm_ce_ls: label smoothing s = %g outside [0, 1]", s);
    const double t_other = (1.0 - s) / (K - 1);
    const double inv_b = 1.0 / B;
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *zb = z + (size_t)b * K;
        const double lse = rm_logsumexp(zb, K);
        double loss = 0.0;
        for (int k = 0; k < K; k++) {
            const double t = k == y[b] ? s : t_other;
            const double logp = (double)zb[k] - lse;
            loss -= t * logp;
            if (dz) {
                float *g = dz + (size_t)b * K + k;
                *g = (float)((double)*g + (exp(logp) - t) * inv_b);
            }
        }
        total += loss;
    }
    if (value) *value = total * inv_b;
    return RM_OK;
}

/* z, dz are (B, K); y is (B).
 * forward:  m_b = z_b,j* - z_b,y with j* = argmax_{j != y} z_b,j (lowest index at ties)
 * backward: d m_b / d z_j* = +1, d m_b / d z_y = -1, times 1/B. */
rm_status rm_cw_margin(const float *z, const int32_t *y, int B, int K, double *value,
                       float *dz) {
    RM_TRY(check_labels("rm_cw_margin", z, y, B, K));
    const double inv_b = 1.0 / B;
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *zb = z + (size_t)b * K;
        const int yb = y[b];
        int jstar = yb == 0 ? 1 : 0;
        for (int j = jstar + 1; j < K; j++)
            if (j != yb && zb[j] > zb[jstar]) jstar = j; /* strict >: keeps the lowest index */
        total += (double)zb[jstar] - (double)zb[yb];
        if (dz) {
            float *g = dz + (size_t)b * K;
            g[jstar] = (float)((double)g[jstar] + inv_b);
            g[yb] = (float)((double)g[yb] - inv_b);
        }
    }
    if (value) *value = total * inv_b;
    return RM_OK;
}
