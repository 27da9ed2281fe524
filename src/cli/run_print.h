/* The printed face of a run (include/regmix/run.h events): progress lines, per-epoch
 * lines, the final JSON line; shared by `regmix train` and the sweep workers. */
#ifndef REGMIX_CLI_RUN_PRINT_H
#define REGMIX_CLI_RUN_PRINT_H

#include "regmix/run.h"

typedef struct {
    int quiet; /* no progress, epoch or "#" lines (errors are always printed) */
    int json;  /* print the final JSON line */
} cli_run_printer;

/* An rm_run_event_fn (ctx: a cli_run_printer). Never asks the run to stop. */
int cli_print_run_event(void *ctx, const rm_run_event *ev);

/* Settings from argv: an optional YAML file first, then key=value pairs; --quiet and
 * --force set their flags. */
rm_status cli_parse_config(int argc, char **argv, rm_config *cfg, int *quiet, int *force);

#endif
