/* Backward pass over one tape: gradients flow from the logits to the input in reverse
 * node order. A tensor read by several nodes (residual blocks) sums their gradients;
 * the order is fixed, so results are deterministic. */
#include <string.h>

#include "nn/engine.h"

typedef struct {
    rm_net *n;
    plan *p;
    unsigned flags;
    unsigned char written[MAX_TENSORS]; /* gradient buffer holds a value this pass */
} bwd_ctx;

/* diff[t] (+)= g: the first gradient is copied (`reorder` converts g's layout; NULL:
 * the same layout), later ones are added by `add`. */
static rm_status accumulate(bwd_ctx *c, int t, dnnl_memory_t g, dnnl_primitive_t reorder,
                            dnnl_primitive_t add) {
    plan *p = c->p;
    rm_net *n = c->n;
    if (!c->written[t]) {
        RM_TRY(slot_bind(&n->diff[t], p->diff[t]));
        if (reorder) RM_TRY(reorder_run(reorder, g, p->diff[t]));
        else memcpy(mem_ptr(p->diff[t]), mem_ptr(g), dnnl_memory_desc_get_size(&p->md[t]));
        c->written[t] = 1;
        return RM_OK;
    }
    if (!add) return rm_fail(RM_ERR_ARG, "tensor %d: a second gradient where the plan expects one", t);
    return reorder_run(add, g, p->diff[t]);
}

/* Where a node's backward writes its input gradient: straight into diff[in] when it is
 * the only consumer in the same layout, else a scratch buffer added afterwards. */
static rm_status diff_src_target(bwd_ctx *c, int i, dnnl_memory_t *target) {
    node_plan *q = &c->p->np[i];
    int t = c->n->nodes[i].in[0];
    if (q->diff_src_direct) {
        RM_TRY(slot_bind(&c->n->diff[t], c->p->diff[t]));
        *target = c->p->diff[t];
    } else {
        RM_TRY(slot_bind(&c->n->diff_src_tmp[i], q->diff_src_tmp));
        *target = q->diff_src_tmp;
    }
    return RM_OK;
}

static rm_status finish_diff_src(bwd_ctx *c, int i, dnnl_memory_t target) {
    int t = c->n->nodes[i].in[0];
    if (c->p->np[i].diff_src_direct) {
        c->written[t] = 1;
        return RM_OK;
    }
    return accumulate(c, t, target, c->p->accum_reorder[i][0], c->p->accum_add[i][0]);
}

/* grad += dW (in the plain PyTorch layout), bias grad += db */
static rm_status add_weight_grads(bwd_ctx *c, int i) {
    rm_net *n = c->n;
    node *d = &n->nodes[i];
    node_plan *q = &c->p->np[i];
    RM_TRY(reorder_run(q->dw_add, q->dw, q->dw_grad));
    if (d->b < 0) return RM_OK;
    dnnl_stream_t s = NULL;
    RM_TRY(rm_dnnl_get(NULL, &s));
    DNNL_TRY(dnnl_stream_wait(s));
    add_floats(n->params[d->b].grad, mem_ptr(q->db), n->params[d->b].numel);
    return RM_OK;
}

static rm_status backward_weighted(bwd_ctx *c, int i, rm_tape *t, int need_dsrc) {
    rm_net *n = c->n;
    node *d = &n->nodes[i];
    node_plan *q = &c->p->np[i];
    dnnl_memory_t dd = c->p->diff[d->out];
    if (need_dsrc) {
        dnnl_memory_t ddb = dd, target;
        if (q->diff_dst_reorder) {
            RM_TRY(slot_bind(&n->diff_dst_tmp[i], q->diff_dst_tmp));
            RM_TRY(reorder_run(q->diff_dst_reorder, dd, q->diff_dst_tmp));
            ddb = q->diff_dst_tmp;
        }
        if (q->w_bwd != q->w_plain && q->w_bwd != q->w_fwd)
            RM_TRY(slot_bind(&n->w_bwd[i], q->w_bwd));
        RM_TRY(diff_src_target(c, i, &target));
        dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, ddb}, {DNNL_ARG_WEIGHTS, q->w_bwd},
                                {DNNL_ARG_DIFF_SRC, target}};
        RM_TRY(exec(q->bwd[0], 3, a));
        RM_TRY(finish_diff_src(c, i, target));
    }
    if (c->flags & RM_GRAD_WEIGHTS) {
        dnnl_memory_t ddw = dd;
        if (q->bww_diff_dst_reorder) {
            RM_TRY(slot_bind(&n->bww_diff_dst_tmp[i], q->bww_diff_dst_tmp));
            RM_TRY(reorder_run(q->bww_diff_dst_reorder, dd, q->bww_diff_dst_tmp));
            ddw = q->bww_diff_dst_tmp;
        }
        RM_TRY(slot_bind(&n->dw[i], q->dw));
        if (q->db) RM_TRY(slot_bind(&n->db[i], q->db));
        dnnl_memory_t src = q->src_reorder ? q->src_copy : c->p->act[d->in[0]];
        dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddw},
                                {DNNL_ARG_DIFF_WEIGHTS, q->dw}, {DNNL_ARG_DIFF_BIAS, q->db}};
        RM_TRY(exec(q->bww, q->db ? 4 : 3, a));
        RM_TRY(add_weight_grads(c, i));
    }
    (void)t;
    return RM_OK;
}

/* The tensor a batch norm's backward reads the gradient of: its own output, or the
 * output of the ReLU fused into it. */
static int bn_out(const node *d, const node_plan *q) { return q->relu_out >= 0 ? q->relu_out : d->out; }

static rm_status backward_bn(bwd_ctx *c, int i, rm_tape *t) {
    rm_net *n = c->n;
    node *d = &n->nodes[i];
    node_plan *q = &c->p->np[i];
    int m = t->mode == RM_MODE_EVAL;
    dnnl_memory_t target;
    RM_TRY(slot_bind(&n->dw[i], q->dw));
    RM_TRY(slot_bind(&n->db[i], q->db));
    RM_TRY(diff_src_target(c, i, &target));
    dnnl_exec_arg_t a[10] = {{DNNL_ARG_SRC, c->p->act[d->in[0]]},
                             {DNNL_ARG_MEAN, m ? q->rmean : q->mean},
                             {DNNL_ARG_VARIANCE, m ? q->rvar : q->var},
                             {DNNL_ARG_DIFF_DST, c->p->diff[bn_out(d, q)]},
                             {DNNL_ARG_SCALE, q->w_plain},
                             {DNNL_ARG_SHIFT, q->b_plain},
                             {DNNL_ARG_DIFF_SRC, target},
                             {DNNL_ARG_DIFF_SCALE, q->dw},
                             {DNNL_ARG_DIFF_SHIFT, q->db},
                             {DNNL_ARG_WORKSPACE, q->ws}};
    if (t->synced) RM_TRY(bn_sync_backward(n, c->p, i, target)); /* data-parallel */
    else RM_TRY(exec(q->bwd[m], q->ws ? 10 : 9, a));
    RM_TRY(finish_diff_src(c, i, target));
    if (c->flags & RM_GRAD_WEIGHTS) {
        dnnl_stream_t s = NULL;
        RM_TRY(rm_dnnl_get(NULL, &s));
        DNNL_TRY(dnnl_stream_wait(s));
        add_floats(n->params[d->w].grad, mem_ptr(q->dw), n->params[d->w].numel);
        add_floats(n->params[d->b].grad, mem_ptr(q->db), n->params[d->b].numel);
    }
    return RM_OK;
}

static rm_status backward_node(bwd_ctx *c, int i, rm_tape *t) {
    rm_net *n = c->n;
    node *d = &n->nodes[i];
    node_plan *q = &c->p->np[i];
    if (q->relu_fused) return RM_OK; /* the batch norm before it does the ReLU's part */
    if (!c->written[d->kind == OP_BN ? bn_out(d, q) : d->out]) return RM_OK; /* nothing flows here */
    /* the network input needs a gradient only for RM_GRAD_INPUT */
    int need_dsrc = d->in[0] != 0 || (c->flags & RM_GRAD_INPUT);
    switch (d->kind) {
    case OP_CONV:
    case OP_LINEAR: return backward_weighted(c, i, t, need_dsrc);
    case OP_BN: return backward_bn(c, i, t);
    case OP_RELU:
    case OP_MAXPOOL:
    case OP_AVGPOOL:
    case OP_GAP: {
        if (!need_dsrc) return RM_OK;
        dnnl_memory_t target;
        RM_TRY(diff_src_target(c, i, &target));
        dnnl_exec_arg_t a[3] = {{DNNL_ARG_DIFF_DST, c->p->diff[d->out]},
                                {DNNL_ARG_DIFF_SRC, target},
                                {d->kind == OP_RELU ? DNNL_ARG_SRC : DNNL_ARG_WORKSPACE,
                                 d->kind == OP_RELU ? c->p->act[d->in[0]] : q->ws}};
        int nargs = (d->kind == OP_RELU || q->ws) ? 3 : 2;
        RM_TRY(exec(q->bwd[0], nargs, a));
        return finish_diff_src(c, i, target);
    }
    case OP_ADD:
        /* d(a + b) = identity to both operands: shared where the plan allows, else copied */
        for (int k = 0; k < 2; k++) {
            int t = d->in[k];
            if (c->p->add_alias[i][k] && !c->written[t]) {
                DNNL_TRY(dnnl_memory_set_data_handle(c->p->diff[t], mem_ptr(c->p->diff[d->out])));
                c->written[t] = 1;
                continue;
            }
            RM_TRY(accumulate(c, t, c->p->diff[d->out], c->p->accum_reorder[i][k], c->p->accum_add[i][k]));
        }
        return RM_OK;
    }
    return rm_fail(RM_ERR_ARG, "unknown node kind %d", (int)d->kind);
}

rm_status rm_net_backward(rm_net *n, rm_tape *t, const float *dlogits, float *dx, unsigned flags) {
    if (!n || !t || t->net != n || t->batch < 1 || !dlogits)
        return rm_fail(RM_ERR_ARG, "rm_net_backward: bad arguments (tape without a forward pass?)");
    if ((flags & RM_GRAD_INPUT) && !dx)
        return rm_fail(RM_ERR_ARG, "rm_net_backward: RM_GRAD_INPUT needs dx");
    bwd_ctx c = {.n = n, .flags = flags};
    RM_TRY(plan_get(n, t->batch, &c.p));
    plan *p = c.p;
    RM_TRY(plan_refresh_weights(n, p));
    RM_TRY(tape_bind(n, p, t));
    int last = n->n_tensors - 1;
    RM_TRY(slot_bind(&n->diff[last], p->diff[last]));
    size_t nlog = (size_t)t->batch * n->num_classes;
    if (p->dlogits_reorder) {
        DNNL_TRY(dnnl_memory_set_data_handle(p->dlogits_plain, (void *)dlogits));
        RM_TRY(reorder_run(p->dlogits_reorder, p->dlogits_plain, p->diff[last]));
    } else {
        memcpy(mem_ptr(p->diff[last]), dlogits, nlog * sizeof(float));
    }
    c.written[last] = 1;
    for (int i = n->n_nodes - 1; i >= 0; i--) RM_TRY(backward_node(&c, i, t));
    dnnl_stream_t s = NULL;
    RM_TRY(rm_dnnl_get(NULL, &s));
    DNNL_TRY(dnnl_stream_wait(s));
    if (flags & RM_GRAD_WEIGHTS) n->passes.backward_weights += t->batch;
    else n->passes.backward_input += t->batch;
    if (flags & RM_GRAD_INPUT) {
        if (!c.written[0]) return rm_fail(RM_ERR_ARG, "no gradient reached the input");
        memcpy(dx, mem_ptr(p->diff[0]), (size_t)t->batch * rm_net_input_size(n) * sizeof(float));
    }
    return RM_OK;
}
