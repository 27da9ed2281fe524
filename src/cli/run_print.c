/* Progress lines, per-epoch lines and the final JSON line of a run, from its events. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/run_print.h"

static void print_json_number(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fprintf(f, "null");
}

/* A progress line every 10% of an epoch. */
static void batch_line(const rm_run_event *ev) {
    int64_t every = ev->total >= 10 ? ev->total / 10 : 1;
    if (ev->done % every != 0 || ev->done >= ev->total) return;
    double rate = ev->done / ev->seconds;
    fprintf(stderr, "  epoch %d: %3.0f%% (%lld/%lld batches, %.1f s, eta %.0f s)\n", ev->epoch,
            100.0 * (double)ev->done / (double)ev->total, (long long)ev->done, (long long)ev->total, ev->seconds,
            (double)(ev->total - ev->done) / rate);
    fflush(stderr);
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

static void final_json(const rm_run_event *ev) {
    printf("{\"run_id\":\"%s\",\"status\":\"%s\"", ev->run_id, rm_run_status_name(ev->status));
    if (ev->reason) {
        printf(",\"reason\":\"");
        for (const char *c = ev->reason; *c; c++) {
            if (*c == '"' || *c == '\\') putchar('\\');
            if ((unsigned char)*c >= 0x20) putchar(*c);
        }
        printf("\"");
    }
    if (ev->trainer && ev->row)
        for (int i = 0; i < rm_trainer_metric_count(ev->trainer); i++) {
            printf(",\"%s\":", rm_trainer_metric(ev->trainer, i)->name);
            print_json_number(stdout, ev->row[i]);
        }
    printf("}\n");
    fflush(stdout);
}

/* A run completed earlier: the last row of its file as the JSON line. */
static void skipped_json(const rm_run_event *ev) {
    const rm_run_summary *sum = ev->summary;
    printf("{\"run_id\":\"%s\",\"status\":\"completed\",\"skipped\":true", ev->run_id);
    if (sum->rows > 0) printf(",\"epoch\":%lld", (long long)sum->epoch[sum->rows - 1]);
    for (int m = 0; sum->rows > 0 && m < sum->n_metrics; m++) {
        printf(",\"%s\":", sum->columns[m].name);
        print_json_number(stdout, sum->columns[m].values[sum->rows - 1]);
    }
    printf("}\n");
    fflush(stdout);
}

int cli_print_run_event(void *ctx, const rm_run_event *ev) {
    const cli_run_printer *p = ctx;
    const rm_config *cfg = ev->cfg;
    switch (ev->kind) {
    case RM_RUN_EVENT_REPAIRING:
        fprintf(stderr, "regmix train: %s was not closed by its writer (killed?); repairing it\n", ev->path);
        break;
    case RM_RUN_EVENT_RESUMED:
        if (!p->quiet)
            printf("# resuming %s (was %s) after epoch %lld; %lld of %lld metric rows kept\n", ev->path,
                   rm_run_status_name(ev->resume->previous_status), (long long)ev->resume->checkpoint_epoch,
                   (long long)ev->resume->rows_kept, (long long)ev->resume->rows_before);
        break;
    case RM_RUN_EVENT_STARTED:
        if (p->quiet) break;
        printf("# regmix train: run %s: %s on %s, method %s, reg %s, eps %.4g, step %.4g, %d epochs, batch %d, seed %llu\n",
               ev->run_id, cfg->model, cfg->dataset, cfg->method, cfg->reg, cfg->eps, cfg->step, cfg->epochs,
               cfg->batch, (unsigned long long)cfg->seed);
        printf("# setup %.1f s; writing %s\n", ev->seconds, ev->path);
        fflush(stdout);
        break;
    case RM_RUN_EVENT_BATCH:
        if (!p->quiet) batch_line(ev);
        break;
    case RM_RUN_EVENT_EPOCH:
        if (!p->quiet) epoch_line(ev->trainer, cfg, ev->row);
        break;
    case RM_RUN_EVENT_STOPPED:
        if (ev->status == RM_RUN_PREEMPTED)
            fprintf(stderr, "regmix train: run %s preempted in epoch %d; checkpointed, run the same command to resume\n",
                    ev->run_id, ev->epoch);
        else
            fprintf(stderr, "regmix train: run %s %s in epoch %d: %s\n", ev->run_id, rm_run_status_name(ev->status),
                    ev->epoch, ev->message);
        break;
    case RM_RUN_EVENT_ERROR:
        if (ev->dp_rank > 0) fprintf(stderr, "regmix sweep: data-parallel rank %d: %s\n", ev->dp_rank, ev->message);
        else fprintf(stderr, "regmix train: %s\n", ev->message);
        break;
    case RM_RUN_EVENT_FINISHED:
        if (ev->skipped) {
            if (!p->quiet) printf("# %s is already completed with this configuration; not run again\n", ev->path);
            fflush(stdout);
            if (p->json) skipped_json(ev);
        } else if (p->json) {
            final_json(ev);
        }
        break;
    }
    return 0;
}
