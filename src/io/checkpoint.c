/* Checkpoints: named tensors in <run-id>.ckpt.h5, replaced atomically.
 *
 * Atomicity: the new checkpoint is written to <run-id>.ckpt.h5.tmp, closed, fsync'ed,
 * then rename()d over <run-id>.ckpt.h5 (atomic on POSIX: a reader or a resumed run sees
 * the old file or the new one, never a mix), and the directory is fsync'ed so the rename
 * itself survives a power loss. A crash at any point leaves the previous checkpoint
 * intact; a stale .tmp is truncated by the next checkpoint. */
#include "io/runfile_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rm_checkpoint_writer {
    char final_path[PATH_MAX], tmp_path[PATH_MAX];
    char hash[17];
    hid_t file, group; /* the temporary file and its /checkpoint */
    long added;
    long exit_after;   /* test hook: _exit after this many tensors (0 = off) */
};

struct rm_checkpoint_reader {
    char path[PATH_MAX];
    hid_t file, group;
};

static const char *const dtype_names[] = {"float32", "float64", "int64", "uint64", "uint8"};

const char *rm_dtype_name(rm_dtype t) {
    if ((int)t < 0 || (size_t)t >= sizeof dtype_names / sizeof *dtype_names) return "unknown";
    return dtype_names[t];
}

/* Little-endian file types (portable files), native memory types. */
static hid_t file_type(rm_dtype t) {
    switch (t) {
    case RM_DT_F32: return H5T_IEEE_F32LE;
    case RM_DT_F64: return H5T_IEEE_F64LE;
    case RM_DT_I64: return H5T_STD_I64LE;
    case RM_DT_U64: return H5T_STD_U64LE;
    case RM_DT_U8: return H5T_STD_U8LE;
    }
    return -1;
}

static hid_t mem_type(rm_dtype t) {
    switch (t) {
    case RM_DT_F32: return H5T_NATIVE_FLOAT;
    case RM_DT_F64: return H5T_NATIVE_DOUBLE;
    case RM_DT_I64: return H5T_NATIVE_INT64;
    case RM_DT_U64: return H5T_NATIVE_UINT64;
    case RM_DT_U8: return H5T_NATIVE_UINT8;
    }
    return -1;
}

/* Names are relative paths below /checkpoint: components of printable characters
 * without '/', none empty, "." or "..". */
static rm_status check_name(const char *name) {
    if (!name || !name[0] || strlen(name) > 255)
        return rm_fail(RM_ERR_ARG, "checkpoint tensor name must have 1..255 characters");
    const char *p = name;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return rm_fail(RM_ERR_ARG, "checkpoint tensor name '%s': empty, '.' or '..' component", name);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] == 0x7f)
                return rm_fail(RM_ERR_ARG, "checkpoint tensor name '%s': control or space character", name);
        p += n;
        if (*p == '/') {
            p++;
            if (!*p) return rm_fail(RM_ERR_ARG, "checkpoint tensor name '%s' ends with '/'", name);
        }
    }
    return RM_OK;
}

static void format_shape(char *buf, size_t size, rm_dtype t, int ndim, const int64_t *dims) {
    int n = snprintf(buf, size, "%s[", rm_dtype_name(t));
    for (int i = 0; i < ndim && n > 0 && (size_t)n < size; i++)
        n += snprintf(buf + n, size - (size_t)n, i ? ",%lld" : "%lld", (long long)dims[i]);
    if (n > 0 && (size_t)n < size) snprintf(buf + n, size - (size_t)n, "]");
}

/* 1 if every component of /checkpoint/<name> exists (H5Lexists wants the parents). */
static int link_chain_exists(hid_t group, const char *name) {
    char prefix[512];
    if (rm_copy_str(prefix, sizeof prefix, name)) return 0;
    for (char *p = prefix;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (H5Lexists(group, prefix, H5P_DEFAULT) <= 0) return 0;
            if (saved == '\0') return 1;
            *p = saved;
        }
    }
}

/* ---------------------------------------------------------------- writer */

rm_status rm_checkpoint_begin(const char *run_path, const char *config_hash,
                              rm_checkpoint_writer **out) {
    rm_h5_quiet();
    *out = NULL;
    if (!run_path || !config_hash) return rm_fail(RM_ERR_ARG, "rm_checkpoint_begin: missing argument");
    rm_checkpoint_writer *w = calloc(1, sizeof *w);
    if (!w) return rm_fail(RM_ERR_NOMEM, "out of memory starting a checkpoint of %s", run_path);
    w->file = w->group = -1;
    rm_copy_str(w->hash, sizeof w->hash, config_hash);
    rm_status st = rm_runfile_checkpoint_path(run_path, w->final_path, sizeof w->final_path);
    if (st == RM_OK && snprintf(w->tmp_path, sizeof w->tmp_path, "%s.tmp", w->final_path) >=
                           (int)sizeof w->tmp_path)
        st = rm_fail(RM_ERR_ARG, "checkpoint path too long: %s", w->final_path);
    const char *hook = getenv("REGMIX_TEST_CKPT_EXIT_AFTER");
    if (hook) w->exit_after = strtol(hook, NULL, 10);
    hid_t fapl = -1;
    if (st == RM_OK) {
        /* The 1.10 format also lets h5py open it through the link with swmr=True. */
        fapl = rm_h5_fapl_latest();
        if (fapl < 0) st = RM_H5_FAIL("H5Pset_libver_bounds", w->tmp_path, NULL);
    }
    if (st == RM_OK) {
        w->file = H5Fcreate(w->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        if (w->file < 0) st = RM_H5_FAIL("H5Fcreate", w->tmp_path, NULL);
    }
    rm_h5_close(fapl);
    char run_id[256];
    rf_run_id(run_path, run_id, sizeof run_id);
    if (st == RM_OK) st = rm_h5_attr_write_str(w->file, "format", RM_CHECKPOINT_FORMAT, w->tmp_path, "/");
    if (st == RM_OK) st = rm_h5_attr_write_i64(w->file, "regmix_schema", RM_RUNFILE_SCHEMA, w->tmp_path, "/");
    if (st == RM_OK) st = rm_h5_attr_write_str(w->file, "run_id", run_id, w->tmp_path, "/");
    if (st == RM_OK) {
        w->group = H5Gcreate2(w->file, RF_CKPT_GROUP, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (w->group < 0) st = RM_H5_FAIL("H5Gcreate2", w->tmp_path, RF_CKPT_GROUP);
    }
    if (st != RM_OK) {
        rm_checkpoint_abort(w);
        return st;
    }
    *out = w;
    return RM_OK;
}

rm_status rm_checkpoint_add(rm_checkpoint_writer *w, const char *name, rm_dtype dtype, int ndim,
                            const int64_t *dims, const void *data) {
    rm_h5_quiet();
    if (!w) return rm_fail(RM_ERR_ARG, "rm_checkpoint_add: no checkpoint");
    RM_TRY(check_name(name));
    if (file_type(dtype) < 0) return rm_fail(RM_ERR_ARG, "checkpoint tensor %s: unknown dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > RM_CKPT_MAX_DIMS || (ndim > 0 && !dims))
        return rm_fail(RM_ERR_ARG, "checkpoint tensor %s: ndim %d (0..%d)", name, ndim, RM_CKPT_MAX_DIMS);
    hsize_t hd[RM_CKPT_MAX_DIMS];
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0) return rm_fail(RM_ERR_ARG, "checkpoint tensor %s: dimension %d is %lld", name, i, (long long)dims[i]);
        hd[i] = (hsize_t)dims[i];
        numel *= (size_t)dims[i];
    }
    if (numel > 0 && !data) return rm_fail(RM_ERR_ARG, "checkpoint tensor %s: no data", name);
    char obj[300];
    snprintf(obj, sizeof obj, RF_CKPT_GROUP "/%s", name);
    if (link_chain_exists(w->group, name))
        return rm_fail(RM_ERR_ARG, "checkpoint tensor %s added twice", name);

    rm_status st = RM_OK;
    hid_t s = ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(ndim, hd, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), d = -1;
    if (s < 0 || lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        st = RM_H5_FAIL("H5Pset_create_intermediate_group", w->tmp_path, obj);
        goto done;
    }
    d = H5Dcreate2(w->group, name, file_type(dtype), s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0) {
        st = RM_H5_FAIL("H5Dcreate2", w->tmp_path, obj);
        goto done;
    }
    if (numel > 0 && H5Dwrite(d, mem_type(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        st = RM_H5_FAIL("H5Dwrite", w->tmp_path, obj);
done:
    rm_h5_close(d);
    rm_h5_close(lcpl);
    rm_h5_close(s);
    RM_TRY(st);
    w->added++;
    if (w->exit_after > 0 && w->added == w->exit_after) {
        /* Test hook: die like a killed process, halfway through the temporary file. */
        H5Fflush(w->file, H5F_SCOPE_LOCAL);
        fprintf(stderr, "regmix: REGMIX_TEST_CKPT_EXIT_AFTER=%ld: exiting in the middle of %s\n",
                w->exit_after, w->tmp_path);
        _exit(86);
    }
    return RM_OK;
}

/* fsync of a path opened read-only (a file, or a directory for the rename). */
static rm_status fsync_path(const char *path, int directory) {
    int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return rm_fail(RM_ERR_IO, "open(%s): %s", path, strerror(errno));
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        /* Some file systems cannot fsync a directory; the data file itself was synced. */
        if (directory && (e == EINVAL || e == ENOTSUP)) return RM_OK;
        return rm_fail(RM_ERR_IO, "fsync(%s): %s", path, strerror(e));
    }
    if (close(fd) != 0) return rm_fail(RM_ERR_IO, "close(%s): %s", path, strerror(errno));
    return RM_OK;
}

rm_status rm_checkpoint_commit(rm_checkpoint_writer *w, const rm_checkpoint_meta *meta) {
    rm_h5_quiet();
    if (!w || !meta) {
        rm_checkpoint_abort(w);
        return rm_fail(RM_ERR_ARG, "rm_checkpoint_commit: missing argument");
    }
    const char *tmp = w->tmp_path;
    char now[RM_H5_TIME_LEN];
    rm_iso8601_utc_now(now);
    rm_status st = rm_h5_attr_write_i64(w->group, "epoch", meta->epoch, tmp, RF_CKPT_GROUP);
    if (st == RM_OK) st = rm_h5_attr_write_i64(w->group, "iteration", meta->iteration, tmp, RF_CKPT_GROUP);
    if (st == RM_OK) st = rm_h5_attr_write_i64(w->group, "steps", meta->steps, tmp, RF_CKPT_GROUP);
    if (st == RM_OK) st = rm_h5_attr_write_str(w->group, "config_hash", w->hash, tmp, RF_CKPT_GROUP);
    if (st == RM_OK) st = rm_h5_attr_write_str(w->group, "written_at", now, tmp, RF_CKPT_GROUP);
    if (H5Gclose(w->group) < 0 && st == RM_OK) st = RM_H5_FAIL("H5Gclose", tmp, RF_CKPT_GROUP);
    w->group = -1;
    if (H5Fclose(w->file) < 0 && st == RM_OK) st = RM_H5_FAIL("H5Fclose", tmp, NULL);
    w->file = -1;
    /* Data on disk before the name points at it. */
    if (st == RM_OK) st = fsync_path(tmp, 0);
    if (st == RM_OK && rename(tmp, w->final_path) != 0)
        st = rm_fail(RM_ERR_IO, "rename(%s, %s): %s", tmp, w->final_path, strerror(errno));
    if (st == RM_OK) {
        char dir[PATH_MAX];
        rm_copy_str(dir, sizeof dir, w->final_path);
        char *slash = strrchr(dir, '/');
        if (slash == dir) slash[1] = '\0';
        else if (slash) *slash = '\0';
        else rm_copy_str(dir, sizeof dir, ".");
        st = fsync_path(dir, 1);
    }
    if (st != RM_OK) {
        rm_checkpoint_abort(w);
        return st;
    }
    free(w);
    return RM_OK;
}

void rm_checkpoint_abort(rm_checkpoint_writer *w) {
    if (!w) return;
    rm_h5_close(w->group);
    rm_h5_close(w->file);
    unlink(w->tmp_path); /* may already be gone (renamed): nothing to report */
    free(w);
}

/* ---------------------------------------------------------------- reader */

int rm_checkpoint_present(const char *run_path) {
    char p[PATH_MAX];
    if (rm_runfile_checkpoint_path(run_path, p, sizeof p) != RM_OK) {
        rm_error_clear();
        return 0;
    }
    return access(p, F_OK) == 0;
}

rm_status rm_checkpoint_open(const char *run_path, rm_checkpoint_reader **out,
                             rm_checkpoint_meta *meta) {
    rm_h5_quiet();
    *out = NULL;
    rm_checkpoint_reader *r = calloc(1, sizeof *r);
    if (!r) return rm_fail(RM_ERR_NOMEM, "out of memory opening the checkpoint of %s", run_path);
    r->file = r->group = -1;
    rm_status st = rm_runfile_checkpoint_path(run_path, r->path, sizeof r->path);
    if (st == RM_OK && access(r->path, F_OK) != 0)
        st = rm_fail(RM_ERR_IO, "no checkpoint: %s does not exist", r->path);
    if (st == RM_OK) st = rf_open_checked(r->path, H5F_ACC_RDONLY, H5P_DEFAULT, RM_CHECKPOINT_FORMAT, &r->file);
    if (st == RM_OK) {
        r->group = H5Gopen2(r->file, RF_CKPT_GROUP, H5P_DEFAULT);
        if (r->group < 0) st = RM_H5_FAIL("H5Gopen2", r->path, RF_CKPT_GROUP);
    }
    rm_checkpoint_meta m;
    memset(&m, 0, sizeof m);
    if (st == RM_OK) st = rm_h5_attr_read_i64(r->group, "epoch", &m.epoch, NULL, r->path, RF_CKPT_GROUP);
    if (st == RM_OK) st = rm_h5_attr_read_i64(r->group, "iteration", &m.iteration, NULL, r->path, RF_CKPT_GROUP);
    if (st == RM_OK) st = rm_h5_attr_read_i64(r->group, "steps", &m.steps, NULL, r->path, RF_CKPT_GROUP);
    if (st == RM_OK)
        st = rm_h5_attr_read_str(r->group, "config_hash", m.config_hash, sizeof m.config_hash, NULL,
                                 r->path, RF_CKPT_GROUP);
    if (st == RM_OK)
        st = rm_h5_attr_read_str(r->group, "written_at", m.written_at, sizeof m.written_at, NULL,
                                 r->path, RF_CKPT_GROUP);
    if (st != RM_OK) {
        rm_checkpoint_close(r);
        return st;
    }
    if (meta) *meta = m;
    *out = r;
    return RM_OK;
}

int rm_checkpoint_has(rm_checkpoint_reader *r, const char *name) {
    rm_h5_quiet();
    if (!r || check_name(name) != RM_OK) {
        rm_error_clear();
        return 0;
    }
    return link_chain_exists(r->group, name);
}

rm_status rm_checkpoint_shape(rm_checkpoint_reader *r, const char *name, rm_dtype *dtype,
                              int *ndim, int64_t *dims) {
    rm_h5_quiet();
    if (!r) return rm_fail(RM_ERR_ARG, "rm_checkpoint_shape: no checkpoint");
    RM_TRY(check_name(name));
    char obj[300];
    snprintf(obj, sizeof obj, RF_CKPT_GROUP "/%s", name);
    if (!link_chain_exists(r->group, name))
        return rm_fail(RM_ERR_FORMAT, "%s has no tensor %s", r->path, obj);
    hid_t d = H5Dopen2(r->group, name, H5P_DEFAULT);
    if (d < 0) return RM_H5_FAIL("H5Dopen2", r->path, obj);
    rm_status st = RM_OK;
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    int nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    hsize_t hd[RM_CKPT_MAX_DIMS];
    if (t < 0 || nd < 0 || nd > RM_CKPT_MAX_DIMS || H5Sget_simple_extent_dims(s, hd, NULL) < 0) {
        st = rm_fail(RM_ERR_FORMAT, "%s: %s has no readable shape (rank %d)", r->path, obj, nd);
        goto done;
    }
    H5T_class_t cls = H5Tget_class(t);
    size_t size = H5Tget_size(t);
    H5T_sign_t sign = cls == H5T_INTEGER ? H5Tget_sign(t) : H5T_SGN_ERROR;
    if (cls == H5T_FLOAT && size == 4) *dtype = RM_DT_F32;
    else if (cls == H5T_FLOAT && size == 8) *dtype = RM_DT_F64;
    else if (cls == H5T_INTEGER && size == 8 && sign == H5T_SGN_2) *dtype = RM_DT_I64;
    else if (cls == H5T_INTEGER && size == 8 && sign == H5T_SGN_NONE) *dtype = RM_DT_U64;
    else if (cls == H5T_INTEGER && size == 1 && sign == H5T_SGN_NONE) *dtype = RM_DT_U8;
    else {
        st = rm_fail(RM_ERR_FORMAT, "%s: %s has an unsupported type (class %d, %zu bytes)", r->path,
                     obj, (int)cls, size);
        goto done;
    }
    *ndim = nd;
    for (int i = 0; i < RM_CKPT_MAX_DIMS; i++) dims[i] = i < nd ? (int64_t)hd[i] : 0;
done:
    rm_h5_close(s);
    rm_h5_close(t);
    H5Dclose(d);
    return st;
}

rm_status rm_checkpoint_read(rm_checkpoint_reader *r, const char *name, rm_dtype dtype, int ndim,
                             const int64_t *dims, void *data) {
    rm_dtype got_t;
    int got_nd = 0;
    int64_t got[RM_CKPT_MAX_DIMS];
    RM_TRY(rm_checkpoint_shape(r, name, &got_t, &got_nd, got));
    int same = got_t == dtype && got_nd == ndim;
    size_t numel = 1;
    for (int i = 0; same && i < ndim; i++) {
        same = got[i] == dims[i];
        numel *= (size_t)got[i];
    }
    if (!same) {
        char want_s[160], got_s[160];
        format_shape(want_s, sizeof want_s, dtype, ndim < 0 || ndim > RM_CKPT_MAX_DIMS ? 0 : ndim, dims);
        format_shape(got_s, sizeof got_s, got_t, got_nd, got);
        return rm_fail(RM_ERR_FORMAT, "%s: tensor %s is %s, expected %s", r->path, name, got_s, want_s);
    }
    if (numel == 0) return RM_OK;
    hid_t d = H5Dopen2(r->group, name, H5P_DEFAULT);
    if (d < 0) return RM_H5_FAIL("H5Dopen2", r->path, name);
    rm_status st = RM_OK;
    if (H5Dread(d, mem_type(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        st = RM_H5_FAIL("H5Dread", r->path, name);
    H5Dclose(d);
    /* regmix never checkpoints a non-finite value (a diverged run stops before its
     * checkpoint): one here is damage, refused rather than trained on */
    for (size_t i = 0; st == RM_OK && (dtype == RM_DT_F32 || dtype == RM_DT_F64) && i < numel; i++) {
        double v = dtype == RM_DT_F32 ? (double)((const float *)data)[i] : ((const double *)data)[i];
        if (!isfinite(v))
            st = rm_fail(RM_ERR_FORMAT, "%s: tensor %s holds %g at flat index %zu (not finite)", r->path, name, v, i);
    }
    return st;
}

void rm_checkpoint_close(rm_checkpoint_reader *r) {
    if (!r) return;
    rm_h5_close(r->group);
    rm_h5_close(r->file);
    free(r);
}
