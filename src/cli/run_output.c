/* One run with its outputs: progress lines, the HDF5 run file, a final JSON line. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/run_output.h"
#include "regmix/runfile.h"
#include "regmix/train.h"

void run_id_of(const rm_config *cfg, char *out, size_t size) {
    if (cfg->run_id[0]) {
        snprintf(out, size, "%s", cfg->run_id);
        return;
    }
    char hash[17];
    rm_config_hash(cfg, hash);
    /* model, method and reg are short known names: bounded so the id always fits */
    snprintf(out, size, "%.40s_%.16s_%.16s_seed%llu_%.8s", cfg->model, cfg->method, cfg->reg,
             (unsigned long long)cfg->seed, hash);
}

/* mkdir -p */
rm_status cli_make_dirs(const char *path) {
    char buf[512];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return rm_fail(RM_ERR_ARG, "outdir too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return rm_fail(RM_ERR_IO, "mkdir(%s): %s", buf, strerror(errno));
            *p = saved;
            if (saved == '\0') break;
        }
    }
    return RM_OK;
}

static void print_json_number(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fprintf(f, "null");
}

/* Preemption: SIGTERM (what mpirun and batch systems send first) and SIGUSR1 (Slurm's
 * --signal before the time limit) set a flag; the run stops at the next batch boundary,
 * checkpoints and exits with EXIT_PREEMPTED, so a requeued job resumes it. */
static volatile sig_atomic_t stop_flag;

static void on_stop_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

void run_install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int run_stop_requested(void) { return stop_flag != 0; }

/* Data parallel: the leader's values reach every rank of the group (a sum in which
 * the others contribute zeros); alone: nothing to do. */
static rm_status from_leader(const run_options *o, double *v, int n) {
    if (!o->dp || rm_dp_size(o->dp) == 1) return RM_OK;
    if (rm_dp_rank(o->dp) != 0)
        for (int i = 0; i < n; i++) v[i] = 0;
    return rm_dp_allreduce(o->dp, v, n);
}

static int is_leader(const run_options *o) { return !o->dp || rm_dp_rank(o->dp) == 0; }

/* A progress line every 10% of an epoch; stops the run at this batch when a signal
 * asked for it (SIGTERM / SIGUSR1: preemption) or the caller's hook does. A group
 * stops together: a signal seen by any of its ranks stops all at the same batch. */
static int batch_hook(void *ctx, int epoch, int64_t done, int64_t total, double seconds) {
    const run_options *o = ctx;
    int64_t every = total >= 10 ? total / 10 : 1;
    if (!o->quiet && done % every == 0 && done < total) {
        double rate = done / seconds;
        fprintf(stderr, "  epoch %d: %3.0f%% (%lld/%lld batches, %.1f s, eta %.0f s)\n", epoch,
                100.0 * (double)done / (double)total, (long long)done, (long long)total, seconds,
                (double)(total - done) / rate);
        fflush(stderr);
    }
    int stop = run_stop_requested();
    if (o->hook) stop |= o->hook(o->hook_ctx);
    if (o->dp && rm_dp_size(o->dp) > 1) {
        double v = stop;
        if (rm_dp_allreduce(o->dp, &v, 1) == RM_OK) stop = v > 0;
    }
    return stop;
}

/* "epoch 3/8  lr 0.1  loss 1.234  train 78.2%  clean 85.1  pgd20 74.3 ...  52.1 s" */
static void epoch_line(const rm_trainer *t, const rm_config *cfg, const double *row) {
    printf("epoch %3d/%d  lr %.4g  loss %.4f  train %5.1f%%", (int)row[0], cfg->epochs, row[1], row[2], row[8]);
    for (int i = 0; i < rm_trainer_metric_count(t); i++) {
        const rm_metric_def *m = rm_trainer_metric(t, i);
        if (!strncmp(m->name, "test_", 5) && isfinite(row[i])) printf("  %s %5.2f", m->name + 5, row[i]);
    }
    int co = rm_trainer_metric_index(t, "co_flag"), es = rm_trainer_metric_index(t, "epoch_seconds"),
        ips = rm_trainer_metric_index(t, "images_per_s");
    if (co >= 0 && row[co] == 1.0) printf("  CATASTROPHIC-OVERFITTING");
    printf("  | %.1f s, %.0f img/s\n", row[es], row[ips]);
    fflush(stdout);
}

static void final_json(const rm_trainer *t, const char *run_id, const char *status,
                       const char *reason, const double *row, int have_row) {
    printf("{\"run_id\":\"%s\",\"status\":\"%s\"", run_id, status);
    if (reason) {
        printf(",\"reason\":\"");
        for (const char *c = reason; *c; c++) {
            if (*c == '"' || *c == '\\') putchar('\\');
            if ((unsigned char)*c >= 0x20) putchar(*c);
        }
        printf("\"");
    }
    if (t && have_row)
        for (int i = 0; i < rm_trainer_metric_count(t); i++) {
            printf(",\"%s\":", rm_trainer_metric(t, i)->name);
            print_json_number(stdout, row[i]);
        }
    printf("}\n");
    fflush(stdout);
}

/* The last row of a finished run file, as the final JSON line (a completed run is not
 * run again). */
static int report_completed(const char *path, const char *run_id) {
    rm_run_summary sum;
    if (rm_runfile_read(path, &sum) != RM_OK) {
        fprintf(stderr, "regmix train: %s\n", rm_error_message());
        return EXIT_FAILED;
    }
    printf("{\"run_id\":\"%s\",\"status\":\"completed\",\"skipped\":true", run_id);
    if (sum.rows > 0) printf(",\"epoch\":%lld", (long long)sum.epoch[sum.rows - 1]);
    for (int m = 0; sum.rows > 0 && m < sum.n_metrics; m++) {
        printf(",\"%s\":", sum.columns[m].name);
        print_json_number(stdout, sum.columns[m].values[sum.rows - 1]);
    }
    printf("}\n");
    fflush(stdout);
    rm_run_summary_free(&sum);
    return EXIT_COMPLETED;
}

/* Opens the run file: creates it, or resumes it from its checkpoint. *skip = 1 when the
 * run is already completed with this configuration. */
static rm_status open_run(const run_options *o, const rm_config *cfg, rm_trainer *t, const char *path,
                          rm_runfile **rf, int *skip) {
    /* metric 0 is the epoch, which the run file keeps as /metrics/epoch itself */
    rm_metric_spec specs[64];
    int nm = rm_trainer_metric_count(t) - 1;
    for (int i = 0; i < nm; i++) {
        const rm_metric_def *m = rm_trainer_metric(t, i + 1);
        specs[i] = (rm_metric_spec){m->name, m->units, m->description};
    }
    rm_run_info info = {o->mpi_rank, o->mpi_size, o->threads};
    struct stat sb;
    *skip = 0;
    if (stat(path, &sb) != 0) return rm_runfile_create(path, cfg, &info, specs, nm, rf);

    rm_resume_report rep;
    rm_status st = rm_runfile_resume(path, cfg, &info, specs, nm, o->force, rf, &rep);
    if (st == RM_ERR_STATE && strstr(rm_error_message(), "h5clear")) {
        /* the previous writer died without closing the file: we are its only writer now */
        fprintf(stderr, "regmix train: %s was not closed by its writer (killed?); repairing it\n", path);
        rm_error_clear();
        RM_TRY(rm_runfile_repair(path));
        st = rm_runfile_resume(path, cfg, &info, specs, nm, o->force, rf, &rep);
    }
    RM_TRY(st);
    if (rep.previous_status == RM_RUN_COMPLETED && !rep.config_replaced) {
        *skip = 1;
        return rm_runfile_close(*rf);
    }
    if (rep.has_checkpoint) RM_TRY(rm_trainer_load_checkpoint(t, path, 0));
    if (!o->quiet)
        printf("# resuming %s (was %s) after epoch %lld; %lld of %lld metric rows kept\n", path,
               rm_run_status_name(rep.previous_status), (long long)rep.checkpoint_epoch,
               (long long)rep.rows_kept, (long long)rep.rows_before);
    return RM_OK;
}

static int checkpoint_due(const rm_config *cfg, int epoch) {
    return epoch == cfg->epochs || (cfg->checkpoint_every > 0 && epoch % cfg->checkpoint_every == 0);
}

/* A follower of a data-parallel group: the same trainer and the same epochs as the
 * leader (every collective in step), no run file, no output. The leader tells it
 * whether the run starts, is skipped, or resumes from the checkpoint it just opened. */
static int follow_run(const rm_config *cfg, const run_options *o, const char *path) {
    rm_trainer *t = NULL;
    rm_status st = rm_trainer_create(cfg, &t);
    if (st == RM_OK) st = rm_trainer_set_dp(t, o->dp);
    double v[3] = {0, 0, 0}; /* failed, skip, resume */
    rm_status sync = from_leader(o, v, 3);
    if (sync != RM_OK || v[0] || v[1] || st != RM_OK) {
        if (st != RM_OK) fprintf(stderr, "regmix sweep: data-parallel rank %d: %s\n", rm_dp_rank(o->dp),
                                 rm_error_message());
        rm_trainer_destroy(t);
        return v[1] && st == RM_OK ? EXIT_COMPLETED : EXIT_FAILED;
    }
    if (v[2]) st = rm_trainer_load_checkpoint(t, path, 0);
    int rc = EXIT_COMPLETED;
    double row[64];
    while (st == RM_OK && rm_trainer_epoch(t) < cfg->epochs) {
        st = rm_trainer_run_epoch(t, row, batch_hook, (void *)o);
        if (st == RM_ERR_INTERRUPTED) {
            rc = EXIT_PREEMPTED;
            break;
        }
        double f = 0; /* the leader's verdict on writing this epoch */
        if (from_leader(o, &f, 1) != RM_OK || f) {
            if (st == RM_OK) st = rm_fail(RM_ERR_STATE, "the group's leader stopped the run");
        }
    }
    if (st != RM_OK && rc != EXIT_PREEMPTED) rc = st == RM_ERR_DIVERGED ? EXIT_DIVERGED : EXIT_FAILED;
    rm_trainer_destroy(t);
    return rc;
}

/* A run that could not start: the message, the JSON line, the sweep's result. */
static void report_setup_failure(const run_options *o, const char *run_id) {
    fprintf(stderr, "regmix train: %s\n", rm_error_message());
    if (o->json) final_json(NULL, run_id, "failed", rm_error_message(), NULL, 0);
    if (o->result) {
        o->result->status = RM_RUN_FAILED;
        snprintf(o->result->reason, sizeof o->result->reason, "%s", rm_error_message());
    }
}

/* One writer per run: an advisory lock on <run>.h5.lock, held for the whole run. The
 * kernel drops it when the process dies (even SIGKILL), so a lock that can be taken means
 * no live writer, and repairing a file left open by a dead writer is safe. */
static rm_status lock_run(const char *path, int *fd_out) {
    char lock_path[800];
    snprintf(lock_path, sizeof lock_path, "%s.lock", path);
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return rm_fail(RM_ERR_IO, "open(%s): %s", lock_path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        if (e == EWOULDBLOCK)
            return rm_fail(RM_ERR_STATE, "%s is being written by another regmix process (lock %s held)", path, lock_path);
        return rm_fail(RM_ERR_IO, "flock(%s): %s", lock_path, strerror(e));
    }
    *fd_out = fd;
    return RM_OK;
}

static int run_locked(const rm_config *cfg, const run_options *o, const char *path, const char *run_id);

int run_one(const rm_config *cfg, const run_options *o) {
    char run_id[256], path[768];
    run_id_of(cfg, run_id, sizeof run_id);
    snprintf(path, sizeof path, "%s/%s.h5", cfg->outdir, run_id);
    if (cli_make_dirs(cfg->outdir) != RM_OK) {
        fprintf(stderr, "regmix train: %s\n", rm_error_message());
        return EXIT_FAILED;
    }
    if (!is_leader(o)) return follow_run(cfg, o, path);
    int lock_fd = -1;
    rm_status st = lock_run(path, &lock_fd);
    if (st == RM_OK) {
        int rc = run_locked(cfg, o, path, run_id);
        close(lock_fd); /* releases the lock */
        return rc;
    }
    report_setup_failure(o, run_id);
    if (o->dp) { /* the followers wait for the leader's verdict: failed */
        double v[3] = {1, 0, 0};
        from_leader(o, v, 3);
    }
    return EXIT_FAILED;
}

static int run_locked(const rm_config *cfg, const run_options *o, const char *path, const char *run_id) {
    rm_trainer *t = NULL;
    rm_runfile *rf = NULL;
    double t0 = rm_now_seconds();
    int skip = 0;
    rm_status st0 = rm_trainer_create(cfg, &t);
    if (st0 == RM_OK && o->dp) st0 = rm_trainer_set_dp(t, o->dp);
    if (st0 == RM_OK) st0 = open_run(o, cfg, t, path, &rf, &skip);
    if (o->dp) { /* tell the followers: failed / skip / resumed from the checkpoint */
        double v[3] = {st0 != RM_OK, skip, st0 == RM_OK && rm_checkpoint_present(path) && !skip};
        if (from_leader(o, v, 3) != RM_OK && st0 == RM_OK) st0 = RM_ERR_MPI;
    }
    if (st0 != RM_OK) {
        report_setup_failure(o, run_id);
        if (rf) rm_runfile_close(rf);
        rm_trainer_destroy(t);
        /* refused (another configuration in the file): a settings problem, not a crash */
        return st0 == RM_ERR_STATE ? EXIT_USAGE : EXIT_FAILED;
    }
    if (skip) {
        rm_trainer_destroy(t);
        if (!o->quiet) printf("# %s is already completed with this configuration; not run again\n", path);
        return report_completed(path, run_id);
    }
    if (!o->quiet) {
        printf("# regmix train: run %s: %s on %s, method %s, reg %s, eps %.4g, step %.4g, %d epochs, batch %d, seed %llu\n",
               run_id, cfg->model, cfg->dataset, cfg->method, cfg->reg, cfg->eps, cfg->step, cfg->epochs,
               cfg->batch, (unsigned long long)cfg->seed);
        printf("# setup %.1f s; writing %s\n", rm_now_seconds() - t0, path);
        fflush(stdout);
    }
    double row[64];
    int have_row = 0, rc = EXIT_COMPLETED;
    rm_run_status status = RM_RUN_COMPLETED;
    const char *hash = rm_runfile_config_hash(rf);
    while (rm_trainer_epoch(t) < cfg->epochs) {
        rm_status st = rm_trainer_run_epoch(t, row, batch_hook, (void *)o);
        if (st == RM_ERR_INTERRUPTED) {
            /* preempted at a batch boundary: checkpoint the half-done epoch and leave */
            rm_error_clear();
            st = rm_trainer_save_checkpoint(t, path, hash);
            if (st == RM_OK) {
                rc = EXIT_PREEMPTED;
                status = RM_RUN_PREEMPTED;
                fprintf(stderr, "regmix train: run %s preempted in epoch %d; checkpointed, run the same command to resume\n",
                        run_id, rm_trainer_epoch(t) + 1);
                break;
            }
        }
        if (st == RM_OK) st = rm_runfile_append(rf, rm_trainer_epoch(t), row + 1);
        if (st == RM_OK && checkpoint_due(cfg, rm_trainer_epoch(t)))
            st = rm_trainer_save_checkpoint(t, path, hash);
        if (o->dp && st != RM_ERR_INTERRUPTED) { /* the followers stop with the leader */
            double v = st != RM_OK;
            if (from_leader(o, &v, 1) != RM_OK && st == RM_OK) st = RM_ERR_MPI;
        }
        if (st != RM_OK) {
            rc = st == RM_ERR_DIVERGED ? EXIT_DIVERGED : EXIT_FAILED;
            status = st == RM_ERR_DIVERGED ? RM_RUN_DIVERGED : RM_RUN_FAILED;
            fprintf(stderr, "regmix train: run %s %s in epoch %d: %s\n", run_id, rm_run_status_name(status),
                    rm_trainer_epoch(t) + 1, rm_error_message());
            break;
        }
        have_row = 1;
        if (!o->quiet) epoch_line(t, cfg, row);
    }
    char reason[256] = "";
    if (rc == EXIT_PREEMPTED) snprintf(reason, sizeof reason, "stopped by a signal; resumable");
    else if (rc) snprintf(reason, sizeof reason, "%s", rm_error_message());
    if (rm_runfile_set_status(rf, status, reason) != RM_OK || rm_runfile_close(rf) != RM_OK) {
        fprintf(stderr, "regmix train: %s\n", rm_error_message());
        if (!rc) rc = EXIT_FAILED;
    }
    if (o->json) final_json(t, run_id, rm_run_status_name(status), rc ? reason : NULL, row, have_row);
    if (o->result) {
        o->result->status = status;
        snprintf(o->result->reason, sizeof o->result->reason, "%s", reason);
        o->result->epochs = rm_trainer_epoch(t);
    }
    rm_trainer_destroy(t);
    return rc;
}
