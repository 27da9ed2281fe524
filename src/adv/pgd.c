/* PGD-k with random start and restarts (Madry et al.), on CE or the CW margin (CW-inf),
 * reporting the worst case per example over the restarts. */
#include "adv.h"

#include <string.h>

/* x, delta: (B, C, H, W); y, robust: (B).
 * Restart r: cur = P(U(-eps, eps)) (B*C*H*W uniforms in element order), then `steps`
 * times cur = P(cur + step * sign(d loss / d x at x + cur)); then classify x + cur.
 * An example still robust before restart r takes cur as its delta; if x + cur is
 * misclassified it stops being robust and keeps that delta for good.
 * Every restart draws its start even when no example is left robust (the steps are
 * skipped then), so the rng advances by restarts * B*C*H*W uniforms whatever the data. */
rm_status rm_pgd(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y, int B,
                 float eps, float step, int steps, int restarts, rm_attack_loss loss,
                 rm_rng *rng, float *delta, unsigned char *robust) {
    RM_TRY(adv_check_batch("rm_pgd", a, x, B));
    RM_TRY(adv_check_budget("rm_pgd", eps, step, steps));
    if (restarts < 1) return rm_fail(RM_ERR_ARG, "rm_pgd: restarts %d must be >= 1", restarts);
    if (loss != RM_ATTACK_LOSS_CE && loss != RM_ATTACK_LOSS_CW)
        return rm_fail(RM_ERR_ARG, "rm_pgd: loss %d is neither CE nor CW", (int)loss);
    if (!delta || !rng) return rm_fail(RM_ERR_ARG, "rm_pgd: delta or rng pointer is NULL");
    RM_TRY(adv_check_labels("rm_pgd", y, B, a->K)); /* before any draw: a refusal costs nothing */
    const size_t d = a->d, n = (size_t)B * d;
    unsigned char *alive = rm_alloc((size_t)B); /* robust so far */
    unsigned char *hit = rm_alloc((size_t)B);   /* correct after this restart */
    if (!alive || !hit) {
        rm_free(alive);
        rm_free(hit);
        return RM_ERR_NOMEM;
    }
    memset(alive, 1, (size_t)B);
    int left = B;
    rm_status st = RM_OK;
    for (int r = 0; r < restarts && st == RM_OK; r++) {
        float *cur = a->cur;
        adv_uniform_start(cur, x, n, eps, rng);
        if (left == 0) continue; /* nothing to attack; the draw above keeps the rng in step */
        for (int k = 0; k < steps && st == RM_OK; k++) {
            st = rm_attack_gradient(a, mode, loss, x, cur, y, NULL, B, NULL, a->grad);
            if (st == RM_OK) adv_sign_step(cur, a->grad, x, n, eps, step);
        }
        if (st == RM_OK) st = adv_classify(a, mode, x, cur, y, B, hit, NULL);
        if (st != RM_OK) break;
        for (int b = 0; b < B; b++) {
            if (!alive[b]) continue; /* already fooled by an earlier restart: keep that */
            memcpy(delta + (size_t)b * d, cur + (size_t)b * d, d * sizeof(float));
            if (!hit[b]) {
                alive[b] = 0;
                left--;
            }
        }
    }
    if (st == RM_OK && robust) memcpy(robust, alive, (size_t)B);
    rm_free(alive);
    rm_free(hit);
    return st;
}
