/* `regmix sweep FILE --dry-run` and `--set KEY=VALUE` (the real binary, no training):
 * a 4-run sweep whose output folder holds a completed, a diverged and a preempted run
 * file (written with the run-file API) and nothing for the fourth. The dry run lists
 * every run with its id, its estimated cost (worked out by hand below) and its state,
 * writes nothing, and exits 0; with --retry-failed the diverged run counts as to train;
 * with --set epochs=1 the costs shrink and every existing file is "of another
 * configuration"; --set on an axis, on an unknown setting or with a bad value is refused
 * with exit status 2 naming it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "proc.h"
#include "runfile_fixture.h"

#include "regmix/runfile.h"
#include "regmix/sweep.h"

static char dir[256], sweep_path[512];

static const rm_metric_spec METRICS[] = {{"test_clean", "%", "clean accuracy"}};

static void write_run(const rm_sweep *s, const char *id, rm_run_status status, int rows) {
    int i = rm_sweep_find(s, id);
    assert_true(i >= 0);
    char path[600];
    snprintf(path, sizeof path, "%s/results/%s.h5", dir, id);
    rm_run_info info = {.mpi_rank = 0, .mpi_size = 1, .threads = 1};
    rm_runfile *rf;
    rft_check_ok(rm_runfile_create(path, &s->runs[i].cfg, &info, METRICS, 1, &rf), "rm_runfile_create");
    for (int e = 1; e <= rows; e++) {
        double v = 50.0 + e;
        rft_check_ok(rm_runfile_append(rf, e, &v), "rm_runfile_append");
    }
    rft_check_ok(rm_runfile_set_status(rf, status, status == RM_RUN_DIVERGED ? "loss is nan" : ""), "set status");
    rft_check_ok(rm_runfile_close(rf), "rm_runfile_close");
}

/* Runs `regmix sweep <file> ARGS` with stdout and stderr in *out; returns the exit status. */
static int regmix_sweep(const char *args, char *out, size_t size) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' %s 2>&1", REGMIX_BINARY, sweep_path, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* The listing line of run `id`; fails the test when absent. */
static const char *line_of(const char *out, const char *id, char *buf, size_t size) {
    size_t n = strlen(id);
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (!strncmp(p, id, n) && p[n] == ' ') {
            size_t len = strcspn(p, "\n");
            snprintf(buf, size, "%.*s", (int)len, p);
            return buf;
        }
    }
    fail_msg("no line for %s in:\n%s", id, out);
    return NULL;
}

static void expect_line(const char *out, const char *id, const char *cost, const char *state) {
    char buf[512];
    line_of(out, id, buf, sizeof buf);
    if (!strstr(buf, cost) || !strstr(buf, state)) fail_msg("line '%s': expected cost %s and state '%s'", buf, cost, state);
}

static int count_entries(const char *path) {
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Costs (sweep.h: rm_sweep_run_cost), 256 training and 64 test images, eval clean + pgd3
 * (1 + 7 = 8 per image) at every epoch:
 *   mse    (pgi 5 + 2):      2 epochs x 256 x 7  + 2 x 64 x 8 = 3584 + 1024 = 4608 -> "4.61e+03"
 *   regmix (pgi 5 + 2 + 3):  2 x 256 x 10        + 1024       = 5120 + 1024 = 6144 -> "6.14e+03"
 * with epochs=1: mse 1792 + 512 = 2304 -> "2.3e+03", regmix 2560 + 512 = 3072 -> "3.07e+03".
 * Shares: 4608 / 21504 = 21.4 %, 6144 / 21504 = 28.6 %. */
static void test_dry_run_lists_ids_costs_and_states(void **state) {
    (void)state;
    char results[600];
    snprintf(results, sizeof results, "%s/results", dir);
    int before = count_entries(results);
    char out[8192];
    assert_int_equal(regmix_sweep("--dry-run", out, sizeof out), 0);
    expect_line(out, "reg-mse_seed-0", "4.61e+03   21.4%", "completed (skipped)");
    expect_line(out, "reg-mse_seed-1", "4.61e+03   21.4%", "diverged earlier (skipped; --retry-failed trains it again)");
    expect_line(out, "reg-regmix_seed-0", "6.14e+03   28.6%", "preempted: resumes after epoch 0");
    expect_line(out, "reg-regmix_seed-1", "6.14e+03   28.6%", "to train");
    if (!strstr(out, "# 2 to train (57.1% of the cost), 1 already complete, 1 failed earlier (skipped)\n"))
        fail_msg("summary line missing:\n%s", out);
    assert_int_equal(count_entries(results), before); /* no index, no run file, no lock */

    assert_int_equal(regmix_sweep("--dry-run --retry-failed", out, sizeof out), 0);
    expect_line(out, "reg-mse_seed-1", "4.61e+03", "diverged earlier (trained again)");
    if (!strstr(out, "# 3 to train (78.6% of the cost), 1 already complete, 0 failed earlier (skipped)\n"))
        fail_msg("summary line missing:\n%s", out);
}

static void test_set_changes_every_runs_configuration(void **state) {
    (void)state;
    char out[8192];
    assert_int_equal(regmix_sweep("--dry-run --set epochs=1", out, sizeof out), 0);
    expect_line(out, "reg-mse_seed-0", "2.3e+03", "file of another configuration");
    expect_line(out, "reg-mse_seed-1", "2.3e+03", "file of another configuration");
    expect_line(out, "reg-regmix_seed-0", "3.07e+03", "file of another configuration");
    expect_line(out, "reg-regmix_seed-1", "3.07e+03", "to train");
    /* the library: every run got it, ids unchanged */
    const char *sets[] = {"epochs=1", "test_subset=32"};
    rm_sweep s;
    rft_check_ok(rm_sweep_load_with(sweep_path, sets, 2, &s), "rm_sweep_load_with");
    assert_int_equal(s.n_runs, 4);
    for (int i = 0; i < s.n_runs; i++) {
        assert_int_equal(s.runs[i].cfg.epochs, 1);
        assert_int_equal(s.runs[i].cfg.test_subset, 32);
        assert_int_equal(s.runs[i].cfg.train_subset, 256);
    }
    assert_string_equal(s.runs[0].id, "reg-mse_seed-0");
    rm_sweep_free(&s);
}

static void test_bad_set_is_refused(void **state) {
    (void)state;
    char out[8192];
    assert_int_equal(regmix_sweep("--dry-run --set reg=none", out, sizeof out), 2);
    if (!strstr(out, "--set reg=none: 'reg' is an axis of the sweep (line 10)")) fail_msg("%s", out);
    assert_int_equal(regmix_sweep("--dry-run --set nosuch=1", out, sizeof out), 2);
    if (!strstr(out, "--set nosuch=1: unknown setting 'nosuch'")) fail_msg("%s", out);
    assert_int_equal(regmix_sweep("--dry-run --set epochs=0", out, sizeof out), 2);
    if (!strstr(out, "--set epochs=0: epochs: 0 is out of range")) fail_msg("%s", out);
    assert_int_equal(regmix_sweep("--dry-run --set epochs", out, sizeof out), 2);
    if (!strstr(out, "--set expects KEY=VALUE, got epochs")) fail_msg("%s", out);
    assert_int_equal(regmix_sweep("--dry-run --set run_id=x", out, sizeof out), 2);
    if (!strstr(out, "--set run_id=x: run ids are made by the sweep")) fail_msg("%s", out);
}

static int setup(void **state) {
    (void)state;
    if (rft_tmpdir_make(dir, sizeof dir, "sweep-dryrun") != 0) return -1;
    snprintf(sweep_path, sizeof sweep_path, "%s/dry.yaml", dir);
    FILE *f = fopen(sweep_path, "w");
    if (!f) return -1;
    fprintf(f, "name: dry\n"
               "base:\n"
               "  train_subset: 256\n  test_subset: 64\n  batch: 64\n  epochs: 2\n  eval_attacks: [clean, pgd3]\n"
               "  outdir: %s/results\n"
               "grid:\n  reg: [mse, regmix]\n  seed: [0, 1]\n", dir);
    if (fclose(f) != 0) return -1;
    rm_sweep s;
    rft_check_ok(rm_sweep_load(sweep_path, &s), "rm_sweep_load");
    char results[600];
    snprintf(results, sizeof results, "%s/results", dir);
    if (mkdir(results, 0755) != 0) return -1;
    write_run(&s, "reg-mse_seed-0", RM_RUN_COMPLETED, 2);
    write_run(&s, "reg-mse_seed-1", RM_RUN_DIVERGED, 1);
    write_run(&s, "reg-regmix_seed-0", RM_RUN_PREEMPTED, 1);
    rm_sweep_free(&s);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_tree(dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dry_run_lists_ids_costs_and_states),
        cmocka_unit_test(test_set_changes_every_runs_configuration),
        cmocka_unit_test(test_bad_set_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
