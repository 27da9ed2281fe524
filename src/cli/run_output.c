/* One run with its outputs: progress lines, one CSV row per epoch, a final JSON line. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/run_output.h"
#include "regmix/train.h"

void run_id_of(const rm_config *cfg, char *out, size_t size) {
    if (cfg->run_id[0]) {
        snprintf(out, size, "%s", cfg->run_id);
        return;
    }
    char hash[17];
    rm_config_hash(cfg, hash);
    snprintf(out, size, "%s_%s_%s_seed%llu_%.8s", cfg->model, cfg->method, cfg->reg,
             (unsigned long long)cfg->seed, hash);
}

/* mkdir -p */
static rm_status make_dirs(const char *path) {
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

static void progress_line(void *ctx, int epoch, int64_t done, int64_t total, double seconds) {
    (void)ctx;
    double rate = done / seconds;
    fprintf(stderr, "  epoch %d: %3.0f%% (%lld/%lld batches, %.1f s, eta %.0f s)\n", epoch,
            100.0 * (double)done / (double)total, (long long)done, (long long)total, seconds,
            (double)(total - done) / rate);
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

int run_one(const rm_config *cfg, int quiet) {
    char run_id[256], csv_path[768];
    run_id_of(cfg, run_id, sizeof run_id);
    snprintf(csv_path, sizeof csv_path, "%s/%s.csv", cfg->outdir, run_id);
    struct stat sb;
    if (stat(csv_path, &sb) == 0) {
        fprintf(stderr, "regmix train: %s already exists; refusing to overwrite finished results "
                        "(choose another outdir or run_id)\n", csv_path);
        final_json(NULL, run_id, "failed", "output exists", NULL, 0);
        return EXIT_USAGE;
    }
    if (make_dirs(cfg->outdir) != RM_OK) {
        fprintf(stderr, "regmix train: %s\n", rm_error_message());
        return EXIT_FAILED;
    }
    rm_trainer *t = NULL;
    double t0 = rm_now_seconds();
    if (rm_trainer_create(cfg, &t) != RM_OK) {
        fprintf(stderr, "regmix train: %s\n", rm_error_message());
        final_json(NULL, run_id, "failed", rm_error_message(), NULL, 0);
        return EXIT_FAILED;
    }
    if (!quiet) {
        printf("# regmix train: run %s: %s on %s, method %s, reg %s, eps %.4g, step %.4g, %d epochs, batch %d, seed %llu\n",
               run_id, cfg->model, cfg->dataset, cfg->method, cfg->reg, cfg->eps, cfg->step, cfg->epochs,
               cfg->batch, (unsigned long long)cfg->seed);
        printf("# setup %.1f s; writing %s\n", rm_now_seconds() - t0, csv_path);
        fflush(stdout);
    }
    FILE *csv = fopen(csv_path, "w");
    if (!csv) {
        fprintf(stderr, "regmix train: fopen(%s): %s\n", csv_path, strerror(errno));
        rm_trainer_destroy(t);
        return EXIT_FAILED;
    }
    int nm = rm_trainer_metric_count(t);
    for (int i = 0; i < nm; i++) fprintf(csv, "%s%s", i ? "," : "", rm_trainer_metric(t, i)->name);
    fprintf(csv, "\n");
    fflush(csv);
    double row[64];
    int have_row = 0, rc = EXIT_COMPLETED;
    const char *status = "completed";
    while (rm_trainer_epoch(t) < cfg->epochs) {
        rm_status st = rm_trainer_run_epoch(t, row, quiet ? NULL : progress_line, NULL);
        if (st != RM_OK) {
            rc = st == RM_ERR_DIVERGED ? EXIT_DIVERGED : EXIT_FAILED;
            status = st == RM_ERR_DIVERGED ? "diverged" : "failed";
            fprintf(stderr, "regmix train: run %s %s in epoch %d: %s\n", run_id, status,
                    rm_trainer_epoch(t) + 1, rm_error_message());
            break;
        }
        have_row = 1;
        for (int i = 0; i < nm; i++) fprintf(csv, "%s%.9g", i ? "," : "", row[i]);
        fprintf(csv, "\n");
        fflush(csv);
        fsync(fileno(csv)); /* a crash loses at most the epoch in progress */
        if (!quiet) epoch_line(t, cfg, row);
    }
    if (fclose(csv) != 0) {
        fprintf(stderr, "regmix train: writing %s: %s\n", csv_path, strerror(errno));
        rc = EXIT_FAILED;
    }
    final_json(t, run_id, status, rc ? rm_error_message() : NULL, row, have_row);
    rm_trainer_destroy(t);
    return rc;
}
