/* The projection P of sweeps/METHOD.md and the sign step every attack is made of. */
#include "adv.h"

/* delta, x: n floats (any shape). Clamp to the eps-ball first, then to the box, so that
 * x + delta stays in [0,1] even where the box is tighter than the ball. In float,
 * x + (1 - x) rounds to at most 1 and x + (-x) is exactly 0, so the box holds for the
 * image the network sees, not only for delta. */
void rm_project(float *delta, const float *x, size_t n, float eps) {
#pragma omp parallel for schedule(static) if (n > 1u << 15) /* element-wise: same bits */
    for (size_t i = 0; i < n; i++) {
        float v = delta[i];
        if (v > eps) v = eps;
        if (v < -eps) v = -eps;
        const float lo = -x[i], hi = 1.0f - x[i];
        if (v < lo) v = lo;
        if (v > hi) v = hi;
        delta[i] = v;
    }
}

void adv_sign_step(float *delta, const float *g, const float *x, size_t n, float eps,
                   float step) {
    for (size_t i = 0; i < n; i++) delta[i] += step * adv_sign(g[i]);
    rm_project(delta, x, n, eps);
}

void adv_uniform_start(float *delta, const float *x, size_t n, float eps, rm_rng *rng) {
    for (size_t i = 0; i < n; i++) delta[i] = rm_rng_uniform_range(rng, -eps, eps);
    rm_project(delta, x, n, eps);
}
