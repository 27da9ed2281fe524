/* Files that are not (usable) regmix run files: missing, not HDF5, empty, HDF5 from
 * another program, another format, unknown schema version, truncated, corrupt
 * superblock, a directory. The reader, the resume path and the repair each give the
 * right error code and a message naming the file, and the file's bytes are unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "regmix/config.h"
#include "regmix/runfile.h"
#include "runfile_fixture.h"

typedef struct {
    char dir[256];
    char good[512]; /* a valid, closed run file with 4 rows */
    rm_config cfg;
} fixture;

static const rm_metric_spec METRICS[] = {{"loss", "nats", "training loss"}};
static const rm_run_info INFO = {.mpi_rank = 0, .mpi_size = 1, .threads = 1};

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    if (rft_tmpdir_make(f->dir, sizeof f->dir, "rfbad") != 0) {
        free(f);
        return -1;
    }
    snprintf(f->good, sizeof f->good, "%s/good.h5", f->dir);
    rm_config_defaults(&f->cfg);
    rm_error_clear();
    rm_runfile *rf = NULL;
    if (rm_runfile_create(f->good, &f->cfg, &INFO, METRICS, 1, &rf) != RM_OK) return -1;
    for (int e = 1; e <= 4; e++) {
        double v = e;
        if (rm_runfile_append(rf, e, &v) != RM_OK) return -1;
    }
    if (rm_runfile_close(rf) != RM_OK) return -1;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    int rc = rft_tmpdir_remove(f->dir);
    free(f);
    return rc;
}

static void spit(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* The reader, resume and repair all refuse `path` with `code` and a message containing
 * the path and `why`; the file (if any) is byte-for-byte the same afterwards. */
static void expect_refused(fixture *f, const char *path, rm_status code, const char *why) {
    size_t n0 = 0, n1 = 0;
    char *before = rft_slurp(path, &n0);
    for (int which = 0; which < 3; which++) {
        const char *name = which == 0 ? "rm_runfile_read" : which == 1 ? "rm_runfile_resume" : "rm_runfile_repair";
        rm_error_clear();
        rm_status st;
        if (which == 0) {
            rm_run_summary s;
            st = rm_runfile_read(path, &s);
            assert_null(s.config_yaml); /* zeroed on failure */
        } else if (which == 1) {
            rm_runfile *rf = NULL;
            rm_resume_report rep;
            st = rm_runfile_resume(path, &f->cfg, &INFO, METRICS, 1, 1, &rf, &rep);
            assert_null(rf);
        } else {
            st = rm_runfile_repair(path);
        }
        if (st != code)
            fail_msg("%s(%s): %s, expected %s: %s", name, path, rm_status_name(st), rm_status_name(code),
                     rm_error_message());
        if (!strstr(rm_error_message(), path) || !strstr(rm_error_message(), why))
            fail_msg("%s(%s): message lacks the path or '%s': %s", name, path, why, rm_error_message());
    }
    if (before) {
        char *after = rft_slurp(path, &n1);
        assert_non_null(after);
        assert_int_equal(n1, n0);
        assert_memory_equal(after, before, n0);
        free(after);
        free(before);
    }
    rm_error_clear();
}

static void test_missing_and_directory(void **state) {
    fixture *f = *state;
    char p[600];
    snprintf(p, sizeof p, "%s/missing.h5", f->dir);
    expect_refused(f, p, RM_ERR_IO, "No such file");
    snprintf(p, sizeof p, "%s/sub.h5", f->dir);
    assert_int_equal(mkdir(p, 0700), 0);
    expect_refused(f, p, RM_ERR_IO, "not a regular file");
}

static void test_not_hdf5(void **state) {
    fixture *f = *state;
    char p[600];
    snprintf(p, sizeof p, "%s/text.h5", f->dir);
    const char text[] = "epoch,loss\n1,0.5\n2,0.25\n";
    spit(p, text, sizeof text - 1);
    expect_refused(f, p, RM_ERR_FORMAT, "not an HDF5 file");
    snprintf(p, sizeof p, "%s/empty.h5", f->dir);
    spit(p, "", 0);
    expect_refused(f, p, RM_ERR_FORMAT, "not an HDF5 file");
}

/* An HDF5 file made with plain H5Fcreate, as another program would. */
static void test_other_programs_hdf5(void **state) {
    fixture *f = *state;
    char p[600];
    snprintf(p, sizeof p, "%s/other.h5", f->dir);
    hid_t file = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(file >= 0);
    hsize_t n = 4;
    hid_t s = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(file, "data", H5T_NATIVE_DOUBLE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    double v[4] = {1, 2, 3, 4};
    assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Fclose(file);
    expect_refused(f, p, RM_ERR_FORMAT, "not a regmix-run file");
}

/* Sets a root attribute of an existing file with plain HDF5 (string or int64). */
static void set_root_attr(const char *path, const char *name, const char *text, int64_t num) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, fapl);
    assert_true(file >= 0);
    H5Pclose(fapl);
    if (H5Aexists(file, name) > 0) assert_true(H5Adelete(file, name) >= 0);
    hid_t s = H5Screate(H5S_SCALAR), t;
    if (text) {
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
    } else {
        t = H5Tcopy(H5T_STD_I64LE);
    }
    hid_t a = H5Acreate2(file, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0);
    if (text) assert_true(H5Awrite(a, t, &text) >= 0);
    else assert_true(H5Awrite(a, H5T_NATIVE_INT64, &num) >= 0);
    H5Aclose(a);
    H5Tclose(t);
    H5Sclose(s);
    assert_true(H5Fclose(file) >= 0);
}

static void copy_file(const char *from, const char *to, size_t keep) {
    size_t n = 0;
    char *buf = rft_slurp(from, &n);
    assert_non_null(buf);
    spit(to, buf, keep < n ? keep : n);
    free(buf);
}

static void test_other_format_and_schema(void **state) {
    fixture *f = *state;
    char p[600];
    snprintf(p, sizeof p, "%s/schema2.h5", f->dir);
    copy_file(f->good, p, (size_t)-1);
    set_root_attr(p, "regmix_schema", NULL, 2);
    expect_refused(f, p, RM_ERR_FORMAT, "schema version 2 is not supported");

    snprintf(p, sizeof p, "%s/format.h5", f->dir);
    copy_file(f->good, p, (size_t)-1);
    set_root_attr(p, "format", "regmix-sweep-index", 0);
    expect_refused(f, p, RM_ERR_FORMAT, "'regmix-sweep-index', expected 'regmix-run'");

    /* A checkpoint file handed over as a run file. */
    snprintf(p, sizeof p, "%s/ck.h5", f->dir);
    rm_checkpoint_writer *w = NULL;
    rft_check_ok(rm_checkpoint_begin(p, "0123456789abcdef", &w), "begin");
    rm_checkpoint_meta meta = {1, 1, 1, "", ""};
    rft_check_ok(rm_checkpoint_commit(w, &meta), "commit");
    snprintf(p, sizeof p, "%s/ck.ckpt.h5", f->dir);
    expect_refused(f, p, RM_ERR_FORMAT, "expected 'regmix-run'");
}

static void test_truncated_and_corrupt(void **state) {
    fixture *f = *state;
    size_t n = 0;
    char *good = rft_slurp(f->good, &n);
    assert_non_null(good);
    assert_true(n > 2000);
    char p[600];
    const size_t keep[] = {n / 2, n - 1, 1200};
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
        snprintf(p, sizeof p, "%s/trunc%zu.h5", f->dir, i);
        spit(p, good, keep[i]);
        expect_refused(f, p, RM_ERR_FORMAT, "truncated or corrupt");
    }
    /* 4 bytes: not even the signature */
    snprintf(p, sizeof p, "%s/trunc4.h5", f->dir);
    spit(p, good, 4);
    expect_refused(f, p, RM_ERR_FORMAT, "not an HDF5 file");
    /* superblock body overwritten after the signature (its checksum no longer matches) */
    snprintf(p, sizeof p, "%s/corrupt.h5", f->dir);
    memset(good + 12, 0x5a, 20);
    spit(p, good, n);
    expect_refused(f, p, RM_ERR_FORMAT, "truncated or corrupt");
    free(good);
    /* the good file itself still reads */
    rm_run_summary s;
    rft_check_ok(rm_runfile_read(f->good, &s), "read good");
    assert_int_equal(s.rows, 4);
    rm_run_summary_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_and_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_hdf5, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_programs_hdf5, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_format_and_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_and_corrupt, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
