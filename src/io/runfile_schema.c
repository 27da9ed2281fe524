/* What makes a file a regmix run file: root attributes, names, paths, status words;
 * and the careful open that tells "not HDF5", "truncated", "someone else's HDF5" and
 * "still marked open by a writer" apart without ever writing to the file. */
#include "io/runfile_impl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const status_names[] = {"running", "completed", "diverged", "failed",
                                           "preempted"};

const char *rm_run_status_name(rm_run_status s) {
    if ((int)s < 0 || (size_t)s >= sizeof status_names / sizeof *status_names) return "unknown";
    return status_names[s];
}

rm_status rm_run_status_parse(const char *text, rm_run_status *out) {
    for (size_t i = 0; i < sizeof status_names / sizeof *status_names; i++)
        if (!strcmp(text, status_names[i])) {
            *out = (rm_run_status)i;
            return RM_OK;
        }
    return rm_fail(RM_ERR_FORMAT, "unknown run status '%s' (expected running, completed, "
                                  "diverged, failed or preempted)", text);
}

void rf_run_id(const char *path, char *out, size_t size) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    rm_copy_str(out, size, base);
    size_t n = strlen(out);
    if (n > 3 && !strcmp(out + n - 3, ".h5")) out[n - 3] = '\0';
}

rm_status rm_runfile_checkpoint_path(const char *run_path, char *out, size_t size) {
    size_t n = strlen(run_path);
    if (n > 3 && !strcmp(run_path + n - 3, ".h5")) n -= 3;
    int w = snprintf(out, size, "%.*s.ckpt.h5", (int)n, run_path);
    if (w < 0 || (size_t)w >= size)
        return rm_fail(RM_ERR_ARG, "checkpoint path of %s is longer than %zu bytes", run_path, size);
    return RM_OK;
}

rm_status rf_check_metrics(const rm_metric_spec *metrics, int n_metrics) {
    if (n_metrics < 0 || (n_metrics > 0 && !metrics))
        return rm_fail(RM_ERR_ARG, "metric list: %d metrics with %s list", n_metrics,
                       metrics ? "a" : "no");
    for (int i = 0; i < n_metrics; i++) {
        const char *name = metrics[i].name;
        if (!name || !name[0] || strlen(name) >= RM_METRIC_NAME_MAX)
            return rm_fail(RM_ERR_ARG, "metric %d: name must have 1..%d characters", i,
                           RM_METRIC_NAME_MAX - 1);
        /* Dataset names: no '/', nothing a shell or pandas column would trip over. */
        if (name[strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.@+-")])
            return rm_fail(RM_ERR_ARG, "metric name '%s': only letters, digits and _.@+- are allowed",
                           name);
        if (!strcmp(name, "epoch") || name[0] == '.')
            return rm_fail(RM_ERR_ARG, "metric name '%s' is reserved", name);
        for (int j = 0; j < i; j++)
            if (!strcmp(metrics[j].name, name))
                return rm_fail(RM_ERR_ARG, "metric '%s' is listed twice", name);
    }
    return RM_OK;
}

/* Message for an H5Fopen that failed on a file with a valid HDF5 signature. */
static rm_status open_failure(const char *path, const char *why) {
    if (strstr(why, "already open for write") || strstr(why, "h5clear"))
        return rm_fail(RM_ERR_STATE,
                       "%s is marked as open for writing: a run is still writing it, or its writer "
                       "died (killed, node lost). If no process writes it, repair it with "
                       "`h5clear -s --increment %s` (hdf5-tools) and try again (HDF5: %s)",
                       path, path, why);
    /* HDF5's wording in 1.10: "unable to lock the file" (not "sblock" of a truncated file). */
    if (strstr(why, "unable to lock") || strstr(why, "lock the file"))
        return rm_fail(RM_ERR_IO,
                       "%s: cannot lock the file (%s); another process holds it, or the file "
                       "system does not support locks (then set HDF5_USE_FILE_LOCKING=FALSE)",
                       path, why);
    return rm_fail(RM_ERR_FORMAT, "%s: HDF5 cannot open it, the file is truncated or corrupt (HDF5: %s)",
                   path, why);
}

/* Root attributes: format must be `format`, regmix_schema must be RM_RUNFILE_SCHEMA. */
static rm_status check_root(hid_t file, const char *path, const char *format) {
    char got[64];
    int found = 0;
    RM_TRY(rm_h5_attr_read_str(file, "format", got, sizeof got, &found, path, "/"));
    if (!found)
        return rm_fail(RM_ERR_FORMAT,
                       "%s is an HDF5 file but not a %s file (no root attribute 'format'; "
                       "written by another program?)", path, format);
    if (strcmp(got, format))
        return rm_fail(RM_ERR_FORMAT, "%s: root attribute 'format' is '%s', expected '%s'", path,
                       got, format);
    int64_t schema = 0;
    RM_TRY(rm_h5_attr_read_i64(file, "regmix_schema", &schema, &found, path, "/"));
    if (!found)
        return rm_fail(RM_ERR_FORMAT, "%s: no root attribute 'regmix_schema'", path);
    if (schema != RM_RUNFILE_SCHEMA)
        return rm_fail(RM_ERR_FORMAT,
                       "%s: schema version %lld is not supported (this build reads version %d)",
                       path, (long long)schema, RM_RUNFILE_SCHEMA);
    return RM_OK;
}

rm_status rf_open_checked(const char *path, unsigned flags, hid_t fapl, const char *format,
                          hid_t *out) {
    *out = -1;
    struct stat sb;
    if (stat(path, &sb) != 0) return rm_fail(RM_ERR_IO, "stat(%s): %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return rm_fail(RM_ERR_IO, "%s is not a regular file", path);
    int need = (flags & H5F_ACC_RDWR) ? R_OK | W_OK : R_OK;
    if (access(path, need) != 0)
        return rm_fail(RM_ERR_IO, "access(%s, %s): %s", path, need & W_OK ? "read-write" : "read",
                       strerror(errno));
    htri_t is = H5Fis_hdf5(path);
    if (is < 0) return RM_H5_FAIL("H5Fis_hdf5", path, NULL);
    if (is == 0)
        return rm_fail(RM_ERR_FORMAT, "%s is not an HDF5 file (no HDF5 signature; %lld bytes)", path,
                       (long long)sb.st_size);
    hid_t f = H5Fopen(path, flags, fapl);
    if (f < 0) {
        char why[384];
        rm_h5_last_error(why, sizeof why);
        return open_failure(path, why);
    }
    rm_status st = check_root(f, path, format);
    if (st != RM_OK) {
        H5Fclose(f);
        return st;
    }
    *out = f;
    return RM_OK;
}

void rf_identity_hash(const char *yaml, const char *stored, const char *path, char out[17]) {
    rm_config c;
    rm_config_defaults(&c);
    if (yaml && rm_config_load_yaml_text(&c, yaml, path) == RM_OK) {
        rm_config_hash(&c, out);
        return;
    }
    rm_error_clear(); /* a text this build cannot read: the stored hash is all there is */
    rm_copy_str(out, 17, stored);
}
