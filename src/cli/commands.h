/* Entry points of the subcommands; each returns the process exit code. */
#ifndef REGMIX_CLI_COMMANDS_H
#define REGMIX_CLI_COMMANDS_H

/* Exit statuses of every command (those of a run are rm_run_end's values). */
enum { EXIT_COMPLETED = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_DIVERGED = 3, EXIT_PREEMPTED = 4 };

int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* Routes SIGTERM / SIGUSR1 to a watcher thread that runs no numerical code
 * (stop_signals.c); call before any other thread starts. 0, or -1 with a message. */
int cli_route_stop_signals(void);

#endif
