/* FGSM and FGSM with random start (Wong et al. 2020), one gradient step on CE. */
#include "adv.h"

#include <string.h>

/* x, delta: (B, C, H, W). start s = 0, or P(U(-eps, eps)) drawing B*C*H*W uniforms in
 * element order; g = d CE(f(x + s), y) / d x; delta = P(s + step * sign(g)). */
rm_status rm_fgsm(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y, int B,
                  float eps, float step, int random_start, rm_rng *rng, float *delta) {
    RM_TRY(adv_check_batch("rm_fgsm", a, x, B));
    RM_TRY(adv_check_budget("rm_fgsm", eps, step, 1));
    if (!delta) return rm_fail(RM_ERR_ARG, "rm_fgsm: delta pointer is NULL");
    RM_TRY(adv_check_labels("rm_fgsm", y, B, a->K)); /* before any draw */
    if (random_start && !rng) return rm_fail(RM_ERR_ARG, "rm_fgsm: random start needs an rng");
    const size_t n = (size_t)B * a->d;
    if (random_start)
        adv_uniform_start(delta, x, n, eps, rng);
    else
        memset(delta, 0, n * sizeof(float));
    RM_TRY(rm_attack_gradient(a, mode, RM_ATTACK_LOSS_CE, x, delta, y, NULL, B, NULL, a->grad));
    adv_sign_step(delta, a->grad, x, n, eps, step);
    return RM_OK;
}
