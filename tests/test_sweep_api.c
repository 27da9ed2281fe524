/* A sweep through the library (rm_sweep_train, include/regmix/sweep.h), without the
 * binary: this program runs itself under `mpirun -n 2` (and -n 1) in a child mode that
 * loads a 3-run sweep, calls rm_sweep_train on MPI_COMM_WORLD and logs every sweep event
 * (rank 0) and run event (each rank) to a file; the tests read the logs, the index and
 * the run files:
 * - stopped: the run callback asks every run to stop at its 2nd batch: the sweep ends
 *   PREEMPTED on every rank, the started runs are "preempted" in the index, nothing more
 *   is handed out (the others stay "pending");
 * - resumed: the same sweep again completes: the preempted runs resume (RESUMED), each
 *   run reports epochs 1 and 2 from the rank it ran on, with the test accuracies its run
 *   file holds (bit for bit), both ranks trained, every run completed in the index;
 * - again (1 rank): nothing to train, every run already complete.
 * Small Fashion-MNIST runs (skipped when the dataset is not installed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"

#include "regmix/sweep.h"

static char workdir[256];
static char self[1024];
enum { N_RUNS = 3 };
static const char *ids[N_RUNS] = {"lr-0.1", "lr-0.05", "lr-0.02"};

/* ------------------------------------------------------------------ child mode */

typedef struct {
    FILE *log;
    int stop; /* ask every run to stop at its 2nd batch of epoch 1 */
} child_state;

static void log_sweep(void *ctx, const rm_sweep_event *ev) {
    FILE *f = ((child_state *)ctx)->log;
    switch (ev->kind) {
    case RM_SWEEP_EVENT_PLANNED:
        fprintf(f, "PLANNED %d %d %d\n", ev->n_to_train, ev->n_complete, ev->n_failed);
        break;
    case RM_SWEEP_EVENT_RUN_START: fprintf(f, "START %d %d\n", ev->run, ev->rank); break;
    case RM_SWEEP_EVENT_RUN_EPOCH:
        fprintf(f, "EPOCH %d %d %d %d", ev->run, ev->rank, ev->epoch, ev->epochs);
        for (int i = 0; i < ev->n_test; i++) fprintf(f, " %s=%.17g", ev->test_name[i], ev->test_value[i]);
        fprintf(f, "\n");
        break;
    case RM_SWEEP_EVENT_RUN_DONE: fprintf(f, "DONE %d %d %s\n", ev->run, ev->rank, ev->status); break;
    case RM_SWEEP_EVENT_PROGRESS:
        fprintf(f, "PROGRESS %d %d %d %d\n", ev->n_done, ev->n_to_train, ev->n_failed, ev->n_complete);
        break;
    case RM_SWEEP_EVENT_ERROR: fprintf(f, "ERROR %s\n", ev->message); break;
    }
    fflush(f);
}

static int log_run(void *ctx, const rm_run_event *ev) {
    child_state *c = ctx;
    if (ev->kind == RM_RUN_EVENT_RESUMED) fprintf(c->log, "RESUMED %s\n", ev->run_id);
    if (ev->kind == RM_RUN_EVENT_FINISHED) fprintf(c->log, "FINISHED %s %s\n", ev->run_id, rm_run_status_name(ev->status));
    fflush(c->log);
    return c->stop && ev->kind == RM_RUN_EVENT_BATCH && ev->epoch == 1 && ev->done == 2;
}

/* argv: --child DIR PHASE (stop | resume | again) */
static int child(char **argv) {
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return 90;
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char path[600];
    snprintf(path, sizeof path, "%s/%s-%d.log", argv[2], argv[3], rank);
    child_state c = {fopen(path, "w"), !strcmp(argv[3], "stop")};
    if (!c.log) return 91;
    snprintf(path, sizeof path, "%s/api.yaml", argv[2]);
    rm_sweep s;
    if (rm_sweep_load(path, &s) != RM_OK) {
        fprintf(c.log, "LOAD %s\n", rm_error_message());
        return 92;
    }
    rm_sweep_options o = {.ranks_per_run = 1, .on_event = log_sweep, .ctx = &c, .on_run_event = log_run, .run_ctx = &c};
    rm_run_end end = rm_sweep_train(&s, MPI_COMM_WORLD, &o);
    fprintf(c.log, "END %d\n", (int)end);
    fclose(c.log);
    rm_sweep_free(&s);
    MPI_Finalize();
    return 0;
}

/* ------------------------------------------------------------------ the tests */

static void run_child(const char *phase, int ranks) {
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rm_test_mpi_env();
        char log[600], n[8];
        snprintf(log, sizeof log, "%s/mpirun-%s.log", workdir, phase);
        if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr)) _exit(99);
        snprintf(n, sizeof n, "%d", ranks);
        execlp("mpirun", "mpirun", "-n", n, self, "--child", workdir, phase, (char *)NULL);
        _exit(98);
    }
    int rc = rm_test_wait_exit(pid);
    if (rc != 0) fail_msg("mpirun %s exited with %d (see %s/mpirun-%s.log)", phase, rc, workdir, phase);
}

/* The lines of <phase>-<rank>.log (at most 256), NUL-terminated, in lines[]. */
typedef struct {
    int n;
    char line[256][512];
} log_lines;

static void read_log(const char *phase, int rank, log_lines *out) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s-%d.log", workdir, phase, rank);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("no log %s", path);
    out->n = 0;
    while (out->n < 256 && fgets(out->line[out->n], sizeof out->line[0], f)) {
        out->line[out->n][strcspn(out->line[out->n], "\n")] = '\0';
        out->n++;
    }
    fclose(f);
}

static int count_prefix(const log_lines *l, const char *prefix) {
    int n = 0;
    for (int i = 0; i < l->n; i++) n += !strncmp(l->line[i], prefix, strlen(prefix));
    return n;
}

static const char *find_prefix(const log_lines *l, const char *prefix) {
    for (int i = 0; i < l->n; i++)
        if (!strncmp(l->line[i], prefix, strlen(prefix))) return l->line[i];
    return NULL;
}

static void index_table(rm_sweep_index_table *t) {
    char path[600];
    snprintf(path, sizeof path, "%s/results/sweep.h5", workdir);
    assert_int_equal(rm_sweep_index_read(path, t), RM_OK);
    assert_int_equal(t->n_runs, N_RUNS);
}

static void test_stopped_sweep_is_preempted(void **state) {
    (void)state;
    run_child("stop", 2);
    log_lines l0, l1;
    read_log("stop", 0, &l0);
    read_log("stop", 1, &l1);
    assert_string_equal(l0.line[l0.n - 1], "END 4");
    assert_string_equal(l1.line[l1.n - 1], "END 4");
    assert_string_equal(l0.line[0], "PLANNED 3 0 0");
    int started = count_prefix(&l0, "START ");
    assert_true(started >= 1 && started <= 2); /* one per rank at most: no run after a stop */
    assert_int_equal(count_prefix(&l0, "DONE "), started);
    assert_int_equal(count_prefix(&l0, "EPOCH "), 0);
    rm_sweep_index_table t;
    index_table(&t);
    int preempted = 0, pending = 0;
    for (int i = 0; i < N_RUNS; i++) {
        preempted += !strcmp(t.runs[i].status, "preempted");
        pending += !strcmp(t.runs[i].status, "pending");
    }
    assert_int_equal(preempted, started);
    assert_int_equal(pending, N_RUNS - started);
    rm_sweep_index_table_free(&t);
}

/* The test_clean column of a run file at epoch e (1-based). */
static double clean_at(const char *id, int e) {
    char path[600];
    snprintf(path, sizeof path, "%s/results/%s.h5", workdir, id);
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    int m = rm_run_summary_find(&s, "test_clean");
    assert_true(m >= 0 && s.rows >= e);
    double v = s.columns[m].values[e - 1];
    rm_run_summary_free(&s);
    return v;
}

static void test_resumed_sweep_completes_with_epoch_reports(void **state) {
    (void)state;
    run_child("resume", 2);
    log_lines l0, l1;
    read_log("resume", 0, &l0);
    read_log("resume", 1, &l1);
    assert_string_equal(l0.line[l0.n - 1], "END 0");
    assert_string_equal(l1.line[l1.n - 1], "END 0");
    assert_string_equal(l0.line[0], "PLANNED 3 0 0");
    /* the runs preempted before resume from their checkpoints, on whichever rank */
    log_lines stop;
    read_log("stop", 0, &stop);
    assert_int_equal(count_prefix(&l0, "RESUMED ") + count_prefix(&l1, "RESUMED "), count_prefix(&stop, "START "));
    int used[2] = {0, 0};
    for (int r = 0; r < N_RUNS; r++) {
        char prefix[32];
        int run, rank;
        snprintf(prefix, sizeof prefix, "START %d ", r);
        const char *start = find_prefix(&l0, prefix);
        assert_non_null(start);
        assert_int_equal(sscanf(start, "START %d %d", &run, &rank), 2);
        assert_true(rank == 0 || rank == 1);
        used[rank] = 1;
        snprintf(prefix, sizeof prefix, "DONE %d %d completed", r, rank);
        assert_non_null(find_prefix(&l0, prefix));
        /* epochs 1 and 2, in order, from that rank, with the file's accuracies */
        int seen = 0;
        for (int i = 0; i < l0.n; i++) {
            int erun, erank, epoch, epochs;
            char clean[64];
            if (sscanf(l0.line[i], "EPOCH %d %d %d %d clean=%63s", &erun, &erank, &epoch, &epochs, clean) != 5 ||
                erun != r)
                continue;
            assert_int_equal(erank, rank);
            assert_int_equal(epoch, ++seen);
            assert_int_equal(epochs, 2);
            assert_non_null(strstr(l0.line[i], " pgd3="));
            double want = clean_at(ids[r], epoch);
            if (strtod(clean, NULL) != want) fail_msg("run %s epoch %d: event %s, file %.17g", ids[r], epoch, clean, want);
        }
        assert_int_equal(seen, 2);
    }
    assert_true(used[0] && used[1]);
    assert_non_null(find_prefix(&l0, "PROGRESS 3 3 0 0")); /* done, to train, failed, complete before */
    rm_sweep_index_table t;
    index_table(&t);
    for (int i = 0; i < N_RUNS; i++) {
        assert_string_equal(t.runs[i].id, ids[i]);
        assert_string_equal(t.runs[i].status, "completed");
        assert_int_equal(t.runs[i].epochs, 2);
    }
    rm_sweep_index_table_free(&t);
}

static void test_finished_sweep_has_nothing_to_train(void **state) {
    (void)state;
    run_child("again", 1);
    log_lines l0;
    read_log("again", 0, &l0);
    assert_int_equal(l0.n, 3);
    assert_string_equal(l0.line[0], "PLANNED 0 3 0");
    assert_string_equal(l0.line[1], "PROGRESS 0 0 0 3");
    assert_string_equal(l0.line[2], "END 0");
}

static int setup(void **state) {
    (void)state;
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &sb) != 0) {
        printf("SKIPPED: Fashion-MNIST is not installed (package dataset-fashion-mnist)\n");
        exit(0);
    }
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = '\0';
    snprintf(workdir, sizeof workdir, "/tmp/regmix-sweep-api-XXXXXX");
    if (!mkdtemp(workdir)) return -1;
    char path[600];
    snprintf(path, sizeof path, "%s/api.yaml", workdir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "name: api\n"
               "base:\n"
               "  train_subset: 256\n  test_subset: 64\n  batch: 64\n  epochs: 2\n  threads: 1\n"
               "  eval_attacks: [clean, pgd3]\n  reg: mse\n  outdir: %s/results\n"
               "grid:\n  lr: [0.1, 0.05, 0.02]\n", workdir);
    return fclose(f) == 0 ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_tree(workdir);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--child")) return child(argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stopped_sweep_is_preempted),
        cmocka_unit_test(test_resumed_sweep_completes_with_epoch_reports),
        cmocka_unit_test(test_finished_sweep_has_nothing_to_train),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
