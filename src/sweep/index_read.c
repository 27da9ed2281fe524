/* Reading a sweep index (results/<sweep>/sweep.h5) without modifying it, with the
 * SWMR-read flag, so it works while rank 0 updates it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/h5util.h"
#include "io/runfile_impl.h"
#include "regmix/sweep.h"

/* One 1-D dataset of /runs with n elements: fixed strings copied into
 * field[i * stride] (width bytes each), or numbers converted to `type`. */
static rm_status read_column(hid_t runs, const char *path, const char *name, int n, hid_t type, void *dst,
                             size_t stride, size_t width) {
    char obj[64];
    snprintf(obj, sizeof obj, "/runs/%s", name);
    hid_t d = H5Dopen2(runs, name, H5P_DEFAULT);
    if (d < 0) return RM_H5_FAIL("H5Dopen2", path, obj);
    hid_t space = H5Dget_space(d);
    hssize_t got = space < 0 ? -1 : H5Sget_simple_extent_npoints(space);
    rm_h5_close(space);
    rm_status st = RM_OK;
    if (got != n) st = rm_fail(RM_ERR_FORMAT, "%s: %s has %lld elements, the index lists %d runs", path, obj, (long long)got, n);
    if (st == RM_OK && width) { /* strings: read with the file's own length, then copy */
        hid_t ft = H5Dget_type(d);
        size_t len = ft < 0 ? 0 : H5Tget_size(ft);
        rm_h5_close(ft);
        hid_t mt = len ? rm_h5_fixed_str_type(len) : -1;
        char *buf = len ? calloc((size_t)n, len) : NULL;
        if (mt < 0 || !buf || (n > 0 && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0))
            st = RM_H5_FAIL("H5Dread", path, obj);
        for (int i = 0; st == RM_OK && i < n; i++) {
            char *out = (char *)dst + (size_t)i * stride;
            size_t k = len < width - 1 ? len : width - 1;
            memcpy(out, buf + (size_t)i * len, k);
            out[k] = '\0';
        }
        free(buf);
        rm_h5_close(mt);
    } else if (st == RM_OK) {
        size_t esize = H5Tget_size(type);
        char *buf = malloc((size_t)n * esize + 1);
        if (!buf) st = rm_fail(RM_ERR_NOMEM, "%s: out of memory reading %s", path, obj);
        else if (n > 0 && H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) st = RM_H5_FAIL("H5Dread", path, obj);
        for (int i = 0; st == RM_OK && i < n; i++) memcpy((char *)dst + (size_t)i * stride, buf + (size_t)i * esize, esize);
        free(buf);
    }
    rm_h5_close(d);
    return st;
}

rm_status rm_sweep_index_read(const char *path, rm_sweep_index_table *out) {
    rm_h5_quiet();
    memset(out, 0, sizeof *out);
    hid_t file, fapl = rm_h5_fapl_swmr_read();
    if (fapl < 0) return RM_H5_FAIL("H5Pset_metadata_read_attempts", path, NULL);
    rm_status st = rf_open_checked(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl, "regmix-sweep", &file);
    H5Pclose(fapl);
    RM_TRY(st);
    int64_t n = 0;
    st = rm_h5_attr_read_str(file, "name", out->name, sizeof out->name, NULL, path, "/");
    if (st == RM_OK) st = rm_h5_attr_read_i64(file, "n_runs", &n, NULL, path, "/");
    if (st == RM_OK && (n < 1 || n > RM_SWEEP_MAX_RUNS))
        st = rm_fail(RM_ERR_FORMAT, "%s: n_runs is %lld (expected 1..%d)", path, (long long)n, RM_SWEEP_MAX_RUNS);
    if (st == RM_OK && !(out->runs = calloc((size_t)n, sizeof *out->runs)))
        st = rm_fail(RM_ERR_NOMEM, "%s: out of memory for %lld runs", path, (long long)n);
    hid_t runs = -1;
    if (st == RM_OK && (runs = H5Gopen2(file, "runs", H5P_DEFAULT)) < 0) st = RM_H5_FAIL("H5Gopen2", path, "/runs");
    const size_t stride = sizeof *out->runs;
    rm_sweep_index_entry *r = out->runs;
#define STR(f) st = read_column(runs, path, #f, (int)n, -1, r ? r->f : NULL, stride, sizeof r->f)
#define NUM(f, t) st = read_column(runs, path, #f, (int)n, t, r ? &r->f : NULL, stride, 0)
    if (st == RM_OK) STR(id);
    if (st == RM_OK) STR(file);
    if (st == RM_OK) STR(status);
    if (st == RM_OK) STR(reason);
    if (st == RM_OK) NUM(rank, H5T_NATIVE_INT64);
    if (st == RM_OK) NUM(epochs, H5T_NATIVE_INT64);
    if (st == RM_OK) NUM(start_time, H5T_NATIVE_DOUBLE);
    if (st == RM_OK) NUM(end_time, H5T_NATIVE_DOUBLE);
    if (st == RM_OK) NUM(cost, H5T_NATIVE_DOUBLE);
#undef STR
#undef NUM
    rm_h5_close(runs);
    if (H5Fclose(file) < 0 && st == RM_OK) st = RM_H5_FAIL("H5Fclose", path, NULL);
    if (st != RM_OK) rm_sweep_index_table_free(out);
    else out->n_runs = (int)n;
    return st;
}

void rm_sweep_index_table_free(rm_sweep_index_table *t) {
    if (!t) return;
    free(t->runs);
    memset(t, 0, sizeof *t);
}
