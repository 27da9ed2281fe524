/* regmix sweep SWEEP.yaml: trains every run of a sweep over the MPI ranks
 * (rm_sweep_train, include/regmix/sweep.h) and prints its progress. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/run_print.h"
#include "regmix/sweep.h"

typedef struct {
    const char *path;
    int ranks_per_run, threads, retry_failed, quiet;
} sweep_opts;

static int sweep_usage(FILE *out) {
    fprintf(out,
            "usage: mpirun -n N regmix sweep SWEEP.yaml [--ranks-per-run K] [--threads T]\n"
            "                                [--retry-failed] [--quiet]\n"
            "  Trains every run of the sweep; each run writes results/<sweep>/<id>.h5 and rank 0\n"
            "  keeps results/<sweep>/sweep.h5 (the index). Re-running the same command skips\n"
            "  completed runs, resumes interrupted ones from their checkpoints and, with\n"
            "  --retry-failed, retries failed or diverged ones.\n"
            "  --threads T: OpenMP threads per rank (default: cores of the node / ranks on it,\n"
            "  unless the sweep sets `threads`). SIGTERM/SIGUSR1: every run checkpoints at the\n"
            "  next batch and the sweep exits with 4 (resume by running it again).\n"
            "  Exit status: 0 all runs completed, 1 some failed or diverged, 2 bad usage or\n"
            "  sweep file, 4 preempted.\n");
    return out == stderr ? EXIT_USAGE : 0;
}

/* Rank 0's lines (and any rank's errors). */
static void print_sweep_event(void *ctx, const rm_sweep_event *ev) {
    const sweep_opts *o = ctx;
    const rm_sweep *s = ev->sweep;
    if (ev->kind == RM_SWEEP_EVENT_ERROR) {
        fprintf(stderr, "regmix sweep: %s\n", ev->message);
        return;
    }
    if (o->quiet) return;
    switch (ev->kind) {
    case RM_SWEEP_EVENT_PLANNED:
        printf("# regmix sweep %s: %d runs (%d to train, %d already complete, %d failed earlier), %d ranks, "
               "%d thread(s) each; index %s\n", s->name, s->n_runs, ev->n_to_train, ev->n_complete, ev->n_failed,
               ev->mpi_size, ev->threads, ev->index_path);
        break;
    case RM_SWEEP_EVENT_RUN_START:
        printf("[sweep %s] rank %d starts %s\n", s->name, ev->rank, s->runs[ev->run].id);
        break;
    case RM_SWEEP_EVENT_RUN_EPOCH:
        /* "[sweep NAME] rank 1 ID epoch 2/3: clean 85.10 pgd20 74.30 | 52.1 s" */
        printf("[sweep %s] rank %d %s epoch %d/%d:", s->name, ev->rank, s->runs[ev->run].id, ev->epoch, ev->epochs);
        for (int i = 0; i < ev->n_test; i++) printf(" %s %.2f", ev->test_name[i], ev->test_value[i]);
        if (ev->n_test == 0) printf(" (not evaluated)");
        printf(" | %.1f s\n", ev->epoch_seconds);
        break;
    case RM_SWEEP_EVENT_RUN_DONE:
        printf("[sweep %s] rank %d: %s %s%s%s\n", s->name, ev->rank, s->runs[ev->run].id, ev->status,
               ev->reason[0] ? ": " : "", ev->reason);
        break;
    case RM_SWEEP_EVENT_PROGRESS:
        printf("[sweep %s] %d/%d done, %d running, %d failed, %d already complete; %.0f s elapsed", s->name,
               ev->n_done, ev->n_to_train, ev->n_running, ev->n_failed, ev->n_complete, ev->elapsed);
        if (isfinite(ev->eta)) printf(", about %.0f s left", ev->eta);
        printf("\n");
        break;
    default:
        break;
    }
    fflush(stdout);
}

static int parse_opts(int argc, char **argv, sweep_opts *o) {
    *o = (sweep_opts){.ranks_per_run = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--retry-failed")) o->retry_failed = 1;
        else if (!strcmp(a, "--quiet")) o->quiet = 1;
        else if ((!strcmp(a, "--ranks-per-run") || !strcmp(a, "--threads")) && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 4096) {
                fprintf(stderr, "regmix sweep: %s expects a positive integer, got '%s'\n", a, argv[i]);
                return 0;
            }
            if (a[2] == 'r') o->ranks_per_run = (int)v;
            else o->threads = (int)v;
        } else if (a[0] != '-' && !o->path) o->path = a;
        else {
            fprintf(stderr, "regmix sweep: unexpected argument '%s'\n", a);
            return 0;
        }
    }
    if (!o->path) fprintf(stderr, "regmix sweep: no sweep file given\n");
    return o->path != NULL;
}

int cmd_sweep(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return sweep_usage(stdout);
    sweep_opts o;
    if (!parse_opts(argc, argv, &o)) return sweep_usage(stderr);
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "regmix sweep: MPI_Init failed\n");
        return EXIT_FAILED;
    }
    rm_run_install_signal_handlers();
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    rm_sweep s;
    int rc;
    if (rm_sweep_load(o.path, &s) != RM_OK) {
        if (rank == 0) fprintf(stderr, "regmix sweep: %s\n", rm_error_message());
        rc = EXIT_USAGE;
    } else {
        /* runs print only their errors; rank 0 prints the sweep's lines */
        cli_run_printer quiet = {.quiet = 1};
        rm_sweep_options so = {.ranks_per_run = o.ranks_per_run, .threads = o.threads, .retry_failed = o.retry_failed,
                               .on_event = print_sweep_event, .ctx = &o,
                               .on_run_event = cli_print_run_event, .run_ctx = &quiet};
        rc = (int)rm_sweep_train(&s, MPI_COMM_WORLD, &so);
        rm_sweep_free(&s);
    }
    MPI_Finalize();
    return rc;
}
