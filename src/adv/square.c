/* Square attack (Andriushchenko et al., ECCV 2020), L-infinity: random search over
 * squares of +-eps, forward passes only (a black-box attack, the gradient-masking check
 * of AutoAttack). */
#include "adv.h"

#include <math.h>
#include <string.h>

float rm_square_p(float p_init, int i) {
    static const int after[] = {10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
    float p = p_init;
    for (size_t k = 0; k < sizeof after / sizeof *after; k++)
        if (i > after[k]) p = p_init / (float)(2 << k);
    return p;
}

/* Margin z_y - max_{j != y} z_j of one row z (K). */
static float margin(const float *z, int K, int y) {
    float m = -INFINITY;
    for (int k = 0; k < K; k++)
        if (k != y && z[k] > m) m = z[k];
    return z[y] - m;
}

/* Scratch: the still-active examples, compacted (x, label, best delta, margin, index). */
typedef struct {
    float *x, *best, *prop, *margin;
    int32_t *y;
    int *idx;
    rm_rng *rng;
} square_scratch;

static void square_free(square_scratch *s) {
    void *p[] = {s->x, s->best, s->prop, s->margin, s->y, s->idx, s->rng};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) rm_free(p[i]);
}

static rm_status square_alloc(square_scratch *s, int B, size_t d) {
    memset(s, 0, sizeof *s);
    const size_t n = (size_t)B * d;
    s->x = rm_alloc(n * sizeof(float));
    s->best = rm_alloc(n * sizeof(float));
    s->prop = rm_alloc(n * sizeof(float));
    s->margin = rm_alloc((size_t)B * sizeof(float));
    s->y = rm_alloc((size_t)B * sizeof(int32_t));
    s->idx = rm_alloc((size_t)B * sizeof(int));
    s->rng = rm_alloc((size_t)B * sizeof(rm_rng));
    if (!s->x || !s->best || !s->prop || !s->margin || !s->y || !s->idx || !s->rng) {
        square_free(s);
        return RM_ERR_NOMEM;
    }
    return RM_OK;
}

/* Start (from each example's stream, per channel and column, one draw each): the whole
 * column at +eps or -eps, then into the box. x, delta: (B, C, H, W). */
static void stripes(float *delta, const float *x, int B, int C, int H, int W, float eps, rm_rng *rng) {
    const size_t d = (size_t)C * H * W;
    for (int b = 0; b < B; b++) {
        float *db = delta + (size_t)b * d;
        for (int c = 0; c < C; c++)
            for (int col = 0; col < W; col++) {
                const float v = rm_rng_below(&rng[b], 2) ? eps : -eps;
                for (int row = 0; row < H; row++) db[((size_t)c * H + row) * W + col] = v;
            }
        rm_project(db, x + (size_t)b * d, d, eps);
    }
}

/* Proposal for one example (C, H, W): best with an s x s square at (vh, vw) moved to
 * +-eps per channel (best + 2 eps sign, clamped to the ball), then into the box. Draws:
 * vh, vw uniform in [0, H - s) and [0, W - s) (0 when the square spans the image), then
 * one sign per channel. */
static void propose(float *prop, const float *best, const float *x, int C, int H, int W, int s,
                    float eps, rm_rng *rng) {
    const size_t d = (size_t)C * H * W;
    memcpy(prop, best, d * sizeof(float));
    const int vh = (int)rm_rng_below(rng, (uint32_t)(H - s > 0 ? H - s : 1));
    const int vw = (int)rm_rng_below(rng, (uint32_t)(W - s > 0 ? W - s : 1));
    for (int c = 0; c < C; c++) {
        const float step = rm_rng_below(rng, 2) ? 2.0f * eps : -2.0f * eps;
        for (int r = vh; r < vh + s; r++)
            for (int q = vw; q < vw + s; q++) {
                const size_t i = ((size_t)c * H + r) * W + q;
                prop[i] = best[i] + step;
            }
    }
    rm_project(prop, x, d, eps);
}

static rm_status square_run(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y, int B,
                            float eps, int queries, float p_init, rm_rng *rng, float *delta,
                            unsigned char *robust, square_scratch *s) {
    int C, H, W;
    rm_net_input_shape(a->net, &C, &H, &W);
    const size_t d = a->d;
    const int K = a->K;
    stripes(delta, x, B, C, H, W, eps, rng);
    RM_TRY(adv_forward(a, mode, x, delta, B));
    int nb = 0; /* active examples: margin still > 0 */
    for (int b = 0; b < B; b++) {
        const float m = margin(a->logits + (size_t)b * K, K, y[b]);
        if (!(m > 0.0f)) continue;
        s->idx[nb] = b;
        s->y[nb] = y[b];
        s->margin[nb] = m;
        s->rng[nb] = rng[b];
        memcpy(s->x + (size_t)nb * d, x + (size_t)b * d, d * sizeof(float));
        memcpy(s->best + (size_t)nb * d, delta + (size_t)b * d, d * sizeof(float));
        nb++;
    }
    for (int q = 0; q < queries && nb > 0; q++) {
        const double p = rm_square_p(p_init, q);
        int side = (int)nearbyint(sqrt(p * H * W)); /* Python's round: half to even */
        if (side < 1) side = 1;
        if (side > H) side = H;
        if (side > W) side = W;
        for (int j = 0; j < nb; j++)
            propose(s->prop + (size_t)j * d, s->best + (size_t)j * d, s->x + (size_t)j * d, C, H, W,
                    side, eps, &s->rng[j]);
        RM_TRY(adv_forward(a, mode, s->x, s->prop, nb));
        int kept = 0;
        for (int j = 0; j < nb; j++) {
            const float m = margin(a->logits + (size_t)j * K, K, s->y[j]);
            float *best = s->best + (size_t)j * d;
            if (m < s->margin[j]) { /* lower margin (or misclassified): accept */
                s->margin[j] = m;
                memcpy(best, s->prop + (size_t)j * d, d * sizeof(float));
            }
            if (s->margin[j] > 0.0f) { /* still correct: stays active, compacted */
                if (kept != j) {
                    s->idx[kept] = s->idx[j];
                    s->y[kept] = s->y[j];
                    s->margin[kept] = s->margin[j];
                    s->rng[kept] = s->rng[j];
                    memcpy(s->x + (size_t)kept * d, s->x + (size_t)j * d, d * sizeof(float));
                    memcpy(s->best + (size_t)kept * d, best, d * sizeof(float));
                }
                kept++;
            } else {
                memcpy(delta + (size_t)s->idx[j] * d, best, d * sizeof(float));
                rng[s->idx[j]] = s->rng[j];
            }
        }
        nb = kept;
    }
    for (int j = 0; j < nb; j++) {
        memcpy(delta + (size_t)s->idx[j] * d, s->best + (size_t)j * d, d * sizeof(float));
        rng[s->idx[j]] = s->rng[j];
    }
    RM_TRY(adv_classify(a, mode, x, delta, y, B, robust, NULL));
    return RM_OK;
}

rm_status rm_square(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y, int B,
                    float eps, int queries, float p_init, rm_rng *rng, float *delta,
                    unsigned char *robust) {
    RM_TRY(adv_check_batch("rm_square", a, x, B));
    RM_TRY(adv_check_budget("rm_square", eps, 0.0f, queries));
    if (!delta || !robust || !rng)
        return rm_fail(RM_ERR_ARG, "rm_square: delta, robust or rng pointer is NULL");
    if (!(p_init > 0.0f && p_init <= 1.0f))
        return rm_fail(RM_ERR_ARG, "rm_square: p_init %g must lie in (0, 1]", (double)p_init);
    RM_TRY(adv_check_labels("rm_square", y, B, a->K));
    square_scratch s;
    RM_TRY(square_alloc(&s, B, a->d));
    rm_status st = square_run(a, mode, x, y, B, eps, queries, p_init, rng, delta, robust, &s);
    square_free(&s);
    return st;
}
