/* Network lifetime, parameters, initialisation and tapes. */
#include <math.h>
#include <string.h>

#include "nn/engine.h"

rm_status rm_net_create(const char *model, int c, int h, int w, int num_classes, rm_net **out) {
    *out = NULL;
    if (!model) return rm_fail(RM_ERR_ARG, "rm_net_create: no model name");
    if (strlen(model) >= sizeof((rm_net *)0)->model)
        return rm_fail(RM_ERR_ARG, "unknown model '%s'", model);
    RM_TRY(rm_dnnl_get(NULL, NULL));
    rm_net *n = rm_alloc(sizeof *n);
    if (!n) return RM_ERR_NOMEM;
    strcpy(n->model, model);
    n->num_classes = num_classes;
    n->bn_eps = 1e-5f;     /* PyTorch BatchNorm2d defaults */
    n->bn_momentum = 0.1f;
    rm_status st = models_build(n, model, c, h, w, num_classes);
    if (st != RM_OK) {
        rm_net_destroy(n);
        return st;
    }
    for (int i = 0; i < n->n_nodes; i++)
        for (int k = 0; k < 2; k++)
            if (n->nodes[i].in[k] >= 0) n->consumers[n->nodes[i].in[k]]++;
    rm_net_init(n, 0);
    *out = n;
    return RM_OK;
}

void rm_net_destroy(rm_net *n) {
    if (!n) return;
    for (int i = 0; i < MAX_PLANS; i++) plan_destroy(n, n->plans[i]);
    for (int i = 0; i < n->n_params; i++) {
        rm_free(n->params[i].data);
        rm_free(n->params[i].grad);
    }
    for (int t = 0; t < MAX_TENSORS; t++) slot_free(&n->diff[t]);
    slot *node_slots[] = {n->diff_dst_tmp, n->bww_diff_dst_tmp, n->diff_src_tmp, n->dw,
                          n->db, n->w_fwd, n->w_bwd};
    for (size_t k = 0; k < sizeof node_slots / sizeof *node_slots; k++)
        for (int i = 0; i < MAX_NODES; i++) slot_free(&node_slots[k][i]);
    rm_free(n);
}

const char *rm_net_model(const rm_net *n) { return n->model; }
int rm_net_num_classes(const rm_net *n) { return n->num_classes; }

void rm_net_input_shape(const rm_net *n, int *c, int *h, int *w) {
    if (c) *c = n->shape[0].c;
    if (h) *h = n->shape[0].h;
    if (w) *w = n->shape[0].w;
}

size_t rm_net_input_size(const rm_net *n) {
    return (size_t)n->shape[0].c * n->shape[0].h * n->shape[0].w;
}

rm_param *rm_net_params(rm_net *n, size_t *count) {
    if (count) *count = (size_t)n->n_params;
    return n->params;
}

rm_param *rm_net_find_param(rm_net *n, const char *name) {
    int i = graph_param_index(n, name);
    return i < 0 ? NULL : &n->params[i];
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* PyTorch defaults: Conv2d / Linear reset_parameters() use kaiming_uniform_(a=sqrt(5)),
 * i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and the same bound for biases;
 * BatchNorm: weight 1, bias 0, running_mean 0, running_var 1.
 * he_normal_init (TRADES' WideResNet): conv weights N(0, 2 / (kh kw out_channels)),
 * linear bias 0. */
void rm_net_init(rm_net *n, uint64_t seed) {
    rm_rng rng;
    rm_rng_derive(&rng, seed, "init");
    for (int i = 0; i < n->n_params; i++) {
        rm_param *p = &n->params[i];
        int is_bn = p->fan_in == 0, is_conv = p->ndim == 4, is_bias = p->ndim == 1;
        double he_std = is_conv ? sqrt(2.0 / (double)(p->dims[0] * p->dims[2] * p->dims[3])) : 0.0;
        for (size_t k = 0; k < p->numel; k++) {
            float v;
            if (is_bn) v = (ends_with(p->name, ".weight") || ends_with(p->name, "running_var")) ? 1.f : 0.f;
            else if (n->he_normal_init && is_conv) v = (float)(he_std * rm_rng_normal(&rng));
            else if (n->he_normal_init && is_bias) v = 0.f;
            else {
                float bound = (float)(1.0 / sqrt((double)p->fan_in));
                v = rm_rng_uniform_range(&rng, -bound, bound);
            }
            p->data[k] = v;
        }
    }
    rm_net_zero_grad(n);
    rm_net_params_changed(n);
}

void rm_net_params_changed(rm_net *n) { n->version++; }

void rm_net_zero_grad(rm_net *n) {
    for (int i = 0; i < n->n_params; i++)
        if (n->params[i].grad) memset(n->params[i].grad, 0, n->params[i].numel * sizeof(float));
}

double rm_net_forward_flops(const rm_net *n) {
    double f = 0;
    for (int i = 0; i < n->n_nodes; i++) {
        const node *d = &n->nodes[i];
        if (d->kind != OP_CONV && d->kind != OP_LINEAR) continue;
        const rm_param *w = &n->params[d->w];
        const tensor_shape *o = &n->shape[d->out];
        double per_out = (double)w->numel / (double)w->dims[0]; /* in * kh * kw */
        double outputs = (double)o->c * (d->kind == OP_CONV ? (double)o->h * o->w : 1.0);
        f += 2.0 * per_out * outputs;
    }
    return f;
}

void rm_net_pass_counts(const rm_net *n, rm_net_pass_count *out) { *out = n->passes; }

rm_status rm_tape_create(rm_net *n, rm_tape **out) {
    rm_tape *t = rm_alloc(sizeof *t);
    if (!t) return RM_ERR_NOMEM;
    t->net = n;
    *out = t;
    return RM_OK;
}

void rm_tape_destroy(rm_tape *t) {
    if (!t) return;
    for (int k = 0; k < MAX_TENSORS; k++) slot_free(&t->act[k]);
    for (int i = 0; i < MAX_NODES; i++) {
        slot_free(&t->src_copy[i]);
        slot_free(&t->mean[i]);
        slot_free(&t->var[i]);
        slot_free(&t->ws[i]);
    }
    rm_free(t);
}
