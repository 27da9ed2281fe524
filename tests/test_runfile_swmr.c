/* SWMR: a forked child writes epochs while the parent reads with rm_runfile_read and
 * sees every completed epoch (in lockstep, then free-running: never a partial row);
 * a writer killed with SIGKILL: the reader still sees every flushed epoch, resume is
 * refused with the h5clear hint and the file is unchanged, and after rm_runfile_repair
 * the run resumes from its checkpoint without duplicated epochs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "regmix/config.h"
#include "regmix/runfile.h"
#include "runfile_fixture.h"

typedef rft_fixture fixture; /* dir, path, default cfg */

static const rm_metric_spec METRICS[] = {
    {"loss", "nats", "training loss"},
    {"acc", "fraction", "test accuracy"},
};
enum { N_METRICS = 2, LOCKSTEP = 5, TOTAL = 45 };
static const rm_run_info INFO = {.mpi_rank = 0, .mpi_size = 1, .threads = 1};

/* The value of metric m at epoch e: exact in binary, different for every cell. */
static double cell(int64_t e, int m) { return (double)e * 10.0 + m + 0.5; }

static int setup(void **state) {
    fixture *f = rft_fixture_new("rfswmr", "swmr.h5");
    if (!f) return -1;
    *state = f;
    return 0;
}

static void child_fail(const char *what) {
    fprintf(stderr, "writer child: %s: %s\n", what, rm_error_message());
    _exit(1);
}

static void send_byte(int fd, char c) {
    if (write(fd, &c, 1) != 1) _exit(3);
}

static char recv_byte(int fd) {
    char c = 0;
    if (read(fd, &c, 1) != 1) return 0;
    return c;
}

static rm_status append_epoch(rm_runfile *rf, int64_t e) {
    double v[N_METRICS];
    for (int m = 0; m < N_METRICS; m++) v[m] = cell(e, m);
    return rm_runfile_append(rf, e, v);
}

/* Rows 0..s->rows-1 must be epochs 1..rows with their exact values. */
static void check_rows(const rm_run_summary *s) {
    assert_int_equal(s->n_metrics, N_METRICS);
    for (int64_t r = 0; r < s->rows; r++) {
        if (s->epoch[r] != r + 1) fail_msg("row %lld holds epoch %lld", (long long)r, (long long)s->epoch[r]);
        for (int m = 0; m < N_METRICS; m++)
            if (s->columns[m].values[r] != cell(r + 1, m))
                fail_msg("row %lld metric %d: %g, written %g", (long long)r, m,
                         s->columns[m].values[r], cell(r + 1, m));
    }
}

static void writer_child(const fixture *f, int to_parent, int from_parent) {
    rm_runfile *rf = NULL;
    if (rm_runfile_create(f->path, &f->cfg, &INFO, METRICS, N_METRICS, &rf) != RM_OK) child_fail("create");
    send_byte(to_parent, 'c');
    for (int64_t e = 1; e <= LOCKSTEP; e++) {
        if (recv_byte(from_parent) != 'a') _exit(4);
        if (append_epoch(rf, e) != RM_OK) child_fail("append");
        send_byte(to_parent, 'e');
    }
    if (recv_byte(from_parent) != 'g') _exit(4);
    /* ~2 ms per epoch, so that the reader catches the file between many appends. */
    const struct timespec pace = {0, 2000000};
    for (int64_t e = LOCKSTEP + 1; e <= TOTAL; e++) {
        if (append_epoch(rf, e) != RM_OK) child_fail("append");
        nanosleep(&pace, NULL);
    }
    if (rm_runfile_set_status(rf, RM_RUN_COMPLETED, "") != RM_OK) child_fail("set_status");
    if (rm_runfile_close(rf) != RM_OK) child_fail("close");
    _exit(0);
}

static void test_reader_follows_writer(void **state) {
    fixture *f = *state;
    int up[2], down[2];
    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        writer_child(f, up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    assert_int_equal(recv_byte(up[0]), 'c');
    rm_run_summary s;
    rft_check_ok(rm_runfile_read(f->path, &s), "read after create");
    assert_int_equal(s.rows, 0);
    assert_int_equal(s.status, RM_RUN_RUNNING);
    rm_run_summary_free(&s);

    /* Lockstep: after each completed epoch the reader sees exactly that many rows. */
    for (int64_t e = 1; e <= LOCKSTEP; e++) {
        send_byte(down[1], 'a');
        assert_int_equal(recv_byte(up[0]), 'e');
        rft_check_ok(rm_runfile_read(f->path, &s), "read in lockstep");
        assert_int_equal(s.rows, e);
        assert_int_equal(s.status, RM_RUN_RUNNING);
        check_rows(&s);
        rm_run_summary_free(&s);
    }
    send_byte(down[1], 'g');
    /* Free-running: every read is consistent and the row count never goes back. */
    int64_t last = LOCKSTEP;
    int reads = 0, midway = 0;
    double t0 = rm_now_seconds();
    for (;;) {
        rft_check_ok(rm_runfile_read(f->path, &s), "read while writing");
        reads++;
        assert_true(s.rows >= last);
        last = s.rows;
        midway += s.rows > LOCKSTEP && s.rows < TOTAL;
        check_rows(&s);
        int done = s.status == RM_RUN_COMPLETED;
        rm_run_summary_free(&s);
        if (done) break;
        if (rm_now_seconds() - t0 > 30) fail_msg("writer did not complete within 30 s (rows %lld)", (long long)last);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    rft_check_ok(rm_runfile_read(f->path, &s), "final read");
    assert_int_equal(s.rows, TOTAL);
    check_rows(&s);
    rm_run_summary_free(&s);
    print_message("free-running phase: %d reads (%d between appends) while the writer appended "
                  "%d epochs\n", reads, midway, TOTAL - LOCKSTEP);
    assert_true(midway >= 1); /* the concurrent case was exercised */
    close(up[0]);
    close(down[1]);
}

/* Writes epochs 1, 2, a checkpoint at epoch 2, epoch 3, then waits to be killed. */
static void doomed_child(const fixture *f, int to_parent) {
    rm_runfile *rf = NULL;
    if (rm_runfile_create(f->path, &f->cfg, &INFO, METRICS, N_METRICS, &rf) != RM_OK) child_fail("create");
    for (int64_t e = 1; e <= 2; e++)
        if (append_epoch(rf, e) != RM_OK) child_fail("append");
    rm_checkpoint_writer *w = NULL;
    float weights[3] = {0.5f, -1.0f, 2.0f};
    const int64_t dims[] = {3};
    rm_checkpoint_meta meta = {.epoch = 2, .iteration = 20, .steps = 20};
    if (rm_checkpoint_begin(rm_runfile_path(rf), rm_runfile_config_hash(rf), &w) != RM_OK ||
        rm_checkpoint_add(w, "model/w", RM_DT_F32, 1, dims, weights) != RM_OK ||
        rm_checkpoint_commit(w, &meta) != RM_OK)
        child_fail("checkpoint");
    if (append_epoch(rf, 3) != RM_OK) child_fail("append");
    send_byte(to_parent, 'k');
    for (;;) pause();
}

static void test_killed_writer(void **state) {
    fixture *f = *state;
    int up[2];
    assert_int_equal(pipe(up), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(up[0]);
        doomed_child(f, up[1]);
    }
    close(up[1]);
    assert_int_equal(recv_byte(up[0]), 'k');
    close(up[0]);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    /* The SWMR reader needs no repair: all three flushed epochs are there. */
    rm_run_summary s;
    rft_check_ok(rm_runfile_read(f->path, &s), "read after SIGKILL");
    assert_int_equal(s.rows, 3);
    assert_int_equal(s.status, RM_RUN_RUNNING);
    assert_int_equal(s.has_checkpoint, 1);
    assert_int_equal(s.checkpoint_epoch, 2);
    check_rows(&s);
    rm_run_summary_free(&s);

    /* Resume is refused with the repair hint, and does not touch the file. */
    size_t n0 = 0, n1 = 0;
    char *before = rft_slurp(f->path, &n0);
    assert_non_null(before);
    rm_runfile *rf = NULL;
    rm_resume_report rep;
    assert_int_equal(rm_runfile_resume(f->path, &f->cfg, &INFO, METRICS, N_METRICS, 0, &rf, &rep), RM_ERR_STATE);
    assert_null(rf);
    assert_non_null(strstr(rm_error_message(), "h5clear -s --increment"));
    assert_non_null(strstr(rm_error_message(), f->path));
    rm_error_clear();
    char *after = rft_slurp(f->path, &n1);
    assert_int_equal(n1, n0);
    assert_memory_equal(after, before, n0);
    free(after);
    free(before);

    /* The documented repair, then resume from the checkpoint at epoch 2. */
    rft_check_ok(rm_runfile_repair(f->path), "repair");
    rft_check_ok(rm_runfile_resume(f->path, &f->cfg, &INFO, METRICS, N_METRICS, 0, &rf, &rep), "resume");
    assert_int_equal(rep.previous_status, RM_RUN_RUNNING);
    assert_int_equal(rep.rows_before, 3);
    assert_int_equal(rep.has_checkpoint, 1);
    assert_int_equal(rep.checkpoint_epoch, 2);
    assert_int_equal(rep.rows_kept, 2);
    assert_int_equal(rm_runfile_rows(rf), 2);
    rft_check_ok(append_epoch(rf, 3), "append epoch 3 again");
    rft_check_ok(append_epoch(rf, 4), "append epoch 4");
    rft_check_ok(rm_runfile_set_status(rf, RM_RUN_COMPLETED, ""), "status");
    rft_check_ok(rm_runfile_close(rf), "close");
    rft_check_ok(rm_runfile_read(f->path, &s), "read after resume");
    assert_int_equal(s.rows, 4);
    check_rows(&s); /* epochs 1..4 once each */
    assert_int_equal(s.resume_count, 1);
    assert_int_equal(s.status, RM_RUN_COMPLETED);
    rm_run_summary_free(&s);

    /* Repairing a cleanly closed file changes nothing. */
    before = rft_slurp(f->path, &n0);
    rft_check_ok(rm_runfile_repair(f->path), "repair of a closed file");
    after = rft_slurp(f->path, &n1);
    assert_int_equal(n1, n0);
    assert_memory_equal(after, before, n0);
    free(after);
    free(before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reader_follows_writer, setup, rft_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_killed_writer, setup, rft_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
