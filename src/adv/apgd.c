/* APGD (Croce & Hein, ICML 2020): PGD with momentum whose step size halves at
 * checkpoints where the loss stops rising, keeping each example's best point. */
#include "adv.h"

#include <math.h>
#include <string.h>

#include "regmix/loss.h"

#define APGD_RHO 0.75     /* condition (1): at most this share of rising iterations */
#define APGD_MOMENTUM 0.75f

void rm_apgd_sched_init(rm_apgd_sched *s, int iters, float step0, double loss0) {
    memset(s, 0, sizeof *s);
    s->step = step0;
    s->loss_best = s->loss_prev = s->best_at_check = loss0;
    s->period = (int)(0.22 * iters) > 1 ? (int)(0.22 * iters) : 1;
    s->period_min = (int)(0.06 * iters) > 1 ? (int)(0.06 * iters) : 1;
    s->period_decr = (int)(0.03 * iters) > 1 ? (int)(0.03 * iters) : 1;
    s->halved_last = 1;
}

unsigned rm_apgd_sched_update(rm_apgd_sched *s, double loss) {
    unsigned out = 0;
    s->rises += loss > s->loss_prev;
    s->loss_prev = loss;
    if (loss > s->loss_best) {
        s->loss_best = loss;
        out |= RM_APGD_IMPROVED;
    }
    if (++s->since_check < s->period) return out;
    /* a checkpoint */
    const int oscillating = s->rises <= APGD_RHO * s->period;
    const int stalled = !s->halved_last && s->best_at_check >= s->loss_best;
    s->halved_last = oscillating || stalled;
    if (s->halved_last) {
        s->step *= 0.5f;
        out |= RM_APGD_HALVED;
    }
    s->best_at_check = s->loss_best;
    s->rises = s->since_check = 0;
    s->period = s->period - s->period_decr > s->period_min ? s->period - s->period_decr : s->period_min;
    return out;
}

/* The objective at x + delta: per-example loss (CE: lse(z) - z_y; targeted DLR), the
 * misclassified flags of the same forward pass, and the input gradient of the batch
 * mean (its sign per example is the sign of the example's own gradient). */
static rm_status objective(rm_attacker *a, rm_mode mode, const float *x, const float *delta,
                           const int32_t *y, const int32_t *target, int B, double *loss,
                           unsigned char *wrong, float *grad) {
    RM_TRY(adv_forward(a, mode, x, delta, B));
    const int K = a->K;
    memset(a->dlogits, 0, (size_t)B * (size_t)K * sizeof(float));
    if (target) {
        RM_TRY(rm_dlr(a->logits, y, target, B, K, NULL, loss, a->dlogits));
    } else {
        RM_TRY(rm_ce_ls(a->logits, y, B, K, 1.0, NULL, a->dlogits));
        for (int b = 0; b < B; b++) {
            const float *z = a->logits + (size_t)b * K;
            loss[b] = rm_logsumexp(z, K) - (double)z[y[b]];
        }
    }
    for (int b = 0; b < B; b++) {
        RM_TRY(rm_loss_check_finite("APGD objective", loss[b]));
        wrong[b] = adv_argmax(a->logits + (size_t)b * K, K) != y[b];
    }
    return adv_backward_input(a, grad);
}

/* Scratch of one call: B x d arrays and per-example state. */
typedef struct {
    float *prev, *best, *grad_best;
    double *loss;
    unsigned char *wrong;
    rm_apgd_sched *sched;
} apgd_scratch;

static void scratch_free(apgd_scratch *s) {
    rm_free(s->prev);
    rm_free(s->best);
    rm_free(s->grad_best);
    rm_free(s->loss);
    rm_free(s->wrong);
    rm_free(s->sched);
}

static rm_status scratch_alloc(apgd_scratch *s, int B, size_t d) {
    memset(s, 0, sizeof *s);
    const size_t n = (size_t)B * d;
    s->prev = rm_alloc(n * sizeof(float));
    s->best = rm_alloc(n * sizeof(float));
    s->grad_best = rm_alloc(n * sizeof(float));
    s->loss = rm_alloc((size_t)B * sizeof(double));
    s->wrong = rm_alloc((size_t)B);
    s->sched = rm_alloc((size_t)B * sizeof(rm_apgd_sched));
    if (!s->prev || !s->best || !s->grad_best || !s->loss || !s->wrong || !s->sched) {
        scratch_free(s);
        return RM_ERR_NOMEM;
    }
    return RM_OK;
}

/* delta_b = eps * u / max|u|, u ~ U(-1, 1) elementwise from example b's stream, then
 * into the box. */
static void random_start(float *delta, const float *x, int B, size_t d, float eps, rm_rng *rng) {
    for (int b = 0; b < B; b++) {
        float *db = delta + (size_t)b * d;
        float m = 0.0f;
        for (size_t i = 0; i < d; i++) {
            db[i] = rm_rng_uniform_range(&rng[b], -1.0f, 1.0f);
            if (fabsf(db[i]) > m) m = fabsf(db[i]);
        }
        const float scale = eps / (m + 1e-12f);
        for (size_t i = 0; i < d; i++) db[i] *= scale;
        rm_project(db, x + (size_t)b * d, d, eps);
    }
}

/* One momentum step of one example (d values), in place on cur (prev = x_{k-1}):
 *   z = P(cur + step sign(g)),  cur' = P(cur + a (z - cur) + (1 - a)(cur - prev)). */
static void momentum_step(float *cur, float *prev, const float *g, const float *x, size_t d,
                          float eps, float step, float a) {
    for (size_t i = 0; i < d; i++) {
        float z = cur[i] + step * adv_sign(g[i]);
        if (z > eps) z = eps;
        if (z < -eps) z = -eps;
        if (z < -x[i]) z = -x[i];
        if (z > 1.0f - x[i]) z = 1.0f - x[i];
        const float c = cur[i];
        cur[i] = c + a * (z - c) + (1.0f - a) * (c - prev[i]);
        prev[i] = c;
    }
    rm_project(cur, x, d, eps);
}

static int all_zero(const float *g, size_t d) {
    for (size_t i = 0; i < d; i++)
        if (g[i] != 0.0f) return 0;
    return 1;
}

/* x, delta: (B, C, H, W); y, target, robust: (B). a->cur holds the iterates x_k - x,
 * a->grad their gradients; the scratch keeps x_{k-1} - x and the best point. */
static rm_status apgd_run(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y,
                          const int32_t *target, int B, float eps, int iters, rm_rng *rng,
                          float *delta, unsigned char *robust, int *zero_grad,
                          apgd_scratch *s) {
    const size_t d = a->d, n = (size_t)B * d;
    float *cur = a->cur, *grad = a->grad;
    random_start(cur, x, B, d, eps, rng);
    RM_TRY(objective(a, mode, x, cur, y, target, B, s->loss, s->wrong, grad));
    int zeros = 0;
    for (int b = 0; b < B; b++) {
        zeros += all_zero(grad + (size_t)b * d, d);
        rm_apgd_sched_init(&s->sched[b], iters, 2.0f * eps, s->loss[b]);
        robust[b] = !s->wrong[b];
    }
    if (zero_grad) *zero_grad = zeros;
    memcpy(delta, cur, n * sizeof(float)); /* misclassified at the start, or the best so far */
    memcpy(s->prev, cur, n * sizeof(float));
    memcpy(s->best, cur, n * sizeof(float));
    memcpy(s->grad_best, grad, n * sizeof(float));
    for (int k = 0; k < iters; k++) {
        const float mom = k == 0 ? 1.0f : APGD_MOMENTUM;
        for (int b = 0; b < B; b++) {
            const size_t o = (size_t)b * d;
            momentum_step(cur + o, s->prev + o, grad + o, x + o, d, eps, s->sched[b].step, mom);
        }
        RM_TRY(objective(a, mode, x, cur, y, target, B, s->loss, s->wrong, grad));
        for (int b = 0; b < B; b++) {
            const size_t o = (size_t)b * d, bytes = d * sizeof(float);
            if (s->wrong[b]) {
                robust[b] = 0;
                memcpy(delta + o, cur + o, bytes); /* the last misclassified iterate */
            }
            const unsigned ev = rm_apgd_sched_update(&s->sched[b], s->loss[b]);
            if (ev & RM_APGD_IMPROVED) {
                memcpy(s->best + o, cur + o, bytes);
                memcpy(s->grad_best + o, grad + o, bytes);
            }
            if (ev & RM_APGD_HALVED) { /* back to the best point; x_{k-1} stays */
                memcpy(cur + o, s->best + o, bytes);
                memcpy(grad + o, s->grad_best + o, bytes);
            }
        }
    }
    for (int b = 0; b < B; b++) /* survivors report their highest-loss point */
        if (robust[b]) memcpy(delta + (size_t)b * d, s->best + (size_t)b * d, d * sizeof(float));
    return RM_OK;
}

rm_status rm_apgd(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y,
                  const int32_t *target, int B, float eps, int iters, rm_rng *rng,
                  float *delta, unsigned char *robust, int *zero_grad) {
    RM_TRY(adv_check_batch("rm_apgd", a, x, B));
    RM_TRY(adv_check_budget("rm_apgd", eps, 0.0f, iters));
    if (!delta || !robust || !rng)
        return rm_fail(RM_ERR_ARG, "rm_apgd: delta, robust or rng pointer is NULL");
    RM_TRY(adv_check_labels("rm_apgd", y, B, a->K));
    if (target) {
        if (a->K < 4)
            return rm_fail(RM_ERR_ARG, "rm_apgd: the targeted DLR loss needs at least 4 classes (the network has %d)", a->K);
        for (int b = 0; b < B; b++)
            if (target[b] < 0 || target[b] >= a->K || target[b] == y[b])
                return rm_fail(RM_ERR_ARG, "rm_apgd: target[%d] = %d must lie in [0, %d) and differ from the label %d",
                               b, (int)target[b], a->K, (int)y[b]);
    }
    apgd_scratch s;
    RM_TRY(scratch_alloc(&s, B, a->d));
    rm_status st = apgd_run(a, mode, x, y, target, B, eps, iters, rng, delta, robust, zero_grad, &s);
    scratch_free(&s);
    return st;
}
