/* Running one configuration with its outputs (progress lines, per-epoch rows, the
 * final JSON line): shared by `regmix train` and the sweep workers. */
#ifndef REGMIX_CLI_RUN_OUTPUT_H
#define REGMIX_CLI_RUN_OUTPUT_H

#include "regmix/config.h"
#include "regmix/method.h"
#include "regmix/runfile.h"

enum { EXIT_COMPLETED = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_DIVERGED = 3, EXIT_PREEMPTED = 4 };

/* What a run ended with (for the sweep index). */
typedef struct {
    int status;             /* rm_run_status */
    char reason[256];
    int epochs;             /* epochs completed */
} run_result;

typedef struct {
    int quiet;              /* no progress lines */
    int json;               /* print the final JSON line */
    int force;              /* resume even if the file holds another configuration */
    int mpi_rank, mpi_size; /* recorded in /provenance */
    int threads;
    int (*hook)(void *ctx); /* called every batch (sweep coordinator); non-zero stops the run */
    void *hook_ctx;
    run_result *result;     /* filled when not NULL */
    rm_dp *dp;              /* data parallel: the group training this run (NULL: alone).
                               Its rank 0 (the leader) alone writes the run file and
                               checkpoints and prints; the others follow in step */
} run_options;

/* mkdir -p */
rm_status cli_make_dirs(const char *path);

/* SIGTERM / SIGUSR1 make every run stop at its next batch boundary (preemption). */
void run_install_signal_handlers(void);
int run_stop_requested(void);

/* Settings from argv: an optional YAML file first, then key=value pairs; --quiet and
 * --force set o's flags. */
rm_status cli_parse_config(int argc, char **argv, rm_config *cfg, run_options *o);

/* Trains cfg to the end in <outdir>/<run_id>.h5: creates the run file, or resumes it
 * from its checkpoint; a completed run is reported, not run again. Returns the exit
 * status above. */
int run_one(const rm_config *cfg, const run_options *o);

/* The run id: cfg->run_id, else "<model>_<method>_<reg>_seed<seed>_<hash8>". */
void run_id_of(const rm_config *cfg, char *out, size_t size);

#endif
