/* A data-parallel group over MPI: fixed-order sums and slice gathers. */
#include <stdlib.h>
#include <string.h>

#include "train/dp_internal.h"

struct rm_dp {
    MPI_Comm comm;
    int rank, size;
    MPI_Op ordered_sum;
    double *chunk; /* staging for float sums */
    int *counts, *displs;
};

enum { DP_CHUNK = 1 << 20 }; /* doubles per allreduce of float data (8 MiB) */

/* inout = in + inout. Declared non-commutative, so MPI applies it to operands in rank
 * order: the same sum (same rounding) on every rank and in every run. */
static void ordered_sum_fn(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    const double *a = in;
    double *b = inout;
    for (int i = 0; i < *len; i++) b[i] = a[i] + b[i];
}

static rm_status mpi_check(int rc, const char *call) {
    if (rc == MPI_SUCCESS) return RM_OK;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    return rm_fail(RM_ERR_MPI, "%s failed: %s", call, text);
}

rm_status rm_dp_create(MPI_Comm comm, rm_dp **out) {
    *out = NULL;
    rm_dp *g = rm_alloc(sizeof *g);
    if (!g) return RM_ERR_NOMEM;
    g->comm = MPI_COMM_NULL;
    g->ordered_sum = MPI_OP_NULL;
    rm_status st = mpi_check(MPI_Comm_dup(comm, &g->comm), "MPI_Comm_dup");
    if (st == RM_OK) st = mpi_check(MPI_Comm_rank(g->comm, &g->rank), "MPI_Comm_rank");
    if (st == RM_OK) st = mpi_check(MPI_Comm_size(g->comm, &g->size), "MPI_Comm_size");
    if (st == RM_OK) st = mpi_check(MPI_Op_create(ordered_sum_fn, 0, &g->ordered_sum), "MPI_Op_create");
    if (st == RM_OK && (!(g->chunk = rm_alloc(DP_CHUNK * sizeof(double))) ||
                        !(g->counts = rm_alloc((size_t)g->size * sizeof(int))) ||
                        !(g->displs = rm_alloc((size_t)g->size * sizeof(int)))))
        st = RM_ERR_NOMEM;
    if (st != RM_OK) {
        rm_dp_destroy(g);
        return st;
    }
    *out = g;
    return RM_OK;
}

void rm_dp_destroy(rm_dp *g) {
    if (!g) return;
    if (g->ordered_sum != MPI_OP_NULL) MPI_Op_free(&g->ordered_sum);
    if (g->comm != MPI_COMM_NULL) MPI_Comm_free(&g->comm);
    rm_free(g->chunk);
    rm_free(g->counts);
    rm_free(g->displs);
    rm_free(g);
}

int rm_dp_rank(const rm_dp *g) { return g ? g->rank : 0; }
int rm_dp_size(const rm_dp *g) { return g ? g->size : 1; }

void rm_dp_slice(int B, int rank, int size, int *lo, int *hi) {
    *lo = (int)((int64_t)B * rank / size);
    *hi = (int)((int64_t)B * (rank + 1) / size);
}

void rm_dp_abort(rm_dp *g, int code) {
    MPI_Abort(g->comm, code);
    abort(); /* MPI_Abort does not return; if it did, the group must still not wait */
}

rm_status rm_dp_allreduce(rm_dp *g, double *buf, int n) {
    if (g->size == 1 || n == 0) return RM_OK;
    return mpi_check(MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_DOUBLE, g->ordered_sum, g->comm),
                     "MPI_Allreduce (data-parallel sum)");
}

rm_status dp_net_allreduce(void *ctx, double *buf, int n) { return rm_dp_allreduce(ctx, buf, n); }

rm_status dp_allreduce_floats(rm_dp *g, float *buf, size_t n) {
    if (g->size == 1) return RM_OK;
    for (size_t at = 0; at < n; at += DP_CHUNK) {
        size_t m = n - at < DP_CHUNK ? n - at : DP_CHUNK;
        for (size_t i = 0; i < m; i++) g->chunk[i] = buf[at + i];
        RM_TRY(rm_dp_allreduce(g, g->chunk, (int)m));
        for (size_t i = 0; i < m; i++) buf[at + i] = (float)g->chunk[i];
    }
    return RM_OK;
}

rm_status dp_allgather_rows(rm_dp *g, float *buf, int B, size_t d) {
    if (g->size == 1) return RM_OK;
    if ((size_t)B * d > (size_t)2147483647)
        return rm_fail(RM_ERR_ARG, "dp_allgather_rows: %d x %zu floats exceed an MPI count", B, d);
    for (int r = 0; r < g->size; r++) {
        int lo, hi;
        rm_dp_slice(B, r, g->size, &lo, &hi);
        g->counts[r] = (int)((size_t)(hi - lo) * d);
        g->displs[r] = (int)((size_t)lo * d);
    }
    return mpi_check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, g->counts, g->displs,
                                    MPI_FLOAT, g->comm),
                     "MPI_Allgatherv (data-parallel slices)");
}
