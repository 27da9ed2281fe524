/* Reading a sweep directory: every run file, its configuration parsed back into an
 * rm_config and every setting's value as canonical text (what grouping compares). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_internal.h"

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

int rm_report_is_run_file(const char *name) {
    if (!name || name[0] == '.' || !ends_with(name, ".h5")) return 0;
    if (strcmp(name, "sweep.h5") == 0 || ends_with(name, ".ckpt.h5")) return 0;
    return 1;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The run file names of dir, sorted (the report does not depend on readdir's order). */
static rm_status list_run_files(const char *dir, char ***names, int *n) {
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return rm_fail(RM_ERR_IO, "opendir(%s): %s", dir, strerror(errno));
    int cap = 0;
    rm_status st = RM_OK;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (!rm_report_is_run_file(e->d_name)) continue;
        if (strlen(e->d_name) >= sizeof(((rm_report_run *)0)->file)) continue; /* cannot be ours */
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(*names, (size_t)cap * sizeof *grown);
            if (!grown) {
                st = rm_fail(RM_ERR_NOMEM, "out of memory listing %s", dir);
                break;
            }
            *names = grown;
        }
        if (!((*names)[*n] = strdup(e->d_name))) {
            st = rm_fail(RM_ERR_NOMEM, "out of memory listing %s", dir);
            break;
        }
        (*n)++;
    }
    if (st == RM_OK && errno != 0) st = rm_fail(RM_ERR_IO, "readdir(%s): %s", dir, strerror(errno));
    closedir(d);
    if (st != RM_OK) {
        for (int i = 0; i < *n; i++) free((*names)[i]);
        free(*names);
        *names = NULL;
        *n = 0;
        return st;
    }
    if (*n > 1) qsort(*names, (size_t)*n, sizeof **names, cmp_names);
    return RM_OK;
}

/* Reads one run: summary, configuration, setting texts. */
static rm_status read_run(const char *path, const char *name, rm_report_run *run) {
    memset(run, 0, sizeof *run);
    snprintf(run->file, sizeof run->file, "%s", name);
    RM_TRY(rm_runfile_read(path, &run->sum));
    rm_config_defaults(&run->cfg);
    rm_status st = rm_config_load_yaml_text(&run->cfg, run->sum.config_yaml ? run->sum.config_yaml : "", path);
    int ns = rm_config_setting_count();
    if (st == RM_OK && !(run->setting = calloc((size_t)ns, sizeof *run->setting)))
        st = rm_fail(RM_ERR_NOMEM, "out of memory reading %s", path);
    for (int i = 0; st == RM_OK && i < ns; i++)
        if (rm_config_setting_text(&run->cfg, i, run->setting[i], sizeof run->setting[i]) < 0)
            st = rm_fail(RM_ERR_FORMAT, "%s: value of setting %s is too long", path, rm_config_setting_name(i));
    if (st != RM_OK) {
        rm_run_summary_free(&run->sum);
        free(run->setting);
        run->setting = NULL;
    }
    return st;
}

static rm_status add_unreadable(rm_report_runs *out, const char *name, const char *why) {
    char (*grown)[RM_REPORT_PATH] = realloc(out->unreadable, (size_t)(out->n_unreadable + 1) * sizeof *grown);
    if (!grown) return rm_fail(RM_ERR_NOMEM, "out of memory recording unreadable %s", name);
    out->unreadable = grown;
    snprintf(out->unreadable[out->n_unreadable++], RM_REPORT_PATH, "%.200s: %.800s", name, why);
    return RM_OK;
}

rm_status rm_report_load_dir(const char *dir, rm_report_runs *out) {
    memset(out, 0, sizeof *out);
    if (!dir || !dir[0]) return rm_fail(RM_ERR_ARG, "rm_report_load_dir: no directory given");
    if (strlen(dir) >= sizeof out->dir - 300) return rm_fail(RM_ERR_ARG, "directory name too long: %s", dir);
    snprintf(out->dir, sizeof out->dir, "%s", dir);
    char **names;
    int n;
    RM_TRY(list_run_files(dir, &names, &n));
    rm_status st = RM_OK;
    if (n > 0 && !(out->runs = calloc((size_t)n, sizeof *out->runs)))
        st = rm_fail(RM_ERR_NOMEM, "out of memory reading %d run files of %s", n, dir);
    for (int i = 0; i < n && st == RM_OK; i++) {
        char path[RM_REPORT_PATH + 256];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        rm_status rs = read_run(path, names[i], &out->runs[out->n_runs]);
        if (rs == RM_OK) {
            out->n_runs++;
        } else if (rs == RM_ERR_NOMEM) {
            st = rs;
        } else {
            /* one bad file must not hide the others: keep its reason, clear the slot */
            char why[RM_REPORT_PATH];
            snprintf(why, sizeof why, "%s", rm_error_message());
            rm_error_clear();
            st = add_unreadable(out, names[i], why);
        }
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    if (st != RM_OK) rm_report_runs_free(out);
    return st;
}

void rm_report_runs_free(rm_report_runs *r) {
    if (!r) return;
    for (int i = 0; i < r->n_runs; i++) {
        rm_run_summary_free(&r->runs[i].sum);
        free(r->runs[i].setting);
    }
    free(r->runs);
    free(r->unreadable);
    memset(r, 0, sizeof *r);
}
