/* regmix train CONFIG.yaml [key=value ...]: one configuration end to end. */
#include <errno.h>
#include <omp.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/commands.h"
#include "cli/run_print.h"

static int train_usage(FILE *out) {
    fprintf(out,
            "usage: regmix train [CONFIG.yaml] [key=value ...] [--quiet] [--force]\n"
            "  Trains one configuration; settings come from the YAML file, then the\n"
            "  key=value overrides (numbers may be fractions: eps=8/255).\n"
            "  Writes <outdir>/<run_id>.h5 (results/README.md): config, provenance, one row of\n"
            "  metrics per epoch, a checkpoint every checkpoint_every epochs. Running the same\n"
            "  command again resumes from the last checkpoint; a completed run is not run again;\n"
            "  a file of another configuration is refused (--force resumes it anyway).\n"
            "  Prints one progress line per epoch and, last on stdout, one JSON object with\n"
            "  the final epoch's metrics.\n"
            "  SIGTERM or SIGUSR1 stops the run at the next batch boundary with a checkpoint.\n"
            "  Exit status: 0 completed, 1 failed, 2 bad usage or settings, 3 diverged,\n"
            "  4 preempted (checkpointed; the same command resumes it).\n"
            "  Settings, each as `name = default  (allowed values)` and what it does\n"
            "  (\"\" is the empty text):\n");
    for (int i = 0; i < rm_config_setting_count(); i++) {
        char range[256];
        const char *def = rm_config_setting_default(i);
        rm_config_setting_range(i, range, sizeof range);
        fprintf(out, "    %s = %s  (%s)\n        %s\n", rm_config_setting_name(i), def[0] ? def : "\"\"", range,
                rm_config_setting_help(i));
    }
    return out == stderr ? 2 : 0;
}

/* Settings from argv: an optional YAML file first, then key=value pairs. */
rm_status cli_parse_config(int argc, char **argv, rm_config *cfg, int *quiet, int *force) {
    rm_config_defaults(cfg);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quiet") || !strcmp(a, "--force")) {
            if (a[2] == 'q') *quiet = 1;
            else *force = 1;
            continue;
        }
        const char *eq = strchr(a, '=');
        if (!eq) {
            if (a[0] == '-') return rm_fail(RM_ERR_ARG, "unknown option '%s'", a);
            if (i != 1) return rm_fail(RM_ERR_ARG, "'%s': the config file must come first; settings are key=value", a);
            RM_TRY(rm_config_load_yaml(cfg, a));
            continue;
        }
        char key[64];
        size_t klen = (size_t)(eq - a);
        if (klen == 0 || klen >= sizeof key) return rm_fail(RM_ERR_ARG, "bad setting '%s' (expected key=value)", a);
        memcpy(key, a, klen);
        key[klen] = '\0';
        RM_TRY(rm_config_set(cfg, key, eq + 1, "command line"));
    }
    return rm_config_validate(cfg);
}

int cmd_train(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return train_usage(stdout);
    rm_config cfg;
    cli_run_printer printer = {.json = 1};
    rm_run_options o = {.mpi_size = 1, .on_event = cli_print_run_event, .ctx = &printer};
    if (cli_parse_config(argc, argv, &cfg, &printer.quiet, &o.force) != RM_OK) {
        fprintf(stderr, "regmix train: %s\n", rm_error_message());
        return EXIT_USAGE;
    }
    o.threads = cfg.threads > 0 ? cfg.threads : omp_get_max_threads();
    rm_run_install_signal_handlers();
    return (int)rm_run(&cfg, &o, NULL);
}
