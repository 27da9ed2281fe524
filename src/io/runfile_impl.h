/* Internal to src/io: the writer's state and the checks shared by the writer, the
 * resume path, the reader and the checkpoint reader. */
#ifndef REGMIX_IO_RUNFILE_IMPL_H
#define REGMIX_IO_RUNFILE_IMPL_H

#include <hdf5.h>
#include <limits.h>

#include "io/h5util.h"
#include "regmix/runfile.h"

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* Object paths of the schema (results/README.md). */
#define RF_CONFIG "/config"
#define RF_PROV "/provenance"
#define RF_METRICS "/metrics"
#define RF_STATUS "/provenance/status"
#define RF_REASON "/provenance/status_reason"
#define RF_END_TIME "/provenance/end_time"
#define RF_ROWS "/provenance/metric_rows"
#define RF_RESUME_COUNT "/provenance/resume_count"
#define RF_RESUME_TIME "/provenance/resume_time"
#define RF_EPOCH "/metrics/epoch"
#define RF_CKPT_GROUP "/checkpoint"
#define RF_METRIC_CHUNK 64 /* rows per chunk of a metric column */

struct rm_runfile {
    char path[PATH_MAX];
    char hash[17];
    hid_t file;
    int n_metrics;
    char (*names)[RM_METRIC_NAME_MAX];
    hid_t epoch;    /* /metrics/epoch */
    hid_t *columns; /* /metrics/<name>, creation order */
    int64_t rows;
    int64_t last_epoch;
};

/* Opens an existing file of the given format ("regmix-run" or "regmix-checkpoint") and
 * checks its root attributes. Classifies failures without ever writing: RM_ERR_IO
 * (missing, unreadable, locked), RM_ERR_FORMAT (not HDF5, truncated/corrupt, other
 * program's HDF5, other format, unknown schema), RM_ERR_STATE (marked open by a writer). */
rm_status rf_open_checked(const char *path, unsigned flags, hid_t fapl, const char *format,
                          hid_t *out);

/* A stored configuration's identity under this build's rules (include/regmix/config.h:
 * which settings make the hash): rm_config_hash of /config/yaml read onto the defaults.
 * For a file written by this version it equals /config/hash; for an older file it may
 * not (e.g. data_dir was hashed by 0.1.0). A yaml this build cannot read (NULL, or
 * settings it does not know) gives the stored hash. */
void rf_identity_hash(const char *yaml, const char *stored, const char *path, char out[17]);

/* /provenance/data_dir: where this (re)start reads the data (prov: the open group). */
rm_status rf_write_data_dir(hid_t prov, const rm_run_info *info, const char *path);

/* Checks metric names (charset, length, unique, not "epoch"). */
rm_status rf_check_metrics(const rm_metric_spec *metrics, int n_metrics);

/* Run id: the file name without directory and ".h5". */
void rf_run_id(const char *path, char *out, size_t size);

/* Writes every setting of cfg as a typed attribute of /config, plus "yaml" and "hash"
 * (hash_out receives the hash). */
rm_status rf_write_config(hid_t file, const rm_config *cfg, const char *path, char hash_out[17]);

/* A writer with path and metric names set, nothing open; NULL when out of memory. */
rm_runfile *rf_new(const char *path, const rm_metric_spec *metrics, int n_metrics);
/* Closes what rf holds and frees it; returns the first close failure. */
rm_status rf_free(rm_runfile *rf);

/* Opens the metric datasets of an open file, reads the row count and starts SWMR
 * writing; fills rf (whose path, hash, file and names are set). */
rm_status rf_attach(rm_runfile *rf);

#endif
