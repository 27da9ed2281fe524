/* regmix: one binary, subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "regmix/common.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: regmix <command> [options]\n"
            "commands:\n"
            "  bench    time forward / forward+backward / backward-data of a model\n"
            "  train    train one configuration (CONFIG.yaml [key=value ...])\n"
            "  eval     evaluate saved weights under a list of attacks\n"
            "  sweep    run a grid of configurations over MPI ranks\n"
            "  inspect  print a run file's configuration, status and metrics\n"
            "  report   ablation tables and plots from a sweep directory\n"
            "run 'regmix <command> --help' for a command's options\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    /* the commands that train (and so catch preemption signals) */
    if ((!strcmp(cmd, "train") || !strcmp(cmd, "sweep")) && cli_route_stop_signals() != 0) return 1;
    if (!strcmp(cmd, "bench")) rm_exit(cmd_bench(argc - 1, argv + 1));
    if (!strcmp(cmd, "train")) rm_exit(cmd_train(argc - 1, argv + 1));
    if (!strcmp(cmd, "eval")) rm_exit(cmd_eval(argc - 1, argv + 1));
    if (!strcmp(cmd, "sweep")) rm_exit(cmd_sweep(argc - 1, argv + 1));
    if (!strcmp(cmd, "inspect")) rm_exit(cmd_inspect(argc - 1, argv + 1));
    if (!strcmp(cmd, "report")) rm_exit(cmd_report(argc - 1, argv + 1));
    fprintf(stderr, "regmix: '%s' is not available in this build (see README: roadmap)\n", cmd);
    usage(stderr);
    return 2;
}
