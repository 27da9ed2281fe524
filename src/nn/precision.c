/* Precision of the convolutions and linear layers (f32 or bf16), what this CPU can run,
 * and the convolution peak that regmix bench reports next to its figures. */
#include <stdio.h>
#include <string.h>

#include "nn/engine.h"

const char *rm_precision_name(rm_precision p) { return p == RM_PRECISION_BF16 ? "bf16" : "f32"; }

rm_status rm_precision_parse(const char *text, rm_precision *out) {
    if (text && !strcmp(text, "f32")) *out = RM_PRECISION_F32;
    else if (text && !strcmp(text, "bf16")) *out = RM_PRECISION_BF16;
    else return rm_fail(RM_ERR_ARG, "precision: expected f32 or bf16, got '%s'", text ? text : "(null)");
    return RM_OK;
}

/* oneDNN 2.6 runs bf16 convolutions natively from AVX-512 BF16 (avx512_core_bf16) on;
 * AMX (avx512_core_amx) is above it. Below, it would emulate bf16 (slower than f32). */
static int isa_has_bf16(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx;
}

int rm_precision_winograd_f32(void) {
    return dnnl_get_effective_cpu_isa() == dnnl_cpu_isa_avx512_core_bf16;
}

rm_precision rm_precision_effective(rm_precision requested, char *note, size_t size) {
    if (note && size) note[0] = '\0';
    if (requested != RM_PRECISION_BF16) return requested;
    if (isa_has_bf16()) {
        if (rm_precision_winograd_f32() && note && size)
            snprintf(note, size, "bf16 on %s (no AMX): 3x3 stride-1 convolutions with 64 or more input "
                     "channels run f32 Winograd where oneDNN picks it (faster there than bf16 direct)",
                     rm_dnnl_isa());
        return requested;
    }
    if (note && size)
        snprintf(note, size, "bf16 requested, but oneDNN's ISA %s has no bf16 instructions "
                 "(AVX-512 BF16 or AMX): running f32", rm_dnnl_isa());
    return RM_PRECISION_F32;
}

rm_status rm_net_set_precision(rm_net *n, rm_precision requested) {
    if (!n) return rm_fail(RM_ERR_ARG, "rm_net_set_precision: net is NULL");
    rm_precision p = rm_precision_effective(requested, NULL, 0);
    if (p == n->precision) return RM_OK;
    for (int i = 0; i < MAX_PLANS; i++) {
        plan_destroy(n, n->plans[i]);
        n->plans[i] = NULL;
    }
    for (int i = 0; i < MAX_NODES; i++) n->w_owner[i] = NULL;
    n->precision = p;
    return RM_OK;
}

rm_precision rm_net_precision(const rm_net *n) { return n->precision; }

dnnl_data_type_t net_act_dt(const rm_net *n) {
    return n->precision == RM_PRECISION_BF16 ? dnnl_bf16 : dnnl_f32;
}

/* One timed primitive with its own zeroed buffers. */
typedef struct {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst;
} conv_case;

static void conv_case_free(conv_case *c) {
    if (c->src) dnnl_memory_destroy(c->src);
    if (c->wei) dnnl_memory_destroy(c->wei);
    if (c->dst) dnnl_memory_destroy(c->dst);
    if (c->prim) dnnl_primitive_destroy(c->prim);
    if (c->pd) dnnl_primitive_desc_destroy(c->pd);
}

static rm_status conv_case_make(conv_case *c, dnnl_data_type_t dt, dnnl_alg_kind_t alg, int batch) {
    enum { C = 64, HW = 32 };
    dnnl_engine_t e = NULL;
    RM_TRY(rm_dnnl_get(&e, NULL));
    dnnl_memory_desc_t src, wei, dst;
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&src, 4, (dnnl_dims_t){batch, C, HW, HW}, dt, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&wei, 4, (dnnl_dims_t){C, C, 3, 3}, dt, dnnl_format_tag_any));
    DNNL_TRY(dnnl_memory_desc_init_by_tag(&dst, 4, (dnnl_dims_t){batch, C, HW, HW}, dt, dnnl_format_tag_any));
    dnnl_convolution_desc_t cd;
    DNNL_TRY(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, alg, &src,
                                                &wei, NULL, &dst, (dnnl_dims_t){1, 1},
                                                (dnnl_dims_t){1, 1}, (dnnl_dims_t){1, 1}));
    DNNL_TRY(dnnl_primitive_desc_create(&c->pd, &cd, NULL, e, NULL));
    DNNL_TRY(dnnl_primitive_create(&c->prim, c->pd));
    RM_TRY(mem_new(&c->src, pd_md(c->pd, DNNL_ARG_SRC)));
    RM_TRY(mem_new(&c->wei, pd_md(c->pd, DNNL_ARG_WEIGHTS)));
    RM_TRY(mem_new(&c->dst, pd_md(c->pd, DNNL_ARG_DST)));
    return RM_OK;
}

static rm_status conv_case_time(conv_case *c, int iters, int warmup, double *seconds) {
    dnnl_stream_t s = NULL;
    RM_TRY(rm_dnnl_get(NULL, &s));
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_SRC, c->src}, {DNNL_ARG_WEIGHTS, c->wei}, {DNNL_ARG_DST, c->dst}};
    double t0 = 0;
    for (int it = -warmup; it < iters; it++) {
        if (it == 0) {
            DNNL_TRY(dnnl_stream_wait(s));
            t0 = rm_now_seconds();
        }
        RM_TRY(exec(c->prim, 3, a));
    }
    DNNL_TRY(dnnl_stream_wait(s));
    *seconds = (rm_now_seconds() - t0) / iters;
    return RM_OK;
}

rm_status rm_dnnl_conv_peak(rm_precision precision, int auto_alg, int batch, int iters, int warmup,
                            double *seconds, double *flops, const char **impl) {
    if (batch < 1 || iters < 1 || warmup < 0)
        return rm_fail(RM_ERR_ARG, "rm_dnnl_conv_peak: batch %d, iters %d, warmup %d", batch, iters, warmup);
    dnnl_data_type_t dt = rm_precision_effective(precision, NULL, 0) == RM_PRECISION_BF16 ? dnnl_bf16 : dnnl_f32;
    conv_case c = {0};
    rm_status st = conv_case_make(&c, dt, auto_alg ? dnnl_convolution_auto : dnnl_convolution_direct, batch);
    if (st == RM_OK && impl) {
        static char name[64]; /* outlives the primitive descriptor */
        const char *s = pd_impl(c.pd);
        snprintf(name, sizeof name, "%s", s[0] ? s : "?");
        *impl = name;
    }
    if (st == RM_OK) st = conv_case_time(&c, iters, warmup, seconds);
    conv_case_free(&c);
    *flops = 2.0 * batch * 64.0 * 32 * 32 * 64.0 * 9;
    return st;
}
