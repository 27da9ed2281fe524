/* Internal structures of the nn engine (not part of the public API).
 *
 * Graph: tensors (per-image shapes) connected by nodes, in execution order.
 * Plan:  the oneDNN primitives for one batch size, created once and kept.
 * Tape:  the activations of one forward pass (one per pass of a training step).
 */
#ifndef REGMIX_NN_ENGINE_H
#define REGMIX_NN_ENGINE_H

#include <dnnl.h>
#include <dnnl_debug.h>
#include <string.h>

#include "regmix/nn.h"

/* Every oneDNN call that can fail goes through this: file, line, call text, status. */
#define DNNL_TRY(call)                                                                     \
    do {                                                                                   \
        dnnl_status_t dnnl_try_status_ = (call);                                           \
        if (dnnl_try_status_ != dnnl_success)                                              \
            return rm_fail(RM_ERR_DNNL, "%s failed: %s", #call,                            \
                           dnnl_status2str(dnnl_try_status_));                             \
    } while (0)

typedef enum { OP_CONV, OP_BN, OP_RELU, OP_MAXPOOL, OP_AVGPOOL, OP_GAP, OP_LINEAR, OP_ADD } op_kind;

/* Sized for the deepest model: wrn-142-W has 21 (142-4)/6 + 8 = 491 nodes and 700
 * state_dict tensors (models.c asserts it). */
enum { MAX_TENSORS = 512, MAX_NODES = 512, MAX_PARAMS = 768, MAX_PLANS = 8, BN_SYNC_MAX_C = 2048 };

typedef struct {
    int ndims; /* 4: (C,H,W) per image; 2: (C) per image */
    int c, h, w;
} tensor_shape;

typedef struct {
    op_kind kind;
    int in[2];  /* tensor ids; in[1] only for OP_ADD */
    int out;
    int k, stride, pad; /* conv / pooling geometry (square) */
    int w, b, rmean, rvar; /* parameter indices, -1 when absent */
} node;

/* A growable raw buffer. dnnl memories are created without storage and pointed at a
 * slot before each use, so tapes and plans of different batch sizes share buffers
 * (a smaller last batch reuses the big batch's storage instead of allocating). */
typedef struct {
    void *buf;
    size_t cap;
} slot;

/* Primitives of one node for one batch size. Index [mode] where train and eval differ
 * (batch norm); other ops use index 0 for both. */
typedef struct {
    dnnl_primitive_desc_t fwd_pd[2], bwd_pd[2], bww_pd;
    dnnl_primitive_t fwd[2], bwd[2], bww;

    /* inputs as the forward primitive reads them (conv / linear / add may want another
     * layout than the producer wrote): reorder into a per-tape copy */
    dnnl_primitive_t src_reorder;
    dnnl_memory_t src_copy;
    /* diff_dst as the backward primitives read it, diff_src as they write it */
    dnnl_primitive_t diff_dst_reorder, bww_diff_dst_reorder;
    dnnl_memory_t diff_dst_tmp, bww_diff_dst_tmp, diff_src_tmp;
    int diff_src_direct; /* bwd writes straight into the input's gradient buffer */

    /* weights: plain master view, and copies in the layouts the primitives want */
    dnnl_memory_t w_plain, w_fwd, w_bwd, b_plain;
    dnnl_primitive_t w_fwd_reorder, w_bwd_reorder;
    dnnl_memory_t dw, db;   /* weight-gradient scratch before accumulation */
    dnnl_memory_t dw_grad;  /* rm_param.grad of the weight (plain view) */
    dnnl_primitive_t dw_add; /* dw_grad += dw */
    unsigned long w_version;

    dnnl_memory_t mean, var, ws; /* BN batch statistics, max-pool / BN+ReLU workspace (per tape) */
    /* batch norm followed by a ReLU that is its output's only reader: one oneDNN batch
     * norm with the ReLU fused (dnnl_fuse_norm_relu) writes the ReLU's output tensor
     * relu_out (else -1), and the ReLU node is skipped (relu_fused) */
    int relu_out, relu_fused;
    dnnl_memory_t rmean, rvar;   /* BN running statistics (plain views of the buffers) */
} node_plan;

typedef struct {
    int batch;
    dnnl_memory_desc_t md[MAX_TENSORS]; /* canonical layout of each tensor */
    dnnl_memory_t act[MAX_TENSORS];     /* bound to the current tape's slots */
    dnnl_memory_t diff[MAX_TENSORS];    /* bound to the net's gradient slots */
    /* per node input (diff_src / add branch): the first gradient that reaches a tensor
     * is copied (reordered where layouts differ), later ones are added */
    dnnl_primitive_t accum_reorder[MAX_NODES][2], accum_add[MAX_NODES][2];
    /* residual add, operand k: its gradient is the add's output gradient itself, so
     * diff[in[k]] points at that buffer instead of receiving a copy (plan.c says when) */
    unsigned char add_alias[MAX_NODES][2];
    node_plan np[MAX_NODES];
    unsigned char virt[MAX_TENSORS]; /* never stored: a fused batch norm's pre-ReLU output */
    dnnl_memory_t logits_plain, dlogits_plain;
    dnnl_primitive_t logits_reorder, dlogits_reorder;
    unsigned long last_use;
} plan;

struct rm_tape {
    rm_net *net;
    int batch; /* 0 until the first forward */
    rm_mode mode;
    int synced; /* recorded with synchronised batch norm (training mode, net->allreduce) */
    slot act[MAX_TENSORS];
    slot src_copy[MAX_NODES], mean[MAX_NODES], var[MAX_NODES], ws[MAX_NODES];
};

struct rm_net {
    char model[32];
    int num_classes;
    int n_tensors, n_nodes, n_params;
    tensor_shape shape[MAX_TENSORS];
    node nodes[MAX_NODES];
    int consumers[MAX_TENSORS];
    rm_param params[MAX_PARAMS];
    float bn_eps, bn_momentum;
    rm_precision precision; /* effective (precision.c) */
    rm_net_pass_count passes;
    int he_normal_init; /* wrn-D-W: TRADES' initialisation (rm_net_init) */
    unsigned long version; /* bumped by rm_net_params_changed */
    plan *plans[MAX_PLANS];
    unsigned long use_clock;
    /* gradient-side buffers, shared by all plans and tapes (one backward at a time) */
    slot diff[MAX_TENSORS];
    slot diff_dst_tmp[MAX_NODES], bww_diff_dst_tmp[MAX_NODES], diff_src_tmp[MAX_NODES];
    slot dw[MAX_NODES], db[MAX_NODES];
    slot w_fwd[MAX_NODES], w_bwd[MAX_NODES];
    const plan *w_owner[MAX_NODES]; /* which plan's layouts the weight copies hold */
    /* data-parallel training: sums batch-norm statistics over the group (bn_sync.c);
     * NULL: batch norm on the local batch only */
    rm_allreduce_fn allreduce;
    void *allreduce_ctx;
    double sync_buf[2 * BN_SYNC_MAX_C + 1];
};

/* shared engine and stream (CPU) */
rm_status rm_dnnl_get(dnnl_engine_t *engine, dnnl_stream_t *stream);

/* data type of the activations and their gradients: bf16 or f32 (precision.c) */
dnnl_data_type_t net_act_dt(const rm_net *n);

/* graph building (models.c uses these; graph.c implements them) */
int graph_input(rm_net *n, int c, int h, int w);
rm_status graph_declare_conv(rm_net *n, const char *name, int oc, int ic, int k, int bias);
rm_status graph_declare_bn(rm_net *n, const char *name, int c);
rm_status graph_declare_linear(rm_net *n, const char *name, int out, int in);
int graph_conv(rm_net *n, int in, const char *name, int stride, int pad);
int graph_bn(rm_net *n, int in, const char *name);
int graph_relu(rm_net *n, int in);
int graph_maxpool(rm_net *n, int in, int k, int stride);
int graph_avgpool(rm_net *n, int in, int k, int stride);
int graph_gap(rm_net *n, int in);
int graph_linear(rm_net *n, int in, const char *name);
int graph_add(rm_net *n, int a, int b);
int graph_param_index(const rm_net *n, const char *name);

rm_status models_build(rm_net *n, const char *model, int c, int h, int w, int num_classes);

/* plans */
rm_status plan_get(rm_net *n, int batch, plan **out);
void plan_destroy(rm_net *n, plan *p);
rm_status plan_refresh_weights(rm_net *n, plan *p);
rm_status tape_bind(rm_net *n, plan *p, rm_tape *t);

/* synchronised batch norm (bn_sync.c), used in training mode when net->allreduce is set:
 * forward: dst, running statistics and the tape's mean/var from the group's statistics;
 * backward: runs the global-statistics backward and adds the terms through the mean and
 * variance (needs the group's sums of diff_scale / diff_shift). */
rm_status bn_sync_forward(rm_net *n, plan *p, int i, dnnl_memory_t src, dnnl_memory_t dst);
rm_status bn_sync_backward(rm_net *n, plan *p, int i, dnnl_memory_t target);

/* helpers */
rm_status slot_bind(slot *s, dnnl_memory_t m); /* grow s to m's size, point m at it */
void slot_free(slot *s);
rm_status mem_new(dnnl_memory_t *m, const dnnl_memory_desc_t *md);   /* owns zeroed storage */
rm_status mem_empty(dnnl_memory_t *m, const dnnl_memory_desc_t *md); /* no storage: slot_bind */
rm_status mem_user(dnnl_memory_t *m, const dnnl_memory_desc_t *md, void *data);
const dnnl_memory_desc_t *mem_md(dnnl_memory_t m);
const dnnl_memory_desc_t *pd_md(dnnl_primitive_desc_t pd, int arg);
const char *pd_impl(dnnl_primitive_desc_t pd); /* implementation name, "" if unknown */
void add_floats(float *dst, const float *src, size_t n);
rm_status reorder_new(dnnl_primitive_t *r, const dnnl_memory_desc_t *from,
                      const dnnl_memory_desc_t *to);
rm_status reorder_run(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to);
rm_status reorder_add_new(dnnl_primitive_t *r, const dnnl_memory_desc_t *from,
                          const dnnl_memory_desc_t *to); /* to += from (any layouts/types) */
rm_status exec(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args);
float *mem_ptr(dnnl_memory_t m);
void md_plain(dnnl_memory_desc_t *md, const tensor_shape *s, int batch);

/* bf16 <-> f32 for the few element loops of the engine (bn_sync.c): bf16 is the upper
 * half of an f32; rounding to nearest even as oneDNN rounds. */
static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

#endif
