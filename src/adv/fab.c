/* FAB-T in the L-infinity norm (Croce & Hein, ICML 2020, "Minimally distorted adversarial
 * examples with a fast adaptive boundary attack"), targeted: steps towards the
 * linearised decision boundary between the label and one target class, biased back
 * towards the clean image, keeping the smallest adversarial perturbation found. */
#include "adv.h"

#include <math.h>
#include <string.h>

#include "regmix/loss.h"

#define FAB_ALPHA_MAX 0.1f /* largest weight of the step from the clean image */
#define FAB_ETA 1.05f      /* overshoot past the linearised boundary */
#define FAB_BETA 0.9f      /* shrink towards the clean image after a success */
#define FAB_TINY 1e-8      /* floor of the step norms in the mixing weight */

typedef struct {
    double room, aw; /* room to the box in the moving direction, |w_i| */
} fab_coord;

/* Swaps two coordinates. */
static void swap_coord(fab_coord *a, fab_coord *b) {
    const fab_coord t = *a;
    *a = *b;
    *b = t;
}

/* lambda* = the smallest lambda with g(lambda) = sum_i |w_i| min(lambda, room_i) >= target,
 * for target < g(inf). g is continuous, piecewise linear and non-decreasing, so a pivot
 * room p tells on which side lambda* lies: g(p) >= target puts every coordinate with
 * room >= p above lambda* (it contributes |w_i| lambda), g(p) < target puts every one with
 * room <= p below (it contributes |w_i| room_i). Partitioning around pivots (a
 * three-way partition, the pivot the median of three) settles every coordinate in
 * expected O(m) time, with no sort; then lambda* = (target - below) / above. */
static double solve_lambda(fab_coord *c, size_t m, double target) {
    double below = 0.0; /* sum |w| room of the coordinates settled below lambda* */
    double above = 0.0; /* sum |w| of those settled above it */
    size_t lo = 0, hi = m; /* the unsettled ones: c[lo..hi) */
    while (lo < hi) {
        const double a = c[lo].room, b = c[lo + (hi - lo) / 2].room, z = c[hi - 1].room;
        const double p = a < b ? (b < z ? b : (a < z ? z : a)) : (a < z ? a : (b < z ? z : b));
        /* c[lo..lt) < p, c[lt..i) == p, c[gt..hi) > p */
        size_t lt = lo, i = lo, gt = hi;
        double sum_l = 0.0, w_e = 0.0, w_g = 0.0;
        while (i < gt) {
            if (c[i].room < p) {
                sum_l += c[i].aw * c[i].room;
                swap_coord(&c[lt++], &c[i++]);
            } else if (c[i].room > p) {
                w_g += c[i].aw;
                swap_coord(&c[i], &c[--gt]);
            } else {
                w_e += c[i].aw;
                i++;
            }
        }
        if (below + sum_l + (above + w_e + w_g) * p >= target) { /* lambda* <= p */
            above += w_e + w_g;
            hi = lt;
        } else { /* lambda* > p */
            below += sum_l + w_e * p;
            lo = gt;
        }
    }
    return above > 0.0 ? (target - below) / above : 0.0;
}

/* The projection of rm_fab_project_linf; `c` is n entries of scratch. */
static double project_linf(const float *u, const float *w, size_t n, double r, float *d,
                           fab_coord *c) {
    const double target = fabs(r), s = r > 0 ? 1.0 : -1.0;
    size_t m = 0;
    double reach = 0.0, room_max = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] == 0.0f) continue;
        const double dir = s * (w[i] > 0 ? 1.0 : -1.0); /* moving up raises s * w.d */
        double room = dir > 0 ? 1.0 - (double)u[i] : (double)u[i];
        if (room < 0) room = 0; /* u outside [0,1] by rounding */
        if (room > room_max) room_max = room;
        if (room == 0) continue; /* at the box already: contributes nothing */
        c[m].room = room;
        c[m].aw = fabs((double)w[i]);
        reach += c[m].aw * room;
        m++;
    }
    double lambda;
    if (target == 0.0 || m == 0) lambda = 0.0;
    else if (reach <= target) lambda = room_max; /* unreachable inside the box: the whole corner */
    else lambda = solve_lambda(c, m, target);
    double norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] == 0.0f || lambda == 0.0) {
            d[i] = 0.0f;
            continue;
        }
        const double dir = s * (w[i] > 0 ? 1.0 : -1.0);
        const double room = dir > 0 ? 1.0 - (double)u[i] : (double)u[i];
        const double step = lambda < room ? lambda : (room > 0 ? room : 0.0);
        d[i] = (float)(dir * step);
        if (step > norm) norm = step;
    }
    return norm;
}

rm_status rm_fab_project_linf(const float *u, const float *w, size_t n, double r, float *d,
                              double *lambda) {
    if (!u || !w || !d || !lambda || n == 0)
        return rm_fail(RM_ERR_ARG, "rm_fab_project_linf: NULL pointer or n = 0");
    if (!isfinite(r)) return rm_fail(RM_ERR_ARG, "rm_fab_project_linf: r = %g is not finite", r);
    fab_coord *c = rm_alloc(n * sizeof *c);
    if (!c) return RM_ERR_NOMEM;
    *lambda = project_linf(u, w, n, r, d, c);
    rm_free(c);
    return RM_OK;
}

static float linf_norm(const float *v, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++)
        if (fabsf(v[i]) > m) m = fabsf(v[i]);
    return m;
}

/* Scratch of one FAB-T call. */
typedef struct {
    float *u, *d1, *d2, *next, *best;
    float *res;             /* (B) smallest adversarial norm so far, +inf if none */
    double *f;              /* (B) z_t - z_y at the current point */
    unsigned char *hit;     /* (B) correctly classified at the next point */
    fab_coord *coords;      /* (d) */
} fab_scratch;

static void fab_free(fab_scratch *s) {
    void *p[] = {s->u, s->d1, s->d2, s->next, s->best, s->res, s->f, s->hit, s->coords};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) rm_free(p[i]);
}

static rm_status fab_alloc(fab_scratch *s, int B, size_t d) {
    memset(s, 0, sizeof *s);
    const size_t n = (size_t)B * d;
    s->u = rm_alloc(d * sizeof(float));
    s->d1 = rm_alloc(d * sizeof(float));
    s->d2 = rm_alloc(d * sizeof(float));
    s->next = rm_alloc(n * sizeof(float));
    s->best = rm_alloc(n * sizeof(float));
    s->res = rm_alloc((size_t)B * sizeof(float));
    s->f = rm_alloc((size_t)B * sizeof(double));
    s->hit = rm_alloc((size_t)B);
    s->coords = rm_alloc(d * sizeof(fab_coord));
    if (!s->u || !s->d1 || !s->d2 || !s->next || !s->best || !s->res || !s->f || !s->hit || !s->coords) {
        fab_free(s);
        return RM_ERR_NOMEM;
    }
    return RM_OK;
}

/* One FAB step of example b (d values). cur = delta_k, g = grad of f = z_t - z_y at
 * x + cur, f its value. The boundary of the linearisation: g . (delta - cur) = -f.
 *   d1: from the current point x + cur, g . d1 = -f
 *   d2: from the clean point x,        g . d2 = g . cur - f
 *   alpha = min(max(|d1| / (|d1| + |d2|), 0), alpha_max)   (norms floored at 1e-8)
 *   next = (cur + eta d1)(1 - alpha) + eta d2 alpha, then into the box. */
static void fab_step(fab_scratch *s, const float *x, const float *cur, const float *g, double f,
                     size_t d, float *next) {
    double gcur = 0.0;
    for (size_t i = 0; i < d; i++) {
        s->u[i] = x[i] + cur[i];
        gcur += (double)g[i] * (double)cur[i];
    }
    double a1 = project_linf(s->u, g, d, -f, s->d1, s->coords);
    double a2 = project_linf(x, g, d, gcur - f, s->d2, s->coords);
    if (a1 < FAB_TINY) a1 = FAB_TINY;
    if (a2 < FAB_TINY) a2 = FAB_TINY;
    float alpha = (float)(a1 / (a1 + a2));
    if (alpha > FAB_ALPHA_MAX) alpha = FAB_ALPHA_MAX;
    for (size_t i = 0; i < d; i++) {
        float v = (cur[i] + FAB_ETA * s->d1[i]) * (1.0f - alpha) + FAB_ETA * s->d2[i] * alpha;
        if (v < -x[i]) v = -x[i];
        if (v > 1.0f - x[i]) v = 1.0f - x[i];
        next[i] = v;
    }
}

static rm_status fab_run(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y,
                         const int32_t *target, int B, float eps, int iters, float *delta,
                         unsigned char *robust, fab_scratch *s) {
    const size_t d = a->d, n = (size_t)B * d;
    const int K = a->K;
    float *cur = a->cur, *grad = a->grad;
    memset(cur, 0, n * sizeof(float));
    for (int b = 0; b < B; b++) s->res[b] = INFINITY;
    for (int k = 0; k < iters; k++) {
        /* f = z_t - z_y and its input gradient, per example (no 1/B) */
        RM_TRY(adv_forward(a, mode, x, cur, B));
        memset(a->dlogits, 0, (size_t)B * (size_t)K * sizeof(float));
        double *f = s->f;
        for (int b = 0; b < B; b++) {
            const float *z = a->logits + (size_t)b * K;
            f[b] = (double)z[target[b]] - (double)z[y[b]];
            RM_TRY(rm_loss_check_finite("FAB-T logit difference", f[b]));
            a->dlogits[(size_t)b * K + target[b]] = 1.0f;
            a->dlogits[(size_t)b * K + y[b]] = -1.0f;
        }
        RM_TRY(adv_backward_input(a, grad));
        for (int b = 0; b < B; b++) {
            const size_t o = (size_t)b * d;
            fab_step(s, x + o, cur + o, grad + o, f[b], d, s->next + o);
        }
        RM_TRY(adv_classify(a, mode, x, s->next, y, B, s->hit, NULL));
        for (int b = 0; b < B; b++) {
            const size_t o = (size_t)b * d;
            if (!s->hit[b]) { /* misclassified: keep if smaller, then shrink towards x */
                const float norm = linf_norm(s->next + o, d);
                if (norm < s->res[b]) {
                    s->res[b] = norm;
                    memcpy(s->best + o, s->next + o, d * sizeof(float));
                }
                for (size_t i = 0; i < d; i++) s->next[o + i] *= FAB_BETA;
            }
        }
        memcpy(cur, s->next, n * sizeof(float));
    }
    for (int b = 0; b < B; b++) {
        const size_t o = (size_t)b * d;
        robust[b] = !(s->res[b] <= eps);
        if (robust[b]) memset(delta + o, 0, d * sizeof(float));
        else memcpy(delta + o, s->best + o, d * sizeof(float));
    }
    return RM_OK;
}

rm_status rm_fab_t(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y,
                   const int32_t *target, int B, float eps, int iters, float *delta,
                   unsigned char *robust) {
    RM_TRY(adv_check_batch("rm_fab_t", a, x, B));
    RM_TRY(adv_check_budget("rm_fab_t", eps, 0.0f, iters));
    if (!delta || !robust || !target)
        return rm_fail(RM_ERR_ARG, "rm_fab_t: delta, robust or target pointer is NULL");
    RM_TRY(adv_check_labels("rm_fab_t", y, B, a->K));
    for (int b = 0; b < B; b++)
        if (target[b] < 0 || target[b] >= a->K || target[b] == y[b])
            return rm_fail(RM_ERR_ARG, "rm_fab_t: target[%d] = %d must lie in [0, %d) and differ from the label %d",
                           b, (int)target[b], a->K, (int)y[b]);
    fab_scratch s;
    RM_TRY(fab_alloc(&s, B, a->d));
    rm_status st = fab_run(a, mode, x, y, target, B, eps, iters, delta, robust, &s);
    fab_free(&s);
    return st;
}
