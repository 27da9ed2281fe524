/* regmix inspect RUN.h5: the configuration, status, provenance, checkpoint and the
 * metrics table (one fixed-width row per epoch) of a run file. Works while the run is
 * being written (SWMR read) and after its writer died. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "regmix/runfile.h"

static int inspect_usage(FILE *out) {
    fprintf(out, "usage: regmix inspect [--no-config] RUN.h5\n"
                 "prints the run's status, provenance, checkpoint, configuration and metrics\n"
                 "  --no-config  leave out the configuration text\n");
    return out == stderr ? 2 : 0;
}

static void print_header(const rm_run_summary *s, const char *path) {
    printf("run         %s (run id %s)\n", path, s->run_id);
    printf("status      %s", rm_run_status_name(s->status));
    if (s->status_reason[0]) printf(": %s", s->status_reason);
    printf("\n");
    printf("started     %s   ended %s\n", s->start_time, s->end_time[0] ? s->end_time : "-");
    if (s->resume_count > 0)
        printf("resumed     %lld time%s, last %s\n", (long long)s->resume_count,
               s->resume_count == 1 ? "" : "s", s->resume_time);
    printf("build       regmix %s (commit %s), oneDNN %s (%s), HDF5 %s\n", s->regmix_version,
           s->git_commit, s->onednn_version, s->onednn_isa, s->hdf5_version);
    printf("process     host %s, MPI rank %lld of %lld, %lld threads", s->host,
           (long long)s->mpi_rank, (long long)s->mpi_size, (long long)s->threads);
    if (s->ranks_per_run > 0) printf(", %lld rank%s per run", (long long)s->ranks_per_run, s->ranks_per_run == 1 ? "" : "s");
    printf("\n");
    if (s->data_dir[0]) printf("data        %s\n", s->data_dir);
    printf("MPI         %s\n", s->mpi_version);
    if (s->has_checkpoint == 1)
        printf("checkpoint  epoch %lld, iteration %lld, %lld optimiser steps\n",
               (long long)s->checkpoint_epoch, (long long)s->checkpoint_iteration,
               (long long)s->checkpoint_steps);
    else
        printf("checkpoint  %s\n", s->has_checkpoint < 0 ? "present but unreadable" : "none yet");
}

static void print_config(const rm_run_summary *s) {
    printf("config      hash %s", s->config_hash);
    if (strcmp(s->identity_hash, s->config_hash)) printf(" (written by an older version; %s by today's rules)", s->identity_hash);
    printf("\n");
    const char *p = s->config_yaml ? s->config_yaml : "";
    while (*p) {
        size_t n = strcspn(p, "\n");
        printf("  %.*s\n", (int)n, p);
        p += n;
        if (*p == '\n') p++;
    }
}

/* Width of metric column i: fits the name, the units in brackets and a %.6g value. */
static int column_width(const rm_metric_column *c) {
    int w = 12, n = (int)strlen(c->name) + 2, u = (int)strlen(c->units ? c->units : "") + 4;
    if (n > w) w = n;
    if (u > w) w = u;
    return w;
}

static void print_metrics(const rm_run_summary *s) {
    printf("metrics     %lld row%s, %d column%s\n", (long long)s->rows, s->rows == 1 ? "" : "s",
           s->n_metrics, s->n_metrics == 1 ? "" : "s");
    printf("%6s", "epoch");
    for (int m = 0; m < s->n_metrics; m++) printf("%*s", column_width(&s->columns[m]), s->columns[m].name);
    printf("\n%6s", "");
    for (int m = 0; m < s->n_metrics; m++) {
        char u[80];
        snprintf(u, sizeof u, "[%s]", s->columns[m].units ? s->columns[m].units : "");
        printf("%*s", column_width(&s->columns[m]), u);
    }
    printf("\n");
    for (int64_t r = 0; r < s->rows; r++) {
        printf("%6lld", (long long)s->epoch[r]);
        for (int m = 0; m < s->n_metrics; m++) {
            double v = s->columns[m].values[r];
            int w = column_width(&s->columns[m]);
            if (isnan(v)) printf("%*s", w, "-"); /* not evaluated that epoch */
            else printf("%*.6g", w, v);
        }
        printf("\n");
    }
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    int show_config = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return inspect_usage(stdout);
        if (!strcmp(argv[i], "--no-config")) show_config = 0;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "regmix inspect: unknown option '%s'\n", argv[i]);
            return inspect_usage(stderr);
        } else if (path) {
            fprintf(stderr, "regmix inspect: one run file at a time ('%s' and '%s')\n", path, argv[i]);
            return inspect_usage(stderr);
        } else {
            path = argv[i];
        }
    }
    if (!path) return inspect_usage(stderr);
    rm_run_summary s;
    rm_status st = rm_runfile_read(path, &s);
    if (st != RM_OK) {
        fprintf(stderr, "regmix inspect: %s: %s\n", rm_status_name(st), rm_error_message());
        return 1;
    }
    print_header(&s, path);
    if (show_config) print_config(&s);
    print_metrics(&s);
    fflush(stdout);
    rm_run_summary_free(&s);
    return 0;
}
