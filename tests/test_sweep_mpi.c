/* MPI sweeps (issue 5), through the real `mpirun regmix sweep`:
 * - 4 tiny runs + 1 diverging run on 2 ranks: every run file, a correct index, the
 *   diverged run recorded as such while the others complete (exit status 1);
 * - the same sweep on 1 rank gives bit-identical metrics (threads fixed per run);
 * - a sweep stopped in the middle with SIGUSR1 (preempted, exit 4) and run again
 *   completes without re-training finished runs and equals the uninterrupted sweep.
 * The 2-rank sweep is the reference; runs are tiny (256 images, 2 epochs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
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

#include "regmix/runfile.h"

static char workdir[256];
static const char *run_ids[5] = {"lr-0.1_seed-0", "lr-0.1_seed-1", "lr-0.05_seed-0", "lr-0.05_seed-1",
                                 "lr-1e6_seed-0"};

/* The sweep file, written into dir with outdir dir/results. */
static void write_sweep(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/tiny.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "name: tiny\n"
               "base:\n"
               "  train_subset: 256\n  test_subset: 64\n  batch: 64\n  epochs: 2\n  threads: 1\n"
               "  eval_attacks: [clean, fgsm, pgd3]\n  reg: mse\n  outdir: %s/results\n"
               "grid:\n  lr: [0.1, 0.05, 1e6]\n  seed: [0, 1]\n"
               "exclude:\n  - {lr: 1e6, seed: 1}\n", dir);
    assert_int_equal(fclose(f), 0);
}

static pid_t start_sweep(const char *dir, int ranks) {
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        rm_test_mpi_env();

        if (chdir(dir) != 0) _exit(97);
        char log[600];
        snprintf(log, sizeof log, "%s/sweep-%d.log", dir, ranks);
        if (!freopen(log, "a", stdout) || !freopen(log, "a", stderr)) _exit(99);
        char n[8];
        snprintf(n, sizeof n, "%d", ranks);
        execlp("mpirun", "mpirun", "-n", n, REGMIX_BINARY, "sweep", "tiny.yaml", (char *)NULL);
        _exit(98);
    }
    return pid;
}

static void make_case(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/%s", workdir, name);
    assert_int_equal(mkdir(out, 0755), 0);
    write_sweep(out);
}

static void run_path(char *out, size_t size, const char *dir, const char *id) {
    snprintf(out, size, "%s/results/%s.h5", dir, id);
}

/* Metrics of the 4 converging runs bit-identical between two sweep directories
 * (wall-clock columns excepted). */
static void assert_same_results(const char *a, const char *b) {
    for (int i = 0; i < 4; i++) {
        char pa[600], pb[600];
        run_path(pa, sizeof pa, a, run_ids[i]);
        run_path(pb, sizeof pb, b, run_ids[i]);
        rm_run_summary sa, sb;
        assert_int_equal(rm_runfile_read(pa, &sa), RM_OK);
        assert_int_equal(rm_runfile_read(pb, &sb), RM_OK);
        assert_int_equal(sa.rows, 2);
        assert_int_equal(sb.rows, 2);
        for (int m = 0; m < sa.n_metrics; m++) {
            if (strstr(sa.columns[m].name, "seconds") || strstr(sa.columns[m].name, "per_s")) continue;
            int k = rm_run_summary_find(&sb, sa.columns[m].name);
            assert_true(k >= 0);
            assert_memory_equal(sa.columns[m].values, sb.columns[k].values, 2 * sizeof(double));
        }
        rm_run_summary_free(&sa);
        rm_run_summary_free(&sb);
    }
}

static char two_ranks[300];

static int setup(void **state) {
    (void)state;
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &sb) != 0) {
        printf("SKIPPED: Fashion-MNIST is not installed (package dataset-fashion-mnist)\n");
        exit(0);
    }
    snprintf(workdir, sizeof workdir, "/tmp/regmix-sweep-XXXXXX");
    assert_non_null(mkdtemp(workdir));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_workdir(workdir);
    return 0;
}

static void test_two_ranks_complete_with_index_and_divergence(void **state) {
    (void)state;
    make_case(two_ranks, sizeof two_ranks, "two-ranks");
    int rc = rm_test_wait_exit(start_sweep(two_ranks, 2));
    printf("  mpirun -n 2 regmix sweep: exit %d (1 expected: one run diverges)\n", rc);
    assert_int_equal(rc, 1);
    for (int i = 0; i < 5; i++) {
        char p[600];
        run_path(p, sizeof p, two_ranks, run_ids[i]);
        rm_run_summary s;
        assert_int_equal(rm_runfile_read(p, &s), RM_OK);
        printf("  %-16s %-10s %lld epochs %s\n", run_ids[i], rm_run_status_name(s.status), (long long)s.rows,
               s.status_reason);
        assert_int_equal(s.status, i < 4 ? RM_RUN_COMPLETED : RM_RUN_DIVERGED);
        if (i < 4) assert_int_equal(s.rows, 2);
        /* NaN loss: the reason names the epoch it happened in (no row was written for it) */
        else assert_true(!strncmp(s.status_reason, "epoch 1: ", 9) && strstr(s.status_reason, "nan") && s.rows == 0);
        rm_run_summary_free(&s);
    }
    /* the index: 5 runs with ids, statuses and axis values; links resolve to the runs */
    char index[600], cmd[1400];
    snprintf(index, sizeof index, "%s/results/sweep.h5", two_ranks);
    snprintf(cmd, sizeof cmd, "h5dump -d /runs/status -d /runs/id -d /axes/lr %s > %s/index.txt", index, two_ranks);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/index.txt", two_ranks);
    FILE *f = fopen(cmd, "r");
    assert_non_null(f);
    char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    int completed = 0, diverged = 0;
    for (const char *p = text; (p = strstr(p, "\"completed")); p++) completed++;
    for (const char *p = text; (p = strstr(p, "\"diverged")); p++) diverged++;
    assert_int_equal(completed, 4);
    assert_int_equal(diverged, 1);
    for (int i = 0; i < 5; i++) assert_non_null(strstr(text, run_ids[i]));
    assert_non_null(strstr(text, "\"1e6"));
    snprintf(cmd, sizeof cmd, "h5dump -A %s/links/lr-0.1_seed-0 > /dev/null 2>&1", index);
    printf("  index: 4 completed, 1 diverged, ids and axis values present\n");
}

static void test_one_rank_gives_identical_results(void **state) {
    (void)state;
    char one[300];
    make_case(one, sizeof one, "one-rank");
    assert_int_equal(rm_test_wait_exit(start_sweep(one, 1)), 1);
    assert_same_results(one, two_ranks);
    printf("  1 rank vs 2 ranks: metrics of the 4 runs bit-identical\n");
}

static void test_interrupted_sweep_resumes_without_retraining(void **state) {
    (void)state;
    char dir[300];
    make_case(dir, sizeof dir, "interrupted");
    pid_t pid = start_sweep(dir, 2);
    /* stop it once the first run has completed */
    char first[600];
    run_path(first, sizeof first, dir, run_ids[0]);
    int completed = 0;
    for (int i = 0; i < 30000 && !completed; i++) {
        nanosleep(&(struct timespec){0, 5000000}, NULL);
        for (int r = 0; r < 4 && !completed; r++) {
            char p[600];
            run_path(p, sizeof p, dir, run_ids[r]);
            rm_run_summary s;
            if (rm_runfile_read(p, &s) == RM_OK) {
                completed = s.status == RM_RUN_COMPLETED;
                if (completed) snprintf(first, sizeof first, "%s", p);
                rm_run_summary_free(&s);
            }
            rm_error_clear();
        }
    }
    assert_true(completed);
    /* Open MPI's mpirun forwards SIGUSR1 to the ranks (SIGTERM it handles itself);
     * Slurm's --signal=B:USR1@T does the same before a time limit */
    kill(pid, SIGUSR1);
    int rc = rm_test_wait_exit(pid);
    printf("  SIGUSR1 to mpirun after a run completed: exit %d (4 = preempted)\n", rc);
    assert_int_equal(rc, 4);
    rm_run_summary before;
    assert_int_equal(rm_runfile_read(first, &before), RM_OK);
    assert_int_equal(rm_test_wait_exit(start_sweep(dir, 2)), 1);
    rm_run_summary after;
    assert_int_equal(rm_runfile_read(first, &after), RM_OK);
    /* not re-trained: same start time, no resume, same rows */
    assert_string_equal(before.start_time, after.start_time);
    assert_int_equal(before.resume_count, after.resume_count);
    assert_int_equal(after.status, RM_RUN_COMPLETED);
    rm_run_summary_free(&before);
    rm_run_summary_free(&after);
    assert_same_results(dir, two_ranks);
    printf("  re-run: finished runs untouched, all results equal the uninterrupted sweep\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_ranks_complete_with_index_and_divergence),
        cmocka_unit_test(test_one_rank_gives_identical_results),
        cmocka_unit_test(test_interrupted_sweep_resumes_without_retraining),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
