/* Which oneDNN implementations a network's convolutions run (Winograd or direct, ISA),
 * for benchmarks and tests to report and check. */
#include <stdio.h>
#include <string.h>

#include "nn/engine.h"

enum { MAX_KINDS = 8 };

typedef struct {
    const char *name[MAX_KINDS];
    int count[MAX_KINDS], n;
} impl_tally;

static void tally_add(impl_tally *t, dnnl_primitive_desc_t pd) {
    const char *impl = pd_impl(pd);
    if (!impl[0]) return;
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->name[i], impl)) {
            t->count[i]++;
            return;
        }
    if (t->n < MAX_KINDS) {
        t->name[t->n] = impl;
        t->count[t->n++] = 1;
    }
}

/* appends "label: impl xN, impl xM" to buf at *len */
static void tally_print(const impl_tally *t, const char *label, char *buf, size_t size, size_t *len) {
    int w = snprintf(buf + *len, size - *len, "%s%s:", *len ? "; " : "", label);
    if (w > 0 && (size_t)w < size - *len) *len += (size_t)w;
    for (int i = 0; i < t->n; i++) {
        w = snprintf(buf + *len, size - *len, "%s %s x%d", i ? "," : "", t->name[i], t->count[i]);
        if (w > 0 && (size_t)w < size - *len) *len += (size_t)w;
    }
}

rm_status rm_net_conv_kernels(rm_net *n, int batch, char *buf, size_t size) {
    if (!n || !buf || size == 0 || batch < 1)
        return rm_fail(RM_ERR_ARG, "rm_net_conv_kernels: bad arguments (batch %d)", batch);
    plan *p;
    RM_TRY(plan_get(n, batch, &p));
    impl_tally t[3];
    memset(t, 0, sizeof t);
    for (int i = 0; i < n->n_nodes; i++) {
        if (n->nodes[i].kind != OP_CONV) continue;
        tally_add(&t[0], p->np[i].fwd_pd[0]);
        tally_add(&t[1], p->np[i].bwd_pd[0]);
        tally_add(&t[2], p->np[i].bww_pd);
    }
    size_t len = 0;
    buf[0] = '\0';
    static const char *labels[3] = {"forward", "backward data", "backward weights"};
    for (int k = 0; k < 3; k++) tally_print(&t[k], labels[k], buf, size, &len);
    return RM_OK;
}
