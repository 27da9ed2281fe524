/* Small oneDNN helpers: the shared CPU engine/stream, memories, reorders. */
#include <stdio.h>
#include <string.h>

#include "nn/engine.h"

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;

rm_status rm_dnnl_get(dnnl_engine_t *engine, dnnl_stream_t *stream) {
    if (!g_engine) {
        DNNL_TRY(dnnl_engine_create(&g_engine, dnnl_cpu, 0));
        DNNL_TRY(dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags));
    }
    if (engine) *engine = g_engine;
    if (stream) *stream = g_stream;
    return RM_OK;
}

rm_status mem_new(dnnl_memory_t *m, const dnnl_memory_desc_t *md) {
    dnnl_engine_t e = NULL;
    RM_TRY(rm_dnnl_get(&e, NULL));
    DNNL_TRY(dnnl_memory_create(m, md, e, DNNL_MEMORY_ALLOCATE));
    /* zero it: blocked layouts have padding that must stay zero for accumulation */
    float *p = mem_ptr(*m);
    if (p) memset(p, 0, dnnl_memory_desc_get_size(md));
    return RM_OK;
}

rm_status reorder_new(dnnl_primitive_t *r, const dnnl_memory_desc_t *from,
                      const dnnl_memory_desc_t *to) {
    *r = NULL;
    if (dnnl_memory_desc_equal(from, to)) return RM_OK;
    dnnl_engine_t e = NULL;
    RM_TRY(rm_dnnl_get(&e, NULL));
    dnnl_primitive_desc_t pd;
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&pd, from, e, to, e, NULL));
    dnnl_status_t st = dnnl_primitive_create(r, pd);
    dnnl_primitive_desc_destroy(pd);
    DNNL_TRY(st);
    return RM_OK;
}

/* to += from, converting layout and data type: a reorder with a sum post-op (one
 * element-wise pass, threaded by oneDNN; the same bits as to[i] + from[i] in f32). */
rm_status reorder_add_new(dnnl_primitive_t *r, const dnnl_memory_desc_t *from,
                          const dnnl_memory_desc_t *to) {
    *r = NULL;
    dnnl_engine_t e = NULL;
    RM_TRY(rm_dnnl_get(&e, NULL));
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_post_ops_create(&po);
    if (st == dnnl_success) st = dnnl_post_ops_append_sum(po, 1.0f);
    if (st == dnnl_success) st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, po);
    if (st == dnnl_success) st = dnnl_reorder_primitive_desc_create(&pd, from, e, to, e, attr);
    if (st == dnnl_success) st = dnnl_primitive_create(r, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (po) dnnl_post_ops_destroy(po);
    if (st != dnnl_success)
        return rm_fail(RM_ERR_DNNL, "creating an accumulating reorder (sum post-op) failed: %s",
                       dnnl_status2str(st));
    return RM_OK;
}

rm_status exec(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args) {
    dnnl_stream_t s = NULL;
    RM_TRY(rm_dnnl_get(NULL, &s));
    DNNL_TRY(dnnl_primitive_execute(p, s, nargs, args));
    return RM_OK;
}

rm_status reorder_run(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return exec(r, 2, args);
}

float *mem_ptr(dnnl_memory_t m) {
    void *h = NULL;
    if (dnnl_memory_get_data_handle(m, &h) != dnnl_success) return NULL;
    return h;
}

/* Plain layout for a tensor: nchw for images, nc for vectors. */
void md_plain(dnnl_memory_desc_t *md, const tensor_shape *s, int batch) {
    if (s->ndims == 4) {
        dnnl_dims_t d = {batch, s->c, s->h, s->w};
        dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, dnnl_nchw);
    } else {
        dnnl_dims_t d = {batch, s->c};
        dnnl_memory_desc_init_by_tag(md, 2, d, dnnl_f32, dnnl_nc);
    }
}

const char *rm_dnnl_version(void) {
    static char text[64];
    const dnnl_version_t *v = dnnl_version();
    snprintf(text, sizeof text, "%d.%d.%d", v->major, v->minor, v->patch);
    return text;
}

const char *rm_dnnl_isa(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    default: return "any";
    }
}

rm_status mem_empty(dnnl_memory_t *m, const dnnl_memory_desc_t *md) {
    dnnl_engine_t e = NULL;
    RM_TRY(rm_dnnl_get(&e, NULL));
    DNNL_TRY(dnnl_memory_create(m, md, e, DNNL_MEMORY_NONE));
    return RM_OK;
}

rm_status mem_user(dnnl_memory_t *m, const dnnl_memory_desc_t *md, void *data) {
    dnnl_engine_t e = NULL;
    RM_TRY(rm_dnnl_get(&e, NULL));
    DNNL_TRY(dnnl_memory_create(m, md, e, data));
    return RM_OK;
}

const dnnl_memory_desc_t *mem_md(dnnl_memory_t m) {
    const dnnl_memory_desc_t *md = NULL;
    dnnl_memory_get_memory_desc(m, &md);
    return md;
}

/* The name of the implementation oneDNN chose ("jit_wino_4x3:avx512_core"), "" if unknown. */
const char *pd_impl(dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    if (!pd || dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) return "";
    return impl;
}

/* The descriptor a primitive uses for an execution argument (DNNL_ARG_*). */
const dnnl_memory_desc_t *pd_md(dnnl_primitive_desc_t pd, int arg) {
    return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
}

rm_status slot_bind(slot *s, dnnl_memory_t m) {
    size_t bytes = dnnl_memory_desc_get_size(mem_md(m));
    if (bytes > s->cap) {
        rm_free(s->buf);
        s->buf = rm_alloc(bytes);
        if (!s->buf) {
            s->cap = 0;
            return RM_ERR_NOMEM;
        }
        s->cap = bytes;
    }
    DNNL_TRY(dnnl_memory_set_data_handle(m, s->buf));
    return RM_OK;
}

void slot_free(slot *s) {
    rm_free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

/* dst += src, elementwise over n floats (gradient accumulation; padding stays zero). */
void add_floats(float *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}
