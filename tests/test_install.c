/* `cmake --install` (README "Installing on a cluster"): the build tree is installed into a
 * temporary prefix; the binary, the sweeps (with METHOD.md), the schema, the job scripts
 * and the modulefile must be there, the scripts and the modulefile must carry the prefix.
 * Then the INSTALLED Slurm script (run with bash outside Slurm, SLURM_NTASKS=2, so
 * mpirun -n 2) runs the INSTALLED quick sweep by its bare name, shrunk with --set to
 * seconds (128 training images, 1 epoch), from a directory without any build: every run
 * file and the index must say completed, with the --set values in the runs'
 * configuration. The installed PBS script then finds the same sweep all completed with
 * --dry-run. The training part is skipped without Fashion-MNIST. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "runfile_fixture.h"

#include "regmix/runfile.h"
#include "regmix/sweep.h"

static char prefix[256], work[300];

static const char SHRINK[] = "--set train_subset=128 --set test_subset=32 --set epochs=1 "
                             "--set eval_attacks=clean,fgsm --set outdir=results/smoke";

/* Runs a shell command with stdout+stderr into *out; returns its exit status. */
static int sh(const char *cmd, char *out, size_t size) {
    char full[4096];
    snprintf(full, sizeof full, "( %s ) 2>&1", cmd);
    fflush(stdout);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    while (fgetc(p) != EOF) {} /* drain the rest */
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void expect_file(const char *rel, int executable) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", prefix, rel);
    if (access(path, executable ? X_OK : R_OK) != 0) fail_msg("%s is not installed%s", path, executable ? " executable" : "");
}

/* The installed copy of a source file is the same bytes. */
static void expect_same(const char *installed, const char *source) {
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/%s", prefix, installed);
    snprintf(b, sizeof b, "%s/%s", REGMIX_SOURCE_DIR, source);
    size_t na, nb;
    char *x = rft_slurp(a, &na), *y = rft_slurp(b, &nb);
    assert_non_null(x);
    assert_non_null(y);
    if (na != nb || memcmp(x, y, na)) fail_msg("%s differs from %s", a, b);
    free(x), free(y);
}

static void expect_contains(const char *rel, const char *text) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", prefix, rel);
    size_t n;
    char *s = rft_slurp(path, &n);
    assert_non_null(s);
    s[n] = '\0';
    if (!strstr(s, text)) fail_msg("%s lacks '%s'", path, text);
    free(s);
}

static void test_install_tree(void **state) {
    (void)state;
    static char out[65536];
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' --install '%s' --prefix '%s'", REGMIX_CMAKE_COMMAND, REGMIX_BUILD_DIR, prefix);
    int rc = sh(cmd, out, sizeof out);
    if (rc != 0) fail_msg("%s: exit %d\n%s", cmd, rc, out);
    expect_file("bin/regmix", 1);
    expect_same("share/regmix/sweeps/fmnist-quick.yaml", "sweeps/fmnist-quick.yaml");
    expect_same("share/regmix/sweeps/fmnist-ablation.yaml", "sweeps/fmnist-ablation.yaml");
    expect_same("share/regmix/sweeps/cifar10-paper.yaml", "sweeps/cifar10-paper.yaml");
    expect_same("share/regmix/sweeps/METHOD.md", "sweeps/METHOD.md");
    expect_same("share/regmix/results/README.md", "results/README.md");
    expect_same("share/regmix/README.md", "README.md");
    expect_file("share/regmix/jobscripts/slurm-sweep.sbatch", 1);
    expect_file("share/regmix/jobscripts/pbs-sweep.pbs", 1);
    char line[400];
    snprintf(line, sizeof line, "\nREGMIX_PREFIX=\"%s\"   #", prefix);
    expect_contains("share/regmix/jobscripts/slurm-sweep.sbatch", line);
    expect_contains("share/regmix/jobscripts/pbs-sweep.pbs", line);
    snprintf(line, sizeof line, "\nset prefix {%s}\nset version %s\n", prefix, REGMIX_VERSION);
    expect_contains("share/regmix/modulefiles/regmix/" REGMIX_VERSION, line);
    /* the installed binary runs */
    snprintf(cmd, sizeof cmd, "'%s/bin/regmix' sweep --help", prefix);
    assert_int_equal(sh(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "--dry-run"));
}

static void test_installed_scripts_run_the_installed_quick_sweep(void **state) {
    (void)state;
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &sb) != 0) {
        printf("SKIPPED: Fashion-MNIST is not installed (package dataset-fashion-mnist)\n");
        return;
    }
    rm_test_mpi_env();
    unsetenv("REGMIX");
    setenv("SLURM_NTASKS", "2", 1);
    static char out[262144];
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cd '%s' && bash '%s/share/regmix/jobscripts/slurm-sweep.sbatch' fmnist-quick.yaml %s",
             work, prefix, SHRINK);
    int rc = sh(cmd, out, sizeof out);
    if (rc != 0) fail_msg("installed slurm script: exit %d\n%s", rc, out);
    assert_non_null(strstr(out, "# regmix sweep fmnist-quick: 10 runs (10 to train"));
    assert_non_null(strstr(out, ", 2 ranks, "));

    char path[600];
    snprintf(path, sizeof path, "%s/results/smoke/sweep.h5", work);
    rm_sweep_index_table t;
    rft_check_ok(rm_sweep_index_read(path, &t), "rm_sweep_index_read");
    assert_int_equal(t.n_runs, 10);
    for (int i = 0; i < t.n_runs; i++) {
        if (strcmp(t.runs[i].status, "completed")) fail_msg("%s: %s %s", t.runs[i].id, t.runs[i].status, t.runs[i].reason);
        assert_int_equal(t.runs[i].epochs, 1);
        snprintf(path, sizeof path, "%s/results/smoke/%s", work, t.runs[i].file);
        rm_run_summary s;
        rft_check_ok(rm_runfile_read(path, &s), "rm_runfile_read");
        assert_int_equal(s.status, RM_RUN_COMPLETED);
        assert_int_equal(s.rows, 1);
        assert_non_null(strstr(s.config_yaml, "\ntrain_subset: 128\n"));
        assert_non_null(strstr(s.config_yaml, "\nepochs: 1\n"));
        assert_non_null(strstr(s.config_yaml, "\nthreads: 1\n")); /* from the installed file's base */
        rm_run_summary_free(&s);
    }
    assert_string_equal(t.runs[0].id, "reg-none_seed-0");
    rm_sweep_index_table_free(&t);

    /* the installed PBS script finds the same sweep, all done */
    snprintf(cmd, sizeof cmd, "cd '%s' && SWEEP=fmnist-quick.yaml SWEEP_ARGS='--dry-run %s' bash '%s/share/regmix/jobscripts/pbs-sweep.pbs'",
             work, SHRINK, prefix);
    rc = sh(cmd, out, sizeof out);
    if (rc != 0) fail_msg("installed pbs script: exit %d\n%s", rc, out);
    if (!strstr(out, "\n# 0 to train (0.0% of the cost), 10 already complete, 0 failed earlier (skipped)\n"))
        fail_msg("installed pbs script, dry run:\n%s", out);
}

static int setup(void **state) {
    (void)state;
    if (rft_tmpdir_make(prefix, sizeof prefix, "install") != 0) return -1;
    snprintf(work, sizeof work, "%s/work", prefix);
    return mkdir(work, 0755);
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_tree(prefix);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_tree),
        cmocka_unit_test(test_installed_scripts_run_the_installed_quick_sweep),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
