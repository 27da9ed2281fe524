/* Prior-guided FGSM (FGSM-PGI, momentum variant): per-sample prior perturbation D and
 * gradient momentum M, indexed by sample id (sweeps/METHOD.md, "Prior-guided FGSM"). */
#include "adv.h"

#include <math.h>
#include <string.h>

/* Below this many elements a batch is updated by one thread (a parallel region costs
 * more than it saves); above, samples are split between threads. Every element is
 * computed the same way either way: the bits do not depend on the thread count. */
enum { PGI_PARALLEL_MIN = 1 << 15 };

void rm_pgi_free(rm_pgi_state *s) {
    if (!s) return;
    rm_free(s->D);
    rm_free(s->M);
    rm_free(s->fresh);
    memset(s, 0, sizeof *s);
}

rm_status rm_pgi_init(rm_pgi_state *s, int64_t n, size_t d, float eps, float step, float mu) {
    if (!s) return rm_fail(RM_ERR_ARG, "rm_pgi_init: state pointer is NULL");
    memset(s, 0, sizeof *s);
    if (n < 1 || d < 1)
        return rm_fail(RM_ERR_ARG, "rm_pgi_init: %lld samples of size %zu: both must be >= 1",
                       (long long)n, d);
    if ((uint64_t)n > SIZE_MAX / sizeof(float) / d)
        return rm_fail(RM_ERR_ARG, "rm_pgi_init: %lld samples x %zu floats overflow size_t",
                       (long long)n, d);
    RM_TRY(adv_check_budget("rm_pgi_init", eps, step, 0));
    if (!isfinite(mu)) return rm_fail(RM_ERR_ARG, "rm_pgi_init: mu %g is not finite", (double)mu);
    const size_t total = (size_t)n * d;
    s->D = rm_alloc(total * sizeof(float));
    s->M = rm_alloc(total * sizeof(float));
    s->fresh = rm_alloc((size_t)n);
    if (!s->D || !s->M || !s->fresh) {
        rm_pgi_free(s);
        return RM_ERR_NOMEM;
    }
    s->n = n;
    s->d = d;
    s->eps = eps;
    s->step = step;
    s->mu = mu;
    memset(s->fresh, 1, (size_t)n);
    return RM_OK;
}

void rm_pgi_reset(rm_pgi_state *s) { memset(s->fresh, 1, (size_t)s->n); }

static rm_status check_ids(const char *fn, const rm_pgi_state *s, const float *x,
                           const int64_t *ids, int B) {
    if (!s || !s->D) return rm_fail(RM_ERR_ARG, "%s: state is NULL or not initialised", fn);
    if (!x || !ids) return rm_fail(RM_ERR_ARG, "%s: images or ids pointer is NULL", fn);
    if (B < 1) return rm_fail(RM_ERR_ARG, "%s: batch %d must be >= 1", fn, B);
    for (int b = 0; b < B; b++)
        if (ids[b] < 0 || ids[b] >= s->n)
            return rm_fail(RM_ERR_ARG, "%s: sample id ids[%d] = %lld outside [0, %lld)", fn, b,
                           (long long)ids[b], (long long)s->n);
    return RM_OK;
}

/* x, e: (B, d); ids: (B). A fresh sample i gets D[i] = P(step * sign(u)), u ~ U(-eps, eps)
 * (d uniforms, element order, samples in batch order) with respect to its image now, and
 * M[i] = 0. Every sample then starts from e = P(D[i]): the projection again, because
 * augmentation gives the same sample another image (crop, flip) in each epoch. */
rm_status rm_pgi_begin(rm_pgi_state *s, const float *x, const int64_t *ids, int B, rm_rng *rng,
                       float *e) {
    RM_TRY(check_ids("rm_pgi_begin", s, x, ids, B));
    if (!rng || !e) return rm_fail(RM_ERR_ARG, "rm_pgi_begin: rng or e pointer is NULL");
    const size_t d = s->d;
    /* the draws in batch order, one thread; then the samples in parallel (distinct ids) */
    unsigned char fresh_any = 0;
    for (int b = 0; b < B; b++) {
        if (!s->fresh[ids[b]]) continue;
        float *Di = s->D + (size_t)ids[b] * d;
        for (size_t j = 0; j < d; j++) Di[j] = s->step * adv_sign(rm_rng_uniform_range(rng, -s->eps, s->eps));
        fresh_any = 1;
    }
#pragma omp parallel for schedule(static) if ((size_t)B * d > PGI_PARALLEL_MIN)
    for (int b = 0; b < B; b++) {
        const size_t off = (size_t)ids[b] * d;
        const float *xb = x + (size_t)b * d;
        float *Di = s->D + off;
        if (fresh_any && s->fresh[ids[b]]) {
            rm_project(Di, xb, d, s->eps);
            memset(s->M + off, 0, d * sizeof(float));
            s->fresh[ids[b]] = 0;
        }
        memcpy(e + (size_t)b * d, Di, d * sizeof(float));
        rm_project(e + (size_t)b * d, xb, d, s->eps);
    }
    return RM_OK;
}

/* x, e, g, delta: (B, d).  delta = P(e + step sign(g)), sample by sample. */
rm_status rm_pgi_final(const rm_pgi_state *s, const float *x, int B, const float *e, const float *g,
                       float *delta) {
    if (!s || !s->D) return rm_fail(RM_ERR_ARG, "rm_pgi_final: state is NULL or not initialised");
    if (!x || !e || !g || !delta || B < 1)
        return rm_fail(RM_ERR_ARG, "rm_pgi_final: a pointer is NULL or batch %d < 1", B);
    const size_t d = s->d;
    for (int b = 0; b < B; b++) {
        const size_t bo = (size_t)b * d;
        for (size_t j = 0; j < d; j++) delta[bo + j] = e[bo + j] + s->step * adv_sign(g[bo + j]);
        rm_project(delta + bo, x + bo, d, s->eps);
    }
    return RM_OK;
}

/* x, e, g: (B, d); ids: (B).
 *   M[I] = w g / ||g||_1 + mu M[I]   (||g||_1 over all B*d elements; a zero norm adds 0)
 *   D[I] = P(e + step sign(M[I])). */
rm_status rm_pgi_update_prior(rm_pgi_state *s, const float *x, const int64_t *ids, int B,
                              const float *e, const float *g, double w) {
    RM_TRY(check_ids("rm_pgi_update_prior", s, x, ids, B));
    if (!e || !g) return rm_fail(RM_ERR_ARG, "rm_pgi_update_prior: e or g pointer is NULL");
    if (!isfinite(w)) return rm_fail(RM_ERR_ARG, "rm_pgi_update_prior: weight %g is not finite", w);
    const size_t d = s->d, n = (size_t)B * d;
    double l1 = 0.0;
    for (size_t i = 0; i < n; i++) l1 += fabs((double)g[i]);
    if (!isfinite(l1))
        return rm_fail(RM_ERR_DIVERGED, "rm_pgi_update_prior: L1 norm of the input gradient is %g",
                       l1);
    /* w * (1 / l1): exactly 1 / l1 for w = 1, so FGSM-PGI keeps its bits */
    const double scale = l1 > 0.0 ? w * (1.0 / l1) : 0.0;
    const float mu = s->mu, step = s->step;
#pragma omp parallel for schedule(static) if (n > PGI_PARALLEL_MIN)
    for (int b = 0; b < B; b++) {
        const size_t off = (size_t)ids[b] * d, bo = (size_t)b * d;
        float *Mi = s->M + off, *Di = s->D + off;
        for (size_t j = 0; j < d; j++) {
            Mi[j] = (float)((double)g[bo + j] * scale) + mu * Mi[j];
            Di[j] = e[bo + j] + step * adv_sign(Mi[j]);
        }
        rm_project(Di, x + bo, d, s->eps);
    }
    return RM_OK;
}

rm_status rm_pgi_update(rm_pgi_state *s, const float *x, const int64_t *ids, int B,
                        const float *e, const float *g, float *delta) {
    RM_TRY(check_ids("rm_pgi_update", s, x, ids, B));
    if (!e || !g || !delta)
        return rm_fail(RM_ERR_ARG, "rm_pgi_update: e, g or delta pointer is NULL");
    RM_TRY(rm_pgi_final(s, x, B, e, g, delta));
    return rm_pgi_update_prior(s, x, ids, B, e, g, 1.0);
}
