/* Checkpoints: tensors of every type and shape read back bit for bit (by the module's
 * reader and, through the run file's external link, by plain HDF5), shape and type
 * checks, name checks; atomicity: a writer that dies halfway through the temporary
 * file (REGMIX_TEST_CKPT_EXIT_AFTER) leaves the previous checkpoint intact, byte for
 * byte, and the next checkpoint succeeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "regmix/config.h"
#include "regmix/runfile.h"
#include "runfile_fixture.h"

typedef struct {
    char dir[256];
    char path[512], ckpt[512];
    rm_config cfg;
    char hash[17];
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    if (rft_tmpdir_make(f->dir, sizeof f->dir, "rfckpt") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/run7.h5", f->dir);
    snprintf(f->ckpt, sizeof f->ckpt, "%s/run7.ckpt.h5", f->dir);
    rm_config_defaults(&f->cfg);
    rm_config_hash(&f->cfg, f->hash);
    rm_error_clear();
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    int rc = rft_tmpdir_remove(f->dir);
    unsetenv("REGMIX_TEST_CKPT_EXIT_AFTER");
    free(f);
    return rc;
}

/* The tensors of one checkpoint; `salt` makes the values of two checkpoints differ. */
typedef struct {
    float w[2][3];
    float bn_mean[3];
    float mom[2][3];
    double scalar;
    int64_t counts[4];
    uint64_t rng[4];
    uint8_t fresh[5];
} ckpt_data;

static void fill(ckpt_data *d, int salt) {
    for (int i = 0; i < 6; i++) {
        d->w[i / 3][i % 3] = (float)(i + 1) * 0.5f + (float)salt;
        d->mom[i / 3][i % 3] = -(float)i * 0.25f - (float)salt;
    }
    d->bn_mean[0] = 1e-7f * (float)(salt + 1);
    d->bn_mean[1] = -3.5f;
    d->bn_mean[2] = 1e30f;
    d->scalar = 0.1 * (salt + 1);
    for (int i = 0; i < 4; i++) {
        d->counts[i] = (int64_t)(i - 2) * 1000000000000LL + salt;
        d->rng[i] = 0xfedcba9876543210ull ^ ((uint64_t)i << 60) ^ (uint64_t)salt;
    }
    for (int i = 0; i < 5; i++) d->fresh[i] = (uint8_t)(i * 60 + salt);
}

static const int64_t DIM_W[] = {2, 3}, DIM_BN[] = {3}, DIM_4[] = {4}, DIM_5[] = {5}, DIM_0[] = {0};

/* Adds every tensor of d; stops after `count` tensors (the fault test). */
static void add_all(rm_checkpoint_writer *w, const ckpt_data *d, int count) {
    int k = 0;
#define ADD(name, t, nd, dims, p)                                                              \
    if (k++ < count) rft_check_ok(rm_checkpoint_add(w, name, t, nd, dims, p), name)
    ADD("model/conv1.weight", RM_DT_F32, 2, DIM_W, d->w);
    ADD("model/bn1.running_mean", RM_DT_F32, 1, DIM_BN, d->bn_mean);
    ADD("optimizer/conv1.weight.momentum", RM_DT_F32, 2, DIM_W, d->mom);
    ADD("lr_scale", RM_DT_F64, 0, NULL, &d->scalar);
    ADD("attack/counts", RM_DT_I64, 1, DIM_4, d->counts);
    ADD("rng/train", RM_DT_U64, 1, DIM_4, d->rng);
    ADD("attack/fresh", RM_DT_U8, 1, DIM_5, d->fresh);
    ADD("attack/empty", RM_DT_F32, 1, DIM_0, NULL);
#undef ADD
}
enum { N_TENSORS = 8 };

static void commit(fixture *f, const ckpt_data *d, int64_t epoch) {
    rm_checkpoint_writer *w = NULL;
    rft_check_ok(rm_checkpoint_begin(f->path, f->hash, &w), "begin");
    add_all(w, d, N_TENSORS);
    rm_checkpoint_meta meta = {.epoch = epoch, .iteration = epoch * 469, .steps = epoch * 469 - 1};
    rft_check_ok(rm_checkpoint_commit(w, &meta), "commit");
}

/* Reads everything back and compares with d bit for bit. */
static void verify(fixture *f, const ckpt_data *d, int64_t epoch) {
    rm_checkpoint_reader *r = NULL;
    rm_checkpoint_meta meta;
    rft_check_ok(rm_checkpoint_open(f->path, &r, &meta), "open");
    assert_int_equal(meta.epoch, epoch);
    assert_int_equal(meta.iteration, epoch * 469);
    assert_int_equal(meta.steps, epoch * 469 - 1);
    assert_string_equal(meta.config_hash, f->hash);
    assert_int_equal(strlen(meta.written_at), 20);
    ckpt_data got;
    memset(&got, 0xa5, sizeof got);
    rft_check_ok(rm_checkpoint_read(r, "model/conv1.weight", RM_DT_F32, 2, DIM_W, got.w), "w");
    rft_check_ok(rm_checkpoint_read(r, "model/bn1.running_mean", RM_DT_F32, 1, DIM_BN, got.bn_mean), "bn");
    rft_check_ok(rm_checkpoint_read(r, "optimizer/conv1.weight.momentum", RM_DT_F32, 2, DIM_W, got.mom), "mom");
    rft_check_ok(rm_checkpoint_read(r, "lr_scale", RM_DT_F64, 0, NULL, &got.scalar), "scalar");
    rft_check_ok(rm_checkpoint_read(r, "attack/counts", RM_DT_I64, 1, DIM_4, got.counts), "counts");
    rft_check_ok(rm_checkpoint_read(r, "rng/train", RM_DT_U64, 1, DIM_4, got.rng), "rng");
    rft_check_ok(rm_checkpoint_read(r, "attack/fresh", RM_DT_U8, 1, DIM_5, got.fresh), "fresh");
    rft_check_ok(rm_checkpoint_read(r, "attack/empty", RM_DT_F32, 1, DIM_0, NULL), "empty");
    assert_memory_equal(got.w, d->w, sizeof d->w);
    assert_memory_equal(got.bn_mean, d->bn_mean, sizeof d->bn_mean);
    assert_memory_equal(got.mom, d->mom, sizeof d->mom);
    assert_memory_equal(&got.scalar, &d->scalar, sizeof d->scalar);
    assert_memory_equal(got.counts, d->counts, sizeof d->counts);
    assert_memory_equal(got.rng, d->rng, sizeof d->rng);
    assert_memory_equal(got.fresh, d->fresh, sizeof d->fresh);
    rm_checkpoint_close(r);
}

static void test_round_trip_every_type(void **state) {
    fixture *f = *state;
    assert_int_equal(rm_checkpoint_present(f->path), 0);
    rm_checkpoint_reader *r = NULL;
    assert_int_equal(rm_checkpoint_open(f->path, &r, NULL), RM_ERR_IO);
    assert_non_null(strstr(rm_error_message(), f->ckpt));
    rm_error_clear();
    ckpt_data d;
    fill(&d, 0);
    commit(f, &d, 3);
    assert_int_equal(rm_checkpoint_present(f->path), 1);
    verify(f, &d, 3);
    /* the temporary file is gone after the rename */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", f->ckpt);
    assert_int_equal(access(tmp, F_OK), -1);

    /* shapes, types and names */
    rft_check_ok(rm_checkpoint_open(f->path, &r, NULL), "open");
    rm_dtype t;
    int nd;
    int64_t dims[RM_CKPT_MAX_DIMS];
    rft_check_ok(rm_checkpoint_shape(r, "rng/train", &t, &nd, dims), "shape");
    assert_int_equal(t, RM_DT_U64);
    assert_int_equal(nd, 1);
    assert_int_equal(dims[0], 4);
    rft_check_ok(rm_checkpoint_shape(r, "lr_scale", &t, &nd, dims), "shape");
    assert_int_equal(t, RM_DT_F64);
    assert_int_equal(nd, 0);
    rft_check_ok(rm_checkpoint_shape(r, "attack/fresh", &t, &nd, dims), "shape");
    assert_int_equal(t, RM_DT_U8);
    assert_int_equal(rm_checkpoint_has(r, "model/conv1.weight"), 1);
    assert_int_equal(rm_checkpoint_has(r, "model/conv2.weight"), 0);
    assert_int_equal(rm_checkpoint_has(r, "nothere/conv2.weight"), 0);
    assert_int_equal(rm_checkpoint_has(r, "../x"), 0);
    /* a wrong shape or type is refused, naming both */
    float buf[6];
    const int64_t wrong[] = {3, 2};
    assert_int_equal(rm_checkpoint_read(r, "model/conv1.weight", RM_DT_F32, 2, wrong, buf), RM_ERR_FORMAT);
    assert_non_null(strstr(rm_error_message(), "float32[2,3]"));
    assert_non_null(strstr(rm_error_message(), "float32[3,2]"));
    rm_error_clear();
    assert_int_equal(rm_checkpoint_read(r, "attack/fresh", RM_DT_F32, 1, DIM_5, buf), RM_ERR_FORMAT);
    assert_non_null(strstr(rm_error_message(), "uint8[5]"));
    rm_error_clear();
    assert_int_equal(rm_checkpoint_read(r, "model/missing", RM_DT_F32, 1, DIM_5, buf), RM_ERR_FORMAT);
    rm_error_clear();
    rm_checkpoint_close(r);
}

static void test_writer_argument_errors(void **state) {
    fixture *f = *state;
    rm_checkpoint_writer *w = NULL;
    rft_check_ok(rm_checkpoint_begin(f->path, f->hash, &w), "begin");
    float x[2] = {1, 2};
    const int64_t d2[] = {2}, neg[] = {-1};
    const char *bad_names[] = {"", "/abs", "a//b", "a/", "a/../b", "sp ace", "."};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        rm_error_clear();
        assert_int_equal(rm_checkpoint_add(w, bad_names[i], RM_DT_F32, 1, d2, x), RM_ERR_ARG);
    }
    rm_error_clear();
    assert_int_equal(rm_checkpoint_add(w, "n", RM_DT_F32, 1, neg, x), RM_ERR_ARG);
    rm_error_clear();
    assert_int_equal(rm_checkpoint_add(w, "n", RM_DT_F32, 9, d2, x), RM_ERR_ARG);
    rm_error_clear();
    assert_int_equal(rm_checkpoint_add(w, "n", RM_DT_F32, 1, d2, NULL), RM_ERR_ARG);
    rm_error_clear();
    rft_check_ok(rm_checkpoint_add(w, "model/x", RM_DT_F32, 1, d2, x), "add");
    assert_int_equal(rm_checkpoint_add(w, "model/x", RM_DT_F32, 1, d2, x), RM_ERR_ARG);
    assert_non_null(strstr(rm_error_message(), "twice"));
    rm_error_clear();
    /* abort leaves no checkpoint and no temporary file */
    rm_checkpoint_abort(w);
    assert_int_equal(rm_checkpoint_present(f->path), 0);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", f->ckpt);
    assert_int_equal(access(tmp, F_OK), -1);
}

/* h5py / h5dump path: the run file's /checkpoint link reaches the tensors. */
static void test_external_link_from_run_file(void **state) {
    fixture *f = *state;
    rm_runfile *rf = NULL;
    rm_run_info info = {.mpi_rank = 0, .mpi_size = 1, .threads = 1};
    const rm_metric_spec m[] = {{"loss", "nats", "training loss"}};
    rft_check_ok(rm_runfile_create(f->path, &f->cfg, &info, m, 1, &rf), "create");
    ckpt_data d;
    fill(&d, 5);
    double row = 0.5;
    rft_check_ok(rm_runfile_append(rf, 1, &row), "append");
    assert_string_equal(rm_runfile_config_hash(rf), f->hash);
    commit(f, &d, 1); /* while the run file is in SWMR-write mode */
    rft_check_ok(rm_runfile_close(rf), "close");

    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    /* from another working directory: the link is resolved beside the run file */
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir("/"), 0);
    hid_t file = H5Fopen(f->path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
    assert_true(file >= 0);
    hid_t ds = H5Dopen2(file, "/checkpoint/model/conv1.weight", H5P_DEFAULT);
    assert_true(ds >= 0);
    float w[2][3];
    assert_true(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w) >= 0);
    assert_memory_equal(w, d.w, sizeof w);
    H5Dclose(ds);
    hid_t g = H5Gopen2(file, "/checkpoint", H5P_DEFAULT);
    hid_t a = H5Aopen(g, "epoch", H5P_DEFAULT);
    int64_t epoch = 0;
    assert_true(H5Aread(a, H5T_NATIVE_INT64, &epoch) >= 0);
    assert_int_equal(epoch, 1);
    H5Aclose(a);
    H5Gclose(g);
    H5Fclose(file);
    assert_int_equal(chdir(cwd), 0);
    rm_run_summary s;
    rft_check_ok(rm_runfile_read(f->path, &s), "read");
    assert_int_equal(s.has_checkpoint, 1);
    assert_int_equal(s.checkpoint_epoch, 1);
    assert_int_equal(s.checkpoint_iteration, 469);
    rm_run_summary_free(&s);
}

/* The writer dies (_exit) after `after` tensors of the second checkpoint. */
static void crash_during_checkpoint(fixture *f, int after) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char n[16];
        snprintf(n, sizeof n, "%d", after);
        setenv("REGMIX_TEST_CKPT_EXIT_AFTER", n, 1);
        ckpt_data d2;
        fill(&d2, 9);
        rm_checkpoint_writer *w = NULL;
        if (rm_checkpoint_begin(f->path, f->hash, &w) != RM_OK) _exit(1);
        add_all(w, &d2, N_TENSORS);
        _exit(2); /* not reached: the hook exits with 86 */
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 86);
}

static void test_atomic_replacement(void **state) {
    fixture *f = *state;
    ckpt_data d1;
    fill(&d1, 1);
    commit(f, &d1, 4);
    size_t n_before = 0, n_after = 0;
    char *before = rft_slurp(f->ckpt, &n_before);
    assert_non_null(before);

    for (int after = 1; after <= 3; after++) {
        crash_during_checkpoint(f, after);
        /* the half-written temporary file is there, the checkpoint is untouched */
        char tmp[600];
        snprintf(tmp, sizeof tmp, "%s.tmp", f->ckpt);
        assert_int_equal(access(tmp, F_OK), 0);
        char *now = rft_slurp(f->ckpt, &n_after);
        assert_non_null(now);
        assert_int_equal(n_after, n_before);
        assert_memory_equal(now, before, n_before);
        free(now);
        verify(f, &d1, 4);
    }
    free(before);
    /* the next checkpoint replaces the stale temporary file and commits */
    ckpt_data d2;
    fill(&d2, 2);
    commit(f, &d2, 5);
    verify(f, &d2, 5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_every_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_argument_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_external_link_from_run_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_replacement, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
