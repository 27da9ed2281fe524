/* One run on its leader (or alone): lock, open or resume, the epoch loop with its
 * checkpoint cadence, preemption, the final status. Reports through events. */
#define _XOPEN_SOURCE 700 /* realpath (POSIX XSI) */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run/run_internal.h"

int run_emit(const run_ctx *c, rm_run_event *ev) {
    if (!c->o->on_event) return 0;
    ev->run_id = c->run_id;
    ev->path = c->path;
    ev->cfg = c->cfg;
    ev->dp_rank = c->o->dp ? rm_dp_rank(c->o->dp) : 0;
    return c->o->on_event(c->o->ctx, ev);
}

rm_status run_from_leader(const rm_run_options *o, double *v, int n) {
    if (!o->dp || rm_dp_size(o->dp) == 1) return RM_OK;
    if (rm_dp_rank(o->dp) != 0)
        for (int i = 0; i < n; i++) v[i] = 0;
    return rm_dp_allreduce(o->dp, v, n);
}

void run_abort_if_alone(const run_ctx *c, rm_status st, int epoch) {
    rm_dp *g = c->o->dp;
    if (st == RM_OK || st == RM_ERR_INTERRUPTED || st == RM_ERR_DIVERGED || rm_dp_size(g) < 2) return;
    fprintf(stderr,
            "regmix: run %s, epoch %d: data-parallel rank %d of %d (MPI rank %d) failed alone: %s\n"
            "regmix: the other ranks of its group wait inside the epoch's collectives; aborting the MPI job. "
            "Finished epochs and checkpoints are in %s; run the same command again to resume.\n",
            c->run_id, epoch, rm_dp_rank(g), rm_dp_size(g), c->o->mpi_rank, rm_error_message(), c->path);
    fflush(stderr);
    rm_dp_abort(g, RM_RUN_END_FAILED);
}

int run_batch_hook(void *ctx, int epoch, int64_t done, int64_t total, double seconds) {
    const run_ctx *c = ctx;
    rm_run_event ev = {.kind = RM_RUN_EVENT_BATCH, .epoch = epoch, .done = done, .total = total, .seconds = seconds};
    int stop = run_emit(c, &ev) != 0;
    stop |= rm_run_stop_requested();
    if (c->o->dp && rm_dp_size(c->o->dp) > 1) {
        double v = stop;
        if (rm_dp_allreduce(c->o->dp, &v, 1) == RM_OK) stop = v > 0;
    }
    return stop;
}

static void emit_error(const run_ctx *c, const char *message) {
    rm_run_event ev = {.kind = RM_RUN_EVENT_ERROR, .message = message};
    run_emit(c, &ev);
}

/* A run that could not start: the error, then FINISHED with status failed. */
static rm_run_end setup_failed(const run_ctx *c, rm_run_end end, rm_run_result *result) {
    char reason[256];
    snprintf(reason, sizeof reason, "%s", rm_error_message());
    emit_error(c, reason);
    rm_run_event ev = {.kind = RM_RUN_EVENT_FINISHED, .status = RM_RUN_FAILED, .reason = reason};
    run_emit(c, &ev);
    if (result) {
        result->end = end;
        result->status = RM_RUN_FAILED;
        snprintf(result->reason, sizeof result->reason, "%s", reason);
    }
    return end;
}

/* Where the data is read from, for /provenance: data_dir or the dataset's default
 * folder, made absolute when it exists (the identity does not include it, so the record
 * says where this start found the data). */
static void run_data_dir(const rm_config *cfg, char *out, size_t size) {
    const char *dir = cfg->data_dir[0] ? cfg->data_dir : rm_dataset_default_dir(cfg->dataset);
    char abs[PATH_MAX];
    if (dir && realpath(dir, abs)) dir = abs;
    snprintf(out, size, "%s", dir ? dir : "");
}

/* Opens the run file: creates it, or resumes it from its checkpoint. *skip = 1 when the
 * run is already completed with this configuration. */
static rm_status open_run(const run_ctx *c, rm_trainer *t, rm_runfile **rf, int *skip) {
    const rm_run_options *o = c->o;
    /* metric 0 is the epoch, which the run file keeps as /metrics/epoch itself */
    rm_metric_spec specs[64];
    int nm = rm_trainer_metric_count(t) - 1;
    for (int i = 0; i < nm; i++) {
        const rm_metric_def *m = rm_trainer_metric(t, i + 1);
        specs[i] = (rm_metric_spec){m->name, m->units, m->description};
    }
    char data_dir[PATH_MAX];
    run_data_dir(c->cfg, data_dir, sizeof data_dir);
    rm_run_info info = {.mpi_rank = o->mpi_rank, .mpi_size = o->mpi_size, .threads = o->threads,
                        .ranks_per_run = o->dp ? rm_dp_size(o->dp) : 1, .data_dir = data_dir};
    struct stat sb;
    *skip = 0;
    if (stat(c->path, &sb) != 0) return rm_runfile_create(c->path, c->cfg, &info, specs, nm, rf);

    rm_resume_report rep;
    rm_status st = rm_runfile_resume(c->path, c->cfg, &info, specs, nm, o->force, rf, &rep);
    if (st == RM_ERR_STATE && strstr(rm_error_message(), "h5clear")) {
        /* the previous writer died without closing the file: we are its only writer now */
        rm_run_event ev = {.kind = RM_RUN_EVENT_REPAIRING};
        run_emit(c, &ev);
        rm_error_clear();
        RM_TRY(rm_runfile_repair(c->path));
        st = rm_runfile_resume(c->path, c->cfg, &info, specs, nm, o->force, rf, &rep);
    }
    RM_TRY(st);
    if (rep.previous_status == RM_RUN_COMPLETED && !rep.config_replaced) {
        *skip = 1;
        return rm_runfile_close(*rf);
    }
    if (rep.has_checkpoint) RM_TRY(rm_trainer_load_checkpoint(t, c->path, 0));
    rm_run_event ev = {.kind = RM_RUN_EVENT_RESUMED, .resume = &rep};
    run_emit(c, &ev);
    return RM_OK;
}

/* A run completed earlier: its record, as FINISHED with skipped = 1. */
static rm_run_end report_skipped(const run_ctx *c, rm_run_result *result) {
    rm_run_summary sum;
    if (rm_runfile_read(c->path, &sum) != RM_OK) return setup_failed(c, RM_RUN_END_FAILED, result);
    rm_run_event ev = {.kind = RM_RUN_EVENT_FINISHED, .status = RM_RUN_COMPLETED, .skipped = 1, .summary = &sum};
    run_emit(c, &ev);
    if (result) *result = (rm_run_result){.end = RM_RUN_END_COMPLETED, .status = RM_RUN_COMPLETED,
                                          .epochs = sum.rows > 0 ? (int)sum.epoch[sum.rows - 1] : 0, .skipped = 1};
    rm_run_summary_free(&sum);
    return RM_RUN_END_COMPLETED;
}

static int checkpoint_due(const rm_config *cfg, int epoch) {
    return epoch == cfg->epochs || (cfg->checkpoint_every > 0 && epoch % cfg->checkpoint_every == 0);
}

static rm_run_end run_locked(const run_ctx *c, rm_run_result *result);

rm_run_end rm_run(const rm_config *cfg, const rm_run_options *o, rm_run_result *result) {
    char run_id[256], path[768];
    rm_run_id(cfg, run_id, sizeof run_id);
    snprintf(path, sizeof path, "%s/%s.h5", cfg->outdir, run_id);
    struct stat sb;
    if (stat(path, &sb) != 0) run_find_renamed(cfg, run_id, sizeof run_id, path, sizeof path);
    run_ctx c = {cfg, o, run_id, path};
    if (result) *result = (rm_run_result){0};
    int leader = !o->dp || rm_dp_rank(o->dp) == 0;
    if (!leader) return run_follow(&c, result);
    int lock_fd = -1;
    rm_status st = rm_make_dirs(cfg->outdir);
    if (st == RM_OK) st = run_lock(path, &lock_fd);
    if (st == RM_OK) {
        rm_run_end end = run_locked(&c, result);
        close(lock_fd); /* releases the lock */
        return end;
    }
    if (o->dp) { /* the followers wait for the leader's verdict: failed */
        double v[3] = {1, 0, 0};
        run_from_leader(o, v, 3);
    }
    return setup_failed(&c, RM_RUN_END_FAILED, result);
}

static rm_run_end run_locked(const run_ctx *c, rm_run_result *result) {
    const rm_config *cfg = c->cfg;
    const rm_run_options *o = c->o;
    rm_trainer *t = NULL;
    rm_runfile *rf = NULL;
    double t0 = rm_now_seconds();
    int skip = 0;
    rm_status st0 = rm_trainer_create(cfg, &t);
    if (st0 == RM_OK && o->dp) st0 = rm_trainer_set_dp(t, o->dp);
    if (st0 == RM_OK) st0 = open_run(c, t, &rf, &skip);
    if (o->dp) { /* tell the followers: failed / skip / resumed from the checkpoint */
        double v[3] = {st0 != RM_OK, skip, st0 == RM_OK && rm_checkpoint_present(c->path) && !skip};
        if (run_from_leader(o, v, 3) != RM_OK && st0 == RM_OK) st0 = RM_ERR_MPI;
        /* v[0] also counts the followers that could not set up (run_follow): the
         * group cannot train without them */
        if (st0 == RM_OK && !skip && v[0] > 0)
            st0 = rm_fail(RM_ERR_IO, "%g of the %d ranks of the data-parallel group could not set up the run "
                          "(their errors are on their stderr)", v[0], rm_dp_size(o->dp));
    }
    if (st0 != RM_OK) {
        if (rf) { /* resumed, then could not go on (e.g. a damaged checkpoint): the file says why */
            char reason[256];
            snprintf(reason, sizeof reason, "%s", rm_error_message());
            rm_runfile_set_status(rf, RM_RUN_FAILED, reason);
            rm_runfile_close(rf);
        }
        rm_trainer_destroy(t);
        /* refused (another configuration in the file): a settings problem, not a crash */
        return setup_failed(c, st0 == RM_ERR_STATE ? RM_RUN_END_REFUSED : RM_RUN_END_FAILED, result);
    }
    if (skip) {
        rm_trainer_destroy(t);
        return report_skipped(c, result);
    }
    rm_run_event started = {.kind = RM_RUN_EVENT_STARTED, .seconds = rm_now_seconds() - t0};
    run_emit(c, &started);
    double row[64];
    int have_row = 0, written = rm_trainer_epoch(t); /* the last epoch whose row is in the file */
    int stopped_epoch = 0;
    rm_run_end end = RM_RUN_END_COMPLETED;
    rm_run_status status = RM_RUN_COMPLETED;
    const char *hash = rm_runfile_config_hash(rf);
    while (rm_trainer_epoch(t) < cfg->epochs) {
        const int epoch = rm_trainer_epoch(t) + 1; /* being trained; its row and checkpoint may fail later */
        rm_status st = rm_trainer_run_epoch(t, row, run_batch_hook, (void *)c);
        if (o->dp) run_abort_if_alone(c, st, epoch);
        if (st == RM_ERR_INTERRUPTED) {
            /* preempted at a batch boundary: checkpoint the half-done epoch and leave */
            rm_error_clear();
            st = rm_trainer_save_checkpoint(t, c->path, hash);
            if (st == RM_OK) {
                end = RM_RUN_END_PREEMPTED;
                status = RM_RUN_PREEMPTED;
                rm_run_event ev = {.kind = RM_RUN_EVENT_STOPPED, .status = status, .epoch = epoch};
                run_emit(c, &ev);
                break;
            }
        }
        if (st == RM_OK && (st = rm_runfile_append(rf, rm_trainer_epoch(t), row + 1)) != RM_OK)
            rm_note_unwritable_file();
        if (st == RM_OK) written = epoch;
        if (st == RM_OK && checkpoint_due(cfg, rm_trainer_epoch(t)))
            st = rm_trainer_save_checkpoint(t, c->path, hash);
        if (o->dp && st != RM_ERR_INTERRUPTED) { /* the followers stop with the leader */
            double v = st != RM_OK;
            if (run_from_leader(o, &v, 1) != RM_OK && st == RM_OK) st = RM_ERR_MPI;
        }
        if (st != RM_OK) {
            end = st == RM_ERR_DIVERGED ? RM_RUN_END_DIVERGED : RM_RUN_END_FAILED;
            status = st == RM_ERR_DIVERGED ? RM_RUN_DIVERGED : RM_RUN_FAILED;
            stopped_epoch = epoch;
            rm_run_event ev = {.kind = RM_RUN_EVENT_STOPPED, .status = status, .epoch = epoch,
                               .message = rm_error_message()};
            run_emit(c, &ev);
            break;
        }
        have_row = 1;
        rm_run_event ev = {.kind = RM_RUN_EVENT_EPOCH, .trainer = t, .row = row, .epoch = rm_trainer_epoch(t)};
        run_emit(c, &ev);
    }
    char reason[256] = "";
    if (end == RM_RUN_END_PREEMPTED) snprintf(reason, sizeof reason, "stopped by a signal; resumable");
    else if (end != RM_RUN_END_COMPLETED) snprintf(reason, sizeof reason, "epoch %d: %s", stopped_epoch, rm_error_message());
    if (rm_runfile_set_status(rf, status, reason) != RM_OK || rm_runfile_close(rf) != RM_OK) {
        rm_note_unwritable_file();
        emit_error(c, rm_error_message());
        if (end == RM_RUN_END_COMPLETED) end = RM_RUN_END_FAILED;
    }
    rm_run_event fin = {.kind = RM_RUN_EVENT_FINISHED, .status = status, .trainer = t,
                        .row = have_row ? row : NULL, .reason = end != RM_RUN_END_COMPLETED ? reason : NULL};
    run_emit(c, &fin);
    if (result) {
        result->end = end;
        result->status = status;
        snprintf(result->reason, sizeof result->reason, "%s", reason);
        result->epochs = written;
    }
    rm_trainer_destroy(t);
    return end;
}
