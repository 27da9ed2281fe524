/* Where the data lives is not part of a run's identity (results/README.md, "Run
 * identity"), and run files written when it was still part of it keep working:
 * - a run file as regmix 0.1.0 wrote it for data_dir /old/place (its /config/hash and its
 *   checkpoint's hash computed with the data_dir line, worked out here independently:
 *   FNV-1a of the hash text with "data_dir: /old/place") resumes with the data moved to
 *   /new/place: not refused, checkpoint kept, the stored hash kept (so later checkpoints
 *   match it), /provenance records the new folder and ranks_per_run; a real change of
 *   configuration is still refused;
 * - a sweep judges it the same way (resumable, not "another configuration");
 * - an auto-named 0.1.0 run (…_seed0_<old hash8>.h5) is found by rm_run under its old
 *   name although today's name has another hash (needs Fashion-MNIST for the trainer;
 *   that part is skipped when the dataset is not installed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proc.h"
#include "runfile_fixture.h"

#include "regmix/run.h"
#include "regmix/runfile.h"
#include "regmix/sweep.h"

static char dir[256];

static const rm_metric_spec METRICS[] = {{"test_clean", "%", "clean accuracy"}};

/* The hash regmix 0.1.0 gave cfg: FNV-1a 64 of today's hash text with the data_dir
 * line holding the value (0.1.0 hashed it like every science setting). */
static void hash_0_1_0(const rm_config *cfg, char out[17]) {
    char text[RM_CFG_YAML_MAX], old[RM_CFG_YAML_MAX];
    assert_true(rm_config_hash_text(cfg, text, sizeof text) > 0);
    const char *line = strstr(text, "\ndata_dir: \"\"\n");
    assert_non_null(line);
    assert_true(cfg->data_dir[0] == '/'); /* a plain YAML scalar: written unquoted */
    snprintf(old, sizeof old, "%.*s\ndata_dir: %s\n%s", (int)(line - text), text, cfg->data_dir, line + 14);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *p = old; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ULL;
    snprintf(out, 17, "%016" PRIx64, h);
}

static void set_stored_hash(const char *path, const char *hash) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t g = H5Gopen2(f, "/config", H5P_DEFAULT);
    assert_true(g >= 0);
    assert_true(H5Adelete(g, "hash") >= 0);
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    assert_true(H5Tset_size(t, 16) >= 0);
    hid_t a = H5Acreate2(g, "hash", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0 && H5Awrite(a, t, hash) >= 0);
    H5Aclose(a), H5Sclose(sp), H5Tclose(t), H5Gclose(g);
    assert_true(H5Fclose(f) >= 0);
}

/* A run file "as 0.1.0 wrote it": rows epochs 1..rows, status, a checkpoint after epoch
 * ckpt_epoch (0: none), /config/hash and the checkpoint's hash by the 0.1.0 rule. */
static void write_old_run_columns(const char *path, const rm_config *cfg, const rm_metric_spec *metrics, int n_metrics,
                                  rm_run_status status, int rows, int ckpt_epoch, char old_hash[17]) {
    hash_0_1_0(cfg, old_hash);
    rm_run_info info = {.mpi_rank = 0, .mpi_size = 1, .threads = 1};
    rm_runfile *rf;
    rft_check_ok(rm_runfile_create(path, cfg, &info, metrics, n_metrics, &rf), "rm_runfile_create");
    double v[64];
    for (int e = 1; e <= rows; e++) {
        for (int m = 0; m < n_metrics; m++) v[m] = 60.0 + e;
        rft_check_ok(rm_runfile_append(rf, e, v), "append");
    }
    rft_check_ok(rm_runfile_set_status(rf, status, ""), "set status");
    rft_check_ok(rm_runfile_close(rf), "close");
    set_stored_hash(path, old_hash);
    if (ckpt_epoch > 0) {
        rm_checkpoint_writer *w;
        rft_check_ok(rm_checkpoint_begin(path, old_hash, &w), "checkpoint begin");
        float x = 1.5f;
        int64_t one[1] = {1};
        rft_check_ok(rm_checkpoint_add(w, "model/x", RM_DT_F32, 1, one, &x), "checkpoint add");
        rm_checkpoint_meta meta = {.epoch = ckpt_epoch, .iteration = 4, .steps = 4};
        rft_check_ok(rm_checkpoint_commit(w, &meta), "checkpoint commit");
    }
}

static void write_old_run(const char *path, const rm_config *cfg, rm_run_status status, int rows, int ckpt_epoch,
                          char old_hash[17]) {
    write_old_run_columns(path, cfg, METRICS, 1, status, rows, ckpt_epoch, old_hash);
}

static void config(rm_config *c, const char *data_dir) {
    rm_config_defaults(c);
    rft_check_ok(rm_config_set(c, "outdir", dir, NULL), "outdir");
    rft_check_ok(rm_config_set(c, "data_dir", data_dir, NULL), "data_dir");
}

static void test_old_file_resumes_with_moved_data(void **state) {
    (void)state;
    char path[600], old_hash[17], today[17];
    snprintf(path, sizeof path, "%s/moved.h5", dir);
    rm_config old_cfg, cfg;
    config(&old_cfg, "/old/place");
    write_old_run(path, &old_cfg, RM_RUN_PREEMPTED, 2, 1, old_hash);
    config(&cfg, "/new/place");
    rm_config_hash(&cfg, today);
    /* the premise: compared by stored hash, this file would be another configuration */
    assert_string_not_equal(old_hash, today);

    rm_run_summary s;
    rft_check_ok(rm_runfile_read(path, &s), "read");
    assert_string_equal(s.config_hash, old_hash);
    assert_string_equal(s.identity_hash, today);
    rm_run_summary_free(&s);

    /* a sweep run of this configuration finds it resumable */
    rm_sweep_run sr;
    memset(&sr, 0, sizeof sr);
    snprintf(sr.id, sizeof sr.id, "moved");
    sr.cfg = cfg;
    rm_config_hash(&cfg, sr.hash);
    assert_int_equal(rm_sweep_run_check(&sr, NULL), RM_SWEEP_RUN_RESUMABLE);

    /* a real change of configuration is still refused, naming the file's identity */
    rm_config other = cfg;
    rft_check_ok(rm_config_set(&other, "lr", "0.05", NULL), "lr");
    rm_run_info info = {.mpi_rank = 3, .mpi_size = 4, .threads = 2, .ranks_per_run = 2, .data_dir = "/new/place"};
    rm_runfile *rf = NULL;
    rm_resume_report rep;
    assert_int_equal(rm_runfile_resume(path, &other, &info, METRICS, 1, 0, &rf, &rep), RM_ERR_STATE);
    assert_non_null(strstr(rm_error_message(), today));
    rm_error_clear();
    sr.cfg = other;
    rm_config_hash(&other, sr.hash);
    assert_int_equal(rm_sweep_run_check(&sr, NULL), RM_SWEEP_RUN_OTHER_CONFIG);

    /* the moved data: resumes from its checkpoint */
    rft_check_ok(rm_runfile_resume(path, &cfg, &info, METRICS, 1, 0, &rf, &rep), "resume");
    assert_int_equal(rep.config_replaced, 0);
    assert_int_equal(rep.has_checkpoint, 1);
    assert_int_equal(rep.checkpoint_epoch, 1);
    assert_int_equal(rep.rows_kept, 1);
    assert_string_equal(rep.file_hash, old_hash);
    assert_string_equal(rm_runfile_config_hash(rf), old_hash); /* new checkpoints match the file */
    double v = 99.0;
    rft_check_ok(rm_runfile_append(rf, 2, &v), "append");
    rft_check_ok(rm_runfile_set_status(rf, RM_RUN_COMPLETED, ""), "status");
    rft_check_ok(rm_runfile_close(rf), "close");

    rft_check_ok(rm_runfile_read(path, &s), "read");
    assert_int_equal(s.rows, 2);
    assert_true(s.columns[0].values[1] == 99.0);
    assert_string_equal(s.config_hash, old_hash);
    assert_string_equal(s.data_dir, "/new/place"); /* where the latest start read the data */
    assert_int_equal(s.ranks_per_run, 1);          /* the first start's, like mpi_size; the resume's: in the log */
    assert_int_equal(s.resume_count, 1);
    rm_config back;
    rm_config_defaults(&back);
    rft_check_ok(rm_config_load_yaml_text(&back, s.config_yaml, path), "yaml");
    assert_string_equal(back.data_dir, "/old/place"); /* /config: as the run was created */
    rm_run_summary_free(&s);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t g = H5Gopen2(f, "/provenance", H5P_DEFAULT);
    hid_t a = H5Aopen(g, "resume_log", H5P_DEFAULT), t = H5Aget_type(a);
    char *log = NULL;
    assert_true(H5Aread(a, t, &log) >= 0);
    assert_non_null(strstr(log, "rank=3/4 threads=2 ranks_per_run=2 "));
    assert_non_null(strstr(log, " data_dir=/new/place\n"));
    H5free_memory(log);
    H5Tclose(t), H5Aclose(a), H5Gclose(g), H5Fclose(f);

    /* regmix inspect shows both hashes, the ranks and the folder */
    char cmd[800], out[16384];
    snprintf(cmd, sizeof cmd, "'%s' inspect '%s' 2>&1", REGMIX_BINARY, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    char want[128];
    snprintf(want, sizeof want, "config      hash %s (written by an older version; %s by today's rules)\n", old_hash,
             today);
    if (!strstr(out, want) || !strstr(out, "MPI rank 0 of 1, 1 threads, 1 rank per run\n") || !strstr(out, "\ndata        /new/place\n"))
        fail_msg("inspect:\n%s", out);
}

static void test_new_file_records_start_info(void **state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/fresh.h5", dir);
    rm_config cfg;
    config(&cfg, "/data/here");
    rm_run_info info = {.mpi_rank = 0, .mpi_size = 2, .threads = 1, .ranks_per_run = 2, .data_dir = "/data/here"};
    rm_runfile *rf;
    rft_check_ok(rm_runfile_create(path, &cfg, &info, METRICS, 1, &rf), "create");
    rft_check_ok(rm_runfile_close(rf), "close");
    rm_run_summary s;
    rft_check_ok(rm_runfile_read(path, &s), "read");
    assert_int_equal(s.ranks_per_run, 2);
    assert_string_equal(s.data_dir, "/data/here");
    assert_string_equal(s.config_hash, s.identity_hash);
    rm_run_summary_free(&s);
    /* not given: one rank, folder unknown */
    snprintf(path, sizeof path, "%s/fresh2.h5", dir);
    rm_run_info bare = {.mpi_rank = 0, .mpi_size = 1, .threads = 1};
    rft_check_ok(rm_runfile_create(path, &cfg, &bare, METRICS, 1, &rf), "create");
    rft_check_ok(rm_runfile_close(rf), "close");
    rft_check_ok(rm_runfile_read(path, &s), "read");
    assert_int_equal(s.ranks_per_run, 1);
    assert_string_equal(s.data_dir, "");
    rm_run_summary_free(&s);
}

static int record_finished(void *ctx, const rm_run_event *ev) {
    if (ev->kind == RM_RUN_EVENT_FINISHED && ev->skipped) snprintf(ctx, 600, "%s", ev->path);
    return 0;
}

static void test_auto_named_old_run_is_found(void **state) {
    (void)state;
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", &sb) != 0) {
        printf("SKIPPED (part): Fashion-MNIST is not installed (package dataset-fashion-mnist)\n");
        return;
    }
    char sub[300], path[700], old_hash[17], today_id[256];
    snprintf(sub, sizeof sub, "%s/auto", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    rm_config old_cfg, cfg;
    config(&old_cfg, "/old/fmnist");
    rft_check_ok(rm_config_set(&old_cfg, "outdir", sub, NULL), "outdir");
    rft_check_ok(rm_config_set(&old_cfg, "epochs", "1", NULL), "epochs");
    rft_check_ok(rm_config_set(&old_cfg, "test_subset", "64", NULL), "test_subset");
    cfg = old_cfg;
    rft_check_ok(rm_config_set(&cfg, "data_dir", "", NULL), "data_dir"); /* the data moved to the default */
    hash_0_1_0(&old_cfg, old_hash);
    snprintf(path, sizeof path, "%s/fmnist-cnn_pgi_regmix_seed0_%.8s.h5", sub, old_hash);
    /* the trainer's columns, as a real run file has them (metric 0 is the epoch) */
    rm_trainer *t;
    rft_check_ok(rm_trainer_create(&cfg, &t), "rm_trainer_create");
    rm_metric_spec specs[64];
    int nm = rm_trainer_metric_count(t) - 1;
    for (int i = 0; i < nm; i++) {
        const rm_metric_def *m = rm_trainer_metric(t, i + 1);
        specs[i] = (rm_metric_spec){m->name, m->units, m->description};
    }
    write_old_run_columns(path, &old_cfg, specs, nm, RM_RUN_COMPLETED, 1, 1, old_hash);
    rm_trainer_destroy(t);
    rm_run_id(&cfg, today_id, sizeof today_id);
    assert_true(strstr(path, today_id) == NULL); /* today's name differs */

    char finished[600] = "";
    rm_run_options o = {.mpi_size = 1, .threads = 1, .on_event = record_finished, .ctx = finished};
    rm_run_result res;
    assert_int_equal(rm_run(&cfg, &o, &res), RM_RUN_END_COMPLETED);
    assert_int_equal(res.skipped, 1);
    assert_string_equal(finished, path);
    char today_path[700];
    snprintf(today_path, sizeof today_path, "%s/%s.h5", sub, today_id);
    assert_int_not_equal(stat(today_path, &sb), 0); /* no second run file */
}

static int setup(void **state) {
    (void)state;
    return rft_tmpdir_make(dir, sizeof dir, "run-identity");
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_tree(dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_old_file_resumes_with_moved_data),
        cmocka_unit_test(test_new_file_records_start_info),
        cmocka_unit_test(test_auto_named_old_run_is_found),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
