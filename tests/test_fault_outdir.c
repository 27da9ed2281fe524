/* Output folders a run cannot use, through rm_run: refused before any training (no
 * STARTED event, no run file), the reason naming the folder:
 * - a path that is a file: "... exists and is not a directory";
 * - a path below a file: mkdir's "Not a directory" naming it;
 * - a read-only folder (a read-only tmpfs when this process may mount one, as root;
 *   otherwise a 0555 folder, which binds every user but root; skipped when neither can
 *   be set up): "cannot write into ...";
 * and a missing folder is created (mkdir -p) and the run trains into it.
 * Small Fashion-MNIST runs (skipped when the dataset is not installed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc.h"

#include "regmix/run.h"

static char workdir[256];

typedef struct {
    int started;
    char message[512];
} recorder;

static int record(void *ctx, const rm_run_event *ev) {
    recorder *r = ctx;
    if (ev->kind == RM_RUN_EVENT_STARTED) r->started = 1;
    if (ev->kind == RM_RUN_EVENT_ERROR) snprintf(r->message, sizeof r->message, "%s", ev->message);
    return 0;
}

static rm_run_end run_into(const char *outdir, recorder *r) {
    rm_config c;
    rm_config_defaults(&c);
    assert_int_equal(rm_config_set(&c, "train_subset", "64", NULL), RM_OK);
    assert_int_equal(rm_config_set(&c, "test_subset", "32", NULL), RM_OK);
    assert_int_equal(rm_config_set(&c, "batch", "64", NULL), RM_OK);
    assert_int_equal(rm_config_set(&c, "epochs", "1", NULL), RM_OK);
    assert_int_equal(rm_config_set(&c, "threads", "1", NULL), RM_OK);
    assert_int_equal(rm_config_set(&c, "eval_attacks", "clean", NULL), RM_OK);
    assert_int_equal(rm_config_set(&c, "outdir", outdir, NULL), RM_OK);
    assert_int_equal(rm_config_set(&c, "run_id", "o", NULL), RM_OK);
    assert_int_equal(rm_config_validate(&c), RM_OK);
    rm_run_options o = {.mpi_size = 1, .threads = 1, .on_event = record, .ctx = r};
    rm_run_end end = rm_run(&c, &o, NULL);
    rm_error_clear();
    return end;
}

/* outdir is refused before training with a message holding `want`; no run file. */
static void assert_refused(const char *outdir, const char *want) {
    recorder r = {0};
    assert_int_equal(run_into(outdir, &r), RM_RUN_END_FAILED);
    printf("  %s: %s\n", outdir, r.message);
    assert_false(r.started);
    assert_non_null(strstr(r.message, outdir));
    assert_non_null(strstr(r.message, want));
    char path[600];
    struct stat sb;
    snprintf(path, sizeof path, "%s/o.h5", outdir);
    assert_int_not_equal(stat(path, &sb), 0);
}

static void test_outdir_is_a_file(void **state) {
    (void)state;
    char file[400], below[500];
    snprintf(file, sizeof file, "%s/file", workdir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_refused(file, "exists and is not a directory");
    snprintf(below, sizeof below, "%s/sub", file);
    assert_refused(below, "Not a directory");
}

static void test_outdir_read_only(void **state) {
    (void)state;
    char ro[400];
    snprintf(ro, sizeof ro, "%s/ro", workdir);
    assert_int_equal(mkdir(ro, 0755), 0);
    int mounted = mount("tmpfs", ro, "tmpfs", MS_RDONLY, "size=64k") == 0;
    if (!mounted) assert_int_equal(chmod(ro, 0555), 0);
    if (!mounted && access(ro, W_OK) == 0) {
        printf("  SKIPPED: root without mount(2): no read-only folder to test with\n");
        return;
    }
    printf("  read-only by %s\n", mounted ? "a read-only tmpfs" : "mode 0555");
    assert_refused(ro, mounted ? "Read-only file system" : "Permission denied");
    if (mounted) assert_int_equal(umount(ro), 0);
}

static void test_missing_outdir_is_created(void **state) {
    (void)state;
    char dir[400], path[500];
    snprintf(dir, sizeof dir, "%s/a/b/c", workdir);
    recorder r = {0};
    assert_int_equal(run_into(dir, &r), RM_RUN_END_COMPLETED);
    snprintf(path, sizeof path, "%s/o.h5", dir);
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    assert_int_equal(s.status, RM_RUN_COMPLETED);
    assert_int_equal(s.rows, 1);
    rm_run_summary_free(&s);
}

static int setup(void **state) {
    (void)state;
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &sb) != 0) {
        printf("SKIPPED: Fashion-MNIST is not installed (package dataset-fashion-mnist)\n");
        exit(0);
    }
    snprintf(workdir, sizeof workdir, "/tmp/regmix-fault-outdir-XXXXXX");
    return mkdtemp(workdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_tree(workdir); /* ro/ is empty: a 0555 folder goes with rmdir */
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outdir_is_a_file),
        cmocka_unit_test(test_outdir_read_only),
        cmocka_unit_test(test_missing_outdir_is_created),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
