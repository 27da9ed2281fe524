/* Faults of a sweep's output folder, through rm_sweep_train: this program runs itself
 * under `mpirun -n 1` in a child mode that loads a 2-run sweep and logs its events.
 * - a full disk for sweep.h5 (tests/support/fault_io) from the end of planning on: one
 *   error naming the index, its path and ENOSPC, saying the run files hold the results;
 *   both runs still complete (their files readable), the sweep ends failed (1); the same
 *   sweep again retrains nothing, ends completed and rebuilds a readable index;
 * - a folder whose sweep.h5 names another sweep: refused before any run, naming both
 *   sweeps; no run file and the other sweep's index untouched;
 * - a folder whose sweep.lock another process holds (what a second sweep writing there at
 *   the same time meets): refused before any run, naming the lock; nothing written.
 * Tiny runs on synthetic IDX data (tests/support/synthetic_data.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fault_io.h"
#include "proc.h"
#include "synthetic_data.h"

#include "regmix/sweep.h"

static char workdir[256];
static char self[1024];
static const char *ids[2] = {"lr-0.1", "lr-0.05"};

/* ------------------------------------------------------------------ child mode */

typedef struct {
    FILE *log;
    int full_disk; /* sweep.h5 meets a full disk once the index is built */
} child_state;

static void log_sweep(void *ctx, const rm_sweep_event *ev) {
    child_state *c = ctx;
    switch (ev->kind) {
    case RM_SWEEP_EVENT_PLANNED:
        fprintf(c->log, "PLANNED %d %d %d\n", ev->n_to_train, ev->n_complete, ev->n_failed);
        if (c->full_disk) fault_io_fail_writes("/results/sweep.h5", 0);
        break;
    case RM_SWEEP_EVENT_RUN_START: fprintf(c->log, "START %d\n", ev->run); break;
    case RM_SWEEP_EVENT_RUN_DONE: fprintf(c->log, "DONE %d %s\n", ev->run, ev->status); break;
    case RM_SWEEP_EVENT_ERROR: fprintf(c->log, "ERROR %s\n", ev->message); break;
    default: break;
    }
    fflush(c->log);
}

/* argv: --child DIR PHASE SWEEP_FILE; PHASE "full" arms the full disk. */
static int child(char **argv) {
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return 90;
    char path[600];
    snprintf(path, sizeof path, "%s/%s.log", argv[2], argv[3]);
    child_state c = {fopen(path, "w"), !strcmp(argv[3], "full")};
    if (!c.log) return 91;
    rm_sweep s;
    if (rm_sweep_load(argv[4], &s) != RM_OK) {
        fprintf(c.log, "LOAD %s\n", rm_error_message());
        return 92;
    }
    rm_sweep_options o = {.ranks_per_run = 1, .threads = 1, .on_event = log_sweep, .ctx = &c};
    rm_run_end end = rm_sweep_train(&s, MPI_COMM_WORLD, &o);
    fprintf(c.log, "END %d\n", (int)end);
    fclose(c.log);
    rm_sweep_free(&s);
    MPI_Finalize();
    /* the disk is still full: leave as the regmix binary does (HDF5's exit handler
     * crashed on the index it could not write) */
    rm_exit(0);
}

/* ------------------------------------------------------------------ the tests */

/* A sweep file DIR/<file> named `name` with runs lr in `lrs`, into DIR/results. */
static void write_sweep(const char *file, const char *name, const char *lrs) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", workdir, file);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "name: %s\nbase:\n"
               "  train_subset: 64\n  test_subset: 32\n  batch: 32\n  epochs: 1\n  threads: 1\n"
               "  eval_attacks: [clean]\n  data_dir: %s/data\n  outdir: %s/results\n"
               "grid:\n  lr: [%s]\n", name, workdir, workdir, lrs);
    assert_int_equal(fclose(f), 0);
}

/* The child's log lines (at most 64). */
typedef struct {
    int n;
    char line[64][1024];
} log_lines;

static void run_child(const char *phase, const char *sweep_file, log_lines *out) {
    char sweep_path[600];
    snprintf(sweep_path, sizeof sweep_path, "%s/%s", workdir, sweep_file);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rm_test_mpi_env();
        char log[600];
        snprintf(log, sizeof log, "%s/mpirun-%s.log", workdir, phase);
        if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr)) _exit(99);
        execlp("mpirun", "mpirun", "-n", "1", self, "--child", workdir, phase, sweep_path, (char *)NULL);
        _exit(98);
    }
    int rc = rm_test_wait_exit(pid);
    if (rc != 0) fail_msg("mpirun %s exited with %d (see %s/mpirun-%s.log)", phase, rc, workdir, phase);
    char path[600];
    snprintf(path, sizeof path, "%s/%s.log", workdir, phase);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("no log %s", path);
    out->n = 0;
    while (out->n < 64 && fgets(out->line[out->n], sizeof out->line[0], f)) {
        out->line[out->n][strcspn(out->line[out->n], "\n")] = '\0';
        printf("  %s: %s\n", phase, out->line[out->n]);
        out->n++;
    }
    fclose(f);
    assert_true(out->n > 0);
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

static void results_path(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/results/%s", workdir, name);
}

static rm_run_status run_status(const char *id) {
    char path[600], name[64];
    snprintf(name, sizeof name, "%s.h5", id);
    results_path(path, sizeof path, name);
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    assert_int_equal(s.rows, 1);
    rm_run_status st = s.status;
    rm_run_summary_free(&s);
    return st;
}

static struct timespec mtime(const char *name) {
    char path[600];
    results_path(path, sizeof path, name);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_mtim;
}

static void assert_same_time(struct timespec a, struct timespec b) {
    assert_int_equal(a.tv_sec, b.tv_sec);
    assert_int_equal(a.tv_nsec, b.tv_nsec);
}

static void test_full_disk_on_the_index(void **state) {
    (void)state;
    log_lines l;
    run_child("full", "faulty.yaml", &l);
    assert_string_equal(l.line[0], "PLANNED 2 0 0");
    assert_string_equal(l.line[l.n - 1], "END 1");
    assert_int_equal(count_prefix(&l, "ERROR "), 1); /* once, not once per update */
    const char *e = find_prefix(&l, "ERROR ");
    assert_non_null(strstr(e, "the sweep index could not be updated"));
    assert_non_null(strstr(e, "/results/sweep.h5"));
    assert_non_null(strstr(e, "No space left on device"));
    assert_non_null(strstr(e, "run the same `regmix sweep` again"));
    /* the runs went on: both completed, their files say so */
    assert_int_equal(count_prefix(&l, "DONE "), 2);
    for (int i = 0; i < 2; i++) assert_int_equal(run_status(ids[i]), RM_RUN_COMPLETED);
    struct timespec t0 = mtime("lr-0.1.h5"), t1 = mtime("lr-0.05.h5");

    /* with room again: nothing to train, a readable index listing both as completed */
    run_child("again", "faulty.yaml", &l);
    assert_string_equal(l.line[0], "PLANNED 0 2 0");
    assert_string_equal(l.line[l.n - 1], "END 0");
    assert_int_equal(count_prefix(&l, "ERROR "), 0);
    assert_int_equal(count_prefix(&l, "START "), 0);
    assert_same_time(mtime("lr-0.1.h5"), t0);
    assert_same_time(mtime("lr-0.05.h5"), t1);
    char index[600];
    results_path(index, sizeof index, "sweep.h5");
    rm_sweep_index_table t;
    assert_int_equal(rm_sweep_index_read(index, &t), RM_OK);
    assert_int_equal(t.n_runs, 2);
    assert_string_equal(t.name, "faulty");
    for (int i = 0; i < 2; i++) assert_string_equal(t.runs[i].status, "completed");
    rm_sweep_index_table_free(&t);
}

/* Refused before any run: `want` in the one error, END 1, no run file for lr-0.2, the
 * index and the runs of the folder untouched. */
static void assert_refused(const char *phase, const char *sweep_file, const char *want) {
    struct timespec ti = mtime("sweep.h5"), t0 = mtime("lr-0.1.h5");
    log_lines l;
    run_child(phase, sweep_file, &l);
    assert_string_equal(l.line[l.n - 1], "END 1");
    assert_int_equal(count_prefix(&l, "PLANNED "), 0);
    assert_int_equal(count_prefix(&l, "START "), 0);
    assert_int_equal(count_prefix(&l, "ERROR "), 1);
    if (!strstr(find_prefix(&l, "ERROR "), want)) fail_msg("the error does not say \"%s\"", want);
    char path[600];
    struct stat sb;
    results_path(path, sizeof path, "lr-0.2.h5");
    assert_int_not_equal(stat(path, &sb), 0);
    assert_same_time(mtime("sweep.h5"), ti);
    assert_same_time(mtime("lr-0.1.h5"), t0);
}

static void test_folder_of_another_sweep(void **state) {
    (void)state;
    assert_refused("other", "intruder.yaml", "holds the files of sweep \"faulty\", not \"intruder\"");
    char index[600];
    results_path(index, sizeof index, "sweep.h5");
    rm_sweep_index_table t;
    assert_int_equal(rm_sweep_index_read(index, &t), RM_OK);
    assert_string_equal(t.name, "faulty");
    rm_sweep_index_table_free(&t);
}

static void test_folder_locked_by_another_sweep(void **state) {
    (void)state;
    /* this process holds the lock as a running sweep's rank 0 does */
    char lock[600];
    results_path(lock, sizeof lock, "sweep.lock");
    int fd = open(lock, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    write_sweep("faulty-more.yaml", "faulty", "0.1, 0.05, 0.2");
    assert_refused("locked", "faulty-more.yaml", "another sweep is writing into this folder (lock ");
    close(fd);
}

static int setup(void **state) {
    (void)state;
    snprintf(workdir, sizeof workdir, "/tmp/regmix-fault-sweep-XXXXXX");
    assert_non_null(mkdtemp(workdir));
    char data[300];
    snprintf(data, sizeof data, "%s/data", workdir);
    assert_int_equal(mkdir(data, 0755), 0);
    rm_test_write_idx_dataset(data, 64, 32, 11);
    write_sweep("faulty.yaml", "faulty", "0.1, 0.05");
    write_sweep("intruder.yaml", "intruder", "0.1, 0.2");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_tree(workdir);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--child")) return child(argv);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 1;
    self[n] = '\0';
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_disk_on_the_index),
        cmocka_unit_test(test_folder_of_another_sweep),
        cmocka_unit_test(test_folder_locked_by_another_sweep),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
