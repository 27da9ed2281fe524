/* Synchronised batch norm for data-parallel training: the K ranks that train one network
 * together normalise with the statistics of the whole (global) batch, so K ranks with
 * 1/K of the batch each compute what one rank computes with the whole batch.
 *
 * It reuses the engine's two oneDNN primitives per BN node:
 *   forward:  fwd[0] (batch statistics) gives the local mean/var; the group combines
 *             them (two sums, in double); fwd[1] (use_global_stats) normalises with the
 *             group's mean/var, which the tape keeps for the backward pass.
 *   backward: bwd[1] (use_global_stats) treats mean/var as constants:
 *               diff_src' = gamma/sigma * dy,  dscale = sum dy*xhat,  dshift = sum dy
 *             (local sums). The training-mode gradient also flows through the mean
 *             and the variance of the global batch (N elements per channel):
 *               dx = gamma/sigma * (dy - S_shift/N - xhat * S_scale/N)
 *             with S_* the group's sums, so dx = diff_src' + a_c + b_c * (x - mean_c),
 *               a_c = -gamma_c S_shift_c / (N sigma_c),  b_c = -gamma_c S_scale_c / (N sigma_c^2).
 * The local dscale/dshift go into the weight gradients unchanged: the caller sums the
 * weight gradients over the group afterwards (summing them here too would count twice). */
#include <math.h>

#include "nn/engine.h"

void rm_net_set_allreduce(rm_net *net, rm_allreduce_fn fn, void *ctx) {
    net->allreduce = fn;
    net->allreduce_ctx = ctx;
}

static rm_status group_sum(rm_net *n, double *buf, int count) {
    rm_status st = n->allreduce(n->allreduce_ctx, buf, count);
    if (st != RM_OK && !rm_error_message()[0])
        return rm_fail(st, "batch-norm statistics: the group's allreduce of %d values failed", count);
    return st;
}

static rm_status stream_wait(void) {
    dnnl_stream_t s = NULL;
    RM_TRY(rm_dnnl_get(NULL, &s));
    DNNL_TRY(dnnl_stream_wait(s));
    return RM_OK;
}

static rm_status check_channels(int c) {
    if (c > BN_SYNC_MAX_C)
        return rm_fail(RM_ERR_ARG, "synchronised batch norm: %d channels exceed the limit %d", c,
                       BN_SYNC_MAX_C);
    return RM_OK;
}

rm_status bn_sync_forward(rm_net *n, plan *p, int i, dnnl_memory_t src, dnnl_memory_t dst) {
    const node *d = &n->nodes[i];
    node_plan *q = &p->np[i];
    const tensor_shape *s = &n->shape[d->in[0]];
    const int C = s->c;
    RM_TRY(check_channels(C));
    /* local batch statistics (biased variance); dst is overwritten below */
    const int na = q->ws ? 7 : 6; /* the ReLU mask when a ReLU is fused */
    dnnl_exec_arg_t a[7] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst},
                            {DNNL_ARG_SCALE, q->w_plain}, {DNNL_ARG_SHIFT, q->b_plain},
                            {DNNL_ARG_MEAN, q->mean}, {DNNL_ARG_VARIANCE, q->var},
                            {DNNL_ARG_WORKSPACE, q->ws}};
    RM_TRY(exec(q->fwd[0], na, a));
    RM_TRY(stream_wait());
    float *mean = mem_ptr(q->mean), *var = mem_ptr(q->var);
    const double local = (double)p->batch * s->h * s->w;
    /* round 1: count and sum -> global mean; round 2: sum of squared deviations from
     * the global mean, n_r (var_r + (mean_r - mean)^2) (Chan et al.: no cancellation
     * between E[x^2] and mean^2) */
    double *buf = n->sync_buf, *gm = buf + 1, *m2 = buf + 1 + C;
    buf[0] = local;
    for (int c = 0; c < C; c++) gm[c] = local * mean[c];
    RM_TRY(group_sum(n, buf, C + 1));
    const double N = buf[0];
    for (int c = 0; c < C; c++) {
        gm[c] /= N;
        double dev = mean[c] - gm[c];
        m2[c] = local * (var[c] + dev * dev);
    }
    RM_TRY(group_sum(n, m2, C));
    /* the tape keeps the group's statistics: the backward pass normalises with them */
    for (int c = 0; c < C; c++) {
        mean[c] = (float)gm[c];
        var[c] = (float)(m2[c] / N);
    }
    a[4].memory = q->mean;
    a[5].memory = q->var;
    RM_TRY(exec(q->fwd[1], na, a));
    RM_TRY(stream_wait());
    /* running statistics as PyTorch's SyncBatchNorm: global mean, unbiased global
     * variance (N / (N-1), N the group's count) */
    const double unbias = N > 1 ? N / (N - 1) : 1.0;
    const float mom = n->bn_momentum;
    float *rm = n->params[d->rmean].data, *rv = n->params[d->rvar].data;
    for (int c = 0; c < C; c++) {
        rm[c] = (1 - mom) * rm[c] + mom * mean[c];
        rv[c] = (float)((1 - mom) * rv[c] + mom * var[c] * unbias);
    }
    return RM_OK;
}

/* Where element (n, c, h, w) of a 2-D or 4-D tensor lives, for the layouts the engine
 * uses: plain (nchw, nhwc, nc) and channel-blocked (nChw8c, nChw16c). */
typedef struct {
    int64_t dims[4], str[4], cblk, off0;
} chan_layout;

static rm_status layout_of(const dnnl_memory_desc_t *md, chan_layout *L) {
    if (md->format_kind != dnnl_blocked || (md->ndims != 2 && md->ndims != 4))
        return rm_fail(RM_ERR_DNNL, "synchronised batch norm: unsupported tensor layout (kind %d, %d dims)",
                       (int)md->format_kind, md->ndims);
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    L->cblk = 1;
    if (b->inner_nblks > 1 || (b->inner_nblks == 1 && b->inner_idxs[0] != 1))
        return rm_fail(RM_ERR_DNNL, "synchronised batch norm: unsupported blocking (%d inner blocks)",
                       b->inner_nblks);
    if (b->inner_nblks == 1) L->cblk = b->inner_blks[0];
    for (int k = 0; k < 4; k++) {
        L->dims[k] = k < md->ndims ? md->dims[k] : 1;
        L->str[k] = k < md->ndims ? b->strides[k] : 0;
    }
    L->off0 = md->offset0;
    return RM_OK;
}

/* dx (C-channel tensor, layout L, f32 or bf16 like x) += a_c + b_c * (x - mean_c),
 * element-wise, in f32. */
static void add_channel_affine(const chan_layout *L, int bf16, void *dx, const void *x,
                               const double *a, const double *b, const float *mean) {
    const int64_t NB = L->dims[0], C = L->dims[1], H = L->dims[2], W = L->dims[3];
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < NB; n++) {
        for (int64_t c = 0; c < C; c++) {
            const int64_t base = L->off0 + n * L->str[0] + (c / L->cblk) * L->str[1] + c % L->cblk;
            const float ac = (float)a[c], bc = (float)b[c], mc = mean[c];
            for (int64_t h = 0; h < H; h++)
                for (int64_t w = 0; w < W; w++) {
                    const int64_t o = base + h * L->str[2] + w * L->str[3];
                    if (bf16) {
                        uint16_t *d16 = dx;
                        const uint16_t *x16 = x;
                        float v = bf16_to_f32(d16[o]) + (ac + bc * (bf16_to_f32(x16[o]) - mc));
                        d16[o] = f32_to_bf16(v);
                    } else {
                        ((float *)dx)[o] += ac + bc * (((const float *)x)[o] - mc);
                    }
                }
        }
    }
}

rm_status bn_sync_backward(rm_net *n, plan *p, int i, dnnl_memory_t target) {
    const node *d = &n->nodes[i];
    node_plan *q = &p->np[i];
    const tensor_shape *s = &n->shape[d->in[0]];
    const int C = s->c;
    RM_TRY(check_channels(C));
    dnnl_memory_t src = p->act[d->in[0]];
    /* the tape's mean/var are the group's (bn_sync_forward): constants here */
    /* with a fused ReLU, oneDNN masks dy first: dscale, dshift below are of the masked dy */
    dnnl_exec_arg_t a[10] = {{DNNL_ARG_SRC, src},
                             {DNNL_ARG_MEAN, q->mean},
                             {DNNL_ARG_VARIANCE, q->var},
                             {DNNL_ARG_DIFF_DST, p->diff[q->relu_out >= 0 ? q->relu_out : d->out]},
                             {DNNL_ARG_SCALE, q->w_plain},
                             {DNNL_ARG_SHIFT, q->b_plain},
                             {DNNL_ARG_DIFF_SRC, target},
                             {DNNL_ARG_DIFF_SCALE, q->dw},
                             {DNNL_ARG_DIFF_SHIFT, q->db},
                             {DNNL_ARG_WORKSPACE, q->ws}};
    RM_TRY(exec(q->bwd[1], q->ws ? 10 : 9, a));
    RM_TRY(stream_wait());
    chan_layout L;
    RM_TRY(layout_of(mem_md(target), &L));
    if (!dnnl_memory_desc_equal(mem_md(target), mem_md(src)))
        return rm_fail(RM_ERR_DNNL, "synchronised batch norm: diff_src and src layouts differ at node %d", i);
    const float *dscale = mem_ptr(q->dw), *dshift = mem_ptr(q->db);
    const float *gamma = n->params[d->w].data, *mean = mem_ptr(q->mean), *var = mem_ptr(q->var);
    double *buf = n->sync_buf, *S_scale = buf + 1, *S_shift = buf + 1 + C;
    buf[0] = (double)p->batch * s->h * s->w;
    for (int c = 0; c < C; c++) {
        S_scale[c] = dscale[c];
        S_shift[c] = dshift[c];
    }
    RM_TRY(group_sum(n, buf, 2 * C + 1));
    const double N = buf[0];
    /* reuse the buffer: a_c in place of S_shift, b_c in place of S_scale */
    for (int c = 0; c < C; c++) {
        double inv_sigma = 1.0 / sqrt((double)var[c] + (double)n->bn_eps);
        double g = gamma[c];
        double bc = -g * S_scale[c] / N * inv_sigma * inv_sigma;
        double ac = -g * S_shift[c] / N * inv_sigma;
        S_scale[c] = bc;
        S_shift[c] = ac;
    }
    add_channel_affine(&L, mem_md(src)->data_type == dnnl_bf16, mem_ptr(target), mem_ptr(src), S_shift,
                       S_scale, mean);
    return RM_OK;
}
