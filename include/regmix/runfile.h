/* regmix runfile: the HDF5 file of one training run, and its checkpoint.
 *
 * <outdir>/<run-id>.h5 holds the resolved configuration, the provenance, the status and
 * one row of metrics per evaluated epoch; <run-id>.ckpt.h5 beside it holds the latest
 * checkpoint (weights, optimiser and attack buffers, RNG states), reachable from the run
 * file through the external link /checkpoint. The schema (every group, dataset,
 * attribute and unit) is written down in results/README.md.
 *
 * The writer works in HDF5 SWMR mode (single writer, multiple readers): every object is
 * created up front, then H5Fstart_swmr_write; appending a row extends and flushes the
 * metric datasets, so `regmix inspect`, h5py (swmr=True) and the aggregator can read a
 * run while it trains, and a killed writer loses at most the row it was writing.
 *
 * A checkpoint is written to <run-id>.ckpt.h5.tmp, fsync'ed and renamed over
 * <run-id>.ckpt.h5, so there is always one complete checkpoint (or none yet).
 *
 * Error handling: HDF5's own error-stack printing is switched off inside this module;
 * a failed HDF5 call becomes one rm_fail message with the call, the file, the object
 * path and HDF5's innermost explanation. Files that are not regmix run files are never
 * opened for writing. Single-threaded use (HDF5 serial). */
#ifndef REGMIX_RUNFILE_H
#define REGMIX_RUNFILE_H

#include <stdint.h>

#include "regmix/common.h"
#include "regmix/config.h"

#define RM_RUNFILE_FORMAT "regmix-run"
#define RM_CHECKPOINT_FORMAT "regmix-checkpoint"
#define RM_RUNFILE_SCHEMA 1      /* root attribute "regmix_schema" of both files */
#define RM_METRIC_NAME_MAX 64    /* metric names: 1..63 characters of [A-Za-z0-9_.@+-] */
#define RM_CKPT_MAX_DIMS 8

typedef enum {
    RM_RUN_RUNNING = 0,
    RM_RUN_COMPLETED,
    RM_RUN_DIVERGED,
    RM_RUN_FAILED,
    RM_RUN_PREEMPTED
} rm_run_status;

const char *rm_run_status_name(rm_run_status s); /* "running", "completed", ... */
rm_status rm_run_status_parse(const char *text, rm_run_status *out);

/* One metric column, given by the caller at creation (the trainer derives the list from
 * the configuration). units: e.g. "fraction", "nats", "s", "1/s". */
typedef struct {
    const char *name;
    const char *units;
    const char *description;
} rm_metric_spec;

/* What only the caller knows about the process (the rest of /provenance is collected
 * here: versions, host name, start time). */
typedef struct {
    int mpi_rank, mpi_size; /* of the job; 0 and 1 without MPI */
    int threads;            /* OpenMP threads this run uses */
    int ranks_per_run;      /* ranks training the run together (data parallel); 0 means 1 */
    const char *data_dir;   /* the folder the data is read from; NULL: not known ("") */
} rm_run_info;

/* ---------------------------------------------------------------------- writer */

typedef struct rm_runfile rm_runfile;

/* Creates `path` (which must not exist: a run file is never silently overwritten),
 * writes /config, /provenance (status "running"), empty /metrics/epoch and one empty
 * column per metric, the external link /checkpoint -> <run-id>.ckpt.h5, then starts
 * SWMR writing. The run id is the file name without ".h5". */
rm_status rm_runfile_create(const char *path, const rm_config *cfg, const rm_run_info *info,
                            const rm_metric_spec *metrics, int n_metrics, rm_runfile **out);

/* What rm_runfile_resume found and did. */
typedef struct {
    rm_run_status previous_status;  /* the status the file had (e.g. preempted) */
    char previous_reason[256];
    int64_t rows_before;            /* metric rows in the file */
    int64_t rows_kept;              /* rows with epoch <= checkpoint_epoch */
    int64_t checkpoint_epoch;       /* epochs completed by the checkpoint; 0 if none */
    int has_checkpoint;
    int config_replaced;            /* force accepted a different configuration */
    char file_hash[17];             /* configuration hash stored in the file */
} rm_resume_report;

/* Reopens a run for resumption. Checks, before anything is written: the file is a regmix
 * run file of schema 1, the writer closed it (else RM_ERR_STATE suggesting
 * rm_runfile_repair / h5clear), its configuration hash equals cfg's (else RM_ERR_STATE
 * naming both hashes, unless force: then /config is rewritten to cfg and the old hash
 * kept in /config attribute "previous_hashes"), its metric columns are `metrics`, and the
 * checkpoint (if any) belongs to the same configuration. Then it truncates the metric
 * rows to the checkpoint's epoch (so resumed epochs are not duplicated), sets the status
 * to running, counts the resume, and starts SWMR writing. A completed run with the same
 * configuration is reopened unchanged (no truncation, status stays completed, not
 * counted as a resume; report->previous_status says so): closing it at once leaves the
 * record as it was. A message of RM_ERR_STATE for a file left open by a dead writer
 * always contains "h5clear -s --increment". */
rm_status rm_runfile_resume(const char *path, const rm_config *cfg, const rm_run_info *info,
                            const rm_metric_spec *metrics, int n_metrics, int force,
                            rm_runfile **out, rm_resume_report *report);

/* Appends the row of one epoch: values[i] for metric i in creation order (NaN for a
 * metric not evaluated this epoch). epoch: epochs completed, 1-based, increasing.
 * Extends, writes and flushes every column, then the row counter, so a SWMR reader sees
 * either the whole row or none of it. */
rm_status rm_runfile_append(rm_runfile *rf, int64_t epoch, const double *values);

/* Writes status and reason (<= 255 bytes, longer is cut); any status other than
 * running also writes /provenance/end_time. Flushed at once. */
rm_status rm_runfile_set_status(rm_runfile *rf, rm_run_status status, const char *reason);

/* Closes the file (which clears the superblock's "open for writing" mark). Always frees
 * rf; returns the first failure. NULL is accepted. */
rm_status rm_runfile_close(rm_runfile *rf);

const char *rm_runfile_path(const rm_runfile *rf);
const char *rm_runfile_config_hash(const rm_runfile *rf); /* 16 hex digits */
int64_t rm_runfile_rows(const rm_runfile *rf);

/* A writer that died (SIGKILL, node failure) leaves the superblock marked "open for
 * SWMR write"; HDF5 then refuses every open except SWMR reading. This runs
 * `h5clear -s --increment <path>` (package hdf5-tools; found through PATH) after checking
 * that the file is a regmix run file. Only call it when no process writes the file. */
rm_status rm_runfile_repair(const char *path);

/* "<dir>/<run-id>.ckpt.h5" for "<dir>/<run-id>.h5" (".ckpt.h5" appended otherwise). */
rm_status rm_runfile_checkpoint_path(const char *run_path, char *out, size_t size);

/* ---------------------------------------------------------------------- reader */

typedef struct {
    char name[RM_METRIC_NAME_MAX];
    char *units, *description; /* owned */
    double *values;            /* rows values, owned */
} rm_metric_column;

typedef struct {
    char run_id[256];
    char *config_yaml;          /* owned; the resolved configuration */
    char config_hash[17];       /* /config/hash: as the writing version computed it */
    char identity_hash[17];     /* rm_config_hash of config_yaml under this build's rules: what
                                   resume and sweeps compare (= config_hash unless the file is
                                   older than a change of those rules, e.g. data_dir) */
    rm_run_status status;
    char status_reason[256];
    char start_time[32], end_time[32], resume_time[32]; /* ISO 8601 UTC; "" if none */
    int64_t resume_count;
    /* provenance */
    char regmix_version[64], git_commit[64], onednn_version[64], onednn_isa[64];
    char hdf5_version[64], mpi_version[256], host[256];
    int64_t mpi_rank, mpi_size, threads;
    int64_t ranks_per_run;      /* 0 in files written before it was recorded */
    char data_dir[512];         /* "" in files written before it was recorded */
    /* metrics: rows complete rows, epoch[r] and columns[m].values[r] */
    int64_t rows;
    int64_t *epoch;
    int n_metrics;
    rm_metric_column *columns;
    /* the checkpoint file beside it, if one exists */
    int has_checkpoint;
    int64_t checkpoint_epoch, checkpoint_iteration, checkpoint_steps;
} rm_run_summary;

/* Reads a run file without modifying it, with the SWMR-read flag, so it works while the
 * run is being written and after a writer died. Errors: RM_ERR_IO (missing, unreadable),
 * RM_ERR_FORMAT (not HDF5, truncated or corrupt, HDF5 but not a regmix run file, unknown
 * schema version); each message names the file. On failure *out is zeroed. */
rm_status rm_runfile_read(const char *path, rm_run_summary *out);
void rm_run_summary_free(rm_run_summary *s);
/* Index of a metric column by name, -1 if absent. */
int rm_run_summary_find(const rm_run_summary *s, const char *name);

/* ------------------------------------------------------------------ checkpoint */

typedef enum { RM_DT_F32 = 0, RM_DT_F64, RM_DT_I64, RM_DT_U64, RM_DT_U8 } rm_dtype;
const char *rm_dtype_name(rm_dtype t); /* "float32", "float64", "int64", "uint64", "uint8" */

typedef struct {
    int64_t epoch;       /* epochs completed when the checkpoint was taken */
    int64_t iteration;   /* training iterations completed (the LR schedule's clock) */
    int64_t steps;       /* optimiser steps taken */
    char config_hash[17];    /* reader only: the configuration it belongs to */
    char written_at[32];     /* reader only: ISO 8601 UTC */
} rm_checkpoint_meta;

/* Tensor names are paths below /checkpoint. Conventions (results/README.md):
 *   model/<state_dict name>              weights and BN statistics, PyTorch shapes
 *   optimizer/<state_dict name>.momentum SGD momentum buffers
 *   attack/D, attack/M, attack/fresh      per-sample attack buffers
 *   rng/<purpose>                         uint64[4] generator states */
typedef struct rm_checkpoint_writer rm_checkpoint_writer;

/* Starts a checkpoint of the run `run_path` (configuration hash `config_hash`) in
 * <run-id>.ckpt.h5.tmp. Testing hook: with REGMIX_TEST_CKPT_EXIT_AFTER=N in the
 * environment the process _exit(86)s right after writing the N-th tensor, leaving a
 * half-written temporary file (the checkpoint atomicity test). */
rm_status rm_checkpoint_begin(const char *run_path, const char *config_hash,
                              rm_checkpoint_writer **out);
/* Writes one tensor (C order). ndim 0 is a scalar. */
rm_status rm_checkpoint_add(rm_checkpoint_writer *w, const char *name, rm_dtype dtype, int ndim,
                            const int64_t *dims, const void *data);
/* Seals the checkpoint: writes meta (epoch, iteration, steps), closes and fsyncs the
 * temporary file, renames it over <run-id>.ckpt.h5 and fsyncs the directory. Frees w
 * whatever happens; on failure the previous checkpoint is untouched. */
rm_status rm_checkpoint_commit(rm_checkpoint_writer *w, const rm_checkpoint_meta *meta);
/* Drops an unfinished checkpoint (deletes the temporary file). NULL is accepted. */
void rm_checkpoint_abort(rm_checkpoint_writer *w);

typedef struct rm_checkpoint_reader rm_checkpoint_reader;

/* 1 if <run-id>.ckpt.h5 exists beside run_path, else 0. */
int rm_checkpoint_present(const char *run_path);
/* Opens <run-id>.ckpt.h5 read-only and checks its format; meta may be NULL.
 * RM_ERR_IO if there is none (check rm_checkpoint_present first). */
rm_status rm_checkpoint_open(const char *run_path, rm_checkpoint_reader **out,
                             rm_checkpoint_meta *meta);
int rm_checkpoint_has(rm_checkpoint_reader *r, const char *name);
/* Type and shape of a stored tensor (dims: RM_CKPT_MAX_DIMS entries). */
rm_status rm_checkpoint_shape(rm_checkpoint_reader *r, const char *name, rm_dtype *dtype,
                              int *ndim, int64_t *dims);
/* Reads a tensor whose type and shape must be exactly dtype/ndim/dims (RM_ERR_FORMAT
 * naming both shapes otherwise: no silent conversion or reshaping). */
rm_status rm_checkpoint_read(rm_checkpoint_reader *r, const char *name, rm_dtype dtype, int ndim,
                             const int64_t *dims, void *data);
void rm_checkpoint_close(rm_checkpoint_reader *r);

#endif
