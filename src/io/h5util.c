/* HDF5 helpers for the run-file module: error capture, typed attributes, scalar datasets. */
#include "io/h5util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void rm_h5_quiet(void) {
    /* HDF5 prints its whole error stack on stderr by default, also for expected
     * conditions (a file that is not HDF5); the failures become rm_fail messages instead. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

typedef struct {
    char *buf;
    size_t size;
} walk_ctx;

/* HDF5's file drivers describe a failed read/write as "file write failed: time = ...,
 * filename = ..., file descriptor = 4, errno = 28, error message = 'No space left on
 * device', buf = ..., ..." (several hundred characters, a newline inside): keeps "file
 * write failed: No space left on device (errno 28)", so the cause survives in a 256-byte
 * status reason. Anything else is kept as it is. */
static void shorten_io_error(const char *desc, char *buf, size_t size) {
    const char *colon = strchr(desc, ':'), *msg = strstr(desc, "error message = '"), *no = strstr(desc, "errno = ");
    const char *end = msg ? strchr(msg + 17, '\'') : NULL;
    if (!colon || !msg || !end || !no || colon > msg) {
        rm_copy_str(buf, size, desc);
        return;
    }
    snprintf(buf, size, "%.*s: %.*s (errno %d)", (int)(colon - desc), desc, (int)(end - msg - 17), msg + 17,
             atoi(no + 8));
}

/* Walked upward, entry 0 is the innermost (most specific) error. */
static herr_t keep_innermost(unsigned n, const H5E_error2_t *err, void *data) {
    walk_ctx *w = data;
    if (n == 0 && err->desc) shorten_io_error(err->desc, w->buf, w->size);
    return 0;
}

void rm_h5_last_error(char *buf, size_t size) {
    if (size == 0) return;
    buf[0] = '\0';
    walk_ctx w = {buf, size};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, &w);
    if (buf[0] == '\0') rm_copy_str(buf, size, "no HDF5 explanation");
}

rm_status rm_h5_fail_at(rm_status code, const char *src, int line, const char *call,
                        const char *file, const char *obj) {
    char why[384];
    rm_h5_last_error(why, sizeof why);
    return rm_fail_at(code, src, line, "%s failed on %s%s%s: %s", call, file ? file : "(no file)",
                      obj ? ":" : "", obj ? obj : "", why);
}

void rm_h5_close(hid_t id) {
    if (id < 0) return;
    switch (H5Iget_type(id)) {
    case H5I_FILE: H5Fclose(id); break;
    case H5I_GROUP: H5Gclose(id); break;
    case H5I_DATASET: H5Dclose(id); break;
    case H5I_DATASPACE: H5Sclose(id); break;
    case H5I_DATATYPE: H5Tclose(id); break;
    case H5I_ATTR: H5Aclose(id); break;
    case H5I_GENPROP_LST: H5Pclose(id); break;
    default: break;
    }
}

hid_t rm_h5_fapl_latest(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return fapl;
    if (H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

hid_t rm_h5_fapl_swmr_read(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return fapl;
    if (H5Pset_metadata_read_attempts(fapl, RM_H5_SWMR_READ_ATTEMPTS) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

/* A UTF-8 variable-length string type: h5py reads it as str. */
static hid_t vlen_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return t;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* Deletes `name` if it exists, so that a rewrite may change type or size. */
static rm_status attr_make_room(hid_t obj, const char *name, const char *file,
                                const char *obj_path) {
    htri_t e = H5Aexists(obj, name);
    if (e < 0) return RM_H5_FAIL("H5Aexists", file, obj_path);
    if (e > 0 && H5Adelete(obj, name) < 0) return RM_H5_FAIL("H5Adelete", file, obj_path);
    return RM_OK;
}

/* Creates attribute `name` of file type ftype and shape space, writes buf as mtype. */
static rm_status attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, hid_t space,
                            const void *buf, const char *file, const char *obj_path) {
    RM_TRY(attr_make_room(obj, name, file, obj_path));
    hid_t a = H5Acreate2(obj, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) return RM_H5_FAIL("H5Acreate2", file, obj_path);
    rm_status st = RM_OK;
    if (H5Awrite(a, mtype, buf) < 0) st = RM_H5_FAIL("H5Awrite", file, obj_path);
    if (H5Aclose(a) < 0 && st == RM_OK) st = RM_H5_FAIL("H5Aclose", file, obj_path);
    return st;
}

static rm_status attr_write_scalar(hid_t obj, const char *name, hid_t ftype, hid_t mtype,
                                   const void *buf, const char *file, const char *obj_path) {
    hid_t s = H5Screate(H5S_SCALAR);
    if (s < 0) return RM_H5_FAIL("H5Screate", file, obj_path);
    rm_status st = attr_write(obj, name, ftype, mtype, s, buf, file, obj_path);
    H5Sclose(s);
    return st;
}

rm_status rm_h5_attr_write_str(hid_t obj, const char *name, const char *value, const char *file,
                               const char *obj_path) {
    hid_t t = vlen_str_type();
    if (t < 0) return RM_H5_FAIL("H5Tcopy", file, obj_path);
    rm_status st = attr_write_scalar(obj, name, t, t, &value, file, obj_path);
    H5Tclose(t);
    return st;
}

rm_status rm_h5_attr_write_i64(hid_t obj, const char *name, int64_t value, const char *file,
                               const char *obj_path) {
    return attr_write_scalar(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, file, obj_path);
}

rm_status rm_h5_attr_write_u64(hid_t obj, const char *name, uint64_t value, const char *file,
                               const char *obj_path) {
    return attr_write_scalar(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value, file, obj_path);
}

rm_status rm_h5_attr_write_f64(hid_t obj, const char *name, double value, const char *file,
                               const char *obj_path) {
    return attr_write_scalar(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, file, obj_path);
}

rm_status rm_h5_attr_write_str_array(hid_t obj, const char *name, const char *const *values, int n,
                                     const char *file, const char *obj_path) {
    hsize_t dim = (hsize_t)n;
    hid_t s = H5Screate_simple(1, &dim, NULL);
    if (s < 0) return RM_H5_FAIL("H5Screate_simple", file, obj_path);
    hid_t t = vlen_str_type();
    if (t < 0) {
        H5Sclose(s);
        return RM_H5_FAIL("H5Tcopy", file, obj_path);
    }
    rm_status st = attr_write(obj, name, t, t, s, values, file, obj_path);
    H5Tclose(t);
    H5Sclose(s);
    return st;
}

/* Opens attribute `name`; *a = -1 and RM_OK when it is absent and found != NULL. */
static rm_status attr_open(hid_t obj, const char *name, hid_t *a, int *found, const char *file,
                           const char *obj_path) {
    *a = -1;
    htri_t e = H5Aexists(obj, name);
    if (e < 0) return RM_H5_FAIL("H5Aexists", file, obj_path);
    if (found) *found = e > 0;
    if (e == 0) {
        if (found) return RM_OK;
        return rm_fail(RM_ERR_FORMAT, "%s: %s has no attribute '%s'", file, obj_path, name);
    }
    *a = H5Aopen(obj, name, H5P_DEFAULT);
    if (*a < 0) return RM_H5_FAIL("H5Aopen", file, obj_path);
    return RM_OK;
}

/* Reads a scalar string attribute (fixed or variable length) into a malloc'ed string. */
static rm_status attr_read_string(hid_t a, const char *name, char **out, const char *file,
                                  const char *obj_path) {
    *out = NULL;
    rm_status st = RM_OK;
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a), mt = -1;
    if (ft < 0 || sp < 0) {
        st = RM_H5_FAIL("H5Aget_type", file, obj_path);
        goto done;
    }
    if (H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_npoints(sp) != 1) {
        st = rm_fail(RM_ERR_FORMAT, "%s: attribute %s of %s is not a single string", file, name,
                     obj_path);
        goto done;
    }
    htri_t vl = H5Tis_variable_str(ft);
    if (vl < 0) {
        st = RM_H5_FAIL("H5Tis_variable_str", file, obj_path);
        goto done;
    }
    if (vl) {
        mt = vlen_str_type();
        char *s = NULL;
        if (mt < 0 || H5Aread(a, mt, &s) < 0) {
            st = RM_H5_FAIL("H5Aread", file, obj_path);
            goto done;
        }
        size_t len = s ? strlen(s) : 0;
        *out = malloc(len + 1);
        if (*out) memcpy(*out, s ? s : "", len + 1);
        H5free_memory(s);
    } else {
        size_t len = H5Tget_size(ft);
        mt = H5Tcopy(H5T_C_S1);
        if (mt < 0 || H5Tset_size(mt, len + 1) < 0 || H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0) {
            st = RM_H5_FAIL("H5Tset_size", file, obj_path);
            goto done;
        }
        *out = calloc(len + 1, 1);
        if (*out && H5Aread(a, mt, *out) < 0) {
            free(*out);
            *out = NULL;
            st = RM_H5_FAIL("H5Aread", file, obj_path);
            goto done;
        }
    }
    if (!*out) st = rm_fail(RM_ERR_NOMEM, "out of memory reading attribute %s of %s", name, file);
done:
    rm_h5_close(mt);
    rm_h5_close(sp);
    rm_h5_close(ft);
    return st;
}

rm_status rm_h5_attr_read_str_alloc(hid_t obj, const char *name, char **out, const char *file,
                                    const char *obj_path) {
    hid_t a;
    *out = NULL;
    RM_TRY(attr_open(obj, name, &a, NULL, file, obj_path));
    rm_status st = attr_read_string(a, name, out, file, obj_path);
    H5Aclose(a);
    return st;
}

rm_status rm_h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t size, int *found,
                              const char *file, const char *obj_path) {
    hid_t a;
    buf[0] = '\0';
    RM_TRY(attr_open(obj, name, &a, found, file, obj_path));
    if (a < 0) return RM_OK;
    char *s = NULL;
    rm_status st = attr_read_string(a, name, &s, file, obj_path);
    H5Aclose(a);
    if (st == RM_OK) rm_copy_str(buf, size, s);
    free(s);
    return st;
}

rm_status rm_h5_attr_read_i64(hid_t obj, const char *name, int64_t *value, int *found,
                              const char *file, const char *obj_path) {
    hid_t a;
    *value = 0;
    RM_TRY(attr_open(obj, name, &a, found, file, obj_path));
    if (a < 0) return RM_OK;
    rm_status st = RM_OK;
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    if (ft < 0 || sp < 0) {
        st = RM_H5_FAIL("H5Aget_type", file, obj_path);
    } else if (H5Tget_class(ft) != H5T_INTEGER || H5Sget_simple_extent_npoints(sp) != 1) {
        st = rm_fail(RM_ERR_FORMAT, "%s: attribute %s of %s is not a single integer", file, name,
                     obj_path);
    } else if (H5Aread(a, H5T_NATIVE_INT64, value) < 0) {
        st = RM_H5_FAIL("H5Aread", file, obj_path);
    }
    rm_h5_close(sp);
    rm_h5_close(ft);
    H5Aclose(a);
    return st;
}

rm_status rm_h5_attr_read_str_array(hid_t obj, const char *name, char ***values, int *n,
                                    const char *file, const char *obj_path) {
    hid_t a;
    *values = NULL;
    *n = 0;
    RM_TRY(attr_open(obj, name, &a, NULL, file, obj_path));
    rm_status st = RM_OK;
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a), mt = vlen_str_type();
    hssize_t count = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    char **raw = NULL;
    if (ft < 0 || sp < 0 || mt < 0 || count < 0) {
        st = RM_H5_FAIL("H5Aget_space", file, obj_path);
        goto done;
    }
    htri_t vl = H5Tis_variable_str(ft);
    if (H5Tget_class(ft) != H5T_STRING || vl <= 0) {
        st = rm_fail(RM_ERR_FORMAT, "%s: attribute %s of %s is not a variable-length string list",
                     file, name, obj_path);
        goto done;
    }
    raw = calloc((size_t)count + 1, sizeof *raw);
    *values = calloc((size_t)count + 1, sizeof **values);
    if (!raw || !*values) {
        st = rm_fail(RM_ERR_NOMEM, "out of memory reading attribute %s of %s", name, file);
        goto done;
    }
    if (H5Aread(a, mt, raw) < 0) {
        st = RM_H5_FAIL("H5Aread", file, obj_path);
        goto done;
    }
    for (hssize_t i = 0; i < count; i++) {
        (*values)[i] = strdup(raw[i] ? raw[i] : "");
        if (!(*values)[i] && st == RM_OK)
            st = rm_fail(RM_ERR_NOMEM, "out of memory reading attribute %s of %s", name, file);
    }
    H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw);
    *n = (int)count;
done:
    free(raw);
    if (st != RM_OK) {
        rm_h5_free_str_array(*values, (int)(count > 0 ? count : 0));
        *values = NULL;
        *n = 0;
    }
    rm_h5_close(mt);
    rm_h5_close(sp);
    rm_h5_close(ft);
    H5Aclose(a);
    return st;
}

void rm_h5_free_str_array(char **values, int n) {
    if (!values) return;
    for (int i = 0; i < n; i++) free(values[i]);
    free(values);
}

/* ---- scalar datasets ---- */

hid_t rm_h5_fixed_str_type(size_t len) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return t;
    if (H5Tset_size(t, len) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* Contiguous storage allocated at creation: later writes touch raw data only, which is
 * what SWMR allows (no object-header or allocation change). */
static rm_status scalar_create(hid_t loc, const char *name, hid_t ftype, hid_t mtype,
                               const void *value, const char *file, const char *obj_path) {
    rm_status st = RM_OK;
    hid_t s = H5Screate(H5S_SCALAR), dcpl = H5Pcreate(H5P_DATASET_CREATE), d = -1;
    if (s < 0 || dcpl < 0 || H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0) {
        st = RM_H5_FAIL("H5Pset_alloc_time", file, obj_path);
        goto done;
    }
    d = H5Dcreate2(loc, name, ftype, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) {
        st = RM_H5_FAIL("H5Dcreate2", file, obj_path);
        goto done;
    }
    if (H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, value) < 0)
        st = RM_H5_FAIL("H5Dwrite", file, obj_path);
done:
    rm_h5_close(d);
    rm_h5_close(dcpl);
    rm_h5_close(s);
    return st;
}

rm_status rm_h5_scalar_str_create(hid_t loc, const char *name, size_t len, const char *value,
                                  const char *file, const char *obj_path) {
    char buf[RM_H5_REASON_LEN];
    if (len > sizeof buf) return rm_fail(RM_ERR_ARG, "string dataset %s too long (%zu)", obj_path, len);
    memset(buf, 0, sizeof buf);
    strncpy(buf, value, len);
    hid_t t = rm_h5_fixed_str_type(len);
    if (t < 0) return RM_H5_FAIL("H5Tcopy", file, obj_path);
    rm_status st = scalar_create(loc, name, t, t, buf, file, obj_path);
    H5Tclose(t);
    return st;
}

rm_status rm_h5_scalar_i64_create(hid_t loc, const char *name, int64_t value, const char *file,
                                  const char *obj_path) {
    return scalar_create(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value, file, obj_path);
}

rm_status rm_h5_scalar_str_write(hid_t loc, const char *name, const char *value, const char *file) {
    rm_status st = RM_OK;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT), t = -1;
    if (d < 0) return RM_H5_FAIL("H5Dopen2", file, name);
    t = H5Dget_type(d);
    size_t len = t >= 0 ? H5Tget_size(t) : 0;
    char buf[RM_H5_REASON_LEN];
    if (t < 0 || H5Tget_class(t) != H5T_STRING || len == 0 || len > sizeof buf) {
        st = rm_fail(RM_ERR_FORMAT, "%s: %s is not a fixed-length string dataset", file, name);
        goto done;
    }
    memset(buf, 0, sizeof buf);
    strncpy(buf, value, len);
    if (H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) st = RM_H5_FAIL("H5Dwrite", file, name);
    else if (H5Dflush(d) < 0) st = RM_H5_FAIL("H5Dflush", file, name);
done:
    rm_h5_close(t);
    H5Dclose(d);
    return st;
}

rm_status rm_h5_scalar_str_read(hid_t loc, const char *name, char *buf, size_t size,
                                const char *file) {
    rm_status st = RM_OK;
    buf[0] = '\0';
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT), t = -1, mt = -1;
    if (d < 0) return RM_H5_FAIL("H5Dopen2", file, name);
    t = H5Dget_type(d);
    size_t len = t >= 0 ? H5Tget_size(t) : 0;
    char tmp[RM_H5_REASON_LEN + 1];
    if (t < 0 || H5Tget_class(t) != H5T_STRING || len == 0 || len > RM_H5_REASON_LEN) {
        st = rm_fail(RM_ERR_FORMAT, "%s: %s is not a fixed-length string dataset", file, name);
        goto done;
    }
    mt = rm_h5_fixed_str_type(len);
    memset(tmp, 0, sizeof tmp);
    if (mt < 0 || H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, tmp) < 0) {
        st = RM_H5_FAIL("H5Dread", file, name);
        goto done;
    }
    rm_copy_str(buf, size, tmp);
done:
    rm_h5_close(mt);
    rm_h5_close(t);
    H5Dclose(d);
    return st;
}

rm_status rm_h5_scalar_i64_write(hid_t loc, const char *name, int64_t value, const char *file) {
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return RM_H5_FAIL("H5Dopen2", file, name);
    rm_status st = RM_OK;
    if (H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value) < 0)
        st = RM_H5_FAIL("H5Dwrite", file, name);
    else if (H5Dflush(d) < 0)
        st = RM_H5_FAIL("H5Dflush", file, name);
    H5Dclose(d);
    return st;
}

rm_status rm_h5_scalar_i64_read(hid_t loc, const char *name, int64_t *value, const char *file) {
    *value = 0;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return RM_H5_FAIL("H5Dopen2", file, name);
    rm_status st = RM_OK;
    if (H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, value) < 0)
        st = RM_H5_FAIL("H5Dread", file, name);
    H5Dclose(d);
    return st;
}

void rm_iso8601_utc_now(char out[RM_H5_TIME_LEN]) {
    time_t t = time(NULL);
    struct tm tm;
    if (t == (time_t)-1 || !gmtime_r(&t, &tm) ||
        strftime(out, RM_H5_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        rm_copy_str(out, RM_H5_TIME_LEN, "unknown");
}

int rm_copy_str(char *dst, size_t size, const char *src) {
    if (size == 0) return 1;
    size_t n = strlen(src);
    int cut = n >= size;
    if (cut) n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return cut;
}
