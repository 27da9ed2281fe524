/* TRADES inner maximisation (Zhang et al. 2019): ascend KL(p_clean || p_adv). */
#include "adv.h"

#include <string.h>

/* x, delta: (B, C, H, W). z_c = f(x) once (in `mode`), a constant target;
 * delta = P(0.001 * N(0,1)) (B*C*H*W normals in element order), then `steps` times
 * delta = P(delta + step * sign(d KL(softmax(z_c) || softmax(f(x + delta))) / d x)). */
rm_status rm_trades_attack(rm_attacker *a, rm_mode mode, const float *x, int B, float eps,
                           float step, int steps, rm_rng *rng, float *delta) {
    RM_TRY(adv_check_batch("rm_trades_attack", a, x, B));
    RM_TRY(adv_check_budget("rm_trades_attack", eps, step, steps));
    if (!delta || !rng)
        return rm_fail(RM_ERR_ARG, "rm_trades_attack: delta or rng pointer is NULL");
    const size_t n = (size_t)B * a->d;
    RM_TRY(adv_forward(a, mode, x, NULL, B));
    memcpy(a->zclean, a->logits, (size_t)B * (size_t)a->K * sizeof(float));
    for (size_t i = 0; i < n; i++) delta[i] = 0.001f * rm_rng_normal(rng);
    rm_project(delta, x, n, eps);
    for (int k = 0; k < steps; k++) {
        RM_TRY(rm_attack_gradient(a, mode, RM_ATTACK_LOSS_KL, x, delta, NULL, a->zclean, B,
                                  NULL, a->grad));
        adv_sign_step(delta, a->grad, x, n, eps, step);
    }
    return RM_OK;
}
