/* regmix sweep: a study as one YAML file, expanded into the runs it trains.
 *
 * `mpirun -n N regmix sweep sweeps/NAME.yaml` trains every configuration of the file; the
 * results go to results/NAME/ID.h5. This header has two parts: the sweep-definition
 * layer (parsing, expansion, run identity, cost estimate) and the scheduler that hands
 * the runs to MPI ranks. */
#ifndef REGMIX_SWEEP_H
#define REGMIX_SWEEP_H

#include "regmix/common.h"
#include "regmix/config.h"

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
 * Scheduler (declarations added by the scheduler's author below this line)
 * ====================================================================================== */

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
rm_status rm_sweep_index_close(rm_sweep_index *ix);

#endif
