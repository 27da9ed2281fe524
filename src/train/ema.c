/* The EMA model (FGSM-PGK's "prior-guided ensemble"): a shadow copy of every parameter
 * and batch-norm running statistic of the network, moved towards the trained weights
 * after each optimiser step with PGK's adaptive decay (include/regmix/train.h). */
#include <math.h>
#include <string.h>

#include "regmix/train.h"

struct rm_ema {
    rm_net *net;
    size_t n;        /* tensors: rm_net_params order */
    float **shadow;  /* shadow[i]: numel of params[i] */
    int64_t updates; /* t: updates so far */
};

void rm_ema_destroy(rm_ema *e) {
    if (!e) return;
    for (size_t i = 0; e->shadow && i < e->n; i++) rm_free(e->shadow[i]);
    rm_free(e->shadow);
    rm_free(e);
}

rm_status rm_ema_create(rm_net *net, rm_ema **out) {
    *out = NULL;
    rm_ema *e = rm_alloc(sizeof *e);
    if (!e) return RM_ERR_NOMEM;
    memset(e, 0, sizeof *e);
    e->net = net;
    rm_param *p = rm_net_params(net, &e->n);
    e->shadow = rm_alloc(e->n * sizeof *e->shadow);
    if (!e->shadow) {
        rm_free(e);
        return RM_ERR_NOMEM;
    }
    memset(e->shadow, 0, e->n * sizeof *e->shadow);
    for (size_t i = 0; i < e->n; i++) {
        if (!(e->shadow[i] = rm_alloc(p[i].numel * sizeof(float)))) {
            rm_ema_destroy(e);
            return RM_ERR_NOMEM;
        }
        memcpy(e->shadow[i], p[i].data, p[i].numel * sizeof(float)); /* the initial weights */
    }
    *out = e;
    return RM_OK;
}

double rm_ema_cap(const rm_config *c, double r) {
    if (isnan(r) || r < c->ema_value) return c->ema_decay;
    return fmin(1.0, 0.99999 * r / c->ema_value);
}

double rm_ema_decay(double cap, int64_t t) { return fmin(cap, ((double)t + 1.0) / ((double)t + 10.0)); }

/* shadow <- k shadow + (1 - k) w for every tensor, in double, rounded once to float */
void rm_ema_update(rm_ema *e, double k) {
    size_t n;
    rm_param *p = rm_net_params(e->net, &n);
    for (size_t i = 0; i < n; i++) {
        float *s = e->shadow[i];
        const float *w = p[i].data;
        for (size_t j = 0; j < p[i].numel; j++) s[j] = (float)(k * (double)s[j] + (1.0 - k) * (double)w[j]);
    }
    e->updates++;
}

int rm_ema_after_step(rm_ema *e, const rm_config *c, const rm_step_terms *s, double *k_used) {
    double cap = rm_ema_cap(c, s->r);
    if (c->ema_gate && !(s->r >= c->ema_value)) return 0;
    double k = rm_ema_decay(cap, e->updates);
    rm_ema_update(e, k);
    if (k_used) *k_used = k;
    return 1;
}

int64_t rm_ema_updates(const rm_ema *e) { return e->updates; }
void rm_ema_set_updates(rm_ema *e, int64_t t) { e->updates = t; }
float *rm_ema_shadow(rm_ema *e, size_t i) { return i < e->n ? e->shadow[i] : NULL; }

void rm_ema_swap(rm_ema *e) {
    size_t n;
    rm_param *p = rm_net_params(e->net, &n);
    for (size_t i = 0; i < n; i++) {
        float *s = e->shadow[i], *w = p[i].data;
        for (size_t j = 0; j < p[i].numel; j++) {
            float v = s[j];
            s[j] = w[j];
            w[j] = v;
        }
    }
    rm_net_params_changed(e->net);
}
