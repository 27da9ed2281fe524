/* Checkpoints that are valid HDF5 but not what the run needs, forged with the HDF5 C API
 * into a run preempted in epoch 2 (checkpoint of the half-done epoch), then resumed with
 * rm_run:
 * - a weight of another shape, a tensor of another dtype, a tensor missing (renamed):
 *   FAILED with a reason naming the checkpoint file, the dataset and (shape, dtype) both
 *   sides; the run file keeps epoch 1's row and records status failed with that reason;
 * - NaN in a weight, +Inf in the SGD momentum: FAILED naming the dataset and the value
 *   (before this check, an Inf momentum trained on silently to a -inf weight and a
 *   "completed" run).
 * Small Fashion-MNIST runs (skipped when the dataset is not installed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <hdf5.h>

#include "proc.h"

#include "regmix/run.h"

static char workdir[256];

static int stop_in_epoch_2(void *ctx, const rm_run_event *ev) {
    (void)ctx;
    return ev->kind == RM_RUN_EVENT_BATCH && ev->epoch == 2 && ev->done == 1;
}

typedef struct {
    char message[512];
} recorder;

static int record(void *ctx, const rm_run_event *ev) {
    recorder *r = ctx;
    if (ev->kind == RM_RUN_EVENT_ERROR || ev->kind == RM_RUN_EVENT_STOPPED)
        snprintf(r->message, sizeof r->message, "%s", ev->message ? ev->message : "");
    return 0;
}

static void config(rm_config *c, const char *dir) {
    char od[512];
    snprintf(od, sizeof od, "%s/%s", workdir, dir);
    rm_config_defaults(c);
    assert_int_equal(rm_config_set(c, "train_subset", "128", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "test_subset", "32", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "batch", "64", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "epochs", "2", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "threads", "1", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "eval_attacks", "clean", NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "outdir", od, NULL), RM_OK);
    assert_int_equal(rm_config_set(c, "run_id", "f", NULL), RM_OK);
    assert_int_equal(rm_config_validate(c), RM_OK);
}

/* base/f.h5: preempted in epoch 2, one row, a checkpoint of the half-done epoch. */
static void make_base(void) {
    static int done;
    if (done++) return;
    rm_config c;
    config(&c, "base");
    rm_run_options o = {.mpi_size = 1, .threads = 1, .on_event = stop_in_epoch_2};
    assert_int_equal(rm_run(&c, &o, NULL), RM_RUN_END_PREEMPTED);
}

/* A copy of base in dir; returns the path of its checkpoint in ckpt. */
static void copy_base(const char *dir, char *ckpt, size_t size) {
    make_base();
    char cmd[800];
    snprintf(cmd, sizeof cmd, "cp -r '%s/base' '%s/%s'", workdir, workdir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(ckpt, size, "%s/%s/f.ckpt.h5", workdir, dir);
}

/* Replaces dataset `name` (under /checkpoint) by one of `type` and shape dims filled
 * with `value`. */
static void forge(const char *ckpt, const char *name, hid_t type, int ndim, const hsize_t *dims, double value) {
    hid_t f = H5Fopen(ckpt, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    char obj[300];
    snprintf(obj, sizeof obj, "/checkpoint/%s", name);
    assert_true(H5Ldelete(f, obj, H5P_DEFAULT) >= 0);
    hid_t s = H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(f, obj, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(s >= 0 && d >= 0);
    hsize_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    double *v = malloc(n * sizeof *v);
    assert_non_null(v);
    for (hsize_t i = 0; i < n; i++) v[i] = value;
    assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    free(v);
    H5Dclose(d), H5Sclose(s), H5Fclose(f);
}

/* Overwrites element 0 of /checkpoint/<name> (float32) with value, keeping the rest. */
static void poison(const char *ckpt, const char *name, float value) {
    hid_t f = H5Fopen(ckpt, H5F_ACC_RDWR, H5P_DEFAULT);
    char obj[300];
    snprintf(obj, sizeof obj, "/checkpoint/%s", name);
    hid_t d = H5Dopen2(f, obj, H5P_DEFAULT);
    assert_true(f >= 0 && d >= 0);
    hid_t fs = H5Dget_space(d);
    hsize_t start[8] = {0}, count[8] = {1, 1, 1, 1, 1, 1, 1, 1}, one = 1;
    assert_true(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0);
    hid_t ms = H5Screate_simple(1, &one, NULL);
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, &value) >= 0);
    H5Sclose(ms), H5Sclose(fs), H5Dclose(d), H5Fclose(f);
}

/* Resumes dir's run; it must end `end` with every piece of `named` in its reason, which
 * the run file records with status `status`, epoch 1's row still there. */
static void resume_expect(const char *dir, rm_run_end end, rm_run_status status, const char *const *named) {
    rm_config c;
    config(&c, dir);
    recorder r = {0};
    rm_run_options o = {.mpi_size = 1, .threads = 1, .on_event = record, .ctx = &r};
    rm_run_result res;
    assert_int_equal(rm_run(&c, &o, &res), end);
    rm_error_clear();
    printf("  %s: %s\n", dir, res.reason);
    assert_int_equal(res.status, status);
    for (int i = 0; named[i]; i++)
        if (!strstr(res.reason, named[i])) fail_msg("reason does not name '%s': %s", named[i], res.reason);
    char path[600];
    snprintf(path, sizeof path, "%s/%s/f.h5", workdir, dir);
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    assert_int_equal(s.status, status);
    assert_string_equal(s.status_reason, res.reason);
    assert_int_equal(s.rows, 1);
    assert_int_equal(s.epoch[0], 1);
    rm_run_summary_free(&s);
}

static void test_weight_of_another_shape(void **state) {
    (void)state;
    char ckpt[600];
    copy_base("shape", ckpt, sizeof ckpt);
    hsize_t dims[4] = {32, 1, 5, 5};
    forge(ckpt, "model/conv1.weight", H5T_IEEE_F32LE, 4, dims, 0.01);
    const char *named[] = {"f.ckpt.h5", "model/conv1.weight", "float32[32,1,5,5]", "float32[32,1,3,3]", NULL};
    resume_expect("shape", RM_RUN_END_FAILED, RM_RUN_FAILED, named);
}

static void test_tensor_of_another_dtype(void **state) {
    (void)state;
    char ckpt[600];
    copy_base("dtype", ckpt, sizeof ckpt);
    hsize_t dims[1] = {10};
    forge(ckpt, "model/fc2.bias", H5T_IEEE_F64LE, 1, dims, 0.0);
    const char *named[] = {"f.ckpt.h5", "model/fc2.bias", "float64[10]", "float32[10]", NULL};
    resume_expect("dtype", RM_RUN_END_FAILED, RM_RUN_FAILED, named);
}

static void test_tensor_missing(void **state) {
    (void)state;
    char ckpt[600];
    copy_base("name", ckpt, sizeof ckpt);
    hid_t f = H5Fopen(ckpt, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_true(H5Lmove(f, "/checkpoint/model/fc1.weight", f, "/checkpoint/model/fc1.weights", H5P_DEFAULT,
                        H5P_DEFAULT) >= 0);
    H5Fclose(f);
    const char *named[] = {"f.ckpt.h5", "has no tensor", "model/fc1.weight", NULL};
    resume_expect("name", RM_RUN_END_FAILED, RM_RUN_FAILED, named);
}

static void test_nan_weight_is_refused(void **state) {
    (void)state;
    char ckpt[600];
    copy_base("nan", ckpt, sizeof ckpt);
    poison(ckpt, "model/conv1.weight", NAN);
    const char *named[] = {"f.ckpt.h5", "model/conv1.weight holds nan at flat index 0 (not finite)", NULL};
    resume_expect("nan", RM_RUN_END_FAILED, RM_RUN_FAILED, named);
}

static void test_inf_momentum_is_refused(void **state) {
    (void)state;
    char ckpt[600];
    copy_base("inf", ckpt, sizeof ckpt);
    poison(ckpt, "optimizer/fc2.weight.momentum", INFINITY);
    const char *named[] = {"f.ckpt.h5", "optimizer/fc2.weight.momentum holds inf at flat index 0", NULL};
    resume_expect("inf", RM_RUN_END_FAILED, RM_RUN_FAILED, named);
}

static int setup(void **state) {
    (void)state;
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &sb) != 0) {
        printf("SKIPPED: Fashion-MNIST is not installed (package dataset-fashion-mnist)\n");
        exit(0);
    }
    snprintf(workdir, sizeof workdir, "/tmp/regmix-fault-ckpt-XXXXXX");
    return mkdtemp(workdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_tree(workdir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weight_of_another_shape),
        cmocka_unit_test(test_tensor_of_another_dtype),
        cmocka_unit_test(test_tensor_missing),
        cmocka_unit_test(test_nan_weight_is_refused),
        cmocka_unit_test(test_inf_momentum_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
