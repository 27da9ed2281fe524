/* Graph building: parameters in PyTorch state_dict order, then nodes in execution order. */
#include <stdio.h>
#include <string.h>

#include "nn/engine.h"

int graph_param_index(const rm_net *n, const char *name) {
    for (int i = 0; i < n->n_params; i++)
        if (!strcmp(n->params[i].name, name)) return i;
    return -1;
}

static rm_status add_param(rm_net *n, const char *prefix, const char *suffix, int ndim,
                           const int64_t *dims, int is_buffer, int64_t fan_in) {
    if (n->n_params >= MAX_PARAMS) return rm_fail(RM_ERR_ARG, "too many parameters");
    rm_param *p = &n->params[n->n_params];
    int len = snprintf(p->name, sizeof p->name, "%s.%s", prefix, suffix);
    if (len < 0 || (size_t)len >= sizeof p->name)
        return rm_fail(RM_ERR_ARG, "parameter name too long: %s.%s", prefix, suffix);
    p->ndim = ndim;
    p->numel = 1;
    for (int d = 0; d < ndim; d++) {
        p->dims[d] = dims[d];
        p->numel *= (size_t)dims[d];
    }
    p->is_buffer = is_buffer;
    p->fan_in = fan_in;
    p->data = rm_alloc(p->numel * sizeof(float));
    if (!p->data) return RM_ERR_NOMEM;
    if (!is_buffer) {
        p->grad = rm_alloc(p->numel * sizeof(float));
        if (!p->grad) return RM_ERR_NOMEM;
    }
    n->n_params++;
    return RM_OK;
}

rm_status graph_declare_conv(rm_net *n, const char *name, int oc, int ic, int k, int bias) {
    int64_t wd[4] = {oc, ic, k, k}, bd[1] = {oc};
    int64_t fan_in = (int64_t)ic * k * k;
    RM_TRY(add_param(n, name, "weight", 4, wd, 0, fan_in));
    if (bias) RM_TRY(add_param(n, name, "bias", 1, bd, 0, fan_in));
    return RM_OK;
}

rm_status graph_declare_bn(rm_net *n, const char *name, int c) {
    int64_t d[1] = {c};
    RM_TRY(add_param(n, name, "weight", 1, d, 0, 0));
    RM_TRY(add_param(n, name, "bias", 1, d, 0, 0));
    RM_TRY(add_param(n, name, "running_mean", 1, d, 1, 0));
    RM_TRY(add_param(n, name, "running_var", 1, d, 1, 0));
    return RM_OK;
}

rm_status graph_declare_linear(rm_net *n, const char *name, int out, int in) {
    int64_t wd[2] = {out, in}, bd[1] = {out};
    RM_TRY(add_param(n, name, "weight", 2, wd, 0, in));
    RM_TRY(add_param(n, name, "bias", 1, bd, 0, in));
    return RM_OK;
}

static int new_tensor(rm_net *n, int ndims, int c, int h, int w) {
    if (n->n_tensors >= MAX_TENSORS) return -1;
    n->shape[n->n_tensors] = (tensor_shape){ndims, c, h, w};
    return n->n_tensors++;
}

static node *new_node(rm_net *n, op_kind kind, int in) {
    if (n->n_nodes >= MAX_NODES || in < 0) return NULL;
    node *d = &n->nodes[n->n_nodes++];
    *d = (node){.kind = kind, .in = {in, -1}, .out = -1, .w = -1, .b = -1, .rmean = -1, .rvar = -1};
    return d;
}

static int lookup(const rm_net *n, const char *layer, const char *suffix) {
    char full[80];
    snprintf(full, sizeof full, "%s.%s", layer, suffix);
    return graph_param_index(n, full);
}

int graph_input(rm_net *n, int c, int h, int w) { return new_tensor(n, 4, c, h, w); }

int graph_conv(rm_net *n, int in, const char *name, int stride, int pad) {
    node *d = new_node(n, OP_CONV, in);
    if (!d) return -1;
    d->w = lookup(n, name, "weight");
    d->b = lookup(n, name, "bias");
    if (d->w < 0) return -1;
    const rm_param *w = &n->params[d->w];
    const tensor_shape *s = &n->shape[in];
    if (s->ndims != 4 || w->dims[1] != s->c) return -1;
    d->k = (int)w->dims[2];
    d->stride = stride;
    d->pad = pad;
    if (s->h + 2 * pad < d->k || s->w + 2 * pad < d->k) return -1; /* map smaller than the kernel */
    int oh = (s->h + 2 * pad - d->k) / stride + 1, ow = (s->w + 2 * pad - d->k) / stride + 1;
    d->out = new_tensor(n, 4, (int)w->dims[0], oh, ow);
    return d->out;
}

int graph_bn(rm_net *n, int in, const char *name) {
    node *d = new_node(n, OP_BN, in);
    if (!d) return -1;
    d->w = lookup(n, name, "weight");
    d->b = lookup(n, name, "bias");
    d->rmean = lookup(n, name, "running_mean");
    d->rvar = lookup(n, name, "running_var");
    const tensor_shape *s = &n->shape[in];
    if (d->w < 0 || d->rvar < 0 || n->params[d->w].dims[0] != s->c) return -1;
    d->out = new_tensor(n, s->ndims, s->c, s->h, s->w);
    return d->out;
}

int graph_relu(rm_net *n, int in) {
    node *d = new_node(n, OP_RELU, in);
    if (!d) return -1;
    const tensor_shape *s = &n->shape[in];
    d->out = new_tensor(n, s->ndims, s->c, s->h, s->w);
    return d->out;
}

static int pool(rm_net *n, op_kind kind, int in, int k, int stride) {
    node *d = new_node(n, kind, in);
    if (!d) return -1;
    const tensor_shape *s = &n->shape[in];
    if (s->ndims != 4 || s->h < k || s->w < k) return -1;
    d->k = k;
    d->stride = stride;
    d->out = new_tensor(n, 4, s->c, (s->h - k) / stride + 1, (s->w - k) / stride + 1);
    return d->out;
}

int graph_maxpool(rm_net *n, int in, int k, int stride) { return pool(n, OP_MAXPOOL, in, k, stride); }
int graph_avgpool(rm_net *n, int in, int k, int stride) { return pool(n, OP_AVGPOOL, in, k, stride); }

int graph_gap(rm_net *n, int in) {
    if (in < 0 || n->shape[in].h != n->shape[in].w) return -1;
    int out = pool(n, OP_GAP, in, n->shape[in].h, 1);
    return out;
}

int graph_linear(rm_net *n, int in, const char *name) {
    node *d = new_node(n, OP_LINEAR, in);
    if (!d) return -1;
    d->w = lookup(n, name, "weight");
    d->b = lookup(n, name, "bias");
    if (d->w < 0) return -1;
    const tensor_shape *s = &n->shape[in];
    int64_t in_features = (int64_t)s->c * (s->ndims == 4 ? (int64_t)s->h * s->w : 1);
    if (n->params[d->w].dims[1] != in_features) return -1;
    d->out = new_tensor(n, 2, (int)n->params[d->w].dims[0], 1, 1);
    return d->out;
}

int graph_add(rm_net *n, int a, int b) {
    node *d = new_node(n, OP_ADD, a);
    if (!d || b < 0) return -1;
    const tensor_shape *sa = &n->shape[a], *sb = &n->shape[b];
    if (sa->c != sb->c || sa->h != sb->h || sa->w != sb->w) return -1;
    d->in[1] = b;
    d->out = new_tensor(n, sa->ndims, sa->c, sa->h, sa->w);
    return d->out;
}
