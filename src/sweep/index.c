/* The sweep index, results/<sweep>/sweep.h5: a table of runs plus external links to the
 * run files, updated in place under SWMR as runs start and finish. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/h5util.h"
#include "regmix/sweep.h"

enum { ID_LEN = RM_SWEEP_ID_MAX + 8, STATUS_LEN = RM_H5_STATUS_LEN, REASON_LEN = RM_H5_REASON_LEN, VALUE_LEN = RM_SWEEP_VALUE_MAX };

struct rm_sweep_index {
    hid_t file;
    char path[512];
    int n;
    int write_failed; /* an update failed: the file is not closed (see rm_sweep_index_close) */
    hid_t status, reason, rank, epochs, start, end; /* open datasets under /runs */
};

/* A 1-D dataset of n elements (strings of `len` bytes when len > 0, else `type`), filled
 * from `data` (NULL: fill value), contiguous so it stays writable under SWMR. */
static rm_status make_dataset(rm_sweep_index *ix, hid_t group, const char *name, hid_t type, size_t len,
                              const void *data, hid_t *out) {
    hsize_t dims[1] = {(hsize_t)ix->n};
    hid_t t = len ? rm_h5_fixed_str_type(len) : H5Tcopy(type);
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (t < 0 || space < 0 || dcpl < 0 || H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0) {
        rm_h5_close(t), rm_h5_close(space), rm_h5_close(dcpl);
        return RM_H5_FAIL("H5Screate_simple", ix->path, name);
    }
    hid_t d = H5Dcreate2(group, name, t, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    rm_status st = RM_OK;
    if (d < 0) st = RM_H5_FAIL("H5Dcreate2", ix->path, name);
    else if (data && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) st = RM_H5_FAIL("H5Dwrite", ix->path, name);
    rm_h5_close(t), rm_h5_close(space), rm_h5_close(dcpl);
    if (st != RM_OK || !out) rm_h5_close(d);
    else *out = d;
    return st;
}

/* Writes element i of a 1-D dataset. */
static rm_status write_elem(rm_sweep_index *ix, hid_t d, int i, hid_t mem_type, size_t len, const void *value,
                            const char *name) {
    hsize_t start[1] = {(hsize_t)i}, count[1] = {1};
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, count, NULL);
    hid_t t = len ? rm_h5_fixed_str_type(len) : H5Tcopy(mem_type);
    rm_status st = RM_OK;
    if (fs < 0 || ms < 0 || t < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dwrite(d, t, ms, fs, H5P_DEFAULT, value) < 0 || H5Dflush(d) < 0)
        st = RM_H5_FAIL("H5Dwrite (one element)", ix->path, name);
    rm_h5_close(fs), rm_h5_close(ms), rm_h5_close(t);
    return st;
}

static rm_status write_runs(rm_sweep_index *ix, const rm_sweep *s, hid_t runs) {
    int n = ix->n;
    char *ids = calloc((size_t)n, ID_LEN), *files = calloc((size_t)n, ID_LEN);
    char *status = calloc((size_t)n, STATUS_LEN);
    int64_t *minus1 = malloc((size_t)n * sizeof(int64_t)), *zero = calloc((size_t)n, sizeof(int64_t));
    double *nan = malloc((size_t)n * sizeof(double)), *cost = malloc((size_t)n * sizeof(double));
    rm_status st = (ids && files && status && minus1 && zero && nan && cost) ? RM_OK : rm_fail(RM_ERR_NOMEM, "sweep index: out of memory");
    for (int i = 0; st == RM_OK && i < n; i++) {
        snprintf(ids + (size_t)i * ID_LEN, ID_LEN, "%s", s->runs[i].id);
        snprintf(files + (size_t)i * ID_LEN, ID_LEN, "%s.h5", s->runs[i].id);
        snprintf(status + (size_t)i * STATUS_LEN, STATUS_LEN, "pending");
        minus1[i] = -1;
        nan[i] = NAN;
        cost[i] = rm_sweep_run_cost(&s->runs[i]);
    }
    if (st == RM_OK) st = make_dataset(ix, runs, "id", 0, ID_LEN, ids, NULL);
    if (st == RM_OK) st = make_dataset(ix, runs, "file", 0, ID_LEN, files, NULL);
    if (st == RM_OK) st = make_dataset(ix, runs, "status", 0, STATUS_LEN, status, &ix->status);
    if (st == RM_OK) st = make_dataset(ix, runs, "reason", 0, REASON_LEN, NULL, &ix->reason);
    if (st == RM_OK) st = make_dataset(ix, runs, "rank", H5T_NATIVE_INT64, 0, minus1, &ix->rank);
    if (st == RM_OK) st = make_dataset(ix, runs, "epochs", H5T_NATIVE_INT64, 0, zero, &ix->epochs);
    if (st == RM_OK) st = make_dataset(ix, runs, "start_time", H5T_NATIVE_DOUBLE, 0, nan, &ix->start);
    if (st == RM_OK) st = make_dataset(ix, runs, "end_time", H5T_NATIVE_DOUBLE, 0, nan, &ix->end);
    if (st == RM_OK) st = make_dataset(ix, runs, "cost", H5T_NATIVE_DOUBLE, 0, cost, NULL);
    free(ids), free(files), free(status), free(minus1), free(zero), free(nan), free(cost);
    return st;
}

static rm_status write_axes(rm_sweep_index *ix, const rm_sweep *s, hid_t axes) {
    char *vals = calloc((size_t)ix->n, VALUE_LEN);
    if (!vals) return rm_fail(RM_ERR_NOMEM, "sweep index: out of memory");
    rm_status st = RM_OK;
    for (int a = 0; st == RM_OK && a < s->n_axes; a++) {
        for (int i = 0; i < ix->n; i++) snprintf(vals + (size_t)i * VALUE_LEN, VALUE_LEN, "%s", s->runs[i].axis_value[a]);
        st = make_dataset(ix, axes, s->axes[a], 0, VALUE_LEN, vals, NULL);
    }
    free(vals);
    return st;
}

static rm_status write_links(rm_sweep_index *ix, const rm_sweep *s, hid_t links) {
    for (int i = 0; i < ix->n; i++) {
        char target[ID_LEN];
        snprintf(target, sizeof target, "%s.h5", s->runs[i].id);
        if (H5Lcreate_external(target, "/", links, s->runs[i].id, H5P_DEFAULT, H5P_DEFAULT) < 0)
            return RM_H5_FAIL("H5Lcreate_external", ix->path, s->runs[i].id);
    }
    return RM_OK;
}

static rm_status write_root(rm_sweep_index *ix, const rm_sweep *s, int mpi_size, int rpr) {
    hid_t f = ix->file;
    char now[RM_H5_TIME_LEN];
    rm_iso8601_utc_now(now);
    RM_TRY(rm_h5_attr_write_str(f, "format", "regmix-sweep", ix->path, "/"));
    RM_TRY(rm_h5_attr_write_i64(f, "regmix_schema", 1, ix->path, "/"));
    RM_TRY(rm_h5_attr_write_str(f, "name", s->name, ix->path, "/"));
    RM_TRY(rm_h5_attr_write_str(f, "description", s->description, ix->path, "/"));
    RM_TRY(rm_h5_attr_write_str(f, "sweep_file", s->path, ix->path, "/"));
    RM_TRY(rm_h5_attr_write_str(f, "sweep_yaml", s->text ? s->text : "", ix->path, "/"));
    RM_TRY(rm_h5_attr_write_i64(f, "n_runs", s->n_runs, ix->path, "/"));
    RM_TRY(rm_h5_attr_write_i64(f, "mpi_size", mpi_size, ix->path, "/"));
    RM_TRY(rm_h5_attr_write_i64(f, "ranks_per_run", rpr, ix->path, "/"));
    RM_TRY(rm_h5_attr_write_str(f, "created", now, ix->path, "/"));
    return RM_OK;
}

static rm_status build(rm_sweep_index *ix, const rm_sweep *s, int mpi_size, int rpr) {
    hid_t fapl = rm_h5_fapl_latest();
    if (fapl < 0) return RM_H5_FAIL("H5Pset_libver_bounds", ix->path, NULL);
    /* derived data: rebuilt at every sweep start (the runs' own files are never touched) */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", ix->path);
    ix->file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (ix->file < 0) return RM_H5_FAIL("H5Fcreate", tmp, NULL);
    RM_TRY(write_root(ix, s, mpi_size, rpr));
    hid_t runs = H5Gcreate2(ix->file, "runs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t axes = H5Gcreate2(ix->file, "axes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t links = H5Gcreate2(ix->file, "links", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rm_status st = (runs < 0 || axes < 0 || links < 0) ? RM_H5_FAIL("H5Gcreate2", ix->path, "runs|axes|links") : RM_OK;
    if (st == RM_OK) st = write_runs(ix, s, runs);
    if (st == RM_OK) st = write_axes(ix, s, axes);
    if (st == RM_OK) st = write_links(ix, s, links);
    rm_h5_close(runs), rm_h5_close(axes), rm_h5_close(links);
    RM_TRY(st);
    /* rename before SWMR starts: readers only ever see a complete index */
    if (rename(tmp, ix->path) != 0) return rm_fail(RM_ERR_IO, "rename(%s, %s) failed", tmp, ix->path);
    if (H5Fstart_swmr_write(ix->file) < 0) return RM_H5_FAIL("H5Fstart_swmr_write", ix->path, NULL);
    return RM_OK;
}

rm_status rm_sweep_index_create(const char *path, const rm_sweep *s, int mpi_size, int ranks_per_run,
                                rm_sweep_index **out) {
    rm_h5_quiet();
    *out = NULL;
    rm_sweep_index *ix = calloc(1, sizeof *ix);
    if (!ix) return rm_fail(RM_ERR_NOMEM, "sweep index: out of memory");
    ix->file = ix->status = ix->reason = ix->rank = ix->epochs = ix->start = ix->end = -1;
    ix->n = s->n_runs;
    snprintf(ix->path, sizeof ix->path, "%s", path);
    rm_status st = build(ix, s, mpi_size, ranks_per_run);
    if (st != RM_OK) {
        rm_sweep_index_close(ix);
        return st;
    }
    *out = ix;
    return RM_OK;
}

rm_status rm_sweep_index_update(rm_sweep_index *ix, int run, const char *status, const char *reason, int rank,
                                int epochs, double start_time, double end_time) {
    if (!ix || run < 0 || run >= ix->n) return rm_fail(RM_ERR_ARG, "sweep index: no run %d", run);
    char st_buf[STATUS_LEN] = {0}, reason_buf[REASON_LEN] = {0};
    snprintf(st_buf, sizeof st_buf, "%s", status);
    snprintf(reason_buf, sizeof reason_buf, "%s", reason ? reason : "");
    int64_t r = rank, e = epochs;
    rm_status st = write_elem(ix, ix->status, run, 0, STATUS_LEN, st_buf, "/runs/status");
    if (st == RM_OK) st = write_elem(ix, ix->reason, run, 0, REASON_LEN, reason_buf, "/runs/reason");
    if (st == RM_OK) st = write_elem(ix, ix->rank, run, H5T_NATIVE_INT64, 0, &r, "/runs/rank");
    if (st == RM_OK) st = write_elem(ix, ix->epochs, run, H5T_NATIVE_INT64, 0, &e, "/runs/epochs");
    if (st == RM_OK && !isnan(start_time))
        st = write_elem(ix, ix->start, run, H5T_NATIVE_DOUBLE, 0, &start_time, "/runs/start_time");
    if (st == RM_OK && !isnan(end_time))
        st = write_elem(ix, ix->end, run, H5T_NATIVE_DOUBLE, 0, &end_time, "/runs/end_time");
    if (st != RM_OK) ix->write_failed = 1, rm_note_unwritable_file();
    return st;
}

rm_status rm_sweep_index_close(rm_sweep_index *ix) {
    if (!ix) return RM_OK;
    if (ix->write_failed) {
        /* closing flushes what could not be written (a full disk) and fails again; HDF5
         * 1.10 then keeps a half-closed file that crashes it at exit (H5F__close_cb), so
         * the ids stay open for HDF5's own exit; the next sweep rebuilds the index */
        rm_status st = rm_fail(RM_ERR_IO, "%s: not closed after a failed write", ix->path);
        free(ix);
        return st;
    }
    rm_status st = RM_OK;
    hid_t ds[] = {ix->status, ix->reason, ix->rank, ix->epochs, ix->start, ix->end};
    for (size_t i = 0; i < sizeof ds / sizeof *ds; i++) rm_h5_close(ds[i]);
    if (ix->file >= 0 && H5Fclose(ix->file) < 0) st = RM_H5_FAIL("H5Fclose", ix->path, NULL);
    free(ix);
    return st;
}
