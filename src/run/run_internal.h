/* Shared by the leader (run.c) and the follower (follow.c) of a run (not public). */
#ifndef REGMIX_RUN_INTERNAL_H
#define REGMIX_RUN_INTERNAL_H

#include "regmix/data.h"
#include "regmix/run.h"

/* One run in progress: what every event carries. */
typedef struct {
    const rm_config *cfg;
    const rm_run_options *o;
    const char *run_id, *path;
} run_ctx;

/* Fills the event's common fields and hands it to the caller's callback; returns the
 * callback's answer (0 without one). */
int run_emit(const run_ctx *c, rm_run_event *ev);

/* The trainer's per-batch hook: a BATCH event, the preemption flag; a group stops
 * together (a stop seen by any of its ranks stops all at the same batch). */
int run_batch_hook(void *ctx, int epoch, int64_t done, int64_t total, double seconds);

/* Data parallel: the leader's values reach every rank of the group (a sum in which the
 * others contribute zeros); alone: nothing to do. */
rm_status run_from_leader(const rm_run_options *o, double *v, int n);
/* After rm_trainer_run_epoch returned st on this rank of a data-parallel group (size > 1):
 * a failure other than a stop or a divergence (which the group decides together, on its
 * summed loss) is this rank's alone while the others wait in the epoch's collectives;
 * prints the error on stderr and ends the MPI job (rm_dp_abort). Returns otherwise. */
void run_abort_if_alone(const run_ctx *c, rm_status st, int epoch);

/* A follower of a data-parallel group (o->dp rank > 0): trains in step with the leader,
 * writes nothing. */
rm_run_end run_follow(const run_ctx *c, rm_run_result *result);

/* An auto-named run (cfg->run_id empty) whose file <outdir>/<run_id>.h5 does not exist
 * may have been written under another hash: an older version hashed more settings (0.1.0:
 * data_dir). Looks in outdir for "<model>_<method>_<reg>_seed<N>_<8 hex>.h5" files whose
 * configuration is cfg's by today's rules (rm_run_summary.identity_hash); on a match
 * (the first by name) replaces run_id and path with it and returns 1, else 0. */
int run_find_renamed(const rm_config *cfg, char *run_id, size_t id_size, char *path, size_t path_size);

/* One writer per run: an advisory lock on <run>.h5.lock, held for the whole run. */
rm_status run_lock(const char *path, int *fd_out);

#endif
