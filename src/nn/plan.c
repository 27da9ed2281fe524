/* Plans: every oneDNN primitive of the network for one batch size, created once.
 *
 * Layout policy: each tensor has one canonical layout, the one its producer's primitive
 * chose (the input is plain NCHW). Convolution and linear pick their own input layout
 * ("any") and get a reorder only where it differs; everything else consumes the
 * canonical layout directly. Gradients use the canonical layout of their tensor. */
#include <string.h>

#include "nn/engine.h"

static const dnnl_format_tag_t PLAIN_TAG[5] = {dnnl_format_tag_undef, dnnl_a, dnnl_ab,
                                               dnnl_abc, dnnl_abcd};

static rm_status make_pd(dnnl_primitive_desc_t *pd, const void *desc,
                         const_dnnl_primitive_desc_t hint) {
    dnnl_engine_t e = NULL;
    RM_TRY(rm_dnnl_get(&e, NULL));
    DNNL_TRY(dnnl_primitive_desc_create(pd, desc, NULL, e, hint));
    return RM_OK;
}

static rm_status make_prim(dnnl_primitive_t *p, dnnl_primitive_desc_t pd) {
    DNNL_TRY(dnnl_primitive_create(p, pd));
    return RM_OK;
}

static void md_any(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims, dnnl_data_type_t dt) {
    dnnl_memory_desc_init_by_tag(md, ndims, dims, dt, dnnl_format_tag_any);
}

static void md_tag(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims) {
    dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, PLAIN_TAG[ndims]);
}

/* Memory without storage for a primitive argument (bound to a slot before use). */
static rm_status arg_empty(dnnl_memory_t *m, dnnl_primitive_desc_t pd, int arg) {
    return mem_empty(m, pd_md(pd, arg));
}

/* Plain view of a parameter with the given dims (e.g. a linear weight seen as OIHW). */
static rm_status param_view(dnnl_memory_t *m, rm_param *p, int ndims, const dnnl_dims_t dims) {
    dnnl_memory_desc_t md;
    md_tag(&md, ndims, dims);
    return mem_user(m, &md, p->data);
}

/* Shared by conv and linear: weights copies, backward-data and backward-weights. */
static rm_status plan_weighted(rm_net *n, plan *p, int i, const dnnl_memory_desc_t *w_plain_md,
                               const void *bwd_desc, const void *bww_desc) {
    node *d = &n->nodes[i];
    node_plan *q = &p->np[i];
    dnnl_primitive_desc_t fpd = q->fwd_pd[0];

    RM_TRY(mem_user(&q->w_plain, w_plain_md, n->params[d->w].data));
    if (d->b >= 0) {
        dnnl_dims_t bd = {n->params[d->b].dims[0]};
        RM_TRY(param_view(&q->b_plain, &n->params[d->b], 1, bd));
    }
    const dnnl_memory_desc_t *wf = pd_md(fpd, DNNL_ARG_WEIGHTS);
    if (dnnl_memory_desc_equal(wf, w_plain_md)) {
        q->w_fwd = q->w_plain;
    } else {
        RM_TRY(mem_empty(&q->w_fwd, wf));
        RM_TRY(reorder_new(&q->w_fwd_reorder, w_plain_md, wf));
    }
    /* input layout the forward primitive reads */
    const dnnl_memory_desc_t *src = pd_md(fpd, DNNL_ARG_SRC);
    RM_TRY(reorder_new(&q->src_reorder, &p->md[d->in[0]], src));
    if (q->src_reorder) RM_TRY(mem_empty(&q->src_copy, src));

    /* backward data */
    RM_TRY(make_pd(&q->bwd_pd[0], bwd_desc, fpd));
    RM_TRY(make_prim(&q->bwd[0], q->bwd_pd[0]));
    const dnnl_memory_desc_t *wb = pd_md(q->bwd_pd[0], DNNL_ARG_WEIGHTS);
    if (dnnl_memory_desc_equal(wb, w_plain_md)) {
        q->w_bwd = q->w_plain;
    } else if (dnnl_memory_desc_equal(wb, wf)) {
        q->w_bwd = q->w_fwd;
    } else {
        RM_TRY(mem_empty(&q->w_bwd, wb));
        RM_TRY(reorder_new(&q->w_bwd_reorder, w_plain_md, wb));
    }
    const dnnl_memory_desc_t *dd = pd_md(q->bwd_pd[0], DNNL_ARG_DIFF_DST);
    RM_TRY(reorder_new(&q->diff_dst_reorder, &p->md[d->out], dd));
    if (q->diff_dst_reorder) RM_TRY(mem_empty(&q->diff_dst_tmp, dd));

    /* backward weights */
    RM_TRY(make_pd(&q->bww_pd, bww_desc, fpd));
    RM_TRY(make_prim(&q->bww, q->bww_pd));
    const dnnl_memory_desc_t *wdd = pd_md(q->bww_pd, DNNL_ARG_DIFF_DST);
    RM_TRY(reorder_new(&q->bww_diff_dst_reorder, &p->md[d->out], wdd));
    if (q->bww_diff_dst_reorder) RM_TRY(mem_empty(&q->bww_diff_dst_tmp, wdd));
    RM_TRY(arg_empty(&q->dw, q->bww_pd, DNNL_ARG_DIFF_WEIGHTS));
    /* rm_param.grad += dW, in its plain PyTorch layout */
    RM_TRY(reorder_add_new(&q->dw_add, pd_md(q->bww_pd, DNNL_ARG_DIFF_WEIGHTS), w_plain_md));
    RM_TRY(mem_user(&q->dw_grad, w_plain_md, n->params[d->w].grad));
    if (d->b >= 0) RM_TRY(arg_empty(&q->db, q->bww_pd, DNNL_ARG_DIFF_BIAS));
    return RM_OK;
}

/* bf16 nets compute in bf16, except on CPUs with AVX-512 BF16 but no AMX (Zen 4), where
 * oneDNN 2.6 has only direct bf16 kernels: there its f32 Winograd F(4x4, 3x3) kernel is
 * faster on 3x3 stride-1 layers with 64 or more input channels (measured per layer on
 * preact-resnet18, batch 128: 17-30 ms against 19-31 ms per pass; with 32 channels,
 * fmnist-cnn, Winograd is slower), so such a layer stays f32 when oneDNN picks Winograd
 * for it. A rule of shapes and ISA, not of timings: the same CPU always gets the same
 * kernels (and bits). */
static int f32_if_winograd(const rm_net *n, const node *d, const tensor_shape *si) {
    return net_act_dt(n) == dnnl_bf16 && rm_precision_winograd_f32() && d->k == 3 && d->stride == 1 &&
           si->c >= 64;
}

static rm_status plan_conv(rm_net *n, plan *p, int i) {
    node *d = &n->nodes[i];
    const tensor_shape *so = &n->shape[d->out];
    rm_param *w = &n->params[d->w];
    int N = p->batch;
    dnnl_dims_t wd = {w->dims[0], w->dims[1], w->dims[2], w->dims[3]};
    dnnl_dims_t od = {N, so->c, so->h, so->w};
    dnnl_dims_t strides = {d->stride, d->stride}, pad = {d->pad, d->pad};
    const tensor_shape *si = &n->shape[d->in[0]];
    dnnl_memory_desc_t src_md, w_md, dw_md, b_md, dst_md, w_plain_md, dsrc_md;
    dnnl_convolution_desc_t fd, bd, wgd;
    /* f32 first where f32_if_winograd applies; bf16 again if oneDNN takes direct there */
    dnnl_data_type_t dt = f32_if_winograd(n, d, si) ? dnnl_f32 : net_act_dt(n);
    for (;;) {
        /* The network input stays plain in f32 (a first conv with 1 or 3 channels reads
         * NCHW); inner convolutions, and the first one in bf16, choose their layout. */
        if (d->in[0] == 0 && dt == dnnl_f32) src_md = p->md[0];
        else md_any(&src_md, 4, (dnnl_dims_t){N, si->c, si->h, si->w}, dt);
        md_any(&w_md, 4, wd, dt);
        md_any(&dw_md, 4, wd, dnnl_f32); /* weight gradients stay f32 */
        md_any(&dst_md, 4, od, dt);
        md_tag(&w_plain_md, 4, wd);
        if (d->b >= 0) md_tag(&b_md, 1, (dnnl_dims_t){so->c});
        /* the input image's gradient is written in f32 (attacks step on its sign) */
        dsrc_md = src_md;
        if (d->in[0] == 0 && dt != dnnl_f32) md_any(&dsrc_md, 4, (dnnl_dims_t){N, si->c, si->h, si->w}, dnnl_f32);

        /* auto: oneDNN takes Winograd F(4x4, 3x3) where it expects it to be faster (3x3,
         * stride 1, f32, enough images: about 2x on AVX-512, errors ~1e-6 relative), direct
         * convolution elsewhere; each pass decides for itself (test_nn_winograd) */
        DNNL_TRY(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_auto,
                                                    &src_md, &w_md, d->b >= 0 ? &b_md : NULL, &dst_md,
                                                    strides, pad, pad));
        RM_TRY(make_pd(&p->np[i].fwd_pd[0], &fd, NULL));
        if (dt == net_act_dt(n) || strstr(pd_impl(p->np[i].fwd_pd[0]), "wino")) break;
        dnnl_primitive_desc_destroy(p->np[i].fwd_pd[0]);
        p->np[i].fwd_pd[0] = NULL;
        dt = net_act_dt(n);
    }
    RM_TRY(make_prim(&p->np[i].fwd[0], p->np[i].fwd_pd[0]));
    p->md[d->out] = *pd_md(p->np[i].fwd_pd[0], DNNL_ARG_DST);

    DNNL_TRY(dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_auto, &dsrc_md, &w_md,
                                                      &dst_md, strides, pad, pad));
    const dnnl_memory_desc_t *fsrc = pd_md(p->np[i].fwd_pd[0], DNNL_ARG_SRC);
    DNNL_TRY(dnnl_convolution_backward_weights_desc_init(&wgd, dnnl_convolution_auto, fsrc, &dw_md,
                                                         d->b >= 0 ? &b_md : NULL, &dst_md,
                                                         strides, pad, pad));
    return plan_weighted(n, p, i, &w_plain_md, &bd, &wgd);
}

static rm_status plan_linear(rm_net *n, plan *p, int i) {
    node *d = &n->nodes[i];
    const tensor_shape *si = &n->shape[d->in[0]];
    rm_param *w = &n->params[d->w];
    int N = p->batch, nd = si->ndims;
    dnnl_dims_t sd = {N, si->c, si->h, si->w};
    /* [out, C*H*W] row-major is exactly OIHW over (out, C, H, W): flatten in C,H,W order */
    dnnl_dims_t wd = {w->dims[0], si->c, si->h, si->w};
    dnnl_dims_t od = {N, w->dims[0]};
    const dnnl_data_type_t dt = net_act_dt(n);
    /* the logits stay f32 (the losses read them); d loss / d logits is bf16 inside */
    const int logits = d->out == n->n_tensors - 1;
    dnnl_memory_desc_t src_md, w_md, dw_md, b_md, dst_md, ddst_md, w_plain_md;
    md_any(&src_md, nd, sd, dt);
    md_any(&w_md, nd, wd, dt);
    md_any(&dw_md, nd, wd, dnnl_f32);
    md_tag(&w_plain_md, nd, wd);
    md_tag(&b_md, 1, (dnnl_dims_t){w->dims[0]});
    md_any(&dst_md, 2, od, logits ? dnnl_f32 : dt);
    md_any(&ddst_md, 2, od, dt);

    dnnl_inner_product_desc_t fd, bd, wgd;
    DNNL_TRY(dnnl_inner_product_forward_desc_init(&fd, dnnl_forward_training, &src_md, &w_md, &b_md,
                                                  &dst_md));
    RM_TRY(make_pd(&p->np[i].fwd_pd[0], &fd, NULL));
    RM_TRY(make_prim(&p->np[i].fwd[0], p->np[i].fwd_pd[0]));
    p->md[d->out] = *pd_md(p->np[i].fwd_pd[0], DNNL_ARG_DST);
    DNNL_TRY(dnnl_inner_product_backward_data_desc_init(&bd, &src_md, &w_md, &ddst_md));
    const dnnl_memory_desc_t *fsrc = pd_md(p->np[i].fwd_pd[0], DNNL_ARG_SRC);
    DNNL_TRY(dnnl_inner_product_backward_weights_desc_init(&wgd, fsrc, &dw_md, &b_md, &ddst_md));
    return plan_weighted(n, p, i, &w_plain_md, &bd, &wgd);
}

/* A batch norm whose output only a ReLU reads becomes one primitive (the ReLU fused):
 * one pass over the tensor instead of two, forward and backward. */
static void plan_fusions(rm_net *n, plan *p) {
    for (int i = 0; i < n->n_nodes; i++) {
        p->np[i].relu_out = -1;
        p->np[i].relu_fused = 0;
    }
    for (int i = 0; i + 1 < n->n_nodes; i++) {
        const node *d = &n->nodes[i], *r = &n->nodes[i + 1];
        if (d->kind != OP_BN || r->kind != OP_RELU || r->in[0] != d->out || n->consumers[d->out] != 1)
            continue;
        p->np[i].relu_out = r->out;
        p->np[i + 1].relu_fused = 1;
        p->virt[d->out] = 1;
    }
}

static rm_status plan_bn(rm_net *n, plan *p, int i) {
    node *d = &n->nodes[i];
    node_plan *q = &p->np[i];
    const dnnl_memory_desc_t *data = &p->md[d->in[0]];
    unsigned base = dnnl_use_scale | dnnl_use_shift | (q->relu_out >= 0 ? dnnl_fuse_norm_relu : 0);
    unsigned flags[2] = {base, base | dnnl_use_global_stats};
    for (int m = 0; m < 2; m++) {
        dnnl_batch_normalization_desc_t fd, bd;
        /* forward_training for eval too: the backward pass (attacks in eval mode) needs it
         * as a hint; with global statistics it computes nothing extra */
        DNNL_TRY(dnnl_batch_normalization_forward_desc_init(&fd, dnnl_forward_training, data,
                                                            n->bn_eps, flags[m]));
        RM_TRY(make_pd(&q->fwd_pd[m], &fd, NULL));
        RM_TRY(make_prim(&q->fwd[m], q->fwd_pd[m]));
        DNNL_TRY(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, data, data,
                                                             n->bn_eps, flags[m]));
        RM_TRY(make_pd(&q->bwd_pd[m], &bd, q->fwd_pd[m]));
        RM_TRY(make_prim(&q->bwd[m], q->bwd_pd[m]));
    }
    p->md[d->out] = *pd_md(q->fwd_pd[0], DNNL_ARG_DST);
    if (q->relu_out >= 0) {
        p->md[q->relu_out] = p->md[d->out];
        /* the ReLU mask; train and eval primitives must agree on it (one per tape) */
        const dnnl_memory_desc_t *w0 = pd_md(q->fwd_pd[0], DNNL_ARG_WORKSPACE),
                                 *w1 = pd_md(q->fwd_pd[1], DNNL_ARG_WORKSPACE);
        if (!dnnl_memory_desc_equal(w0, w1))
            return rm_fail(RM_ERR_DNNL, "node %d: batch norm + ReLU workspaces differ between modes", i);
        RM_TRY(arg_empty(&q->ws, q->fwd_pd[0], DNNL_ARG_WORKSPACE));
    }
    RM_TRY(arg_empty(&q->mean, q->fwd_pd[0], DNNL_ARG_MEAN));
    RM_TRY(arg_empty(&q->var, q->fwd_pd[0], DNNL_ARG_VARIANCE));
    dnnl_dims_t cd = {n->shape[d->in[0]].c};
    RM_TRY(param_view(&q->w_plain, &n->params[d->w], 1, cd));
    RM_TRY(param_view(&q->b_plain, &n->params[d->b], 1, cd));
    RM_TRY(param_view(&q->rmean, &n->params[d->rmean], 1, cd));
    RM_TRY(param_view(&q->rvar, &n->params[d->rvar], 1, cd));
    /* diff scale / shift scratch (accumulated into the grads, or dropped) */
    RM_TRY(arg_empty(&q->dw, q->bwd_pd[0], DNNL_ARG_DIFF_SCALE));
    RM_TRY(arg_empty(&q->db, q->bwd_pd[0], DNNL_ARG_DIFF_SHIFT));
    return RM_OK;
}

static rm_status plan_relu(rm_net *n, plan *p, int i) {
    node *d = &n->nodes[i];
    node_plan *q = &p->np[i];
    if (q->relu_fused) return RM_OK; /* done by the batch norm before it */
    const dnnl_memory_desc_t *data = &p->md[d->in[0]];
    dnnl_eltwise_desc_t fd, bd;
    DNNL_TRY(dnnl_eltwise_forward_desc_init(&fd, dnnl_forward_training, dnnl_eltwise_relu, data, 0.f, 0.f));
    RM_TRY(make_pd(&q->fwd_pd[0], &fd, NULL));
    RM_TRY(make_prim(&q->fwd[0], q->fwd_pd[0]));
    p->md[d->out] = *pd_md(q->fwd_pd[0], DNNL_ARG_DST);
    DNNL_TRY(dnnl_eltwise_backward_desc_init(&bd, dnnl_eltwise_relu, &p->md[d->out], data, 0.f, 0.f));
    RM_TRY(make_pd(&q->bwd_pd[0], &bd, q->fwd_pd[0]));
    RM_TRY(make_prim(&q->bwd[0], q->bwd_pd[0]));
    return RM_OK;
}

static rm_status plan_pool(rm_net *n, plan *p, int i) {
    node *d = &n->nodes[i];
    node_plan *q = &p->np[i];
    const tensor_shape *so = &n->shape[d->out];
    dnnl_dims_t od = {p->batch, so->c, so->h, so->w};
    dnnl_dims_t strides = {d->stride, d->stride}, kernel = {d->k, d->k}, pad = {0, 0};
    /* PyTorch avg_pool2d counts padding by default; there is none here anyway */
    dnnl_alg_kind_t alg = d->kind == OP_MAXPOOL ? dnnl_pooling_max : dnnl_pooling_avg_include_padding;
    dnnl_memory_desc_t dst_any;
    md_any(&dst_any, 4, od, p->md[d->in[0]].data_type);
    dnnl_pooling_desc_t fd, bd;
    /* forward_training even in eval mode: max-pool backward (attacks) needs the workspace */
    DNNL_TRY(dnnl_pooling_forward_desc_init(&fd, dnnl_forward_training, alg, &p->md[d->in[0]],
                                            &dst_any, strides, kernel, pad, pad));
    RM_TRY(make_pd(&q->fwd_pd[0], &fd, NULL));
    RM_TRY(make_prim(&q->fwd[0], q->fwd_pd[0]));
    p->md[d->out] = *pd_md(q->fwd_pd[0], DNNL_ARG_DST);
    DNNL_TRY(dnnl_pooling_backward_desc_init(&bd, alg, &p->md[d->in[0]], &p->md[d->out], strides,
                                             kernel, pad, pad));
    RM_TRY(make_pd(&q->bwd_pd[0], &bd, q->fwd_pd[0]));
    RM_TRY(make_prim(&q->bwd[0], q->bwd_pd[0]));
    if (alg == dnnl_pooling_max) RM_TRY(arg_empty(&q->ws, q->fwd_pd[0], DNNL_ARG_WORKSPACE));
    return RM_OK;
}

static rm_status plan_add(rm_net *n, plan *p, int i) {
    node *d = &n->nodes[i];
    node_plan *q = &p->np[i];
    const dnnl_memory_desc_t *a = &p->md[d->in[0]];
    /* the second operand is reordered to the first's layout when they differ */
    RM_TRY(reorder_new(&q->src_reorder, &p->md[d->in[1]], a));
    if (q->src_reorder) RM_TRY(mem_empty(&q->src_copy, a));
    dnnl_binary_desc_t fd;
    DNNL_TRY(dnnl_binary_desc_init(&fd, dnnl_binary_add, a, a, a));
    RM_TRY(make_pd(&q->fwd_pd[0], &fd, NULL));
    RM_TRY(make_prim(&q->fwd[0], q->fwd_pd[0]));
    p->md[d->out] = *pd_md(q->fwd_pd[0], DNNL_ARG_DST);
    return RM_OK;
}

/* The node whose backward reads tensor t's gradient (its producer; for a fused ReLU's
 * output, the batch norm that does the ReLU's part). */
static int grad_reader(const rm_net *n, const plan *p, int t) {
    for (int j = 0; j < n->n_nodes; j++)
        if (n->nodes[j].out == t) return p->np[j].relu_fused ? j - 1 : j;
    return -1;
}

/* d(a + b)/da = d(a + b)/db = identity: operand k can share the output's gradient
 * buffer (no copy) when it has that layout and nothing writes into the shared buffer
 * while another reader still needs it. Backward runs nodes in reverse order, so:
 * operand 0 alone (read only by its producer) always; operand 1 too if its other
 * consumers all run their backward after operand 0's producer has read it (their
 * gradients are added into the shared buffer). */
static void plan_add_aliases(rm_net *n, plan *p, int i) {
    const node *d = &n->nodes[i];
    int a = d->in[0], b = d->in[1];
    if (a == b) return;
    p->add_alias[i][0] = !p->accum_reorder[i][0] && n->consumers[a] == 1;
    if (p->accum_reorder[i][1]) return;
    int reader_a = p->add_alias[i][0] ? grad_reader(n, p, a) : n->n_nodes;
    for (int j = 0; j < n->n_nodes; j++)
        if (j != i && (n->nodes[j].in[0] == b || n->nodes[j].in[1] == b) && j >= reader_a) return;
    p->add_alias[i][1] = 1;
}

/* Gradient side: where each node's input gradient lands, and the reorders to add a
 * gradient that arrives in another layout. */
static rm_status plan_grad_routes(rm_net *n, plan *p) {
    for (int i = 0; i < n->n_nodes; i++) {
        node *d = &n->nodes[i];
        node_plan *q = &p->np[i];
        if (d->kind == OP_ADD) {
            for (int k = 0; k < 2; k++) {
                RM_TRY(reorder_new(&p->accum_reorder[i][k], &p->md[d->out], &p->md[d->in[k]]));
                RM_TRY(reorder_add_new(&p->accum_add[i][k], &p->md[d->out], &p->md[d->in[k]]));
            }
            plan_add_aliases(n, p, i);
            continue;
        }
        if (q->relu_fused) continue;
        const dnnl_memory_desc_t *ds = pd_md(q->bwd_pd[0], DNNL_ARG_DIFF_SRC);
        int t = d->in[0];
        RM_TRY(reorder_new(&p->accum_reorder[i][0], ds, &p->md[t]));
        if (n->consumers[t] > 1) RM_TRY(reorder_add_new(&p->accum_add[i][0], ds, &p->md[t]));
        /* Single consumer and same layout: write the gradient in place, no copy. */
        q->diff_src_direct = n->consumers[t] == 1 && !p->accum_reorder[i][0];
        if (!q->diff_src_direct) RM_TRY(mem_empty(&q->diff_src_tmp, ds));
    }
    for (int t = 0; t < n->n_tensors; t++) {
        RM_TRY(mem_empty(&p->act[t], &p->md[t]));
        RM_TRY(mem_empty(&p->diff[t], &p->md[t]));
    }
    return RM_OK;
}

static rm_status plan_build(rm_net *n, plan *p) {
    md_plain(&p->md[0], &n->shape[0], p->batch);
    plan_fusions(n, p);
    for (int i = 0; i < n->n_nodes; i++) {
        switch (n->nodes[i].kind) {
        case OP_CONV: RM_TRY(plan_conv(n, p, i)); break;
        case OP_LINEAR: RM_TRY(plan_linear(n, p, i)); break;
        case OP_BN: RM_TRY(plan_bn(n, p, i)); break;
        case OP_RELU: RM_TRY(plan_relu(n, p, i)); break;
        case OP_MAXPOOL:
        case OP_AVGPOOL:
        case OP_GAP: RM_TRY(plan_pool(n, p, i)); break;
        case OP_ADD: RM_TRY(plan_add(n, p, i)); break;
        }
    }
    RM_TRY(plan_grad_routes(n, p));
    int last = n->n_tensors - 1;
    dnnl_memory_desc_t lp;
    md_plain(&lp, &n->shape[last], p->batch);
    RM_TRY(mem_empty(&p->logits_plain, &lp));
    RM_TRY(mem_empty(&p->dlogits_plain, &lp));
    RM_TRY(reorder_new(&p->logits_reorder, &p->md[last], &lp));
    RM_TRY(reorder_new(&p->dlogits_reorder, &lp, &p->md[last]));
    return RM_OK;
}

static void destroy_mem(dnnl_memory_t *m) {
    if (*m) dnnl_memory_destroy(*m);
    *m = NULL;
}

static void destroy_prim(dnnl_primitive_t *x) {
    if (*x) dnnl_primitive_destroy(*x);
    *x = NULL;
}

static void destroy_pd(dnnl_primitive_desc_t *x) {
    if (*x) dnnl_primitive_desc_destroy(*x);
    *x = NULL;
}

void plan_destroy(rm_net *n, plan *p) {
    if (!p) return;
    for (int i = 0; i < n->n_nodes; i++) {
        node_plan *q = &p->np[i];
        for (int m = 0; m < 2; m++) {
            destroy_prim(&q->fwd[m]);
            destroy_prim(&q->bwd[m]);
            destroy_pd(&q->fwd_pd[m]);
            destroy_pd(&q->bwd_pd[m]);
            destroy_prim(&p->accum_reorder[i][m]);
            destroy_prim(&p->accum_add[i][m]);
        }
        destroy_prim(&q->bww);
        destroy_pd(&q->bww_pd);
        dnnl_primitive_t *prims[] = {&q->src_reorder, &q->diff_dst_reorder, &q->bww_diff_dst_reorder,
                                     &q->w_fwd_reorder, &q->w_bwd_reorder, &q->dw_add};
        for (size_t k = 0; k < sizeof prims / sizeof *prims; k++) destroy_prim(prims[k]);
        if (q->w_bwd == q->w_plain || q->w_bwd == q->w_fwd) q->w_bwd = NULL;
        if (q->w_fwd == q->w_plain) q->w_fwd = NULL;
        dnnl_memory_t *mems[] = {&q->src_copy, &q->diff_dst_tmp, &q->bww_diff_dst_tmp,
                                 &q->diff_src_tmp, &q->w_plain, &q->w_fwd, &q->w_bwd, &q->b_plain,
                                 &q->dw, &q->dw_grad, &q->db, &q->mean, &q->var, &q->ws,
                                 &q->rmean, &q->rvar};
        for (size_t k = 0; k < sizeof mems / sizeof *mems; k++) destroy_mem(mems[k]);
    }
    for (int t = 0; t < n->n_tensors; t++) {
        destroy_mem(&p->act[t]);
        destroy_mem(&p->diff[t]);
    }
    destroy_mem(&p->logits_plain);
    destroy_mem(&p->dlogits_plain);
    destroy_prim(&p->logits_reorder);
    destroy_prim(&p->dlogits_reorder);
    rm_free(p);
}

rm_status plan_get(rm_net *n, int batch, plan **out) {
    int free_slot = -1, oldest = 0;
    for (int i = 0; i < MAX_PLANS; i++) {
        plan *p = n->plans[i];
        if (p && p->batch == batch) {
            p->last_use = ++n->use_clock;
            *out = p;
            return RM_OK;
        }
        if (!p && free_slot < 0) free_slot = i;
        if (p && n->plans[oldest] && p->last_use < n->plans[oldest]->last_use) oldest = i;
    }
    if (free_slot < 0) { /* evict the least recently used batch size */
        plan_destroy(n, n->plans[oldest]);
        n->plans[oldest] = NULL;
        for (int i = 0; i < MAX_NODES; i++)
            if (n->w_owner[i]) n->w_owner[i] = NULL;
        free_slot = oldest;
    }
    plan *p = rm_alloc(sizeof *p);
    if (!p) return RM_ERR_NOMEM;
    p->batch = batch;
    rm_status st = plan_build(n, p);
    if (st != RM_OK) {
        plan_destroy(n, p);
        return st;
    }
    p->last_use = ++n->use_clock;
    n->plans[free_slot] = p;
    *out = p;
    return RM_OK;
}

/* Reorder the plain master weights into the layouts this plan's primitives use, when
 * the parameters changed or another plan last wrote the shared copies. */
rm_status plan_refresh_weights(rm_net *n, plan *p) {
    for (int i = 0; i < n->n_nodes; i++) {
        node_plan *q = &p->np[i];
        if (!q->w_plain || (n->nodes[i].kind != OP_CONV && n->nodes[i].kind != OP_LINEAR)) continue;
        if (n->w_owner[i] == p && q->w_version == n->version) continue;
        if (q->w_fwd_reorder) {
            RM_TRY(slot_bind(&n->w_fwd[i], q->w_fwd));
            RM_TRY(reorder_run(q->w_fwd_reorder, q->w_plain, q->w_fwd));
        }
        if (q->w_bwd_reorder) {
            RM_TRY(slot_bind(&n->w_bwd[i], q->w_bwd));
            RM_TRY(reorder_run(q->w_bwd_reorder, q->w_plain, q->w_bwd));
        }
        n->w_owner[i] = p;
        q->w_version = n->version;
    }
    return RM_OK;
}
