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

enum { MAX_SETS = 64 };

typedef struct {
    const char *path;
    int ranks_per_run, threads, retry_failed, quiet, dry_run;
    int n_sets;
    const char *sets[MAX_SETS]; /* --set KEY=VALUE */
} sweep_opts;

static int sweep_usage(FILE *out) {
    fprintf(out,
            "usage: mpirun -n N regmix sweep SWEEP.yaml [--ranks-per-run K] [--threads T]\n"
            "                                [--retry-failed] [--quiet] [--set KEY=VALUE ...]\n"
            "       regmix sweep SWEEP.yaml --dry-run [--retry-failed] [--set KEY=VALUE ...]\n"
            "  Trains every run of the sweep; each run writes results/<sweep>/<id>.h5 and rank 0\n"
            "  keeps results/<sweep>/sweep.h5 (the index). Re-running the same command skips\n"
            "  completed runs, resumes interrupted ones from their checkpoints and, with\n"
            "  --retry-failed, retries failed or diverged ones. Rank 0 prints a line per\n"
            "  started run, per finished epoch of every run and per finished run.\n"
            "  --threads T: OpenMP threads per rank (default: cores of the node / ranks on it,\n"
            "  unless the sweep sets `threads`). SIGTERM/SIGUSR1: every run checkpoints at the\n"
            "  next batch and the sweep exits with 4 (resume by running it again).\n"
            "  --set KEY=VALUE: a setting for every run, over the file's base (repeatable; not an\n"
            "  axis). It changes the runs' configuration but not their ids: give a smoke run\n"
            "  its own outdir, e.g. --set epochs=1 --set train_subset=512 --set outdir=/tmp/smoke\n"
            "  --dry-run: list the runs, their ids, estimated cost and what the output folder\n"
            "  holds for each (completed, resumable, ...), then exit without training (no mpirun).\n"
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
        else if (!strcmp(a, "--dry-run")) o->dry_run = 1;
        else if (!strcmp(a, "--set") || !strncmp(a, "--set=", 6)) {
            const char *v = a[5] == '=' ? a + 6 : i + 1 < argc ? argv[++i] : NULL;
            if (!v || !strchr(v, '=')) {
                fprintf(stderr, "regmix sweep: --set expects KEY=VALUE%s%s\n", v ? ", got " : "", v ? v : "");
                return 0;
            }
            if (o->n_sets == MAX_SETS) {
                fprintf(stderr, "regmix sweep: more than %d --set options\n", MAX_SETS);
                return 0;
            }
            o->sets[o->n_sets++] = v;
        }
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

/* What the output folder holds for a run, and what the sweep would do with it. */
static void describe_state(const sweep_opts *o, rm_sweep_run_state state, const rm_run_summary *sum, char *buf,
                           size_t size) {
    switch (state) {
    case RM_SWEEP_RUN_NEW: snprintf(buf, size, "to train"); break;
    case RM_SWEEP_RUN_COMPLETED: snprintf(buf, size, "completed (skipped)"); break;
    case RM_SWEEP_RUN_FAILED:
        snprintf(buf, size, "%s earlier (%s)", rm_run_status_name(sum->status),
                 o->retry_failed ? "trained again" : "skipped; --retry-failed trains it again");
        break;
    case RM_SWEEP_RUN_RESUMABLE:
        snprintf(buf, size, "%s: resumes after epoch %lld", rm_run_status_name(sum->status),
                 (long long)(sum->has_checkpoint ? sum->checkpoint_epoch : 0));
        break;
    case RM_SWEEP_RUN_OTHER_CONFIG:
        snprintf(buf, size, "file of another configuration (hash %s): the run will be refused", sum->identity_hash);
        break;
    case RM_SWEEP_RUN_UNREADABLE: snprintf(buf, size, "unreadable run file: the run will report it"); break;
    }
}

/* --dry-run: the runs, their ids, estimated cost and state; nothing is trained or
 * written. */
static int dry_run(const sweep_opts *o, const rm_sweep *s) {
    double total = 0, to_train = 0;
    int n_train = 0, n_complete = 0, n_failed = 0;
    size_t width = 3;
    for (int i = 0; i < s->n_runs; i++) {
        total += rm_sweep_run_cost(&s->runs[i]);
        if (strlen(s->runs[i].id) > width) width = strlen(s->runs[i].id);
    }
    printf("# regmix sweep %s --dry-run: %d runs into %s (index %s/sweep.h5)\n", s->name, s->n_runs,
           s->runs[0].cfg.outdir, s->runs[0].cfg.outdir);
    printf("# cost: estimated work in forward-pass equivalents of one fmnist-cnn image (training and\n"
           "# evaluation; only ratios matter); the sweep hands out the longest runs first\n");
    printf("%-*s  %10s  %6s  %s\n", (int)width, "run", "cost", "share", "state");
    for (int i = 0; i < s->n_runs; i++) {
        const rm_sweep_run *r = &s->runs[i];
        rm_run_summary sum;
        rm_sweep_run_state state = rm_sweep_run_check(r, &sum);
        char text[256];
        describe_state(o, state, &sum, text, sizeof text);
        rm_run_summary_free(&sum);
        double cost = rm_sweep_run_cost(r);
        int trains = state != RM_SWEEP_RUN_COMPLETED && (state != RM_SWEEP_RUN_FAILED || o->retry_failed);
        n_complete += state == RM_SWEEP_RUN_COMPLETED;
        n_failed += state == RM_SWEEP_RUN_FAILED && !o->retry_failed;
        n_train += trains;
        if (trains) to_train += cost;
        printf("%-*s  %10.3g  %5.1f%%  %s\n", (int)width, r->id, cost, total > 0 ? 100.0 * cost / total : 0.0, text);
    }
    printf("# %d to train (%.1f%% of the cost), %d already complete, %d failed earlier (skipped)\n", n_train,
           total > 0 ? 100.0 * to_train / total : 0.0, n_complete, n_failed);
    return EXIT_COMPLETED;
}

int cmd_sweep(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return sweep_usage(stdout);
    sweep_opts o;
    if (!parse_opts(argc, argv, &o)) return sweep_usage(stderr);
    if (o.dry_run) {
        rm_sweep s;
        if (rm_sweep_load_with(o.path, o.sets, o.n_sets, &s) != RM_OK) {
            fprintf(stderr, "regmix sweep: %s\n", rm_error_message());
            return EXIT_USAGE;
        }
        int rc = dry_run(&o, &s);
        rm_sweep_free(&s);
        return rc;
    }
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "regmix sweep: MPI_Init failed\n");
        return EXIT_FAILED;
    }
    rm_run_install_signal_handlers();
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    rm_sweep s;
    int rc;
    if (rm_sweep_load_with(o.path, o.sets, o.n_sets, &s) != RM_OK) {
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
