/* The run file's reader: everything `regmix inspect` and the aggregator need, read with
 * the SWMR-read flag so that a run being written (or whose writer died) can be read. */
#include "io/runfile_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the first `rows` elements of a 1-D dataset into a new array (mtype elements of
 * elem bytes). Fails if the dataset is shorter than rows. */
static rm_status read_column(hid_t file, const char *obj, hid_t mtype, size_t elem, int64_t rows,
                             void **out, const char *path) {
    *out = NULL;
    hid_t d = H5Dopen2(file, obj, H5P_DEFAULT);
    if (d < 0) return RM_H5_FAIL("H5Dopen2", path, obj);
    rm_status st = RM_OK;
    hid_t fs = H5Dget_space(d), ms = -1;
    hsize_t have = 0, count = (hsize_t)rows, start = 0;
    if (fs < 0 || H5Sget_simple_extent_ndims(fs) != 1 || H5Sget_simple_extent_dims(fs, &have, NULL) < 0) {
        st = rm_fail(RM_ERR_FORMAT, "%s: %s is not a 1-D dataset", path, obj);
        goto done;
    }
    if (have < count) {
        st = rm_fail(RM_ERR_FORMAT, "%s: %s has %llu rows, metric_rows says %lld", path, obj,
                     (unsigned long long)have, (long long)rows);
        goto done;
    }
    *out = malloc(elem * (size_t)(rows > 0 ? rows : 1));
    if (!*out) {
        st = rm_fail(RM_ERR_NOMEM, "out of memory reading %s:%s", path, obj);
        goto done;
    }
    if (rows == 0) goto done;
    if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0 ||
        (ms = H5Screate_simple(1, &count, NULL)) < 0 ||
        H5Dread(d, mtype, ms, fs, H5P_DEFAULT, *out) < 0)
        st = RM_H5_FAIL("H5Dread", path, obj);
done:
    if (st != RM_OK) {
        free(*out);
        *out = NULL;
    }
    rm_h5_close(ms);
    rm_h5_close(fs);
    H5Dclose(d);
    return st;
}

static rm_status read_provenance(hid_t file, rm_run_summary *s, const char *path) {
    hid_t g = H5Gopen2(file, RF_PROV, H5P_DEFAULT);
    if (g < 0) return RM_H5_FAIL("H5Gopen2", path, RF_PROV);
    struct {
        const char *name;
        char *buf;
        size_t size;
    } strs[] = {{"regmix_version", s->regmix_version, sizeof s->regmix_version},
                {"git_commit", s->git_commit, sizeof s->git_commit},
                {"onednn_version", s->onednn_version, sizeof s->onednn_version},
                {"onednn_isa", s->onednn_isa, sizeof s->onednn_isa},
                {"hdf5_version", s->hdf5_version, sizeof s->hdf5_version},
                {"mpi_version", s->mpi_version, sizeof s->mpi_version},
                {"host", s->host, sizeof s->host},
                {"start_time", s->start_time, sizeof s->start_time}};
    rm_status st = RM_OK;
    for (size_t i = 0; i < sizeof strs / sizeof *strs && st == RM_OK; i++)
        st = rm_h5_attr_read_str(g, strs[i].name, strs[i].buf, strs[i].size, NULL, path, RF_PROV);
    if (st == RM_OK) st = rm_h5_attr_read_i64(g, "mpi_rank", &s->mpi_rank, NULL, path, RF_PROV);
    if (st == RM_OK) st = rm_h5_attr_read_i64(g, "mpi_size", &s->mpi_size, NULL, path, RF_PROV);
    if (st == RM_OK) st = rm_h5_attr_read_i64(g, "threads", &s->threads, NULL, path, RF_PROV);
    int found; /* recorded since 0.2: absent from older files */
    if (st == RM_OK) st = rm_h5_attr_read_i64(g, "ranks_per_run", &s->ranks_per_run, &found, path, RF_PROV);
    if (st == RM_OK) st = rm_h5_attr_read_str(g, "data_dir", s->data_dir, sizeof s->data_dir, &found, path, RF_PROV);
    H5Gclose(g);
    RM_TRY(st);
    char status[RM_H5_STATUS_LEN + 1];
    RM_TRY(rm_h5_scalar_str_read(file, RF_STATUS, status, sizeof status, path));
    if (rm_run_status_parse(status, &s->status) != RM_OK) {
        rm_error_clear();
        return rm_fail(RM_ERR_FORMAT, "%s: %s holds '%s', not a known status", path, RF_STATUS, status);
    }
    RM_TRY(rm_h5_scalar_str_read(file, RF_REASON, s->status_reason, sizeof s->status_reason, path));
    RM_TRY(rm_h5_scalar_str_read(file, RF_END_TIME, s->end_time, sizeof s->end_time, path));
    RM_TRY(rm_h5_scalar_str_read(file, RF_RESUME_TIME, s->resume_time, sizeof s->resume_time, path));
    RM_TRY(rm_h5_scalar_i64_read(file, RF_RESUME_COUNT, &s->resume_count, path));
    return RM_OK;
}

static rm_status read_metrics(hid_t file, rm_run_summary *s, const char *path) {
    /* The counter first: columns may already be longer (a row being written). */
    RM_TRY(rm_h5_scalar_i64_read(file, RF_ROWS, &s->rows, path));
    if (s->rows < 0) return rm_fail(RM_ERR_FORMAT, "%s: %s is negative", path, RF_ROWS);
    hid_t g = H5Gopen2(file, RF_METRICS, H5P_DEFAULT);
    if (g < 0) return RM_H5_FAIL("H5Gopen2", path, RF_METRICS);
    char **names = NULL;
    int n = 0;
    rm_status st = rm_h5_attr_read_str_array(g, "columns", &names, &n, path, RF_METRICS);
    if (st == RM_OK) {
        s->columns = calloc((size_t)n + 1, sizeof *s->columns);
        if (!s->columns) st = rm_fail(RM_ERR_NOMEM, "out of memory reading %s", path);
        else s->n_metrics = n;
    }
    if (st == RM_OK)
        st = read_column(file, RF_EPOCH, H5T_NATIVE_INT64, sizeof(int64_t), s->rows,
                         (void **)&s->epoch, path);
    for (int i = 0; i < n && st == RM_OK; i++) {
        rm_metric_column *c = &s->columns[i];
        if (rm_copy_str(c->name, sizeof c->name, names[i])) {
            st = rm_fail(RM_ERR_FORMAT, "%s: metric name '%s' too long", path, names[i]);
            break;
        }
        char obj[RM_METRIC_NAME_MAX + 16];
        snprintf(obj, sizeof obj, RF_METRICS "/%s", c->name);
        st = read_column(file, obj, H5T_NATIVE_DOUBLE, sizeof(double), s->rows, (void **)&c->values,
                         path);
        if (st != RM_OK) break;
        hid_t d = H5Dopen2(file, obj, H5P_DEFAULT);
        if (d < 0) {
            st = RM_H5_FAIL("H5Dopen2", path, obj);
            break;
        }
        st = rm_h5_attr_read_str_alloc(d, "units", &c->units, path, obj);
        if (st == RM_OK) st = rm_h5_attr_read_str_alloc(d, "description", &c->description, path, obj);
        H5Dclose(d);
    }
    rm_h5_free_str_array(names, n);
    H5Gclose(g);
    return st;
}

/* The checkpoint beside the run file, if any; a broken one does not hide the metrics. */
static void read_checkpoint_meta(const char *path, rm_run_summary *s) {
    if (!rm_checkpoint_present(path)) return;
    rm_checkpoint_reader *r = NULL;
    rm_checkpoint_meta meta;
    if (rm_checkpoint_open(path, &r, &meta) != RM_OK) {
        s->has_checkpoint = -1;
        rm_error_clear();
        return;
    }
    s->has_checkpoint = 1;
    s->checkpoint_epoch = meta.epoch;
    s->checkpoint_iteration = meta.iteration;
    s->checkpoint_steps = meta.steps;
    rm_checkpoint_close(r);
}

rm_status rm_runfile_read(const char *path, rm_run_summary *out) {
    rm_h5_quiet();
    memset(out, 0, sizeof *out);
    if (!path) return rm_fail(RM_ERR_ARG, "rm_runfile_read: no path");
    hid_t file, fapl = rm_h5_fapl_swmr_read();
    if (fapl < 0) return RM_H5_FAIL("H5Pset_metadata_read_attempts", path, NULL);
    rm_status ost = rf_open_checked(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl, RM_RUNFILE_FORMAT, &file);
    H5Pclose(fapl);
    RM_TRY(ost);
    rm_status st = rm_h5_attr_read_str(file, "run_id", out->run_id, sizeof out->run_id, NULL, path, "/");
    hid_t g = -1;
    if (st == RM_OK && (g = H5Gopen2(file, RF_CONFIG, H5P_DEFAULT)) < 0)
        st = RM_H5_FAIL("H5Gopen2", path, RF_CONFIG);
    if (st == RM_OK) st = rm_h5_attr_read_str_alloc(g, "yaml", &out->config_yaml, path, RF_CONFIG);
    if (st == RM_OK)
        st = rm_h5_attr_read_str(g, "hash", out->config_hash, sizeof out->config_hash, NULL, path,
                                 RF_CONFIG);
    rm_h5_close(g);
    if (st == RM_OK) rf_identity_hash(out->config_yaml, out->config_hash, path, out->identity_hash);
    if (st == RM_OK) st = read_provenance(file, out, path);
    if (st == RM_OK) st = read_metrics(file, out, path);
    if (H5Fclose(file) < 0 && st == RM_OK) st = RM_H5_FAIL("H5Fclose", path, NULL);
    if (st == RM_OK) read_checkpoint_meta(path, out);
    if (st != RM_OK) rm_run_summary_free(out);
    return st;
}

void rm_run_summary_free(rm_run_summary *s) {
    if (!s) return;
    free(s->config_yaml);
    free(s->epoch);
    for (int i = 0; s->columns && i < s->n_metrics; i++) {
        free(s->columns[i].units);
        free(s->columns[i].description);
        free(s->columns[i].values);
    }
    free(s->columns);
    memset(s, 0, sizeof *s);
}

int rm_run_summary_find(const rm_run_summary *s, const char *name) {
    for (int i = 0; i < s->n_metrics; i++)
        if (!strcmp(s->columns[i].name, name)) return i;
    return -1;
}
