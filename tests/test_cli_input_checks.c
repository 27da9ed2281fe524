/* Bad settings given to the real binary (`regmix train key=value ...`): each is refused
 * with a non-zero exit status and a message naming the setting, before anything is
 * trained and without writing a run file. The cases that need the machine or the data
 * (threads above the CPUs online, batch above the samples loaded) use Fashion-MNIST
 * and are skipped without it. */
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
#include <unistd.h>

#include "proc.h"

static char dir[64];

static int make_dir(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/regmix-badcli-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state) {
    (void)state;
    rm_test_remove_tree(dir);
    return 0;
}

/* Runs `regmix train ARGS outdir=DIR --quiet` (stderr into the output); returns its exit
 * status. */
static int train(const char *args, char *out, size_t size) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s train %s outdir=%s run_id=r --quiet 2>&1", REGMIX_BINARY, args,
             dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = 0, r;
    while (n + 1 < size && (r = fread(out + n, 1, size - 1 - n, p)) > 0) n += r;
    out[n] = '\0';
    int st = pclose(p);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* No run file (nor checkpoint) was written. */
static void assert_no_run_file(void) {
    char p[128];
    struct stat sb;
    snprintf(p, sizeof p, "%s/r.h5", dir);
    if (stat(p, &sb) == 0) fail_msg("%s was written", p);
    snprintf(p, sizeof p, "%s/r.ckpt.h5", dir);
    if (stat(p, &sb) == 0) fail_msg("%s was written", p);
}

static void expect_refused(const char *args, int want_status, const char *frag, int line) {
    char out[4096];
    int st = train(args, out, sizeof out);
    if (st != want_status) fail_msg("line %d: regmix train %s: exit %d, expected %d; output:\n%s", line, args, st,
                                    want_status, out);
    if (!strstr(out, frag)) fail_msg("line %d: regmix train %s: output lacks \"%s\":\n%s", line, args, frag, out);
    assert_no_run_file();
}
#define REFUSED(args, status, frag) expect_refused((args), (status), (frag), __LINE__)

/* Settings checked before the data is read: exit 2 (bad usage or settings). */
static void test_bad_settings(void **state) {
    (void)state;
    REFUSED("eps=-0.1", 2, "command line: eps: -0.1 is out of range (number in [0, 1])");
    REFUSED("eps=nan", 2, "command line: eps: expected a number, got 'nan'");
    REFUSED("eps=8/255", 2, "step: 0.1 is more than 2 x eps (eps 0.03137254901960784)");
    REFUSED("eps=0.1 step=0.25", 2, "step: 0.25 is more than 2 x eps (eps 0.1)");
    REFUSED("train_subset=100 batch=128", 2,
            "batch 128 is larger than the 100 training samples (train_subset 100 - val_size 0)");
    REFUSED("model=resnet18x", 2, "model: unknown value 'resnet18x'");
    REFUSED("dataset=fashionmnist", 2, "did you mean 'fashion-mnist'?");
    REFUSED("method=trades reg=none beta=6", 2, "write trades_beta=6");
    REFUSED("trades_beta=-1", 2, "command line: trades_beta: -1 is out of range (number >= 0)");
    REFUSED("run_id=../escape", 2, "command line: run_id: '../escape' is not a valid run id");
    REFUSED("threads=-2", 2, "command line: threads: -2 is out of range (integer >= 0)");
}

/* Checks when the run starts (the trainer, after reading the data): exit 1, no run
 * file; the lock file beside it is all that is left. */
static void test_machine_and_data_checks(void **state) {
    (void)state;
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &sb) != 0) {
        printf("SKIPPED: needs Fashion-MNIST (Debian package dataset-fashion-mnist)\n");
        return;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_true(cpus >= 1);
    char args[128], frag[160];
    snprintf(args, sizeof args, "threads=%ld train_subset=256 epochs=1", cpus + 1);
    snprintf(frag, sizeof frag, "threads: %ld is more than the %ld CPUs online on this machine", cpus + 1, cpus);
    REFUSED(args, 1, frag);
    /* train_subset 0: the whole training set minus the validation split */
    REFUSED("val_size=59950 epochs=1", 1,
            "batch 128 is larger than the 50 training samples of fashion-mnist (after train_subset 0 and val_size 59950)");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_machine_and_data_checks),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
