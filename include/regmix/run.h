/* regmix run: the life cycle of one training run, without a command line.
 *
 * rm_run trains one configuration into <outdir>/<run-id>.h5 (include/regmix/runfile.h):
 * it takes the writer lock, creates the run file or resumes it from its checkpoint
 * (repairing a file a killed writer left open), skips a run already completed with this
 * configuration, trains epoch after epoch, writes one metric row per epoch and a
 * checkpoint every checkpoint_every epochs (and at the end), and stops at a batch
 * boundary with a checkpoint when preemption is asked for (a signal, rm_run_request_stop
 * or the caller's event callback). In a data-parallel group (rm_dp) the group's rank 0,
 * the leader, does all of that and the other ranks follow in step.
 *
 * The library prints nothing: it reports through an event callback (rm_run_event), from
 * which `regmix train` and `regmix sweep` print their progress lines and JSON line.
 * `regmix train` is rm_run with a callback that prints; a test or another front end can
 * call rm_run directly. */
#ifndef REGMIX_RUN_H
#define REGMIX_RUN_H

#include <stdint.h>

#include "regmix/config.h"
#include "regmix/method.h"
#include "regmix/runfile.h"
#include "regmix/train.h"

/* How a run ended. The values are the exit statuses of `regmix train`. */
typedef enum {
    RM_RUN_END_COMPLETED = 0, /* trained to the end, or already completed (skipped) */
    RM_RUN_END_FAILED = 1,    /* could not start (data, lock, file) or failed while training */
    RM_RUN_END_REFUSED = 2,   /* the run file holds another configuration (force: resume anyway) */
    RM_RUN_END_DIVERGED = 3,  /* a NaN/Inf loss */
    RM_RUN_END_PREEMPTED = 4  /* stopped at a batch boundary and checkpointed: rm_run again resumes it */
} rm_run_end;

typedef enum {
    RM_RUN_EVENT_REPAIRING, /* the file was left open by a dead writer and is repaired (path) */
    RM_RUN_EVENT_RESUMED,   /* resumed from the file: resume */
    RM_RUN_EVENT_STARTED,   /* training starts: seconds = setup time (data, network, file) */
    RM_RUN_EVENT_BATCH,     /* after every training batch: epoch, done, total, seconds (in the
                               epoch so far). The callback's return value: non-zero stops the
                               run at this batch (preemption). Every rank of a group gets it */
    RM_RUN_EVENT_EPOCH,     /* an epoch's row was written to the file: trainer, row */
    RM_RUN_EVENT_STOPPED,   /* training stopped early in epoch `epoch`: status preempted,
                               failed or diverged; message (failed/diverged: the error) */
    RM_RUN_EVENT_ERROR,     /* a failure: message (setup, lock, closing the file; dp_rank > 0:
                               a follower of a group could not take part) */
    RM_RUN_EVENT_FINISHED   /* last event of every run on its leader: status, reason (NULL when
                               completed), and either the last epoch's row (trainer, row; row
                               NULL when no epoch finished) or, for a run skipped because it was
                               completed already (skipped = 1), the file's record (summary) */
} rm_run_event_kind;

typedef struct {
    rm_run_event_kind kind;
    const char *run_id, *path; /* the run's id and file */
    const rm_config *cfg;
    int dp_rank;               /* rank in the data-parallel group; 0 when alone */
    /* BATCH, STOPPED: the 1-based epoch being trained; EPOCH: epochs completed */
    int epoch;
    int64_t done, total;       /* batches done in the epoch, batches in the epoch */
    double seconds;            /* BATCH: seconds in this epoch so far; STARTED: setup time */
    /* EPOCH, FINISHED: row[rm_trainer_metric_count(trainer)], named by rm_trainer_metric */
    const rm_trainer *trainer;
    const double *row;
    /* RESUMED */
    const rm_resume_report *resume;
    /* STOPPED, FINISHED */
    rm_run_status status;
    const char *message;       /* STOPPED, ERROR: what went wrong */
    const char *reason;        /* FINISHED: the reason written to the file (NULL: completed) */
    int skipped;               /* FINISHED: completed earlier, not trained again */
    const rm_run_summary *summary; /* FINISHED when skipped */
} rm_run_event;

/* Called synchronously on the training thread. The return value matters only for
 * RM_RUN_EVENT_BATCH. Everything the event points to lives only during the call. */
typedef int (*rm_run_event_fn)(void *ctx, const rm_run_event *ev);

typedef struct {
    int force;                /* resume even if the file holds another configuration */
    int mpi_rank, mpi_size;   /* of the job, for /provenance (0 and 1 without MPI) */
    int threads;              /* OpenMP threads, for /provenance (the caller sets them) */
    rm_dp *dp;                /* the data-parallel group training this run; NULL: alone */
    rm_run_event_fn on_event; /* may be NULL */
    void *ctx;
} rm_run_options;

/* What a run ended with (for the sweep index). */
typedef struct {
    rm_run_end end;
    rm_run_status status;   /* what the file says now (completed for a skipped run) */
    char reason[256];       /* "" when completed */
    int epochs;             /* epochs completed */
    int skipped;            /* completed earlier, not trained again */
} rm_run_result;

/* Trains cfg (validated) to the end in <outdir>/<run-id>.h5: creates the run file, or
 * resumes it from its checkpoint; a run completed with this configuration is reported
 * (FINISHED with skipped = 1), not run again. Creates outdir. result may be NULL. Every
 * rank of o->dp calls it with the same cfg.
 * Same configuration means the same rm_config_hash of the file's /config yaml under this
 * build's rules (results/README.md, "Run identity"). An auto-named run (run_id empty)
 * whose file is not there is also looked for under the name regmix 0.1.0 gave it, whose
 * hash included data_dir: the outdir file "<model>_<method>_<reg>_seed<N>_<8 hex>.h5"
 * holding this configuration, so moving the data orphans no run. */
rm_run_end rm_run(const rm_config *cfg, const rm_run_options *o, rm_run_result *result);

/* The run id: cfg->run_id, else "<model>_<method>_<reg>_seed<seed>_<hash8>" (hash8: the
 * first 8 digits of rm_config_hash). */
void rm_run_id(const rm_config *cfg, char *out, size_t size);

/* mkdir -p; then refuses a path that is not a directory, or one this process cannot write
 * into (a read-only file system, permissions) */
rm_status rm_make_dirs(const char *path);

/* Preemption: a process-wide flag that stops every run at its next batch boundary (with a
 * checkpoint: RM_RUN_END_PREEMPTED). The handlers set it on SIGTERM (what batch systems
 * send first) and SIGUSR1 (Slurm's --signal before the time limit; Open MPI's mpirun
 * forwards it). rm_run_clear_stop resets it (tests, or a front end that goes on). */
void rm_run_install_signal_handlers(void);
void rm_run_request_stop(void);
void rm_run_clear_stop(void);
int rm_run_stop_requested(void);

#endif
