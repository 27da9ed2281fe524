/* Reopening a run: check everything read-only first, then truncate the metric rows back
 * to the checkpoint and start SWMR writing again. And the repair of a file whose writer
 * died (h5clear). */
#include "io/runfile_impl.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* What the read-only pass learns about the file. */
typedef struct {
    char hash[17];         /* /config/hash as stored */
    char identity[17];     /* the stored configuration's hash under this build's rules */
    char **columns;
    int n_columns;
    int64_t rows;
    int64_t *epochs; /* rows entries */
    char status[RM_H5_STATUS_LEN + 1];
    char reason[RM_H5_REASON_LEN + 1];
    char *resume_log;
    char *previous_hashes; /* NULL if the attribute is absent */
} file_state;

static void file_state_free(file_state *fs) {
    rm_h5_free_str_array(fs->columns, fs->n_columns);
    free(fs->epochs);
    free(fs->resume_log);
    free(fs->previous_hashes);
    memset(fs, 0, sizeof *fs);
}

static rm_status read_epochs(hid_t file, file_state *fs, const char *path) {
    fs->epochs = calloc((size_t)fs->rows + 1, sizeof *fs->epochs);
    if (!fs->epochs) return rm_fail(RM_ERR_NOMEM, "out of memory reading %s", path);
    if (fs->rows == 0) return RM_OK;
    hid_t d = H5Dopen2(file, RF_EPOCH, H5P_DEFAULT);
    if (d < 0) return RM_H5_FAIL("H5Dopen2", path, RF_EPOCH);
    rm_status st = RM_OK;
    hid_t space = H5Dget_space(d), ms = -1;
    hsize_t have = 0, start = 0, count = (hsize_t)fs->rows;
    if (space < 0 || H5Sget_simple_extent_dims(space, &have, NULL) != 1 || have < count)
        st = rm_fail(RM_ERR_FORMAT, "%s: %s is shorter than %s (%lld rows)", path, RF_EPOCH, RF_ROWS,
                     (long long)fs->rows);
    else if (H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0 ||
             (ms = H5Screate_simple(1, &count, NULL)) < 0 ||
             H5Dread(d, H5T_NATIVE_INT64, ms, space, H5P_DEFAULT, fs->epochs) < 0)
        st = RM_H5_FAIL("H5Dread", path, RF_EPOCH);
    rm_h5_close(ms);
    rm_h5_close(space);
    H5Dclose(d);
    return st;
}

/* Read-only pass: the file is checked and read, never written. */
static rm_status read_state(const char *path, file_state *fs) {
    hid_t file;
    RM_TRY(rf_open_checked(path, H5F_ACC_RDONLY, H5P_DEFAULT, RM_RUNFILE_FORMAT, &file));
    rm_status st = RM_OK;
    hid_t cfg = H5Gopen2(file, RF_CONFIG, H5P_DEFAULT), met = -1, prov = -1;
    if (cfg < 0) st = RM_H5_FAIL("H5Gopen2", path, RF_CONFIG);
    if (st == RM_OK) st = rm_h5_attr_read_str(cfg, "hash", fs->hash, sizeof fs->hash, NULL, path, RF_CONFIG);
    char *yaml = NULL;
    if (st == RM_OK) st = rm_h5_attr_read_str_alloc(cfg, "yaml", &yaml, path, RF_CONFIG);
    if (st == RM_OK) rf_identity_hash(yaml, fs->hash, path, fs->identity);
    free(yaml);
    int found = 0;
    char tmp[8];
    if (st == RM_OK) st = rm_h5_attr_read_str(cfg, "previous_hashes", tmp, sizeof tmp, &found, path, RF_CONFIG);
    if (st == RM_OK && found)
        st = rm_h5_attr_read_str_alloc(cfg, "previous_hashes", &fs->previous_hashes, path, RF_CONFIG);
    if (st == RM_OK && (met = H5Gopen2(file, RF_METRICS, H5P_DEFAULT)) < 0)
        st = RM_H5_FAIL("H5Gopen2", path, RF_METRICS);
    if (st == RM_OK) st = rm_h5_attr_read_str_array(met, "columns", &fs->columns, &fs->n_columns, path, RF_METRICS);
    if (st == RM_OK && (prov = H5Gopen2(file, RF_PROV, H5P_DEFAULT)) < 0)
        st = RM_H5_FAIL("H5Gopen2", path, RF_PROV);
    if (st == RM_OK) st = rm_h5_attr_read_str_alloc(prov, "resume_log", &fs->resume_log, path, RF_PROV);
    if (st == RM_OK) st = rm_h5_scalar_i64_read(file, RF_ROWS, &fs->rows, path);
    if (st == RM_OK && fs->rows < 0) st = rm_fail(RM_ERR_FORMAT, "%s: %s is negative", path, RF_ROWS);
    if (st == RM_OK) st = read_epochs(file, fs, path);
    if (st == RM_OK) st = rm_h5_scalar_str_read(file, RF_STATUS, fs->status, sizeof fs->status, path);
    if (st == RM_OK) st = rm_h5_scalar_str_read(file, RF_REASON, fs->reason, sizeof fs->reason, path);
    rm_h5_close(prov);
    rm_h5_close(met);
    rm_h5_close(cfg);
    if (H5Fclose(file) < 0 && st == RM_OK) st = RM_H5_FAIL("H5Fclose", path, NULL);
    return st;
}

static rm_status check_columns(const char *path, const file_state *fs, const rm_metric_spec *metrics,
                               int n) {
    int same = fs->n_columns == n;
    for (int i = 0; same && i < n; i++) same = !strcmp(fs->columns[i], metrics[i].name);
    if (same) return RM_OK;
    char have[512] = "", want[512] = "";
    for (int i = 0; i < fs->n_columns; i++) {
        size_t l = strlen(have);
        snprintf(have + l, sizeof have - l, "%s%s", i ? "," : "", fs->columns[i]);
    }
    for (int i = 0; i < n; i++) {
        size_t l = strlen(want);
        snprintf(want + l, sizeof want - l, "%s%s", i ? "," : "", metrics[i].name);
    }
    return rm_fail(RM_ERR_STATE, "%s: metric columns differ: the file has [%s], this run writes [%s]",
                   path, have, want);
}

/* Shrinks one metric column (or the epoch column) to `keep` rows. */
static rm_status truncate_column(hid_t file, const char *obj, int64_t keep, const char *path) {
    hid_t d = H5Dopen2(file, obj, H5P_DEFAULT);
    if (d < 0) return RM_H5_FAIL("H5Dopen2", path, obj);
    hsize_t n = (hsize_t)keep;
    rm_status st = RM_OK;
    if (H5Dset_extent(d, &n) < 0) st = RM_H5_FAIL("H5Dset_extent", path, obj);
    H5Dclose(d);
    return st;
}

/* The writing pass: truncation, status, resume bookkeeping, config on a forced change. */
static rm_status rewrite(rm_runfile *rf, const file_state *fs, const rm_config *cfg,
                         const rm_run_info *info, int64_t keep, int config_changed) {
    const char *path = rf->path;
    RM_TRY(truncate_column(rf->file, RF_EPOCH, keep, path));
    for (int i = 0; i < rf->n_metrics; i++) {
        char obj[RM_METRIC_NAME_MAX + 16];
        snprintf(obj, sizeof obj, RF_METRICS "/%s", rf->names[i]);
        RM_TRY(truncate_column(rf->file, obj, keep, path));
    }
    RM_TRY(rm_h5_scalar_i64_write(rf->file, RF_ROWS, keep, path));
    RM_TRY(rm_h5_scalar_str_write(rf->file, RF_STATUS, "running", path));
    RM_TRY(rm_h5_scalar_str_write(rf->file, RF_REASON, "", path));
    RM_TRY(rm_h5_scalar_str_write(rf->file, RF_END_TIME, "", path));
    int64_t count = 0;
    RM_TRY(rm_h5_scalar_i64_read(rf->file, RF_RESUME_COUNT, &count, path));
    RM_TRY(rm_h5_scalar_i64_write(rf->file, RF_RESUME_COUNT, count + 1, path));
    char now[RM_H5_TIME_LEN], host[256];
    rm_iso8601_utc_now(now);
    RM_TRY(rm_h5_scalar_str_write(rf->file, RF_RESUME_TIME, now, path));
    if (gethostname(host, sizeof host) != 0) rm_copy_str(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';

    /* One line per resume: when, where, which build, what was kept. */
    size_t len = strlen(fs->resume_log) + 1024;
    char *log = malloc(len);
    if (!log) return rm_fail(RM_ERR_NOMEM, "out of memory resuming %s", path);
    snprintf(log, len, "%s%s host=%s rank=%d/%d threads=%d ranks_per_run=%d regmix=%s commit=%s previous=%s "
             "rows_kept=%lld%s data_dir=%.200s\n",
             fs->resume_log, now, host, info->mpi_rank, info->mpi_size, info->threads,
             info->ranks_per_run > 0 ? info->ranks_per_run : 1, REGMIX_VERSION, REGMIX_GIT_COMMIT, fs->status,
             (long long)keep, config_changed ? " config=replaced" : "", info->data_dir ? info->data_dir : "");
    hid_t prov = H5Gopen2(rf->file, RF_PROV, H5P_DEFAULT);
    rm_status st = prov < 0 ? RM_H5_FAIL("H5Gopen2", path, RF_PROV)
                            : rm_h5_attr_write_str(prov, "resume_log", log, path, RF_PROV);
    if (st == RM_OK) st = rf_write_data_dir(prov, info, path);
    rm_h5_close(prov);
    free(log);
    RM_TRY(st);

    if (!config_changed) {
        rm_copy_str(rf->hash, sizeof rf->hash, fs->hash);
        return RM_OK;
    }
    RM_TRY(rf_write_config(rf->file, cfg, path, rf->hash));
    char prev[1024];
    snprintf(prev, sizeof prev, "%s%s%s", fs->previous_hashes ? fs->previous_hashes : "",
             fs->previous_hashes && fs->previous_hashes[0] ? "," : "", fs->hash);
    hid_t g = H5Gopen2(rf->file, RF_CONFIG, H5P_DEFAULT);
    if (g < 0) return RM_H5_FAIL("H5Gopen2", path, RF_CONFIG);
    st = rm_h5_attr_write_str(g, "previous_hashes", prev, path, RF_CONFIG);
    H5Gclose(g);
    return st;
}

rm_status rm_runfile_resume(const char *path, const rm_config *cfg, const rm_run_info *info,
                            const rm_metric_spec *metrics, int n_metrics, int force,
                            rm_runfile **out, rm_resume_report *report) {
    rm_h5_quiet();
    *out = NULL;
    rm_resume_report rep;
    memset(&rep, 0, sizeof rep);
    if (report) *report = rep;
    if (!path || !cfg || !info) return rm_fail(RM_ERR_ARG, "rm_runfile_resume: missing argument");
    RM_TRY(rf_check_metrics(metrics, n_metrics));

    file_state fs;
    memset(&fs, 0, sizeof fs);
    rm_status st = read_state(path, &fs);
    if (st == RM_OK) st = check_columns(path, &fs, metrics, n_metrics);
    char want[17];
    rm_config_hash(cfg, want);
    want[16] = '\0';
    /* the file's configuration as this build hashes it: a file written before a change
     * of the hash rules (data_dir left the identity) still resumes */
    int changed = st == RM_OK && strcmp(fs.identity, want) != 0;
    if (changed && !force)
        st = rm_fail(RM_ERR_STATE,
                     "%s: configuration hash differs: the file has %s, this run has %s; refusing to "
                     "resume with another configuration (force accepts it and rewrites /config)",
                     path, fs.identity, want);
    if (st == RM_OK) {
        rm_copy_str(rep.file_hash, sizeof rep.file_hash, fs.hash);
        rm_copy_str(rep.previous_reason, sizeof rep.previous_reason, fs.reason);
        st = rm_run_status_parse(fs.status, &rep.previous_status);
        rep.rows_before = fs.rows;
    }
    if (st == RM_OK && rm_checkpoint_present(path)) {
        rm_checkpoint_reader *r = NULL;
        rm_checkpoint_meta meta;
        memset(&meta, 0, sizeof meta);
        st = rm_checkpoint_open(path, &r, &meta);
        rm_checkpoint_close(r);
        if (st == RM_OK && strcmp(meta.config_hash, fs.hash) && !force)
            st = rm_fail(RM_ERR_STATE, "%s: its checkpoint was written by configuration %s, the run "
                                       "file has %s", path, meta.config_hash, fs.hash);
        rep.has_checkpoint = st == RM_OK;
        rep.checkpoint_epoch = meta.epoch;
    }
    /* Rows after the checkpoint are redone by the resumed run: drop them. */
    int64_t keep = 0;
    while (st == RM_OK && keep < fs.rows && fs.epochs[keep] <= rep.checkpoint_epoch) keep++;
    /* A completed run with the same configuration has nothing to redo: it is reopened
     * as it is, so a caller that only looks and closes leaves the record intact. */
    int untouched = st == RM_OK && rep.previous_status == RM_RUN_COMPLETED && !changed;
    if (untouched) keep = fs.rows;
    rep.rows_kept = keep;
    rep.config_replaced = changed;
    if (st != RM_OK) {
        file_state_free(&fs);
        return st;
    }

    rm_runfile *rf = rf_new(path, metrics, n_metrics);
    if (!rf) st = rm_fail(RM_ERR_NOMEM, "out of memory resuming %s", path);
    hid_t fapl = -1;
    if (st == RM_OK && (fapl = rm_h5_fapl_latest()) < 0) st = RM_H5_FAIL("H5Pset_libver_bounds", path, NULL);
    if (st == RM_OK && (rf->file = H5Fopen(path, H5F_ACC_RDWR, fapl)) < 0)
        st = RM_H5_FAIL("H5Fopen", path, NULL);
    rm_h5_close(fapl);
    if (st == RM_OK && untouched) rm_copy_str(rf->hash, sizeof rf->hash, fs.hash);
    else if (st == RM_OK) st = rewrite(rf, &fs, cfg, info, keep, changed);
    if (st == RM_OK) st = rf_attach(rf);
    file_state_free(&fs);
    if (st != RM_OK) {
        if (rf) rf_free(rf);
        return st;
    }
    if (report) *report = rep;
    *out = rf;
    return RM_OK;
}

rm_status rm_runfile_repair(const char *path) {
    rm_h5_quiet();
    if (!path) return rm_fail(RM_ERR_ARG, "rm_runfile_repair: no path");
    /* Only regmix run files are touched; the SWMR-read open works on a crashed file. */
    hid_t f, fapl = rm_h5_fapl_swmr_read();
    if (fapl < 0) return RM_H5_FAIL("H5Pset_metadata_read_attempts", path, NULL);
    rm_status st = rf_open_checked(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl, RM_RUNFILE_FORMAT, &f);
    H5Pclose(fapl);
    RM_TRY(st);
    if (H5Fclose(f) < 0) return RM_H5_FAIL("H5Fclose", path, NULL);
    /* A cleanly closed file opens without the flag: nothing to repair. */
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) {
        if (H5Fclose(f) < 0) return RM_H5_FAIL("H5Fclose", path, NULL);
        return RM_OK;
    }
    char *argv[] = {"h5clear", "-s", "--increment", (char *)path, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "h5clear", NULL, NULL, argv, environ);
    if (rc != 0)
        return rm_fail(RM_ERR_IO, "cannot run h5clear -s --increment %s (install hdf5-tools): %s",
                       path, strerror(rc));
    int wst = 0;
    while (waitpid(pid, &wst, 0) < 0)
        if (errno != EINTR) return rm_fail(RM_ERR_IO, "waitpid(h5clear): %s", strerror(errno));
    if (!WIFEXITED(wst) || WEXITSTATUS(wst) != 0)
        return rm_fail(RM_ERR_IO, "h5clear -s --increment %s failed (%s %d)", path,
                       WIFEXITED(wst) ? "exit status" : "signal",
                       WIFEXITED(wst) ? WEXITSTATUS(wst) : WTERMSIG(wst));
    return RM_OK;
}
