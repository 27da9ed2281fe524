/* The DLR loss (difference of logits ratio, Croce & Hein 2020): the objective of
 * APGD-T (targeted) and of APGD-DLR, invariant to shifting and scaling the logits. */
#include "regmix/loss.h"

#define DLR_TINY 1e-12 /* the reference keeps the denominator away from 0 by this much */

/* Indices of the 4 (or K if smaller) largest logits of one row z (K), largest first;
 * ties go to the lower index, so the ranking (and the subgradient) is reproducible. */
static void top4(const float *z, int K, int idx[4]) {
    const int n = K < 4 ? K : 4;
    for (int r = 0; r < n; r++) {
        int best = -1;
        for (int k = 0; k < K; k++) {
            int taken = 0;
            for (int q = 0; q < r; q++) taken |= idx[q] == k;
            if (!taken && (best < 0 || z[k] > z[best])) best = k;
        }
        idx[r] = best;
    }
}

/* z, dz: (B, K); y, target: (B). With pi the ranking of z_b (largest first):
 *   untargeted  N = z_y - z_m (m = arg max_{j != y}),  D = z_pi1 - z_pi3 + 1e-12
 *   targeted    N = z_y - z_t,                         D = z_pi1 - (z_pi3 + z_pi4)/2 + 1e-12
 *   loss_b = -N / D
 *   d loss_b / d z = -dN / D + N dD / D^2   (dN: +1 at y, -1 at m or t;
 *                                           dD: +1 at pi1, -1 at pi3 | -1/2 at pi3 and pi4) */
rm_status rm_dlr(const float *z, const int32_t *y, const int32_t *target, int B, int K,
                 double *value, double *loss, float *dz) {
    if (!z || !y) return rm_fail(RM_ERR_ARG, "rm_dlr: logits or labels pointer is NULL");
    const int kmin = target ? 4 : 3;
    if (B < 1 || K < kmin)
        return rm_fail(RM_ERR_ARG, "rm_dlr: shape (B=%d, K=%d) needs B >= 1 and K >= %d (%s DLR)",
                       B, K, kmin, target ? "targeted" : "untargeted");
    for (int b = 0; b < B; b++) {
        if (y[b] < 0 || y[b] >= K)
            return rm_fail(RM_ERR_ARG, "rm_dlr: label y[%d] = %d outside [0, %d)", b, (int)y[b], K);
        if (target && (target[b] < 0 || target[b] >= K || target[b] == y[b]))
            return rm_fail(RM_ERR_ARG, "rm_dlr: target[%d] = %d must lie in [0, %d) and differ from the label %d",
                           b, (int)target[b], K, (int)y[b]);
    }
    const double inv_b = 1.0 / B;
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *zb = z + (size_t)b * K;
        const int yb = y[b];
        int pi[4];
        top4(zb, K, pi);
        int other; /* m (untargeted) or t (targeted) */
        if (target) {
            other = target[b];
        } else {
            other = pi[0] == yb ? pi[1] : pi[0]; /* the largest logit that is not y's */
        }
        const double N = (double)zb[yb] - (double)zb[other];
        const double D = target ? (double)zb[pi[0]] - 0.5 * ((double)zb[pi[2]] + (double)zb[pi[3]]) + DLR_TINY
                                : (double)zb[pi[0]] - (double)zb[pi[2]] + DLR_TINY;
        const double l = -N / D;
        total += l;
        if (loss) loss[b] = l;
        if (dz) { /* up to 5 contributions, merged in double where indices coincide */
            const double a = -inv_b / D, c = inv_b * N / (D * D);
            int at[5] = {yb, other, pi[0], pi[2], target ? pi[3] : -1};
            double add[5] = {a, -a, c, target ? -0.5 * c : -c, target ? -0.5 * c : 0.0};
            float *gb = dz + (size_t)b * K;
            for (int i = 0; i < 5; i++) {
                if (at[i] < 0) continue;
                double sum = add[i];
                for (int j = i + 1; j < 5; j++)
                    if (at[j] == at[i]) {
                        sum += add[j];
                        at[j] = -1;
                    }
                gb[at[i]] = (float)((double)gb[at[i]] + sum);
            }
        }
    }
    if (value) *value = total * inv_b;
    return RM_OK;
}
