/* regmix sweep SWEEP.yaml: trains every run of a sweep over the MPI ranks.
 *
 * Dynamic scheduling: rank 0 keeps the queue (longest runs first, by the cost estimate)
 * and hands out one run at a time to whichever group of ranks asks; it trains runs too
 * and answers requests between its own training batches (a per-batch hook), so no rank
 * sits idle waiting for a static share. Rank 0 alone writes the sweep index. */
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/run_print.h"
#include "regmix/runfile.h"
#include "regmix/sweep.h"

enum { TAG_REQUEST = 11, TAG_ASSIGN = 12, TAG_DONE = 13 };
enum { NO_MORE_RUNS = -1 };

/* What a group leader reports to rank 0 when a run ends. */
typedef struct {
    int run, status, epochs, rank;
    char reason[256];
} done_msg;

typedef struct {
    const rm_sweep *sweep;
    rm_sweep_index *index;
    int *queue, n_queue, next;  /* runs to train, longest first */
    int groups_left;            /* groups that have not yet been told "no more runs" */
    int done, failed, running, skipped_done, total_to_run;
    double t0, cost_done, cost_total;
    double *cost;
    int quiet, stopping;
} coordinator;

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

/* ---- rank 0: the queue and the index ---- */

static void print_progress(coordinator *c) {
    if (c->quiet) return;
    double el = MPI_Wtime() - c->t0;
    double eta = c->cost_done > 0 ? el / c->cost_done * (c->cost_total - c->cost_done) : NAN;
    printf("[sweep %s] %d/%d done, %d running, %d failed, %d already complete; %.0f s elapsed",
           c->sweep->name, c->done, c->total_to_run, c->running, c->failed, c->skipped_done, el);
    if (isfinite(eta)) printf(", about %.0f s left", eta);
    printf("\n");
    fflush(stdout);
}

static void index_update(coordinator *c, int run, const char *status, const char *reason, int rank, int epochs,
                         double start, double end) {
    if (rm_sweep_index_update(c->index, run, status, reason, rank, epochs, start, end) != RM_OK) {
        fprintf(stderr, "regmix sweep: updating the index: %s\n", rm_error_message());
        rm_error_clear();
    }
}

/* Next run for `rank`'s group, or NO_MORE_RUNS. */
static int coord_next(coordinator *c, int rank) {
    if (c->stopping || rm_run_stop_requested() || c->next >= c->n_queue) {
        c->groups_left--;
        return NO_MORE_RUNS;
    }
    int run = c->queue[c->next++];
    c->running++;
    index_update(c, run, "running", "", rank, 0, (double)time(NULL), NAN);
    if (!c->quiet) {
        printf("[sweep %s] rank %d starts %s\n", c->sweep->name, rank, c->sweep->runs[run].id);
        fflush(stdout);
    }
    return run;
}

static void coord_done(coordinator *c, const done_msg *m) {
    c->running--;
    const char *status = rm_run_status_name((rm_run_status)m->status);
    if (m->status == RM_RUN_COMPLETED) c->done++;
    else if (m->status == RM_RUN_PREEMPTED) c->stopping = 1;
    else c->failed++;
    if (m->status != RM_RUN_PREEMPTED) c->cost_done += c->cost[m->run];
    index_update(c, m->run, status, m->reason, m->rank, m->epochs, NAN, (double)time(NULL));
    if (!c->quiet) {
        printf("[sweep %s] rank %d: %s %s%s%s\n", c->sweep->name, m->rank, c->sweep->runs[m->run].id, status,
               m->reason[0] ? ": " : "", m->reason);
    }
    print_progress(c);
}

/* Serves every pending request and report (non-blocking). */
static void coord_poll(coordinator *c) {
    int flag;
    MPI_Status st;
    while (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st) == MPI_SUCCESS && flag) {
        if (st.MPI_TAG == TAG_REQUEST) {
            int dummy;
            MPI_Recv(&dummy, 1, MPI_INT, st.MPI_SOURCE, TAG_REQUEST, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            int run = coord_next(c, st.MPI_SOURCE);
            MPI_Send(&run, 1, MPI_INT, st.MPI_SOURCE, TAG_ASSIGN, MPI_COMM_WORLD);
        } else if (st.MPI_TAG == TAG_DONE) {
            done_msg m;
            MPI_Recv(&m, sizeof m, MPI_BYTE, st.MPI_SOURCE, TAG_DONE, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            coord_done(c, &m);
        } else {
            MPI_Recv(NULL, 0, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
    }
}

/* The events of rank 0's own runs: the coordinator serves requests between batches. */
static int coord_run_event(void *ctx, const rm_run_event *ev) {
    static const cli_run_printer quiet = {.quiet = 1};
    if (ev->kind == RM_RUN_EVENT_BATCH) coord_poll(ctx);
    return cli_print_run_event((void *)&quiet, ev);
}

/* Longest first; equal costs keep file order (stable insertion sort: sweeps are small). */
static void sort_by_cost_desc(int *q, int n, const double *cost) {
    for (int i = 1; i < n; i++) {
        int v = q[i], j = i - 1;
        while (j >= 0 && cost[q[j]] < cost[v]) {
            q[j + 1] = q[j];
            j--;
        }
        q[j + 1] = v;
    }
}

/* Which runs need training: completed ones (same configuration) are skipped, failed or
 * diverged ones only with --retry-failed; the rest (absent, running, preempted) run or
 * resume. */
static void coord_plan(coordinator *c, const sweep_opts *o) {
    const rm_sweep *s = c->sweep;
    for (int i = 0; i < s->n_runs; i++) {
        c->cost[i] = rm_sweep_run_cost(&s->runs[i]);
        char path[768];
        snprintf(path, sizeof path, "%s/%s.h5", s->runs[i].cfg.outdir, s->runs[i].id);
        struct stat sb;
        int queue_it = 1;
        if (stat(path, &sb) == 0) {
            rm_run_summary sum;
            if (rm_runfile_read(path, &sum) == RM_OK) {
                int same = !strcmp(sum.config_hash, s->runs[i].hash);
                if (same && sum.status == RM_RUN_COMPLETED) {
                    queue_it = 0;
                    c->skipped_done++;
                    index_update(c, i, "completed", "", (int)sum.mpi_rank, (int)sum.rows, NAN, NAN);
                } else if (same && (sum.status == RM_RUN_FAILED || sum.status == RM_RUN_DIVERGED) && !o->retry_failed) {
                    queue_it = 0;
                    c->failed++;
                    index_update(c, i, rm_run_status_name(sum.status), sum.status_reason, (int)sum.mpi_rank,
                                 (int)sum.rows, NAN, NAN);
                }
                rm_run_summary_free(&sum);
            } else {
                rm_error_clear(); /* unreadable: the run itself will report it */
            }
        }
        if (queue_it) {
            c->queue[c->n_queue++] = i;
            c->cost_total += c->cost[i];
        }
    }
    sort_by_cost_desc(c->queue, c->n_queue, c->cost);
    c->total_to_run = c->n_queue;
}

/* ---- every group: ask for a run, train it, report ---- */

static int request_run(coordinator *c, int world_rank) {
    if (world_rank == 0) return coord_next(c, 0);
    int run, dummy = 0;
    MPI_Send(&dummy, 1, MPI_INT, 0, TAG_REQUEST, MPI_COMM_WORLD);
    MPI_Recv(&run, 1, MPI_INT, 0, TAG_ASSIGN, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    return run;
}

static void report_done(coordinator *c, int world_rank, const done_msg *m) {
    if (world_rank == 0) coord_done(c, m);
    else MPI_Send((void *)m, sizeof *m, MPI_BYTE, 0, TAG_DONE, MPI_COMM_WORLD);
}

static int node_threads(void) {
    MPI_Comm node;
    int local = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int t = (int)(cores > 0 ? cores : 1) / local;
    return t < 1 ? 1 : t;
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

static int sweep_main(const sweep_opts *o, const rm_sweep *s, int rank, int size) {
    if (size % o->ranks_per_run) {
        if (rank == 0) fprintf(stderr, "regmix sweep: --ranks-per-run %d does not divide the %d ranks\n", o->ranks_per_run, size);
        return EXIT_USAGE;
    }
    /* groups of K consecutive ranks train one run together (data parallel); a group's
     * first rank (its leader) talks to the coordinator and writes the run's files */
    const int K = o->ranks_per_run, leader = rank % K == 0;
    MPI_Comm group_comm;
    rm_dp *dp = NULL;
    if (MPI_Comm_split(MPI_COMM_WORLD, rank / K, rank, &group_comm) != MPI_SUCCESS) {
        fprintf(stderr, "regmix sweep: MPI_Comm_split into groups of %d ranks failed\n", K);
        MPI_Abort(MPI_COMM_WORLD, EXIT_FAILED);
    }
    if (K > 1 && rm_dp_create(group_comm, &dp) != RM_OK) {
        fprintf(stderr, "regmix sweep: %s\n", rm_error_message());
        MPI_Abort(MPI_COMM_WORLD, EXIT_FAILED);
    }
    int threads = o->threads ? o->threads : node_threads();
    coordinator c = {.sweep = s, .quiet = o->quiet, .groups_left = size / o->ranks_per_run};
    int rc = EXIT_COMPLETED;
    if (rank == 0) {
        char dir[600], index_path[700];
        snprintf(dir, sizeof dir, "%s", s->runs[0].cfg.outdir);
        snprintf(index_path, sizeof index_path, "%s/sweep.h5", dir);
        c.queue = calloc((size_t)s->n_runs, sizeof(int));
        c.cost = calloc((size_t)s->n_runs, sizeof(double));
        if (rm_make_dirs(dir) != RM_OK) {
            fprintf(stderr, "regmix sweep: %s\n", rm_error_message());
            MPI_Abort(MPI_COMM_WORLD, EXIT_FAILED);
        }
        if (rm_sweep_index_create(index_path, s, size, o->ranks_per_run, &c.index) != RM_OK) {
            fprintf(stderr, "regmix sweep: %s\n", rm_error_message());
            MPI_Abort(MPI_COMM_WORLD, EXIT_FAILED);
        }
        coord_plan(&c, o);
        c.t0 = MPI_Wtime();
        if (!o->quiet) {
            printf("# regmix sweep %s: %d runs (%d to train, %d already complete, %d failed earlier), %d ranks, "
                   "%d thread(s) each; index %s\n", s->name, s->n_runs, c.n_queue, c.skipped_done, c.failed, size,
                   threads, index_path);
            fflush(stdout);
        }
    }
    int preempted = 0, failed = 0;
    for (;;) {
        int run = leader ? request_run(&c, rank) : NO_MORE_RUNS;
        MPI_Bcast(&run, 1, MPI_INT, 0, group_comm); /* the leader is the group's rank 0 */
        if (run == NO_MORE_RUNS) break;
        rm_config cfg = s->runs[run].cfg;
        if (cfg.threads == 0) cfg.threads = threads;
        omp_set_num_threads(cfg.threads);
        rm_run_result res = {0};
        cli_run_printer quiet = {.quiet = 1};
        rm_run_options ro = {.mpi_rank = rank, .mpi_size = size, .threads = cfg.threads, .dp = dp,
                             .on_event = rank == 0 ? coord_run_event : cli_print_run_event,
                             .ctx = rank == 0 ? (void *)&c : (void *)&quiet};
        int run_rc = (int)rm_run(&cfg, &ro, &res);
        if (run_rc == EXIT_PREEMPTED) preempted = 1;
        else if (run_rc != EXIT_COMPLETED) failed = 1;
        if (run_rc != EXIT_COMPLETED && run_rc != EXIT_PREEMPTED && res.reason[0] == '\0')
            snprintf(res.reason, sizeof res.reason, "%s", rm_error_message());
        rm_error_clear();
        if (!leader) continue;
        done_msg m = {.run = run, .status = res.status, .epochs = res.epochs, .rank = rank};
        snprintf(m.reason, sizeof m.reason, "%s", res.reason);
        report_done(&c, rank, &m);
    }
    rm_dp_destroy(dp);
    MPI_Comm_free(&group_comm);
    if (rank == 0) {
        /* keep serving until every other group has been told there is nothing left */
        while (c.groups_left > 0) {
            coord_poll(&c);
            if (c.groups_left > 0) nanosleep(&(struct timespec){0, 2000000}, NULL);
        }
        if (rm_sweep_index_close(c.index) != RM_OK) fprintf(stderr, "regmix sweep: %s\n", rm_error_message());
        if (!o->quiet && c.total_to_run == 0) print_progress(&c);
        failed |= c.failed > 0;
        preempted |= c.stopping;
        free(c.queue), free(c.cost);
    }
    int flags[2] = {preempted, failed}, all[2];
    MPI_Allreduce(flags, all, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (all[0]) rc = EXIT_PREEMPTED;
    else if (all[1]) rc = EXIT_FAILED;
    return rc;
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
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    rm_sweep s;
    int rc;
    if (rm_sweep_load(o.path, &s) != RM_OK) {
        if (rank == 0) fprintf(stderr, "regmix sweep: %s\n", rm_error_message());
        rc = EXIT_USAGE;
    } else {
        rc = sweep_main(&o, &s, rank, size);
        rm_sweep_free(&s);
    }
    MPI_Finalize();
    return rc;
}
