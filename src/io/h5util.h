/* Internal helpers of the run-file module: HDF5 error capture, typed attributes,
 * fixed-length string and scalar datasets, timestamps. Every helper names the file
 * and the HDF5 object path in its error message. */
#ifndef REGMIX_IO_H5UTIL_H
#define REGMIX_IO_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "regmix/common.h"

/* Fixed sizes of the SWMR-updatable string datasets (bytes, NUL-padded). */
#define RM_H5_STATUS_LEN 16
#define RM_H5_REASON_LEN 256
#define RM_H5_TIME_LEN 32

/* Switches off HDF5's automatic error printing for this thread (idempotent, cheap):
 * every public entry point of the module calls it first. */
void rm_h5_quiet(void);

/* HDF5's innermost explanation of the last failure on this thread ("" if none). */
void rm_h5_last_error(char *buf, size_t size);

/* Records "CALL failed on FILE:OBJ: <HDF5 explanation>" and returns code. */
rm_status rm_h5_fail_at(rm_status code, const char *src, int line, const char *call,
                        const char *file, const char *obj);
#define RM_H5_FAIL(call, file, obj) rm_h5_fail_at(RM_ERR_HDF5, __FILE__, __LINE__, (call), (file), (obj))

/* Closes an id of any kind if it is valid (>= 0); for cleanup paths. */
void rm_h5_close(hid_t id);

/* File access property list with the HDF5 1.10 format (required for SWMR). */
hid_t rm_h5_fapl_latest(void);

/* File access property list for SWMR reading. A SWMR reader retries a metadata block
 * whose checksum fails (the writer may be half-way through it), sleeping twice as long
 * each time; HDF5 1.10's default of 100 attempts turns a corrupt file into a hang, so
 * the count is set: 24 attempts are about 30 ms of retries, ample for a write to land. */
#define RM_H5_SWMR_READ_ATTEMPTS 24
hid_t rm_h5_fapl_swmr_read(void);

/* ---- attributes (created, or replaced if they exist) ---- */
rm_status rm_h5_attr_write_str(hid_t obj, const char *name, const char *value, const char *file,
                               const char *obj_path);
rm_status rm_h5_attr_write_i64(hid_t obj, const char *name, int64_t value, const char *file,
                               const char *obj_path);
rm_status rm_h5_attr_write_u64(hid_t obj, const char *name, uint64_t value, const char *file,
                               const char *obj_path);
rm_status rm_h5_attr_write_f64(hid_t obj, const char *name, double value, const char *file,
                               const char *obj_path);
rm_status rm_h5_attr_write_str_array(hid_t obj, const char *name, const char *const *values, int n,
                                     const char *file, const char *obj_path);

/* Readers accept fixed or variable-length strings and any integer / float type.
 * *found = 0 (and RM_OK) when the attribute does not exist; found may be NULL, then a
 * missing attribute is RM_ERR_FORMAT. */
rm_status rm_h5_attr_read_str(hid_t obj, const char *name, char *buf, size_t size, int *found,
                              const char *file, const char *obj_path);
rm_status rm_h5_attr_read_str_alloc(hid_t obj, const char *name, char **out, const char *file,
                                    const char *obj_path);
rm_status rm_h5_attr_read_i64(hid_t obj, const char *name, int64_t *value, int *found,
                              const char *file, const char *obj_path);
rm_status rm_h5_attr_read_str_array(hid_t obj, const char *name, char ***values, int *n,
                                    const char *file, const char *obj_path);
void rm_h5_free_str_array(char **values, int n);

/* ---- scalar datasets that stay writable under SWMR (contiguous, allocated early) ---- */
rm_status rm_h5_scalar_str_create(hid_t loc, const char *name, size_t len, const char *value,
                                  const char *file, const char *obj_path);
rm_status rm_h5_scalar_i64_create(hid_t loc, const char *name, int64_t value, const char *file,
                                  const char *obj_path);
/* Write / read by path relative to loc; strings are cut to the dataset's length. */
rm_status rm_h5_scalar_str_write(hid_t loc, const char *name, const char *value, const char *file);
rm_status rm_h5_scalar_str_read(hid_t loc, const char *name, char *buf, size_t size,
                                const char *file);
rm_status rm_h5_scalar_i64_write(hid_t loc, const char *name, int64_t value, const char *file);
rm_status rm_h5_scalar_i64_read(hid_t loc, const char *name, int64_t *value, const char *file);

/* A fixed-length, NUL-padded string type of len bytes (close it with H5Tclose); -1 on
 * failure. */
hid_t rm_h5_fixed_str_type(size_t len);

/* ---- misc ---- */
void rm_iso8601_utc_now(char out[RM_H5_TIME_LEN]); /* "2025-01-31T12:00:00Z" */
/* Copies src into dst (size > 0), truncating; returns 1 if it was cut. */
int rm_copy_str(char *dst, size_t size, const char *src);

#endif
