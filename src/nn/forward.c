/* Forward pass: runs the plan for the batch size on the tape's buffers. */
#include <string.h>

#include "nn/engine.h"

/* Point the plan's per-pass memories at this tape's storage. */
static rm_status bind_tape(rm_net *n, plan *p, rm_tape *t) {
    for (int k = 0; k < n->n_tensors; k++)
        if (!p->virt[k]) RM_TRY(slot_bind(&t->act[k], p->act[k]));
    for (int i = 0; i < n->n_nodes; i++) {
        node_plan *q = &p->np[i];
        if (q->src_copy) RM_TRY(slot_bind(&t->src_copy[i], q->src_copy));
        if (q->mean) RM_TRY(slot_bind(&t->mean[i], q->mean));
        if (q->var) RM_TRY(slot_bind(&t->var[i], q->var));
        if (q->ws) RM_TRY(slot_bind(&t->ws[i], q->ws));
    }
    return RM_OK;
}

rm_status tape_bind(rm_net *n, plan *p, rm_tape *t) { return bind_tape(n, p, t); }

/* PyTorch's running statistics: r = (1-m) r + m * batch_stat, with the unbiased
 * variance (count / (count-1)) for running_var. */
static void update_running(rm_net *n, const node *d, node_plan *q, int batch) {
    const tensor_shape *s = &n->shape[d->in[0]];
    double count = (double)batch * s->h * s->w;
    double unbias = count > 1 ? count / (count - 1) : 1.0;
    float m = n->bn_momentum;
    float *rm = n->params[d->rmean].data, *rv = n->params[d->rvar].data;
    const float *mean = mem_ptr(q->mean), *var = mem_ptr(q->var);
    for (int c = 0; c < s->c; c++) {
        rm[c] = (1 - m) * rm[c] + m * mean[c];
        rv[c] = (float)((1 - m) * rv[c] + m * var[c] * unbias);
    }
}

static rm_status forward_node(rm_net *n, plan *p, int i, rm_mode mode) {
    node *d = &n->nodes[i];
    node_plan *q = &p->np[i];
    dnnl_memory_t src = p->act[d->in[0]], dst = p->act[d->out];
    switch (d->kind) {
    case OP_CONV:
    case OP_LINEAR: {
        if (q->src_reorder) {
            RM_TRY(reorder_run(q->src_reorder, src, q->src_copy));
            src = q->src_copy;
        }
        dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, q->w_fwd},
                                {DNNL_ARG_DST, dst}, {DNNL_ARG_BIAS, q->b_plain}};
        return exec(q->fwd[0], q->b_plain ? 4 : 3, a);
    }
    case OP_BN: {
        int m = mode == RM_MODE_EVAL;
        if (q->relu_out >= 0) dst = p->act[q->relu_out]; /* relu(bn(x)) in one pass */
        if (!m && n->allreduce) return bn_sync_forward(n, p, i, src, dst); /* data-parallel */
        dnnl_exec_arg_t a[7] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst},
                                {DNNL_ARG_SCALE, q->w_plain}, {DNNL_ARG_SHIFT, q->b_plain},
                                {DNNL_ARG_MEAN, m ? q->rmean : q->mean},
                                {DNNL_ARG_VARIANCE, m ? q->rvar : q->var},
                                {DNNL_ARG_WORKSPACE, q->ws}};
        RM_TRY(exec(q->fwd[m], q->ws ? 7 : 6, a));
        if (!m) {
            dnnl_stream_t s = NULL;
            RM_TRY(rm_dnnl_get(NULL, &s));
            DNNL_TRY(dnnl_stream_wait(s));
            update_running(n, d, q, p->batch);
        }
        return RM_OK;
    }
    case OP_RELU: {
        if (q->relu_fused) return RM_OK;
        dnnl_exec_arg_t a[2] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
        return exec(q->fwd[0], 2, a);
    }
    case OP_MAXPOOL:
    case OP_AVGPOOL:
    case OP_GAP: {
        dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_WORKSPACE, q->ws}};
        return exec(q->fwd[0], q->ws ? 3 : 2, a);
    }
    case OP_ADD: {
        dnnl_memory_t b = p->act[d->in[1]];
        if (q->src_reorder) {
            RM_TRY(reorder_run(q->src_reorder, b, q->src_copy));
            b = q->src_copy;
        }
        dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC_0, src}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, dst}};
        return exec(q->fwd[0], 3, a);
    }
    }
    return rm_fail(RM_ERR_ARG, "unknown node kind %d", (int)d->kind);
}

rm_status rm_net_forward(rm_net *n, rm_tape *t, rm_mode mode, const float *x, int batch,
                         float *logits) {
    if (!n || !t || t->net != n || !x || batch < 1)
        return rm_fail(RM_ERR_ARG, "rm_net_forward: bad arguments (batch %d)", batch);
    plan *p;
    RM_TRY(plan_get(n, batch, &p));
    RM_TRY(plan_refresh_weights(n, p));
    RM_TRY(bind_tape(n, p, t));
    t->batch = batch;
    t->mode = mode;
    t->synced = mode == RM_MODE_TRAIN && n->allreduce != NULL;
    /* copy the input: the caller may change x (an attack's next step) before backward */
    memcpy(mem_ptr(p->act[0]), x, (size_t)batch * rm_net_input_size(n) * sizeof(float));
    for (int i = 0; i < n->n_nodes; i++) RM_TRY(forward_node(n, p, i, mode));
    int last = n->n_tensors - 1;
    if (p->logits_reorder) {
        DNNL_TRY(dnnl_memory_set_data_handle(p->logits_plain, logits));
        RM_TRY(reorder_run(p->logits_reorder, p->act[last], p->logits_plain));
    }
    dnnl_stream_t s = NULL;
    RM_TRY(rm_dnnl_get(NULL, &s));
    DNNL_TRY(dnnl_stream_wait(s));
    if (!p->logits_reorder)
        memcpy(logits, mem_ptr(p->act[last]), (size_t)batch * n->num_classes * sizeof(float));
    n->passes.forward += batch;
    return RM_OK;
}
