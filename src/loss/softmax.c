/* Row log-sum-exp (the stable core of every softmax-based term) and the divergence check. */
#include "regmix/loss.h"

#include <math.h>

/* z is (K): one row of logits. Subtracting the row maximum keeps every exp() in (0, 1],
 * so nothing overflows and the largest term is exactly 1 (the sum is never 0). */
double rm_logsumexp(const float *z, int K) {
    double m = z[0];
    for (int k = 1; k < K; k++)
        if (z[k] > m) m = z[k];
    double sum = 0.0;
    for (int k = 0; k < K; k++) sum += exp((double)z[k] - m);
    return m + log(sum);
}

rm_status rm_loss_check_finite(const char *what, double value) {
    if (isfinite(value)) return RM_OK;
    return rm_fail(RM_ERR_DIVERGED, "%s is %g (not finite): training diverged",
                   what ? what : "loss", value);
}
