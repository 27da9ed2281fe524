/* Training a sweep over MPI ranks (include/regmix/sweep.h, "Scheduler"): rank 0's queue
 * and index, the groups' request / train / report loop. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "regmix/sweep.h"

enum { TAG_REQUEST = 11, TAG_ASSIGN = 12, TAG_DONE = 13, TAG_EPOCH = 14 };
enum { NO_MORE_RUNS = -1 };

/* What a group leader reports to rank 0 when a run ends. */
typedef struct {
    int run, status, epochs, rank;
    char reason[256];
} done_msg;

/* What a group leader sends to rank 0 after every epoch of its run. */
typedef struct {
    int run, rank, epoch, epochs, n_test;
    double seconds;
    char name[RM_SWEEP_EPOCH_METRICS][48];
    double value[RM_SWEEP_EPOCH_METRICS];
} epoch_msg;

typedef struct {
    const rm_sweep *sweep;
    const rm_sweep_options *o;
    MPI_Comm comm;              /* a duplicate of the caller's: our tags meet no one else's */
    int rank, size;             /* in comm */
    rm_sweep_index *index;
    int *queue, n_queue, next;  /* runs to train, longest first */
    int groups_left;            /* groups that have not yet been told "no more runs" */
    int done, failed, running, skipped_done, total_to_run;
    double t0, cost_done, cost_total;
    double *cost;
    int stopping;
    int current_run;            /* the run this rank trains now */
    int lock_fd;                /* rank 0: <outdir>/sweep.lock, flock'ed for the sweep's duration */
    int index_failed;           /* rank 0: an index write failed; the index is no longer updated */
} coordinator;

static void emit(const coordinator *c, rm_sweep_event *ev) {
    ev->sweep = c->sweep;
    if (c->o->on_event) c->o->on_event(c->o->ctx, ev);
}

static void emit_error(const coordinator *c, const char *message) {
    rm_sweep_event ev = {.kind = RM_SWEEP_EVENT_ERROR, .message = message};
    emit(c, &ev);
}

rm_sweep_run_state rm_sweep_run_check(const rm_sweep_run *r, rm_run_summary *sum_out) {
    rm_run_summary sum;
    memset(&sum, 0, sizeof sum);
    if (sum_out) memset(sum_out, 0, sizeof *sum_out);
    char path[768];
    snprintf(path, sizeof path, "%s/%s.h5", r->cfg.outdir, r->id);
    struct stat sb;
    if (stat(path, &sb) != 0) return RM_SWEEP_RUN_NEW;
    if (rm_runfile_read(path, &sum) != RM_OK) {
        rm_error_clear();
        return RM_SWEEP_RUN_UNREADABLE;
    }
    rm_sweep_run_state state;
    if (strcmp(sum.identity_hash, r->hash)) state = RM_SWEEP_RUN_OTHER_CONFIG; /* as resume judges it */
    else if (sum.status == RM_RUN_COMPLETED) state = RM_SWEEP_RUN_COMPLETED;
    else if (sum.status == RM_RUN_FAILED || sum.status == RM_RUN_DIVERGED) state = RM_SWEEP_RUN_FAILED;
    else state = RM_SWEEP_RUN_RESUMABLE;
    if (sum_out) *sum_out = sum;
    else rm_run_summary_free(&sum);
    return state;
}

/* ---- rank 0: the queue and the index ---- */

static void progress(coordinator *c) {
    double el = MPI_Wtime() - c->t0;
    rm_sweep_event ev = {.kind = RM_SWEEP_EVENT_PROGRESS, .n_to_train = c->total_to_run, .n_done = c->done,
                         .n_running = c->running, .n_failed = c->failed, .n_complete = c->skipped_done,
                         .elapsed = el,
                         .eta = c->cost_done > 0 ? el / c->cost_done * (c->cost_total - c->cost_done) : NAN};
    emit(c, &ev);
}

/* The index is derived data: the run files are the record. A failed write (a full disk)
 * does not stop the runs, which write their own files; it is reported once, the index is
 * left alone from then on, and the sweep ends failed so that the next `regmix sweep` of
 * the same file (which rebuilds the index from the run files, retraining nothing
 * finished) is run. */
static void index_failed(coordinator *c, const char *what) {
    char msg[900];
    snprintf(msg, sizeof msg,
             "the sweep index could not be %s (%s); the runs go on and their own files hold every result; "
             "run the same `regmix sweep` again to rebuild the index from them",
             what, rm_error_message());
    emit_error(c, msg);
    rm_error_clear();
    c->index_failed = 1;
}

static void index_update(coordinator *c, int run, const char *status, const char *reason, int rank, int epochs,
                         double start, double end) {
    if (c->index_failed) return;
    if (rm_sweep_index_update(c->index, run, status, reason, rank, epochs, start, end) != RM_OK)
        index_failed(c, "updated");
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
    rm_sweep_event ev = {.kind = RM_SWEEP_EVENT_RUN_START, .rank = rank, .run = run};
    emit(c, &ev);
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
    rm_sweep_event ev = {.kind = RM_SWEEP_EVENT_RUN_DONE, .rank = m->rank, .run = m->run, .status = status,
                         .reason = m->reason};
    emit(c, &ev);
    progress(c);
}

static void coord_epoch(coordinator *c, const epoch_msg *m) {
    rm_sweep_event ev = {.kind = RM_SWEEP_EVENT_RUN_EPOCH, .rank = m->rank, .run = m->run, .epoch = m->epoch,
                         .epochs = m->epochs, .epoch_seconds = m->seconds, .n_test = m->n_test,
                         .test_name = m->name, .test_value = m->value};
    emit(c, &ev);
}

/* Serves every pending request and report (non-blocking). */
static void coord_poll(coordinator *c) {
    int flag;
    MPI_Status st;
    while (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, c->comm, &flag, &st) == MPI_SUCCESS && flag) {
        if (st.MPI_TAG == TAG_REQUEST) {
            int dummy;
            MPI_Recv(&dummy, 1, MPI_INT, st.MPI_SOURCE, TAG_REQUEST, c->comm, MPI_STATUS_IGNORE);
            int run = coord_next(c, st.MPI_SOURCE);
            MPI_Send(&run, 1, MPI_INT, st.MPI_SOURCE, TAG_ASSIGN, c->comm);
        } else if (st.MPI_TAG == TAG_DONE) {
            done_msg m;
            MPI_Recv(&m, sizeof m, MPI_BYTE, st.MPI_SOURCE, TAG_DONE, c->comm, MPI_STATUS_IGNORE);
            coord_done(c, &m);
        } else if (st.MPI_TAG == TAG_EPOCH) {
            epoch_msg m;
            MPI_Recv(&m, sizeof m, MPI_BYTE, st.MPI_SOURCE, TAG_EPOCH, c->comm, MPI_STATUS_IGNORE);
            coord_epoch(c, &m);
        } else {
            MPI_Recv(NULL, 0, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, c->comm, MPI_STATUS_IGNORE);
        }
    }
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

/* Which runs need training (the restart rules in sweep.h). */
static void coord_plan(coordinator *c) {
    const rm_sweep *s = c->sweep;
    for (int i = 0; i < s->n_runs; i++) {
        c->cost[i] = rm_sweep_run_cost(&s->runs[i]);
        rm_run_summary sum;
        rm_sweep_run_state state = rm_sweep_run_check(&s->runs[i], &sum);
        int queue_it = 1;
        if (state == RM_SWEEP_RUN_COMPLETED) {
            queue_it = 0;
            c->skipped_done++;
            index_update(c, i, "completed", "", (int)sum.mpi_rank, (int)sum.rows, NAN, NAN);
        } else if (state == RM_SWEEP_RUN_FAILED && !c->o->retry_failed) {
            queue_it = 0;
            c->failed++;
            index_update(c, i, rm_run_status_name(sum.status), sum.status_reason, (int)sum.mpi_rank, (int)sum.rows,
                         NAN, NAN);
        }
        rm_run_summary_free(&sum);
        if (queue_it) {
            c->queue[c->n_queue++] = i;
            c->cost_total += c->cost[i];
        }
    }
    sort_by_cost_desc(c->queue, c->n_queue, c->cost);
    c->total_to_run = c->n_queue;
}

/* The output folder belongs to this sweep alone while it runs: an exclusive flock on
 * <dir>/sweep.lock (held until rank 0 leaves rm_sweep_train; the kernel drops it when the
 * process dies), and a folder whose index names another sweep is refused. An unreadable
 * index is not a refusal: it is derived data and rebuilt. */
static rm_status claim_folder(coordinator *c, const char *dir, const char *index_path) {
    const rm_sweep *s = c->sweep;
    char lock_path[700];
    snprintf(lock_path, sizeof lock_path, "%s/sweep.lock", dir);
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return rm_fail(RM_ERR_IO, "open(%s): %s", lock_path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return rm_fail(RM_ERR_STATE,
                           "%s: another sweep is writing into this folder (lock %s held); refusing to start sweep %s",
                           dir, lock_path, s->name);
        return rm_fail(RM_ERR_IO, "flock(%s): %s", lock_path, strerror(e));
    }
    c->lock_fd = fd;
    rm_sweep_index_table old;
    if (rm_sweep_index_read(index_path, &old) != RM_OK) {
        rm_error_clear();
        return RM_OK;
    }
    rm_status st = RM_OK;
    if (strcmp(old.name, s->name))
        st = rm_fail(RM_ERR_STATE,
                     "%s holds the files of sweep \"%s\", not \"%s\" (%s): refusing to mix two sweeps in one folder; "
                     "choose another outdir",
                     dir, old.name, s->name, index_path);
    rm_sweep_index_table_free(&old);
    return st;
}

/* Rank 0 before any run: the output folder, the index, the plan. */
static rm_status coord_start(coordinator *c, int size, int threads) {
    const rm_sweep *s = c->sweep;
    char dir[600], index_path[700];
    snprintf(dir, sizeof dir, "%s", s->runs[0].cfg.outdir);
    snprintf(index_path, sizeof index_path, "%s/sweep.h5", dir);
    c->queue = calloc((size_t)s->n_runs, sizeof(int));
    c->cost = calloc((size_t)s->n_runs, sizeof(double));
    if (!c->queue || !c->cost) return rm_fail(RM_ERR_NOMEM, "sweep %s: out of memory for %d runs", s->name, s->n_runs);
    RM_TRY(rm_make_dirs(dir));
    RM_TRY(claim_folder(c, dir, index_path));
    RM_TRY(rm_sweep_index_create(index_path, s, size, c->o->ranks_per_run, &c->index));
    coord_plan(c);
    c->t0 = MPI_Wtime();
    rm_sweep_event ev = {.kind = RM_SWEEP_EVENT_PLANNED, .n_to_train = c->n_queue, .n_complete = c->skipped_done,
                         .n_failed = c->failed, .mpi_size = size, .threads = threads, .index_path = index_path};
    emit(c, &ev);
    return RM_OK;
}

/* ---- every group: ask for a run, train it, report ---- */

static int request_run(coordinator *c, int world_rank) {
    if (world_rank == 0) return coord_next(c, 0);
    int run, dummy = 0;
    MPI_Send(&dummy, 1, MPI_INT, 0, TAG_REQUEST, c->comm);
    MPI_Recv(&run, 1, MPI_INT, 0, TAG_ASSIGN, c->comm, MPI_STATUS_IGNORE);
    return run;
}

static void report_done(coordinator *c, int world_rank, const done_msg *m) {
    if (world_rank == 0) coord_done(c, m);
    else MPI_Send((void *)m, sizeof *m, MPI_BYTE, 0, TAG_DONE, c->comm);
}

/* A finished epoch of this rank's run, to rank 0: its test accuracies and wall time. */
static void send_epoch(coordinator *c, const rm_run_event *ev) {
    epoch_msg m = {.run = c->current_run, .rank = c->rank, .epoch = ev->epoch, .epochs = ev->cfg->epochs};
    const rm_trainer *t = ev->trainer;
    for (int i = 0; i < rm_trainer_metric_count(t); i++) {
        const char *name = rm_trainer_metric(t, i)->name;
        if (!strcmp(name, "epoch_seconds")) m.seconds = ev->row[i];
        else if (!strncmp(name, "test_", 5) && isfinite(ev->row[i]) && m.n_test < RM_SWEEP_EPOCH_METRICS) {
            snprintf(m.name[m.n_test], sizeof m.name[0], "%s", name + 5);
            m.value[m.n_test++] = ev->row[i];
        }
    }
    if (c->rank == 0) coord_epoch(c, &m);
    else MPI_Send(&m, sizeof m, MPI_BYTE, 0, TAG_EPOCH, c->comm);
}

/* The events of the runs this rank trains: rank 0 serves requests between its batches;
 * every leader reports its epochs; then the caller's callback. */
static int run_event(void *ctx, const rm_run_event *ev) {
    coordinator *c = ctx;
    if (c->rank == 0 && ev->kind == RM_RUN_EVENT_BATCH) coord_poll(c);
    if (ev->kind == RM_RUN_EVENT_EPOCH) send_epoch(c, ev);
    return c->o->on_run_event ? c->o->on_run_event(c->o->run_ctx, ev) : 0;
}

static int node_threads(MPI_Comm comm) {
    MPI_Comm node;
    int local = 1;
    if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &local);
        MPI_Comm_free(&node);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int t = (int)(cores > 0 ? cores : 1) / local;
    /* a rank bound to fewer CPUs (mpirun's default binding) gets no more threads than it
     * has CPUs: more would share them and run slower */
    const int allowed = rm_cpus_allowed();
    if (allowed > 0 && t > allowed) {
        int rank;
        MPI_Comm_rank(comm, &rank);
        if (rank == 0)
            fprintf(stderr,
                    "regmix: note: each rank is bound to %d CPU(s), so it runs %d thread(s), not %d; for %d "
                    "threads per rank start mpirun with --map-by slot:PE=%d (or --bind-to none)\n",
                    allowed, allowed, t, t, t);
        t = allowed;
    }
    return t < 1 ? 1 : t;
}

/* More threads than the `allowed` CPUs mpirun bound the rank to: a warning; 1 if given. */
static int warn_oversubscribed(int rank, int threads, int allowed) {
    if (allowed <= 0 || threads <= allowed) return 0;
    fprintf(stderr,
            "regmix: warning: rank %d runs %d OpenMP threads on the %d CPU(s) it is bound to: they share them and "
            "run slower; start mpirun with --map-by slot:PE=%d (or --bind-to none)\n",
            rank, threads, allowed, threads);
    return 1;
}

/* Runs handed out until rank 0 says there are no more. Returns preempted / failed. */
static void train_runs(coordinator *c, MPI_Comm group_comm, rm_dp *dp, int threads, int *preempted, int *failed) {
    const rm_sweep *s = c->sweep;
    const int rank = c->rank, size = c->size;
    const int leader = rank % c->o->ranks_per_run == 0;
    const int allowed = rm_cpus_allowed(); /* the binding does not change between runs */
    int warned = 0;                        /* once per rank */
    for (;;) {
        int run = leader ? request_run(c, rank) : NO_MORE_RUNS;
        MPI_Bcast(&run, 1, MPI_INT, 0, group_comm); /* the leader is the group's rank 0 */
        if (run == NO_MORE_RUNS) break;
        c->current_run = run;
        rm_config cfg = s->runs[run].cfg;
        if (cfg.threads == 0) cfg.threads = threads;
        if (!warned) warned = warn_oversubscribed(rank, cfg.threads, allowed);
        omp_set_num_threads(cfg.threads);
        rm_run_result res;
        rm_run_options ro = {.mpi_rank = rank, .mpi_size = size, .threads = cfg.threads, .dp = dp,
                             .on_event = run_event, .ctx = c};
        rm_run_end end = rm_run(&cfg, &ro, &res);
        if (end == RM_RUN_END_PREEMPTED) *preempted = 1;
        else if (end != RM_RUN_END_COMPLETED) *failed = 1;
        if (end != RM_RUN_END_COMPLETED && end != RM_RUN_END_PREEMPTED && res.reason[0] == '\0')
            snprintf(res.reason, sizeof res.reason, "%s", rm_error_message());
        rm_error_clear();
        if (!leader) continue;
        done_msg m = {.run = run, .status = res.status, .epochs = res.epochs, .rank = rank};
        snprintf(m.reason, sizeof m.reason, "%s", res.reason);
        report_done(c, rank, &m);
    }
}

rm_run_end rm_sweep_train(const rm_sweep *s, MPI_Comm comm, const rm_sweep_options *o) {
    coordinator c = {.sweep = s, .o = o, .lock_fd = -1};
    MPI_Comm_rank(comm, &c.rank);
    MPI_Comm_size(comm, &c.size);
    const int rank = c.rank, size = c.size;
    const int K = o->ranks_per_run;
    if (K < 1 || size % K) {
        if (rank == 0) {
            char msg[128];
            snprintf(msg, sizeof msg, "--ranks-per-run %d does not divide the %d ranks", K, size);
            emit_error(&c, msg);
        }
        return RM_RUN_END_REFUSED;
    }
    /* groups of K consecutive ranks train one run together (data parallel); a group's
     * first rank (its leader) talks to the coordinator and writes the run's files */
    MPI_Comm group_comm;
    rm_dp *dp = NULL;
    if (MPI_Comm_dup(comm, &c.comm) != MPI_SUCCESS || MPI_Comm_split(comm, rank / K, rank, &group_comm) != MPI_SUCCESS) {
        emit_error(&c, "MPI_Comm_dup / MPI_Comm_split into groups of ranks failed");
        MPI_Abort(comm, RM_RUN_END_FAILED);
    }
    if (K > 1 && rm_dp_create(group_comm, &dp) != RM_OK) {
        emit_error(&c, rm_error_message());
        MPI_Abort(comm, RM_RUN_END_FAILED);
    }
    int threads = o->threads ? o->threads : node_threads(comm);
    c.groups_left = size / K;
    int ok = 1;
    if (rank == 0 && coord_start(&c, size, threads) != RM_OK) {
        emit_error(&c, rm_error_message());
        rm_error_clear();
        ok = 0;
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, comm); /* nobody asks for runs of a sweep without an index */
    int preempted = 0, failed = 0;
    if (ok) train_runs(&c, group_comm, dp, threads, &preempted, &failed);
    rm_dp_destroy(dp);
    MPI_Comm_free(&group_comm);
    if (rank == 0 && ok) {
        /* keep serving until every other group has been told there is nothing left */
        while (c.groups_left > 0) {
            coord_poll(&c);
            if (c.groups_left > 0) nanosleep(&(struct timespec){0, 2000000}, NULL);
        }
        if (c.total_to_run == 0) progress(&c);
        failed |= c.failed > 0;
        preempted |= c.stopping;
    }
    if (rank == 0 && c.index && rm_sweep_index_close(c.index) != RM_OK) {
        if (!c.index_failed) index_failed(&c, "closed");
        rm_error_clear();
    }
    if (rank == 0 && c.index_failed) failed = 1;
    if (c.lock_fd >= 0) close(c.lock_fd); /* releases the folder */
    free(c.queue), free(c.cost);
    MPI_Comm_free(&c.comm);
    int flags[2] = {preempted, failed || !ok}, all[2];
    MPI_Allreduce(flags, all, 2, MPI_INT, MPI_MAX, comm);
    if (all[0]) return RM_RUN_END_PREEMPTED;
    if (all[1]) return RM_RUN_END_FAILED;
    return RM_RUN_END_COMPLETED;
}
