/* Preemption signals never interrupt a computing thread (src/cli/stop_signals.c).
 *
 * SIGTERM at a random moment of `regmix train` used to abort it now and then with glibc's
 * "corrupted size vs. prev_size while consolidating" (3 of 60 runs; test_resume_exact
 * failed that way): the kernel writes the signal frame at the interrupted thread's stack
 * pointer, which oneDNN's JIT kernels may point into a heap buffer while they run. Now
 * every thread blocks SIGTERM and SIGUSR1 except one watcher thread that only waits. A
 * random-time test would be probabilistic, so this one checks the mechanism: while
 * `regmix train` (2 OpenMP threads) is inside its epochs, exactly one of its threads,
 * not the main thread, has the two signals unblocked (/proc/PID/task/TID/status,
 * SigBlk), and SIGTERM still preempts the run (exit 4, status "preempted"). Uses
 * synthetic data, so it needs no installed data set. */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
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

static char workdir[256];
static pid_t child; /* the training, while it may still run */

static int setup(void **state) {
    (void)state;
    snprintf(workdir, sizeof workdir, "/tmp/regmix-signals-XXXXXX");
    return mkdtemp(workdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    /* a failed check before the SIGTERM leaves the 1000-epoch training running: stop it */
    if (child > 0 && waitpid(child, NULL, WNOHANG) == 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    rm_test_remove_tree(workdir);
    return 0;
}

/* SigBlk of one thread, as a bit mask (bit s - 1 for signal s). */
static unsigned long long blocked_mask(pid_t pid, const char *tid) {
    char path[512], line[256];
    snprintf(path, sizeof path, "/proc/%d/task/%s/status", (int)pid, tid);
    FILE *f = fopen(path, "r");
    if (!f) return 0; /* the thread ended meanwhile */
    unsigned long long mask = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "SigBlk:", 7)) mask = strtoull(line + 7, NULL, 16);
    fclose(f);
    return mask;
}

static int64_t rows_of(const char *path) {
    rm_run_summary s;
    if (rm_runfile_read(path, &s) != RM_OK) {
        rm_error_clear();
        return -1;
    }
    int64_t rows = s.rows;
    rm_run_summary_free(&s);
    return rows;
}

static void test_only_a_waiting_thread_takes_stop_signals(void **state) {
    (void)state;
    char data[300], out[300], path[400], opt_data[350], opt_out[350];
    snprintf(data, sizeof data, "%s/data", workdir);
    snprintf(out, sizeof out, "%s/out", workdir);
    assert_int_equal(mkdir(data, 0755), 0);
    assert_int_equal(mkdir(out, 0755), 0);
    rm_test_write_idx_dataset(data, 256, 64, 5);
    snprintf(opt_data, sizeof opt_data, "data_dir=%s", data);
    snprintf(opt_out, sizeof opt_out, "outdir=%s", out);
    snprintf(path, sizeof path, "%s/s.h5", out);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(99);
        execl(REGMIX_BINARY, "regmix", "train", opt_data, opt_out, "train_subset=256", "test_subset=64",
              "batch=64", "epochs=1000", "threads=2", "eval_attacks=clean", "run_id=s", "--quiet", (char *)NULL);
        _exit(98);
    }
    child = pid;
    /* inside the epochs: a row is written (the OpenMP threads exist by then) */
    int64_t rows = -1;
    for (int i = 0; i < 12000 && rows < 1; i++) {
        nanosleep(&(struct timespec){0, 10000000}, NULL);
        rows = rows_of(path);
    }
    assert_true(rows >= 1);

    const unsigned long long stop = 1ull << (SIGTERM - 1) | 1ull << (SIGUSR1 - 1);
    char task_dir[64];
    snprintf(task_dir, sizeof task_dir, "/proc/%d/task", (int)pid);
    DIR *d = opendir(task_dir);
    assert_non_null(d);
    int threads = 0, takers = 0, main_takes = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        unsigned long long mask = blocked_mask(pid, e->d_name);
        int takes = (mask & stop) == 0;
        printf("  thread %s: SigBlk %016llx%s\n", e->d_name, mask, takes ? "  <- takes SIGTERM/SIGUSR1" : "");
        threads++;
        takers += takes;
        main_takes |= takes && atoi(e->d_name) == (int)pid;
        assert_true(takes || (mask & stop) == stop); /* both blocked or neither */
    }
    closedir(d);
    printf("  %d threads, %d take the stop signals\n", threads, takers);
    assert_true(threads >= 3); /* main, watcher, an OpenMP worker */
    assert_int_equal(takers, 1);
    assert_false(main_takes);

    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(rm_test_wait_exit(pid), 4);
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    printf("  after SIGTERM: status %s\n", rm_run_status_name(s.status));
    assert_int_equal(s.status, RM_RUN_PREEMPTED);
    rm_run_summary_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_a_waiting_thread_takes_stop_signals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
