/* Run file round trip: every part of the schema read back with plain HDF5 calls (not
 * through the module's reader) and through rm_runfile_read: root attributes, typed
 * /config attributes, provenance, metric columns after several appends, the external
 * checkpoint link, status updates; plus `regmix inspect` on the result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "regmix/config.h"
#include "regmix/runfile.h"
#include "runfile_fixture.h"

typedef rft_fixture fixture; /* dir, path, default cfg */

static const rm_metric_spec METRICS[] = {
    {"train_loss", "nats", "mean training loss of the epoch"},
    {"clean_acc", "fraction", "clean test accuracy"},
    {"pgd20_acc", "fraction", "PGD-20 test accuracy"},
};
enum { N_METRICS = 3 };

static int setup(void **state) {
    fixture *f = rft_fixture_new("rfschema", "demo.h5");
    if (!f) return -1;
    /* Values chosen to be recognisable, of every setting type. */
    f->cfg.lr = 0.25;
    f->cfg.epochs = 7;
    f->cfg.amr_stop_f = 1;
    f->cfg.seed = 12345678901234567890ull; /* above INT64_MAX: stored as uint64 */
    snprintf(f->cfg.model, sizeof f->cfg.model, "preact-resnet18");
    *state = f;
    return 0;
}

/* ---- independent readers: plain HDF5 ---- */

static double attr_f64(hid_t obj, const char *name) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    assert_true(a >= 0);
    hid_t t = H5Aget_type(a);
    assert_int_equal(H5Tget_class(t), H5T_FLOAT);
    assert_int_equal(H5Tget_size(t), 8);
    double v = 0;
    assert_true(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
    H5Tclose(t);
    H5Aclose(a);
    return v;
}

/* Integer attribute of class INTEGER, 8 bytes, with the given signedness. */
static void attr_int(hid_t obj, const char *name, int is_signed, void *out) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) fail_msg("no attribute %s", name);
    hid_t t = H5Aget_type(a);
    assert_int_equal(H5Tget_class(t), H5T_INTEGER);
    assert_int_equal(H5Tget_size(t), 8);
    assert_int_equal(H5Tget_sign(t), is_signed ? H5T_SGN_2 : H5T_SGN_NONE);
    assert_true(H5Aread(a, is_signed ? H5T_NATIVE_INT64 : H5T_NATIVE_UINT64, out) >= 0);
    H5Tclose(t);
    H5Aclose(a);
}

/* Variable-length string attribute into buf. */
static void attr_str(hid_t obj, const char *name, char *buf, size_t size) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) fail_msg("no attribute %s", name);
    hid_t t = H5Aget_type(a);
    assert_int_equal(H5Tget_class(t), H5T_STRING);
    assert_true(H5Tis_variable_str(t) > 0);
    char *s = NULL;
    assert_true(H5Aread(a, t, &s) >= 0);
    snprintf(buf, size, "%s", s);
    H5free_memory(s);
    H5Tclose(t);
    H5Aclose(a);
}

static void dset_str(hid_t file, const char *name, char *buf, size_t size) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) fail_msg("no dataset %s", name);
    hid_t t = H5Dget_type(d);
    assert_int_equal(H5Tget_class(t), H5T_STRING);
    size_t n = H5Tget_size(t);
    assert_true(n < size);
    memset(buf, 0, size);
    assert_true(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
    H5Tclose(t);
    H5Dclose(d);
}

static hsize_t dset_len(hid_t file, const char *name) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) fail_msg("no dataset %s", name);
    hid_t s = H5Dget_space(d);
    hsize_t n = 0, mx = 0;
    assert_int_equal(H5Sget_simple_extent_ndims(s), 1);
    H5Sget_simple_extent_dims(s, &n, &mx);
    assert_true(mx == H5S_UNLIMITED);
    H5Sclose(s);
    H5Dclose(d);
    return n;
}

static const rm_run_info INFO = {.mpi_rank = 3, .mpi_size = 8, .threads = 2};

/* Three epochs with hand-written values (the third one has a metric not evaluated). */
static const double ROWS[3][N_METRICS] = {{2.25, 0.5, 0.125}, {1.75, 0.625, 0.25}, {1.5, 0.75, NAN}};

static void write_demo(fixture *f) {
    rm_runfile *rf = NULL;
    rft_check_ok(rm_runfile_create(f->path, &f->cfg, &INFO, METRICS, N_METRICS, &rf), "create");
    for (int e = 0; e < 3; e++) rft_check_ok(rm_runfile_append(rf, e + 1, ROWS[e]), "append");
    assert_int_equal(rm_runfile_rows(rf), 3);
    rft_check_ok(rm_runfile_set_status(rf, RM_RUN_COMPLETED, "all 3 epochs"), "set_status");
    rft_check_ok(rm_runfile_close(rf), "close");
}

static int is_iso8601(const char *s) {
    /* YYYY-MM-DDTHH:MM:SSZ */
    if (strlen(s) != 20) return 0;
    for (int i = 0; i < 20; i++) {
        char c = s[i];
        int ok = (i == 4 || i == 7) ? c == '-' : i == 10 ? c == 'T' : (i == 13 || i == 16) ? c == ':'
                 : i == 19 ? c == 'Z' : (c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

static void test_schema_with_plain_hdf5(void **state) {
    fixture *f = *state;
    write_demo(f);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t file = H5Fopen(f->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    char buf[1024];
    int64_t i64 = 0;
    uint64_t u64 = 0;

    attr_str(file, "format", buf, sizeof buf);
    assert_string_equal(buf, "regmix-run");
    attr_int(file, "regmix_schema", 1, &i64);
    assert_int_equal(i64, 1);
    attr_str(file, "run_id", buf, sizeof buf);
    assert_string_equal(buf, "demo");

    /* /config: typed attributes */
    hid_t g = H5Gopen2(file, "/config", H5P_DEFAULT);
    assert_true(g >= 0);
    assert_true(attr_f64(g, "lr") == 0.25);
    assert_true(attr_f64(g, "eps") == f->cfg.eps);
    attr_int(g, "epochs", 1, &i64);
    assert_int_equal(i64, 7);
    attr_int(g, "amr_stop_f", 1, &i64); /* booleans are 0/1 integers */
    assert_int_equal(i64, 1);
    attr_int(g, "seed", 0, &u64);
    assert_true(u64 == 12345678901234567890ull);
    attr_str(g, "model", buf, sizeof buf);
    assert_string_equal(buf, "preact-resnet18");
    attr_str(g, "hash", buf, sizeof buf);
    char want_hash[17];
    rm_config_hash(&f->cfg, want_hash);
    assert_string_equal(buf, want_hash);
    assert_int_equal(strlen(buf), 16);
    static char yaml[65536];
    attr_str(g, "yaml", yaml, sizeof yaml);
    assert_non_null(strstr(yaml, "lr: 0.25\n"));
    assert_non_null(strstr(yaml, "model: preact-resnet18\n"));
    /* one attribute per setting, plus yaml and hash */
    H5O_info_t oi;
    assert_true(H5Oget_info2(g, &oi, H5O_INFO_NUM_ATTRS) >= 0);
    assert_int_equal(oi.num_attrs, (hsize_t)rm_config_setting_count() + 2);
    H5Gclose(g);

    /* /provenance */
    g = H5Gopen2(file, "/provenance", H5P_DEFAULT);
    assert_true(g >= 0);
    attr_str(g, "regmix_version", buf, sizeof buf);
    assert_string_equal(buf, REGMIX_VERSION);
    attr_str(g, "git_commit", buf, sizeof buf);
    assert_string_equal(buf, REGMIX_GIT_COMMIT);
    unsigned maj, min, rel;
    H5get_libversion(&maj, &min, &rel);
    char hv[32];
    snprintf(hv, sizeof hv, "%u.%u.%u", maj, min, rel);
    attr_str(g, "hdf5_version", buf, sizeof buf);
    assert_string_equal(buf, hv);
    attr_str(g, "onednn_version", buf, sizeof buf);
    assert_true(buf[0] >= '0' && buf[0] <= '9'); /* "2.x.y" */
    attr_str(g, "onednn_isa", buf, sizeof buf);
    assert_true(strlen(buf) > 0);
    attr_str(g, "mpi_version", buf, sizeof buf);
    assert_true(strlen(buf) > 0 && !strchr(buf, '\n'));
    char host[256] = "";
    gethostname(host, sizeof host);
    attr_str(g, "host", buf, sizeof buf);
    assert_string_equal(buf, host);
    attr_int(g, "mpi_rank", 1, &i64);
    assert_int_equal(i64, 3);
    attr_int(g, "mpi_size", 1, &i64);
    assert_int_equal(i64, 8);
    attr_int(g, "threads", 1, &i64);
    assert_int_equal(i64, 2);
    attr_str(g, "start_time", buf, sizeof buf);
    assert_true(is_iso8601(buf));
    H5Gclose(g);
    dset_str(file, "/provenance/status", buf, sizeof buf);
    assert_string_equal(buf, "completed");
    dset_str(file, "/provenance/status_reason", buf, sizeof buf);
    assert_string_equal(buf, "all 3 epochs");
    dset_str(file, "/provenance/end_time", buf, sizeof buf);
    assert_true(is_iso8601(buf));

    /* /metrics: epoch column and one column per metric, with units and descriptions */
    hid_t d = H5Dopen2(file, "/metrics/epoch", H5P_DEFAULT);
    int64_t ep[3] = {0};
    assert_true(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ep) >= 0);
    H5Dclose(d);
    assert_int_equal(ep[0], 1);
    assert_int_equal(ep[2], 3);
    assert_int_equal(dset_len(file, "/metrics/epoch"), 3);
    for (int m = 0; m < N_METRICS; m++) {
        char p[128];
        snprintf(p, sizeof p, "/metrics/%s", METRICS[m].name);
        assert_int_equal(dset_len(file, p), 3);
        d = H5Dopen2(file, p, H5P_DEFAULT);
        double v[3];
        assert_true(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
        for (int r = 0; r < 3; r++) {
            if (isnan(ROWS[r][m])) assert_true(isnan(v[r]));
            else assert_true(v[r] == ROWS[r][m]);
        }
        attr_str(d, "units", buf, sizeof buf);
        assert_string_equal(buf, METRICS[m].units);
        attr_str(d, "description", buf, sizeof buf);
        assert_string_equal(buf, METRICS[m].description);
        H5Dclose(d);
    }
    int64_t rows = 0;
    d = H5Dopen2(file, "/provenance/metric_rows", H5P_DEFAULT);
    assert_true(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &rows) >= 0);
    H5Dclose(d);
    assert_int_equal(rows, 3);

    /* /checkpoint: an external link to demo.ckpt.h5:/checkpoint */
    H5L_info_t li;
    assert_true(H5Lget_info(file, "checkpoint", &li, H5P_DEFAULT) >= 0);
    assert_int_equal(li.type, H5L_TYPE_EXTERNAL);
    char val[256];
    assert_true(H5Lget_val(file, "checkpoint", val, sizeof val, H5P_DEFAULT) >= 0);
    const char *target_file = NULL, *target_obj = NULL;
    unsigned flags = 0;
    assert_true(H5Lunpack_elink_val(val, li.u.val_size, &flags, &target_file, &target_obj) >= 0);
    assert_string_equal(target_file, "demo.ckpt.h5");
    assert_string_equal(target_obj, "/checkpoint");
    H5Fclose(file);
}

static void test_reader_round_trip(void **state) {
    fixture *f = *state;
    write_demo(f);
    rm_run_summary s;
    rft_check_ok(rm_runfile_read(f->path, &s), "read");
    assert_string_equal(s.run_id, "demo");
    assert_int_equal(s.status, RM_RUN_COMPLETED);
    assert_string_equal(s.status_reason, "all 3 epochs");
    assert_true(is_iso8601(s.start_time) && is_iso8601(s.end_time));
    assert_int_equal(s.rows, 3);
    assert_int_equal(s.n_metrics, N_METRICS);
    assert_int_equal(s.mpi_rank, 3);
    assert_int_equal(s.mpi_size, 8);
    assert_int_equal(s.threads, 2);
    assert_int_equal(s.resume_count, 0);
    assert_int_equal(s.has_checkpoint, 0);
    assert_non_null(strstr(s.config_yaml, "epochs: 7\n"));
    for (int r = 0; r < 3; r++) assert_int_equal(s.epoch[r], r + 1);
    for (int m = 0; m < N_METRICS; m++) {
        assert_string_equal(s.columns[m].name, METRICS[m].name);
        assert_string_equal(s.columns[m].units, METRICS[m].units);
        assert_int_equal(rm_run_summary_find(&s, METRICS[m].name), m);
        for (int r = 0; r < 3; r++) {
            double v = s.columns[m].values[r];
            if (isnan(ROWS[r][m])) assert_true(isnan(v));
            else assert_true(v == ROWS[r][m]);
        }
    }
    assert_int_equal(rm_run_summary_find(&s, "nope"), -1);
    rm_run_summary_free(&s);
}

static void test_status_updates(void **state) {
    fixture *f = *state;
    rm_runfile *rf = NULL;
    rft_check_ok(rm_runfile_create(f->path, &f->cfg, &INFO, METRICS, N_METRICS, &rf), "create");
    rm_run_summary s;
    rft_check_ok(rm_runfile_read(f->path, &s), "read while running");
    assert_int_equal(s.status, RM_RUN_RUNNING);
    assert_string_equal(s.end_time, "");
    assert_int_equal(s.rows, 0);
    rm_run_summary_free(&s);
    const rm_run_status seq[] = {RM_RUN_PREEMPTED, RM_RUN_DIVERGED, RM_RUN_FAILED, RM_RUN_RUNNING};
    const char *why[] = {"SIGTERM", "loss is NaN at epoch 1 iteration 9", "", ""};
    for (int i = 0; i < 4; i++) {
        rft_check_ok(rm_runfile_set_status(rf, seq[i], why[i]), "set_status");
        rft_check_ok(rm_runfile_read(f->path, &s), "read");
        assert_int_equal(s.status, seq[i]);
        assert_string_equal(s.status_reason, why[i]);
        assert_int_equal(strlen(s.end_time) > 0, seq[i] != RM_RUN_RUNNING);
        rm_run_summary_free(&s);
    }
    /* A reason longer than the 256-byte dataset is cut, not refused. */
    char long_reason[600];
    memset(long_reason, 'x', sizeof long_reason - 1);
    long_reason[sizeof long_reason - 1] = '\0';
    rft_check_ok(rm_runfile_set_status(rf, RM_RUN_FAILED, long_reason), "long reason");
    rft_check_ok(rm_runfile_read(f->path, &s), "read");
    assert_int_equal(strlen(s.status_reason), 255);
    rm_run_summary_free(&s);
    assert_string_equal(rm_run_status_name(RM_RUN_PREEMPTED), "preempted");
    rft_check_ok(rm_runfile_close(rf), "close");
}

static void test_writer_argument_errors(void **state) {
    fixture *f = *state;
    rm_runfile *rf = NULL;
    const rm_metric_spec bad[][2] = {
        {{"epoch", "", ""}, {"x", "", ""}},       /* reserved */
        {{"a/b", "", ""}, {"x", "", ""}},         /* slash */
        {{"dup", "", ""}, {"dup", "", ""}},       /* twice */
        {{"", "", ""}, {"x", "", ""}},            /* empty */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rm_error_clear();
        assert_int_equal(rm_runfile_create(f->path, &f->cfg, &INFO, bad[i], 2, &rf), RM_ERR_ARG);
        assert_null(rf);
        assert_int_equal(access(f->path, F_OK), -1); /* nothing created */
    }
    rft_check_ok(rm_runfile_create(f->path, &f->cfg, &INFO, METRICS, N_METRICS, &rf), "create");
    double v[N_METRICS] = {1, 2, 3};
    rft_check_ok(rm_runfile_append(rf, 2, v), "append 2");
    rm_error_clear();
    assert_int_equal(rm_runfile_append(rf, 2, v), RM_ERR_ARG); /* epochs must increase */
    assert_int_equal(rm_runfile_rows(rf), 1);
    rft_check_ok(rm_runfile_close(rf), "close");
    /* An existing run file is never overwritten by create. */
    rm_error_clear();
    assert_int_equal(rm_runfile_create(f->path, &f->cfg, &INFO, METRICS, N_METRICS, &rf), RM_ERR_STATE);
    assert_non_null(strstr(rm_error_message(), f->path));
    rm_run_summary s;
    rft_check_ok(rm_runfile_read(f->path, &s), "read");
    assert_int_equal(s.rows, 1);
    rm_run_summary_free(&s);
}

static void test_inspect_command(void **state) {
    fixture *f = *state;
    write_demo(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s inspect %s 2>&1", REGMIX_BINARY, f->path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    static char out[65536];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int rc = pclose(p);
    if (rc != 0) fail_msg("%s exited with %d:\n%s", cmd, rc, out);
    assert_non_null(strstr(out, "status      completed: all 3 epochs"));
    assert_non_null(strstr(out, "model: preact-resnet18"));
    assert_non_null(strstr(out, "3 rows"));
    /* Rows: epoch then each metric at width 12 (the names are shorter); NaN as "-". */
    char line[256];
    snprintf(line, sizeof line, "%6d%12s%12s%12s\n", 2, "1.75", "0.625", "0.25");
    assert_non_null(strstr(out, line));
    snprintf(line, sizeof line, "%6d%12s%12s%12s\n", 3, "1.5", "0.75", "-");
    assert_non_null(strstr(out, line));
    /* A non-run file: message naming it, exit status 1. */
    snprintf(cmd, sizeof cmd, "%s inspect %s/missing.h5 >/dev/null 2>&1", REGMIX_BINARY, f->dir);
    rc = system(cmd);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_schema_with_plain_hdf5, setup, rft_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_round_trip, setup, rft_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_status_updates, setup, rft_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_writer_argument_errors, setup, rft_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_inspect_command, setup, rft_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
