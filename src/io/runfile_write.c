/* The run file's writer: creates every object up front, then writes under SWMR.
 *
 * Under SWMR no object or attribute may be created, so all that changes during a run is
 * a dataset made here: the status strings and counters (contiguous, allocated early)
 * and the metric columns (chunked, unlimited, extended one row per epoch). */
#include "io/runfile_impl.h"

#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regmix/nn.h"

/* ---------------------------------------------------------------- /config */

/* Integer settings as int64; the double of rm_config_setting_value is exact below 2^53,
 * beyond that (a large seed) the exact text is parsed, as uint64 if it needs the range. */
static rm_status write_int_setting(hid_t g, const rm_config *cfg, int i, const char *name,
                                   double num, const char *path) {
    if (fabs(num) < 9007199254740992.0)
        return rm_h5_attr_write_i64(g, name, (int64_t)llround(num), path, RF_CONFIG);
    char text[64];
    if (rm_config_setting_text(cfg, i, text, sizeof text) < 0 || text[0] == '-')
        return rm_fail(RM_ERR_ARG, "%s: setting %s: value %g has no exact integer text", path, name, num);
    errno = 0;
    char *end;
    unsigned long long u = strtoull(text, &end, 10);
    if (errno || *end)
        return rm_fail(RM_ERR_ARG, "%s: setting %s: '%s' is not an integer", path, name, text);
    if (u <= (unsigned long long)INT64_MAX)
        return rm_h5_attr_write_i64(g, name, (int64_t)u, path, RF_CONFIG);
    return rm_h5_attr_write_u64(g, name, (uint64_t)u, path, RF_CONFIG);
}

rm_status rf_write_config(hid_t file, const rm_config *cfg, const char *path, char hash_out[17]) {
    hid_t g = -1;
    htri_t e = H5Lexists(file, RF_CONFIG, H5P_DEFAULT);
    if (e < 0) return RM_H5_FAIL("H5Lexists", path, RF_CONFIG);
    g = e ? H5Gopen2(file, RF_CONFIG, H5P_DEFAULT)
          : H5Gcreate2(file, RF_CONFIG, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return RM_H5_FAIL(e ? "H5Gopen2" : "H5Gcreate2", path, RF_CONFIG);
    rm_status st = RM_OK;
    char text[4096];
    for (int i = 0, n = rm_config_setting_count(); i < n && st == RM_OK; i++) {
        const char *name = rm_config_setting_name(i);
        double num = 0.0;
        text[0] = '\0';
        rm_config_setting_value(cfg, i, &num, text, sizeof text);
        switch (rm_config_setting_type(i)) {
        case RM_SETTING_INT:
            st = write_int_setting(g, cfg, i, name, num, path);
            break;
        case RM_SETTING_FLOAT: st = rm_h5_attr_write_f64(g, name, num, path, RF_CONFIG); break;
        case RM_SETTING_STRING: st = rm_h5_attr_write_str(g, name, text, path, RF_CONFIG); break;
        }
    }
    /* The resolved text: grows the buffer until it fits (settings are a few KB). */
    char *yaml = NULL;
    for (size_t size = RM_CFG_YAML_MAX; st == RM_OK && size <= (1u << 24); size *= 4) {
        free(yaml);
        yaml = malloc(size);
        if (!yaml) {
            st = rm_fail(RM_ERR_NOMEM, "out of memory formatting the configuration of %s", path);
            break;
        }
        if (rm_config_to_yaml(cfg, yaml, size) >= 0) break;
        if (size * 4 > (1u << 24)) st = rm_fail(RM_ERR_ARG, "configuration YAML of %s is over 16 MB", path);
    }
    if (st == RM_OK) st = rm_h5_attr_write_str(g, "yaml", yaml, path, RF_CONFIG);
    free(yaml);
    if (st == RM_OK) {
        rm_config_hash(cfg, hash_out);
        hash_out[16] = '\0';
        st = rm_h5_attr_write_str(g, "hash", hash_out, path, RF_CONFIG);
    }
    if (H5Gclose(g) < 0 && st == RM_OK) st = RM_H5_FAIL("H5Gclose", path, RF_CONFIG);
    return st;
}

/* ---------------------------------------------------------------- /provenance */

static void mpi_version(char *out, size_t size) {
    char buf[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    /* One of the few MPI calls allowed before MPI_Init (MPI-3.0 section 8.7). */
    if (MPI_Get_library_version(buf, &len) != MPI_SUCCESS || len <= 0) {
        rm_copy_str(out, size, "unknown");
        return;
    }
    buf[len < (int)sizeof buf ? len : (int)sizeof buf - 1] = '\0';
    /* Some libraries end the text with newlines; keep one line. */
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    for (size_t n = strlen(buf); n > 0 && buf[n - 1] == ' '; n--) buf[n - 1] = '\0';
    rm_copy_str(out, size, buf);
}

rm_status rf_write_data_dir(hid_t prov, const rm_run_info *info, const char *path) {
    return rm_h5_attr_write_str(prov, "data_dir", info->data_dir ? info->data_dir : "", path, RF_PROV);
}

/* The precision the run computes in (a bf16 request runs f32 on a CPU without bf16)
 * and, for such a fallback, why. */
static rm_status write_precision(hid_t g, const rm_config *cfg, const char *path) {
    rm_precision req = RM_PRECISION_F32;
    char note[256] = "";
    if (rm_precision_parse(cfg->precision, &req) != RM_OK) rm_error_clear(); /* validated before */
    rm_precision eff = rm_precision_effective(req, note, sizeof note);
    RM_TRY(rm_h5_attr_write_str(g, "precision", rm_precision_name(eff), path, RF_PROV));
    return rm_h5_attr_write_str(g, "precision_note", note, path, RF_PROV);
}

static rm_status write_provenance(hid_t file, const rm_config *cfg, const rm_run_info *info,
                                  const char *path) {
    hid_t g = H5Gcreate2(file, RF_PROV, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return RM_H5_FAIL("H5Gcreate2", path, RF_PROV);
    char hdf5[32], mpi[512], host[256], now[RM_H5_TIME_LEN];
    unsigned maj = 0, min = 0, rel = 0;
    if (H5get_libversion(&maj, &min, &rel) < 0) rm_copy_str(hdf5, sizeof hdf5, "unknown");
    else snprintf(hdf5, sizeof hdf5, "%u.%u.%u", maj, min, rel);
    mpi_version(mpi, sizeof mpi);
    if (gethostname(host, sizeof host) != 0) rm_copy_str(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    rm_iso8601_utc_now(now);

    rm_status st = RM_OK;
    const char *strs[][2] = {{"regmix_version", REGMIX_VERSION}, {"git_commit", REGMIX_GIT_COMMIT},
                             {"onednn_version", rm_dnnl_version()}, {"onednn_isa", rm_dnnl_isa()},
                             {"hdf5_version", hdf5}, {"mpi_version", mpi}, {"host", host},
                             {"start_time", now}};
    for (size_t i = 0; i < sizeof strs / sizeof *strs && st == RM_OK; i++)
        st = rm_h5_attr_write_str(g, strs[i][0], strs[i][1] ? strs[i][1] : "unknown", path, RF_PROV);
    if (st == RM_OK) st = rm_h5_attr_write_i64(g, "mpi_rank", info->mpi_rank, path, RF_PROV);
    if (st == RM_OK) st = rm_h5_attr_write_i64(g, "mpi_size", info->mpi_size, path, RF_PROV);
    if (st == RM_OK) st = rm_h5_attr_write_i64(g, "threads", info->threads, path, RF_PROV);
    if (st == RM_OK)
        st = rm_h5_attr_write_i64(g, "ranks_per_run", info->ranks_per_run > 0 ? info->ranks_per_run : 1, path, RF_PROV);
    if (st == RM_OK) st = rf_write_data_dir(g, info, path);
    if (st == RM_OK) st = write_precision(g, cfg, path);
    if (st == RM_OK) st = rm_h5_attr_write_str(g, "resume_log", "", path, RF_PROV);
    /* The SWMR-updatable part. */
    if (st == RM_OK) st = rm_h5_scalar_str_create(g, "status", RM_H5_STATUS_LEN, "running", path, RF_STATUS);
    if (st == RM_OK) st = rm_h5_scalar_str_create(g, "status_reason", RM_H5_REASON_LEN, "", path, RF_REASON);
    if (st == RM_OK) st = rm_h5_scalar_str_create(g, "end_time", RM_H5_TIME_LEN, "", path, RF_END_TIME);
    if (st == RM_OK) st = rm_h5_scalar_i64_create(g, "metric_rows", 0, path, RF_ROWS);
    if (st == RM_OK) st = rm_h5_scalar_i64_create(g, "resume_count", 0, path, RF_RESUME_COUNT);
    if (st == RM_OK) st = rm_h5_scalar_str_create(g, "resume_time", RM_H5_TIME_LEN, "", path, RF_RESUME_TIME);
    if (H5Gclose(g) < 0 && st == RM_OK) st = RM_H5_FAIL("H5Gclose", path, RF_PROV);
    return st;
}

/* ---------------------------------------------------------------- /metrics */

/* An empty 1-D column, chunked and unlimited so it can grow under SWMR; the fill value
 * (NaN, or -1 for epoch) marks a row whose value was never written. */
static rm_status create_column(hid_t g, const char *name, hid_t ftype, hid_t mtype,
                               const void *fill, const char *units, const char *desc,
                               const char *path) {
    char obj[RM_METRIC_NAME_MAX + 16];
    snprintf(obj, sizeof obj, RF_METRICS "/%s", name);
    hsize_t zero = 0, unlimited = H5S_UNLIMITED, chunk = RF_METRIC_CHUNK;
    rm_status st = RM_OK;
    hid_t s = H5Screate_simple(1, &zero, &unlimited), dcpl = H5Pcreate(H5P_DATASET_CREATE), d = -1;
    if (s < 0 || dcpl < 0 || H5Pset_chunk(dcpl, 1, &chunk) < 0 ||
        H5Pset_fill_value(dcpl, mtype, fill) < 0) {
        st = RM_H5_FAIL("H5Pset_chunk", path, obj);
        goto done;
    }
    d = H5Dcreate2(g, name, ftype, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) {
        st = RM_H5_FAIL("H5Dcreate2", path, obj);
        goto done;
    }
    st = rm_h5_attr_write_str(d, "units", units ? units : "", path, obj);
    if (st == RM_OK) st = rm_h5_attr_write_str(d, "description", desc ? desc : "", path, obj);
done:
    rm_h5_close(d);
    rm_h5_close(dcpl);
    rm_h5_close(s);
    return st;
}

static rm_status write_metrics(hid_t file, const rm_metric_spec *metrics, int n, const char *path) {
    hid_t g = H5Gcreate2(file, RF_METRICS, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return RM_H5_FAIL("H5Gcreate2", path, RF_METRICS);
    rm_status st = RM_OK;
    const char **names = calloc((size_t)n + 1, sizeof *names);
    if (!names) st = rm_fail(RM_ERR_NOMEM, "out of memory creating %s", path);
    for (int i = 0; i < n && st == RM_OK; i++) names[i] = metrics[i].name;
    if (st == RM_OK) st = rm_h5_attr_write_str_array(g, "columns", names, n, path, RF_METRICS);
    free(names);
    int64_t no_epoch = -1;
    if (st == RM_OK)
        st = create_column(g, "epoch", H5T_STD_I64LE, H5T_NATIVE_INT64, &no_epoch, "epoch",
                           "epochs completed when the row was written (1-based)", path);
    double nan = NAN;
    for (int i = 0; i < n && st == RM_OK; i++)
        st = create_column(g, metrics[i].name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &nan,
                           metrics[i].units, metrics[i].description, path);
    if (H5Gclose(g) < 0 && st == RM_OK) st = RM_H5_FAIL("H5Gclose", path, RF_METRICS);
    return st;
}

/* ---------------------------------------------------------------- attach / create */

rm_status rf_attach(rm_runfile *rf) {
    const char *path = rf->path;
    rf->epoch = H5Dopen2(rf->file, RF_EPOCH, H5P_DEFAULT);
    if (rf->epoch < 0) return RM_H5_FAIL("H5Dopen2", path, RF_EPOCH);
    rf->columns = malloc(((size_t)rf->n_metrics + 1) * sizeof *rf->columns);
    if (!rf->columns) return rm_fail(RM_ERR_NOMEM, "out of memory opening %s", path);
    for (int i = 0; i < rf->n_metrics; i++) rf->columns[i] = -1;
    for (int i = 0; i < rf->n_metrics; i++) {
        char obj[RM_METRIC_NAME_MAX + 16];
        snprintf(obj, sizeof obj, RF_METRICS "/%s", rf->names[i]);
        rf->columns[i] = H5Dopen2(rf->file, obj, H5P_DEFAULT);
        if (rf->columns[i] < 0) return RM_H5_FAIL("H5Dopen2", path, obj);
    }
    RM_TRY(rm_h5_scalar_i64_read(rf->file, RF_ROWS, &rf->rows, path));
    rf->last_epoch = 0;
    if (rf->rows > 0) {
        hid_t fs = H5Dget_space(rf->epoch), ms = -1;
        hsize_t start = (hsize_t)rf->rows - 1, count = 1;
        rm_status st = RM_OK;
        if (fs < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0 ||
            (ms = H5Screate_simple(1, &count, NULL)) < 0 ||
            H5Dread(rf->epoch, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, &rf->last_epoch) < 0)
            st = RM_H5_FAIL("H5Dread", path, RF_EPOCH);
        rm_h5_close(ms);
        rm_h5_close(fs);
        RM_TRY(st);
    }
    /* From here on readers may open the file with the SWMR-read flag. */
    if (H5Fstart_swmr_write(rf->file) < 0) return RM_H5_FAIL("H5Fstart_swmr_write", path, "/");
    return RM_OK;
}

rm_runfile *rf_new(const char *path, const rm_metric_spec *metrics, int n) {
    rm_runfile *rf = calloc(1, sizeof *rf);
    if (!rf) return NULL;
    rf->file = rf->epoch = -1;
    rf->n_metrics = n;
    rf->names = calloc((size_t)n + 1, sizeof *rf->names);
    if (!rf->names) {
        free(rf);
        return NULL;
    }
    for (int i = 0; i < n; i++) rm_copy_str(rf->names[i], RM_METRIC_NAME_MAX, metrics[i].name);
    rm_copy_str(rf->path, sizeof rf->path, path);
    return rf;
}

rm_status rf_free(rm_runfile *rf) {
    rm_status st = RM_OK;
    if (rf->columns)
        for (int i = 0; i < rf->n_metrics; i++)
            if (rf->columns[i] >= 0 && H5Dclose(rf->columns[i]) < 0 && st == RM_OK)
                st = RM_H5_FAIL("H5Dclose", rf->path, rf->names[i]);
    if (rf->epoch >= 0 && H5Dclose(rf->epoch) < 0 && st == RM_OK)
        st = RM_H5_FAIL("H5Dclose", rf->path, RF_EPOCH);
    if (rf->file >= 0 && H5Fclose(rf->file) < 0 && st == RM_OK)
        st = RM_H5_FAIL("H5Fclose", rf->path, NULL);
    free(rf->columns);
    free(rf->names);
    free(rf);
    return st;
}

static rm_status create_objects(rm_runfile *rf, const rm_config *cfg, const rm_run_info *info,
                                const rm_metric_spec *metrics, int n) {
    const char *path = rf->path;
    char run_id[256], now[RM_H5_TIME_LEN], ckpt[PATH_MAX];
    rf_run_id(path, run_id, sizeof run_id);
    rm_iso8601_utc_now(now);
    RM_TRY(rm_h5_attr_write_str(rf->file, "format", RM_RUNFILE_FORMAT, path, "/"));
    RM_TRY(rm_h5_attr_write_i64(rf->file, "regmix_schema", RM_RUNFILE_SCHEMA, path, "/"));
    RM_TRY(rm_h5_attr_write_str(rf->file, "run_id", run_id, path, "/"));
    RM_TRY(rm_h5_attr_write_str(rf->file, "created", now, path, "/"));
    RM_TRY(rf_write_config(rf->file, cfg, path, rf->hash));
    RM_TRY(write_provenance(rf->file, cfg, info, path));
    RM_TRY(write_metrics(rf->file, metrics, n, path));
    /* Relative target: HDF5 looks for it beside the run file, so the pair can be moved. */
    RM_TRY(rm_runfile_checkpoint_path(path, ckpt, sizeof ckpt));
    const char *base = strrchr(ckpt, '/');
    if (H5Lcreate_external(base ? base + 1 : ckpt, RF_CKPT_GROUP, rf->file, "checkpoint",
                           H5P_DEFAULT, H5P_DEFAULT) < 0)
        return RM_H5_FAIL("H5Lcreate_external", path, RF_CKPT_GROUP);
    return RM_OK;
}

rm_status rm_runfile_create(const char *path, const rm_config *cfg, const rm_run_info *info,
                            const rm_metric_spec *metrics, int n_metrics, rm_runfile **out) {
    rm_h5_quiet();
    *out = NULL;
    if (!path || !path[0] || !cfg || !info) return rm_fail(RM_ERR_ARG, "rm_runfile_create: missing argument");
    if (strlen(path) + 16 >= PATH_MAX) return rm_fail(RM_ERR_ARG, "run file path too long: %s", path);
    RM_TRY(rf_check_metrics(metrics, n_metrics));
    if (access(path, F_OK) == 0)
        return rm_fail(RM_ERR_STATE, "%s already exists: resume it or choose another run id / outdir",
                       path);
    rm_runfile *rf = rf_new(path, metrics, n_metrics);
    if (!rf) return rm_fail(RM_ERR_NOMEM, "out of memory creating %s", path);
    hid_t fapl = rm_h5_fapl_latest();
    if (fapl < 0) {
        rf_free(rf);
        return RM_H5_FAIL("H5Pset_libver_bounds", path, NULL);
    }
    rf->file = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (rf->file < 0) {
        rf_free(rf);
        return RM_H5_FAIL("H5Fcreate", path, NULL);
    }
    rm_status st = create_objects(rf, cfg, info, metrics, n_metrics);
    if (st == RM_OK) st = rf_attach(rf);
    if (st != RM_OK) {
        rf_free(rf);
        unlink(path); /* a half-made run file would only be refused later */
        return st;
    }
    *out = rf;
    return RM_OK;
}

/* ---------------------------------------------------------------- per epoch */

/* Writes value (one element of mtype) at row `row` of d, which is extended to row + 1. */
static rm_status write_cell(hid_t d, hid_t mtype, int64_t row, const void *value,
                            const char *path, const char *name) {
    hsize_t n = (hsize_t)row + 1, start = (hsize_t)row, count = 1;
    if (H5Dset_extent(d, &n) < 0) return RM_H5_FAIL("H5Dset_extent", path, name);
    rm_status st = RM_OK;
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &count, NULL);
    if (fs < 0 || ms < 0 || H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0)
        st = RM_H5_FAIL("H5Sselect_hyperslab", path, name);
    else if (H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, value) < 0)
        st = RM_H5_FAIL("H5Dwrite", path, name);
    else if (H5Dflush(d) < 0)
        st = RM_H5_FAIL("H5Dflush", path, name);
    rm_h5_close(ms);
    rm_h5_close(fs);
    return st;
}

rm_status rm_runfile_append(rm_runfile *rf, int64_t epoch, const double *values) {
    rm_h5_quiet();
    if (!rf || (rf->n_metrics > 0 && !values)) return rm_fail(RM_ERR_ARG, "rm_runfile_append: missing argument");
    if (epoch <= rf->last_epoch)
        return rm_fail(RM_ERR_ARG, "%s: epoch %lld appended after epoch %lld (epochs must increase)",
                       rf->path, (long long)epoch, (long long)rf->last_epoch);
    int64_t row = rf->rows;
    RM_TRY(write_cell(rf->epoch, H5T_NATIVE_INT64, row, &epoch, rf->path, RF_EPOCH));
    for (int i = 0; i < rf->n_metrics; i++)
        RM_TRY(write_cell(rf->columns[i], H5T_NATIVE_DOUBLE, row, &values[i], rf->path, rf->names[i]));
    /* The row counter goes last: a reader trusts only rows below it. */
    RM_TRY(rm_h5_scalar_i64_write(rf->file, RF_ROWS, row + 1, rf->path));
    if (H5Fflush(rf->file, H5F_SCOPE_LOCAL) < 0) return RM_H5_FAIL("H5Fflush", rf->path, NULL);
    rf->rows = row + 1;
    rf->last_epoch = epoch;
    return RM_OK;
}

rm_status rm_runfile_set_status(rm_runfile *rf, rm_run_status status, const char *reason) {
    rm_h5_quiet();
    if (!rf || (int)status < RM_RUN_RUNNING || status > RM_RUN_PREEMPTED)
        return rm_fail(RM_ERR_ARG, "rm_runfile_set_status: bad argument (status %d)", (int)status);
    RM_TRY(rm_h5_scalar_str_write(rf->file, RF_REASON, reason ? reason : "", rf->path));
    char now[RM_H5_TIME_LEN] = "";
    if (status != RM_RUN_RUNNING) rm_iso8601_utc_now(now);
    RM_TRY(rm_h5_scalar_str_write(rf->file, RF_END_TIME, now, rf->path));
    RM_TRY(rm_h5_scalar_str_write(rf->file, RF_STATUS, rm_run_status_name(status), rf->path));
    if (H5Fflush(rf->file, H5F_SCOPE_LOCAL) < 0) return RM_H5_FAIL("H5Fflush", rf->path, NULL);
    return RM_OK;
}

rm_status rm_runfile_close(rm_runfile *rf) {
    if (!rf) return RM_OK;
    rm_h5_quiet();
    return rf_free(rf);
}

const char *rm_runfile_path(const rm_runfile *rf) { return rf->path; }
const char *rm_runfile_config_hash(const rm_runfile *rf) { return rf->hash; }
int64_t rm_runfile_rows(const rm_runfile *rf) { return rf->rows; }
