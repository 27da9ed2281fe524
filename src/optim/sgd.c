/* SGD with momentum and weight decay, as torch.optim.SGD (dampening 0, no Nesterov).
 *
 * Per trained parameter w with gradient g (all float32, like PyTorch on CPU):
 *     d   = g + wd * w
 *     buf = d                      on the first step
 *     buf = momentum * buf + d     afterwards
 *     w  -= lr * buf
 * With momentum 0 PyTorch keeps no buffer and steps with d directly; so do we.
 * Buffers (running statistics) and parameters without a gradient are left alone. */
#include "regmix/optim.h"

#include <math.h>

struct rm_sgd {
    rm_param *params;
    size_t count;
    rm_sgd_config cfg;
    float **momentum; /* [count]; NULL for buffers */
    long steps;
};

rm_status rm_sgd_create(rm_param *params, size_t count, rm_sgd_config cfg, rm_sgd **out) {
    if (!out) return rm_fail(RM_ERR_ARG, "rm_sgd_create: out is NULL");
    *out = NULL;
    if (count > 0 && !params)
        return rm_fail(RM_ERR_ARG, "rm_sgd_create: params is NULL with count %zu", count);
    if (!isfinite(cfg.momentum) || cfg.momentum < 0.0)
        return rm_fail(RM_ERR_ARG, "sgd momentum %g: must be finite and >= 0", cfg.momentum);
    if (!isfinite(cfg.weight_decay) || cfg.weight_decay < 0.0)
        return rm_fail(RM_ERR_ARG, "sgd weight_decay %g: must be finite and >= 0",
                       cfg.weight_decay);
    for (size_t i = 0; i < count; i++) {
        if (!params[i].is_buffer && params[i].numel > 0 && !params[i].data)
            return rm_fail(RM_ERR_ARG, "rm_sgd_create: parameter %zu (%s) has no data", i,
                           params[i].name);
    }

    rm_sgd *opt = rm_alloc(sizeof *opt);
    if (!opt) return RM_ERR_NOMEM;
    opt->params = params;
    opt->count = count;
    opt->cfg = cfg;
    opt->steps = 0;
    opt->momentum = rm_alloc((count ? count : 1) * sizeof *opt->momentum);
    if (!opt->momentum) {
        rm_sgd_destroy(opt);
        return RM_ERR_NOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        if (params[i].is_buffer) continue;
        /* zeroed by rm_alloc: a parameter that first gets a gradient after step 0 then
         * starts from momentum * 0 + d = d, the same as PyTorch's lazily created buffer */
        opt->momentum[i] = rm_alloc(params[i].numel * sizeof(float));
        if (!opt->momentum[i]) {
            rm_sgd_destroy(opt);
            return RM_ERR_NOMEM;
        }
    }
    *out = opt;
    return RM_OK;
}

void rm_sgd_destroy(rm_sgd *opt) {
    if (!opt) return;
    if (opt->momentum)
        for (size_t i = 0; i < opt->count; i++) rm_free(opt->momentum[i]);
    rm_free(opt->momentum);
    rm_free(opt);
}

/* w, g, buf: (n) floats. One parameter's update; scalars rounded to float as PyTorch
 * does for float32 tensors. */
static void sgd_update(float *w, const float *g, float *buf, size_t n, float lr, float momentum,
                       float wd, int first) {
    /* element-wise: the threads split the elements, the bits do not depend on their number */
    if (momentum == 0.0f) {
#pragma omp parallel for simd schedule(static) if (n > 1u << 15)
        for (size_t k = 0; k < n; k++) {
            float d = g[k] + wd * w[k];
            w[k] -= lr * d;
        }
        return;
    }
#pragma omp parallel for simd schedule(static) if (n > 1u << 15)
    for (size_t k = 0; k < n; k++) {
        float d = g[k] + wd * w[k];
        float b = first ? d : momentum * buf[k] + d;
        buf[k] = b;
        w[k] -= lr * b;
    }
}

void rm_sgd_step(rm_sgd *opt, double lr) {
    const float flr = (float)lr;
    const float fm = (float)opt->cfg.momentum;
    const float fwd = (float)opt->cfg.weight_decay;
    const int first = opt->steps == 0;
    for (size_t i = 0; i < opt->count; i++) {
        rm_param *p = &opt->params[i];
        if (p->is_buffer || !p->grad) continue;
        sgd_update(p->data, p->grad, opt->momentum[i], p->numel, flr, fm, fwd, first);
    }
    opt->steps++;
}

float *rm_sgd_momentum(rm_sgd *opt, size_t i) {
    if (!opt || i >= opt->count) return NULL;
    return opt->momentum[i];
}

long rm_sgd_steps_taken(const rm_sgd *opt) { return opt->steps; }

void rm_sgd_set_steps_taken(rm_sgd *opt, long steps) { opt->steps = steps < 0 ? 0 : steps; }
