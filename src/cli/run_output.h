/* Running one configuration with its outputs (progress lines, per-epoch rows, the
 * final JSON line): shared by `regmix train` and the sweep workers. */
#ifndef REGMIX_CLI_RUN_OUTPUT_H
#define REGMIX_CLI_RUN_OUTPUT_H

#include "regmix/config.h"

enum { EXIT_COMPLETED = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_DIVERGED = 3, EXIT_PREEMPTED = 4 };

rm_status cli_parse_config(int argc, char **argv, rm_config *cfg, int *quiet);

/* Trains cfg to the end; returns the exit status above. */
int run_one(const rm_config *cfg, int quiet);

/* The run id: cfg->run_id, else "<model>_<method>_<reg>_seed<seed>_<hash8>". */
void run_id_of(const rm_config *cfg, char *out, size_t size);

#endif
