/* regmix sweep: a study as one YAML file, expanded into the runs it trains.
 *
 * `mpirun -n N regmix sweep sweeps/NAME.yaml` trains every configuration of the file; the
 * results go to results/NAME/ID.h5. This header has two parts: the sweep-definition
 * layer (parsing, expansion, run identity, cost estimate) and the scheduler that hands
 * the runs to MPI ranks. */
#ifndef REGMIX_SWEEP_H
#define REGMIX_SWEEP_H

#include <mpi.h>

#include "regmix/common.h"
#include "regmix/config.h"
#include "regmix/run.h"

/* ======================================================================================
 * Sweep definition: the file, its expansion, run ids (src/sweep/sweepfile*.c)
 * ======================================================================================
 *
 * The file (YAML, read with libyaml; comments allowed; one document):
 *
 *   name: fmnist-quick        # required: [A-Za-z0-9._-], first a letter or digit, < 64
 *   description: "..."        # optional, one line or several, < 512 bytes
 *   base:                     # settings of every run: the keys of `regmix train`
 *     model: fmnist-cnn
 *     epochs: 2
 *   grid:                     # crossed axes: every combination of their values
 *     reg: [mse, regmix]
 *     seed: [0, 1]
 *   zip:                      # optional: groups of axes whose values move together;
 *     - eps: [8/255, 16/255]  # one group is ONE axis of the cross (lists of a group
 *       step: [8/255, 16/255] # have equal lengths)
 *   exclude:                  # optional: combinations to skip; an entry matches a run
 *     - {reg: mse, seed: 1}   # when every key matches; a list is "any of these":
 *     - {reg: [mse, none], alpha: [0.5, 2]}
 *   max_runs: 20000           # optional: the most runs the sweep may expand to
 *                             # (default RM_SWEEP_MAX_RUNS = 10000, at most 100000)
 *
 * No other top-level key is allowed. base, grid, zip and exclude may be empty or absent
 * (no grid and no zip: one run). Values are taken as text, exactly as `regmix train`
 * takes them (rm_config_set: "8/255" is a number, "yes" a boolean where one is
 * expected); eval_attacks may be written as a list, so an eval_attacks axis is a list of
 * lists or of comma-separated strings. A setting is either in base or an axis, never
 * both; run_id is set by the sweep and may not appear at all. Exclude keys must be axes;
 * values are compared as settings ("1/2" matches an axis value "0.5"), each must be a
 * value of its axis, and each entry must match some combination (a typo is an error,
 * not a silent no-op). For eval_attacks, "any of" is a list of lists.
 *
 * Limits against absurd or hostile files: at most 1 MiB; no YAML aliases (*name:
 * refused at the first, so a "billion laughs" document never expands); lists and
 * mappings nested at most 8 deep; at most 256 keys in a mapping and 256 exclude
 * entries; at most 1000000 combinations before exclusion and max_runs runs after it (an
 * axis with more values than max_runs is refused at once). A run takes about 4 KB on
 * every rank, so 100000 runs are about 0.5 GB.
 *
 * Errors are RM_ERR_IO (file missing or unreadable), RM_ERR_FORMAT (YAML syntax, wrong
 * structure, unknown top-level key, duplicate key or axis, empty axis, zip lists of
 * unequal length, exclude entries that match nothing, a limit above) or RM_ERR_ARG (a bad setting name
 * or value, a run that fails rm_config_validate, two runs with the same configuration or
 * id); the message names "path:line" of the offending line (a reader error that has no
 * line names the byte offset).
 *
 * Expansion. The axes are the grid's in file order, then each zip group's in file order.
 * Runs are listed as nested loops over the grid axes and zip groups in that order (the
 * first one outermost), minus the excluded combinations. Each run is rm_config_defaults,
 * then base, then its axis values (in axis order), then run_id = its id and, unless base
 * sets outdir, outdir = "results/NAME". Every run must pass rm_config_validate (the
 * message names the run id and its axis values), and no two runs may have the same
 * rm_config_hash (e.g. "0.1" and "1/10" on one axis; the message names both ids).
 *
 * Run ids. A run's id is made of the VALUES of its axes, not of their positions:
 * "AXIS-VALUE" for every axis, in axis order, joined by '_':
 *     reg-regmix_alpha-1_seed-0        eps-8over255_step-8over255
 * VALUE is the value's text as written in the file (white space trimmed; a list value
 * joined with ','), made filename-safe by rm_sweep_id_part: a '/' between two digits (a
 * fraction) becomes "over", and every character outside [A-Za-z0-9.+-] becomes '-'
 * ("pgd20@12/255" -> "pgd20-12over255", "c||f" -> "c--f"). The written text, not the
 * parsed number, keeps ids readable (8/255 stays 8over255, not 0.0313725...); writing a
 * value differently ("0.5" -> "1/2") therefore changes its id, and two spellings of one
 * value on an axis are refused as duplicate configurations.
 * Every declared axis is in the id, even one with a single value: then adding values to
 * an axis (or a zip group) keeps the ids, and so the result files, of the existing
 * combinations; adding an axis changes every id. A setting that should not appear in
 * ids belongs in base. A sweep without axes has one run whose id is the sweep name. Ids
 * are at most 199 characters, value texts at most 63; two runs whose ids collide after
 * the replacement are an error. */

#define RM_SWEEP_MAX_AXES 16
#define RM_SWEEP_MAX_RUNS 10000 /* default of max_runs */
#define RM_SWEEP_ID_MAX 200
#define RM_SWEEP_VALUE_MAX 64

typedef struct {
    char id[RM_SWEEP_ID_MAX];                             /* also cfg.run_id */
    rm_config cfg;                                        /* validated */
    char hash[17];                                        /* rm_config_hash(&cfg) */
    int n_axes;                                           /* = the sweep's n_axes */
    char axis_name[RM_SWEEP_MAX_AXES][32];                /* setting names, axis order */
    char axis_value[RM_SWEEP_MAX_AXES][RM_SWEEP_VALUE_MAX]; /* value text as written */
    int axis_line[RM_SWEEP_MAX_AXES];                     /* file line of each value */
} rm_sweep_run;

typedef struct {
    char name[64];
    char description[512];
    char path[512];       /* the file as given to rm_sweep_load */
    int n_axes;
    char axes[RM_SWEEP_MAX_AXES][32]; /* axis order: grid axes, then zip groups' axes */
    int n_runs;           /* >= 1 */
    int n_excluded;       /* combinations removed by exclude */
    rm_sweep_run *runs;   /* n_runs, in expansion order */
    char *text;           /* the file's contents, NUL-terminated (for provenance) */
} rm_sweep;

/* Reads, checks and expands the sweep file at `path`. On success *out owns its memory
 * (free it with rm_sweep_free); on failure *out is empty (rm_sweep_free is harmless). */
rm_status rm_sweep_load(const char *path, rm_sweep *out);
/* The same with overrides of the base settings ("KEY=VALUE", as `regmix train` takes
 * them; `regmix sweep --set`), applied after the file's base and before expansion, so
 * every run gets them and they enter its configuration (and hash; not its id). A key
 * that is an axis, run_id, or not a setting is RM_ERR_ARG naming the --set. An outdir
 * given so replaces the default results/NAME. */
rm_status rm_sweep_load_with(const char *path, const char *const *sets, int n_sets, rm_sweep *out);
void rm_sweep_free(rm_sweep *s);

/* Index of the run with this id, or -1. */
int rm_sweep_find(const rm_sweep *s, const char *id);

/* One value as it appears in a run id (the rule above): white space trimmed, a '/'
 * between two digits -> "over", any other character outside [A-Za-z0-9.+-] -> '-'.
 * "8/255" -> "8over255", "pgd20@12/255" -> "pgd20-12over255", "a_b" -> "a-b".
 * Writes a NUL-terminated string; returns its length, or -1 if it did not fit. */
int rm_sweep_id_part(const char *value, char *buf, size_t size);

/* Relative cost of a run, for longest-first scheduling, in forward-pass-equivalents of
 * one fmnist-cnn image (a forward = 1, the backward to the input = 1, the backward to
 * input and weights = 2):
 *   model factor x ( epochs x training samples x training cost per image
 *                    + evaluations x test samples x evaluation cost per image )
 * training samples = train_subset (0: the dataset's 60000 for fashion-mnist/mnist,
 * 50000 for cifar10/100) minus val_size; test samples = test_subset (0: 10000);
 * evaluations = ceil(epochs / eval_every); model factor: fmnist-cnn 1,
 * preact-resnet18 120. Training cost per image: pgi and fgsm-rs 5 (initial pass with the
 * input gradient 2, final pass 3), +2 when the initial pass is back-propagated into the
 * weights (mse, amr, regmix), +3 for the clean pass (agr, regmix); pgd-at 2K+3, trades
 * 2K+7 (K = train_attack_steps). Evaluation cost per image: clean 1, fgsm 3, pgdK and
 * cwK (2K+1) x restarts. An estimate: only ratios matter. */
double rm_sweep_run_cost(const rm_sweep_run *r);

/* ======================================================================================
 * Scheduler: training every run over the ranks of a communicator (src/sweep/scheduler.c)
 * ======================================================================================
 *
 * Dynamic scheduling: rank 0 keeps the queue (longest runs first, by rm_sweep_run_cost)
 * and hands out one run at a time to whichever group of ranks asks; it trains runs too
 * and answers requests between its own training batches, so no rank sits idle waiting
 * for a static share. Groups are ranks_per_run consecutive ranks training one run
 * together (data parallel, rm_dp); a group's first rank (its leader) talks to rank 0 and
 * writes the run's files. Rank 0 alone writes the index, <outdir>/sweep.h5 (below; the
 * outdir of the first run).
 *
 * Restart rules (rm_sweep_run_check): a run completed with the same configuration is
 * skipped; a failed or diverged one is skipped unless retry_failed; the rest (no file
 * yet, running when its writer died, preempted) run, resuming from their checkpoints.
 * A stop request (rm_run_request_stop, SIGTERM/SIGUSR1 with the handlers installed)
 * checkpoints every run at its next batch and hands out no further runs. */

/* What a run's file says about it before the sweep starts. */
typedef enum {
    RM_SWEEP_RUN_NEW = 0,       /* no run file yet */
    RM_SWEEP_RUN_COMPLETED,     /* completed with this configuration: skipped */
    RM_SWEEP_RUN_FAILED,        /* failed or diverged with this configuration */
    RM_SWEEP_RUN_RESUMABLE,     /* running (writer died) or preempted: resumes */
    RM_SWEEP_RUN_OTHER_CONFIG,  /* a file of another configuration: the run will refuse it */
    RM_SWEEP_RUN_UNREADABLE     /* not a readable run file: the run will report it */
} rm_sweep_run_state;

/* Reads <outdir>/<id>.h5 of run r (if there is one). sum (may be NULL) receives the
 * file's record for COMPLETED, FAILED, RESUMABLE and OTHER_CONFIG (free it with
 * rm_run_summary_free); it is zeroed otherwise. Never fails: an unreadable file is a
 * state (its error is cleared). */
rm_sweep_run_state rm_sweep_run_check(const rm_sweep_run *r, rm_run_summary *sum);

typedef enum {
    RM_SWEEP_EVENT_PLANNED,   /* rank 0, once, before any run: the counts and index_path */
    RM_SWEEP_EVENT_RUN_START, /* rank 0: run `run` was handed to the group led by `rank` */
    RM_SWEEP_EVENT_RUN_EPOCH, /* rank 0: run `run` (on `rank`) finished epoch `epoch` (the
                                 other groups' leaders send it to rank 0, which passes it on
                                 between its own batches: one stream, in arrival order) */
    RM_SWEEP_EVENT_RUN_DONE,  /* rank 0: run `run` (on `rank`) ended: status, reason */
    RM_SWEEP_EVENT_PROGRESS,  /* rank 0: after every RUN_DONE, and once at the end of a sweep
                                 that had nothing to train: the counts, elapsed, eta */
    RM_SWEEP_EVENT_ERROR      /* any rank: message (bad ranks_per_run, the index, MPI) */
} rm_sweep_event_kind;

#define RM_SWEEP_EPOCH_METRICS 8

typedef struct {
    rm_sweep_event_kind kind;
    const rm_sweep *sweep;
    int rank;                  /* RUN_*: the world rank of the run's (group) leader */
    int run;                   /* RUN_*: index into sweep->runs */
    /* RUN_DONE */
    const char *status;        /* rm_run_status_name */
    const char *reason;        /* "" when completed */
    /* PLANNED, PROGRESS */
    int n_to_train;            /* runs queued at the start */
    int n_done, n_running, n_failed; /* of this sweep: completed, training, failed or diverged
                                        (PLANNED: failed earlier and not retried) */
    int n_complete;            /* completed before the sweep started (skipped) */
    int mpi_size, threads;     /* PLANNED: ranks, OpenMP threads of a run not setting them */
    const char *index_path;    /* PLANNED */
    double elapsed, eta;       /* PROGRESS: seconds; eta NaN while unknown */
    /* RUN_EPOCH: the epoch's test accuracies (metrics test_*, names without "test_";
       only those evaluated this epoch) and its wall time */
    int epoch, epochs;
    double epoch_seconds;
    int n_test;
    const char (*test_name)[48];
    const double *test_value;
    /* ERROR */
    const char *message;
} rm_sweep_event;

typedef void (*rm_sweep_event_fn)(void *ctx, const rm_sweep_event *ev);

typedef struct {
    int ranks_per_run;          /* >= 1, must divide the communicator's size */
    int threads;                /* OpenMP threads per rank for runs that do not set `threads`;
                                   0: the node's cores / the ranks on the node */
    int retry_failed;           /* train failed and diverged runs again */
    rm_sweep_event_fn on_event; /* may be NULL */
    void *ctx;
    rm_run_event_fn on_run_event; /* every event of the runs this rank trains (may be NULL);
                                     its return value for BATCH is honoured */
    void *run_ctx;
} rm_sweep_options;

/* Trains the sweep over the ranks of comm (a collective: every rank calls it with the
 * same sweep and options; MPI is initialised). Returns on every rank: COMPLETED when all
 * runs completed, FAILED when some failed or diverged (or rank 0 could not write the
 * index), REFUSED for a ranks_per_run that does not divide the ranks, PREEMPTED when a
 * stop request stopped it (run it again to resume). */
rm_run_end rm_sweep_train(const rm_sweep *s, MPI_Comm comm, const rm_sweep_options *o);

/* ======================================================================================
 * Sweep index: results/<sweep>/sweep.h5 (src/sweep/index.c), written by MPI rank 0 only
 * ======================================================================================
 *
 * Root attributes: format "regmix-sweep", regmix_schema 1, name, description, sweep_yaml
 * (the sweep file's text), sweep_file, n_runs, mpi_size, ranks_per_run, created (UTC).
 * /runs/<field>[n_runs], one element per run in expansion order:
 *   id (string), file (string: "<id>.h5", relative to the index), status (string:
 *   pending | running | completed | diverged | failed | preempted | skipped-failed),
 *   reason (string), rank (int64: the MPI rank that ran it last, -1 none), epochs (int64),
 *   start_time / end_time (float64, seconds since the Unix epoch; NaN if not yet),
 *   cost (float64: the relative cost estimate used for longest-first scheduling).
 * /axes/<axis>[n_runs]: each run's value of that axis, as written in the sweep file.
 * /links/<id>: an external link to "<id>.h5:/" (h5py follows it).
 * The file is written in SWMR mode and flushed after each update, so it can be read
 * (h5py swmr=True, `regmix report`) while the sweep runs. It is derived data: every
 * `regmix sweep` start rebuilds it from the run files. */
typedef struct rm_sweep_index rm_sweep_index;

rm_status rm_sweep_index_create(const char *path, const rm_sweep *s, int mpi_size, int ranks_per_run,
                                rm_sweep_index **out);
/* Updates one run's row (status, reason, rank, epochs; start/end NaN = leave as is). */
rm_status rm_sweep_index_update(rm_sweep_index *ix, int run, const char *status, const char *reason,
                                int rank, int epochs, double start_time, double end_time);
/* Frees ix; after a failed update it does not close the file (HDF5 1.10 cannot close a
 * file whose flush fails without crashing at exit) and returns RM_ERR_IO. */
rm_status rm_sweep_index_close(rm_sweep_index *ix);

/* Reading an index (any process; SWMR read, so also while the sweep runs). */
typedef struct {
    char id[RM_SWEEP_ID_MAX + 8];
    char file[RM_SWEEP_ID_MAX + 8]; /* relative to the index's folder */
    char status[32];
    char reason[256];
    int64_t rank, epochs;
    double start_time, end_time, cost;
} rm_sweep_index_entry;

typedef struct {
    char name[64];
    int n_runs;
    rm_sweep_index_entry *runs; /* n_runs, in expansion order */
} rm_sweep_index_table;

/* Errors: RM_ERR_IO (missing, unreadable), RM_ERR_FORMAT (not a regmix sweep index of
 * schema 1, a /runs column of the wrong length), each naming the file. On failure *out
 * is empty (rm_sweep_index_table_free is harmless). */
rm_status rm_sweep_index_read(const char *path, rm_sweep_index_table *out);
void rm_sweep_index_table_free(rm_sweep_index_table *t);

#endif
