/* A rank that dies or fails alone, through the real `mpirun regmix sweep`:
 * - SIGKILL of rank 1 in a 2-rank sweep (4 runs) once one run is completed and another
 *   running: mpirun exits non-zero; every run completed before keeps its file untouched;
 *   the same sweep again trains only the others and completes every run;
 * - SIGKILL of rank 1 (a follower) in a `--ranks-per-run 2` group once the sweep's second
 *   run has its epoch-1 checkpoint: mpirun exits; run 1 (completed) untouched, run 2 keeps
 *   its epoch-1 row; again: run 2 resumes from epoch 1 and completes, run 1 not retrained;
 * - a oneDNN failure in rank 1 alone inside epoch 2 (tests/preload/fault_dnnl.c preloaded
 *   into that rank only) of a `--ranks-per-run 2` group: the group does not hang (the
 *   follower would wait in a collective the leader never joins): mpirun ends within a
 *   bound with the error and "failed alone" on stderr; again without the fault: resumes
 *   from epoch 1 and completes;
 * - rank 1 alone cannot read its data (a damaged IDX file in its own working folder) when
 *   a group run starts: the leader does not train alone (it would wait forever in the
 *   first gradient sum): the run is `failed` with the reason, the sweep exits 1; again
 *   with readable data and --retry-failed: completes.
 * Tiny runs on synthetic IDX data (tests/support/synthetic_data.h). Every mpirun has a
 * deadline (DEADLINE_S) after which the test stops it (SIGTERM) and fails: a hang fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"
#include "synthetic_data.h"

#include "regmix/runfile.h"
#include "regmix/sweep.h"

enum { DEADLINE_S = 120 };

static char workdir[256];

static void sleep_ms(int ms) { nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL); }

/* DIR/sweep.yaml: runs lr in `lrs`, `epochs` each, data in the relative folder `data`
 * (resolved in each rank's working folder), into DIR/results. */
static void make_case(char *dir, size_t size, const char *name, const char *lrs, int epochs) {
    snprintf(dir, size, "%s/%s", workdir, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    char path[600];
    snprintf(path, sizeof path, "%s/data", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    rm_test_write_idx_dataset(path, 64, 32, 5);
    snprintf(path, sizeof path, "%s/sweep.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "name: %s\nbase:\n"
               "  train_subset: 64\n  test_subset: 32\n  batch: 32\n  epochs: %d\n  threads: 1\n"
               "  checkpoint_every: 1\n  eval_attacks: [clean]\n  data_dir: data\n  outdir: %s/results\n"
               "grid:\n  lr: [%s]\n", name, epochs, dir, lrs);
    assert_int_equal(fclose(f), 0);
}

/* mpirun with argv (NULL-terminated, argv[0] = "mpirun") in dir, output to dir/<log>. */
static pid_t start(const char *dir, const char *log, char *const argv[]) {
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rm_test_mpi_env();
        setpgid(0, 0);
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, log);
        if (chdir(dir) != 0 || !freopen(path, "w", stdout) || dup2(STDOUT_FILENO, STDERR_FILENO) < 0) _exit(99);
        execvp("mpirun", argv);
        _exit(98);
    }
    return pid;
}

/* mpirun's exit status; fails (after SIGTERM to mpirun) if it runs past DEADLINE_S. */
static int wait_bounded(pid_t pid, const char *what) {
    for (int ms = 0; ms < DEADLINE_S * 1000; ms += 20) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        assert_true(r >= 0);
        if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        sleep_ms(20);
    }
    kill(pid, SIGTERM);
    rm_test_wait_exit(pid);
    fail_msg("%s: mpirun still running after %d s (a hang): stopped with SIGTERM", what, DEADLINE_S);
    return -1;
}

/* The regmix process of MPI rank `rank` among mpirun's children (0 while not started). */
static pid_t rank_pid(pid_t mpirun, int rank) {
    char want[64];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    DIR *d = opendir("/proc");
    assert_non_null(d);
    pid_t found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        char path[300], buf[8192];
        int pid = atoi(e->d_name);
        if (pid <= 0) continue;
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        int ppid = 0;
        char *close_paren = fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
        fclose(f);
        if (!close_paren || sscanf(close_paren + 1, " %*c %d", &ppid) != 1 || ppid != mpirun) continue;
        snprintf(path, sizeof path, "/proc/%d/environ", pid);
        f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t at = 0; at < n; at += strlen(buf + at) + 1) {
            buf[n] = '\0';
            if (!strcmp(buf + at, want)) found = pid;
        }
    }
    closedir(d);
    return found;
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void run_file(char *out, size_t size, const char *dir, const char *id, const char *ext) {
    snprintf(out, size, "%s/results/%s%s", dir, id, ext);
}

/* Status and rows of a run file (-1 rows: no readable file). */
static int run_rows(const char *dir, const char *id, rm_run_status *status, int *resumes) {
    char path[600];
    run_file(path, sizeof path, dir, id, ".h5");
    rm_run_summary s;
    if (rm_runfile_read(path, &s) != RM_OK) {
        rm_error_clear();
        return -1;
    }
    int rows = (int)s.rows;
    if (status) *status = s.status;
    if (resumes) *resumes = (int)s.resume_count;
    rm_run_summary_free(&s);
    return rows;
}

static struct timespec mtime_of(const char *dir, const char *id) {
    char path[600];
    run_file(path, sizeof path, dir, id, ".h5");
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_mtim;
}

static int same_time(struct timespec a, struct timespec b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

/* The text of dir/<log> (at most 64 KiB). */
static void read_log(const char *dir, const char *log, char *buf, size_t size) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, log);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void sweep_again(const char *dir, const char *log, int rpr, int retry) {
    char *argv[] = {"mpirun", "-n", "2", REGMIX_BINARY, "sweep", "sweep.yaml", "--ranks-per-run", rpr == 2 ? "2" : "1",
                    retry ? "--retry-failed" : NULL, NULL};
    int rc = wait_bounded(start(dir, log, argv), log);
    if (rc != 0) fail_msg("%s: the sweep run again exited with %d (see %s/%s)", dir, rc, dir, log);
}

/* ---- SIGKILL of one rank ---- */

static void test_killed_rank_in_two_rank_sweep(void **state) {
    (void)state;
    static const char *ids[4] = {"lr-0.1", "lr-0.05", "lr-0.02", "lr-0.01"};
    char dir[300], index[600];
    make_case(dir, sizeof dir, "kill-sweep", "0.1, 0.05, 0.02, 0.01", 3);
    snprintf(index, sizeof index, "%s/results/sweep.h5", dir);
    char *argv[] = {"mpirun", "-n", "2", REGMIX_BINARY, "sweep", "sweep.yaml", NULL};
    pid_t mpirun = start(dir, "first.log", argv);
    /* wait for a completed run and a running one, then kill rank 1 */
    pid_t victim = 0;
    for (int ms = 0; !victim && ms < DEADLINE_S * 1000; ms += 10) {
        rm_sweep_index_table t;
        if (exists(index) && rm_sweep_index_read(index, &t) == RM_OK) {
            int completed = 0, running = 0;
            for (int i = 0; i < t.n_runs; i++) {
                completed += !strcmp(t.runs[i].status, "completed");
                running += !strcmp(t.runs[i].status, "running");
            }
            rm_sweep_index_table_free(&t);
            if (completed >= 1 && running >= 1) victim = rank_pid(mpirun, 1);
        }
        rm_error_clear();
        if (!victim) sleep_ms(10);
    }
    assert_true(victim > 0);
    assert_int_equal(kill(victim, SIGKILL), 0);
    int rc = wait_bounded(mpirun, "killed sweep");
    printf("  SIGKILL of rank 1 (pid %d): mpirun exited %d\n", (int)victim, rc);
    assert_int_not_equal(rc, 0);

    /* what was completed stays as it is; the rest is trained on the next start */
    int done_before = 0, was_done[4];
    struct timespec t_done[4];
    for (int i = 0; i < 4; i++) {
        rm_run_status st;
        was_done[i] = run_rows(dir, ids[i], &st, NULL) == 3 && st == RM_RUN_COMPLETED;
        if (was_done[i]) t_done[i] = mtime_of(dir, ids[i]), done_before++;
    }
    printf("  completed before the kill: %d of 4\n", done_before);
    assert_true(done_before >= 1); /* (all 4 only if the running ones ended before the kill landed) */
    sweep_again(dir, "again.log", 1, 0);
    char log[65536], want[128];
    read_log(dir, "again.log", log, sizeof log);
    snprintf(want, sizeof want, "(%d to train, %d already complete", 4 - done_before, done_before);
    if (!strstr(log, want)) fail_msg("the second sweep does not say \"%s\"", want);
    for (int i = 0; i < 4; i++) {
        rm_run_status st;
        assert_int_equal(run_rows(dir, ids[i], &st, NULL), 3);
        assert_int_equal(st, RM_RUN_COMPLETED);
        if (was_done[i] && !same_time(mtime_of(dir, ids[i]), t_done[i])) fail_msg("%s was written again", ids[i]);
    }
}

static void test_killed_follower_in_group(void **state) {
    (void)state;
    char dir[300], ckpt[600];
    make_case(dir, sizeof dir, "kill-group", "0.1, 0.05", 3);
    run_file(ckpt, sizeof ckpt, dir, "lr-0.05", ".ckpt.h5"); /* runs go in file order: lr-0.1 first */
    char *argv[] = {"mpirun", "-n", "2", REGMIX_BINARY, "sweep", "sweep.yaml", "--ranks-per-run", "2", NULL};
    pid_t mpirun = start(dir, "first.log", argv);
    for (int ms = 0; !exists(ckpt) && ms < DEADLINE_S * 1000; ms += 5) sleep_ms(5);
    pid_t victim = rank_pid(mpirun, 1);
    assert_true(victim > 0);
    assert_int_equal(kill(victim, SIGKILL), 0);
    int rc = wait_bounded(mpirun, "killed group");
    printf("  SIGKILL of the follower (pid %d) after lr-0.05's first checkpoint: mpirun exited %d\n", (int)victim, rc);
    assert_int_not_equal(rc, 0);
    rm_run_status st;
    assert_int_equal(run_rows(dir, "lr-0.1", &st, NULL), 3);
    assert_int_equal(st, RM_RUN_COMPLETED);
    struct timespec t1 = mtime_of(dir, "lr-0.1");
    int rows = run_rows(dir, "lr-0.05", &st, NULL);
    printf("  lr-0.05 after the kill: %d rows, status %s\n", rows, rm_run_status_name(st));
    assert_true(rows >= 1 && rows < 3);

    sweep_again(dir, "again.log", 2, 0);
    int resumes = 0;
    assert_int_equal(run_rows(dir, "lr-0.05", &st, &resumes), 3);
    assert_int_equal(st, RM_RUN_COMPLETED);
    assert_int_equal(resumes, 1);
    assert_true(same_time(mtime_of(dir, "lr-0.1"), t1));
}

/* ---- a rank failing alone ---- */

static void test_follower_failing_alone_in_epoch(void **state) {
    (void)state;
    char dir[300], ckpt[600], when[700], preload[700];
    make_case(dir, sizeof dir, "fail-epoch", "0.1", 3);
    run_file(ckpt, sizeof ckpt, dir, "lr-0.1", ".ckpt.h5");
    snprintf(when, sizeof when, "REGMIX_FAULT_DNNL_WHEN=%s", ckpt);
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", REGMIX_FAULT_DNNL);
    /* in a sanitizer build, ASan would refuse a preloaded library ahead of its runtime */
    char asan[300];
    const char *asan_env = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0", asan_env ? asan_env : "",
             asan_env ? ":" : "");
    /* rank 1 alone gets the failing oneDNN, from epoch 1's checkpoint on */
    char *argv[] = {"mpirun", "-n", "1", REGMIX_BINARY, "sweep", "sweep.yaml", "--ranks-per-run", "2", ":",
                    "-n", "1", "env", preload, when, asan, REGMIX_BINARY, "sweep", "sweep.yaml", "--ranks-per-run", "2",
                    NULL};
    time_t t0 = time(NULL);
    int rc = wait_bounded(start(dir, "first.log", argv), "rank 1 failing alone");
    char log[65536];
    read_log(dir, "first.log", log, sizeof log);
    printf("  rank 1 failing alone: mpirun exited %d after about %ld s\n", rc, (long)(time(NULL) - t0));
    assert_int_not_equal(rc, 0);
    if (!strstr(log, "data-parallel rank 1 of 2 (MPI rank 1) failed alone"))
        fail_msg("no \"failed alone\" message in %s/first.log", dir);
    assert_non_null(strstr(log, "dnnl_primitive_execute"));
    assert_non_null(strstr(log, "run the same command again to resume"));
    rm_run_status st;
    int rows = run_rows(dir, "lr-0.1", &st, NULL);
    assert_true(rows >= 1 && rows < 3);

    sweep_again(dir, "again.log", 2, 0);
    int resumes = 0;
    assert_int_equal(run_rows(dir, "lr-0.1", &st, &resumes), 3);
    assert_int_equal(st, RM_RUN_COMPLETED);
    assert_int_equal(resumes, 1);
}

static void test_follower_without_data(void **state) {
    (void)state;
    char dir[300], cmd[1600];
    make_case(dir, sizeof dir, "fail-setup", "0.1", 2);
    /* rank 1 works in dir/r1, whose data/ holds a truncated training image file */
    snprintf(cmd, sizeof cmd, "mkdir %s/r1 && cp -r %s/data %s/r1/ && truncate -s 100 %s/r1/data/train-images-idx3-ubyte",
             dir, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    char r1[400];
    snprintf(r1, sizeof r1, "%s/r1", dir);
    char *argv[] = {"mpirun", "-n", "1", REGMIX_BINARY, "sweep", "sweep.yaml", "--ranks-per-run", "2", ":",
                    "-n", "1", "-wdir", r1, REGMIX_BINARY, "sweep", "../sweep.yaml", "--ranks-per-run", "2", NULL};
    int rc = wait_bounded(start(dir, "first.log", argv), "rank 1 without data");
    char log[65536];
    read_log(dir, "first.log", log, sizeof log);
    printf("  rank 1 without data: mpirun exited %d\n", rc);
    if (rc != 1 || !strstr(log, "train-images-idx3-ubyte"))
        fail_msg("exit %d (1 expected), no error naming the damaged file in:\n%s", rc, log);
    rm_run_status st;
    char path[600];
    run_file(path, sizeof path, dir, "lr-0.1", ".h5");
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    assert_int_equal(s.status, RM_RUN_FAILED);
    assert_int_equal(s.rows, 0);
    assert_non_null(strstr(s.status_reason, "1 of the 2 ranks of the data-parallel group could not set up the run"));
    rm_run_summary_free(&s);

    sweep_again(dir, "again.log", 2, 1);
    assert_int_equal(run_rows(dir, "lr-0.1", &st, NULL), 2);
    assert_int_equal(st, RM_RUN_COMPLETED);
}

static int setup(void **state) {
    (void)state;
    snprintf(workdir, sizeof workdir, "/tmp/regmix-fault-dp-XXXXXX");
    assert_non_null(mkdtemp(workdir));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_workdir(workdir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_rank_in_two_rank_sweep),
        cmocka_unit_test(test_killed_follower_in_group),
        cmocka_unit_test(test_follower_failing_alone_in_epoch),
        cmocka_unit_test(test_follower_without_data),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
