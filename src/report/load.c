/* Reading a sweep directory: every run file, its configuration parsed back into an
 * rm_config and every setting's value as canonical text (what grouping compares); and
 * the sweep index, for the runs it lists that have no file. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "regmix/sweep.h"
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

/* Appends "NAME: WHY" (why NULL: "NAME") to a list of lines. */
static rm_status add_line(char (**list)[RM_REPORT_PATH], int *n, const char *name, const char *why) {
    char (*grown)[RM_REPORT_PATH] = realloc(*list, (size_t)(*n + 1) * sizeof *grown);
    if (!grown) return rm_fail(RM_ERR_NOMEM, "out of memory recording %s", name);
    *list = grown;
    if (why) snprintf(grown[(*n)++], RM_REPORT_PATH, "%.200s: %.800s", name, why);
    else snprintf(grown[(*n)++], RM_REPORT_PATH, "%.1000s", name);
    return RM_OK;
}

static rm_status add_unreadable(rm_report_runs *out, const char *name, const char *why) {
    return add_line(&out->unreadable, &out->n_unreadable, name, why);
}

/* The runs the sweep index lists whose run file does not exist (never started, or
 * deleted), as "ID (status in the index)". An unreadable index is one more unreadable
 * file. */
static rm_status find_missing(rm_report_runs *out) {
    char path[RM_REPORT_PATH + 256];
    snprintf(path, sizeof path, "%s/sweep.h5", out->dir);
    struct stat sb;
    if (stat(path, &sb) != 0) return RM_OK;
    rm_sweep_index_table ix;
    if (rm_sweep_index_read(path, &ix) != RM_OK) {
        char why[RM_REPORT_PATH];
        snprintf(why, sizeof why, "%s", rm_error_message());
        rm_error_clear();
        return add_unreadable(out, "sweep.h5", why);
    }
    out->has_index = 1;
    rm_status st = RM_OK;
    for (int i = 0; st == RM_OK && i < ix.n_runs; i++) {
        snprintf(path, sizeof path, "%s/%s", out->dir, ix.runs[i].file);
        if (stat(path, &sb) == 0) continue;
        char line[RM_REPORT_PATH];
        snprintf(line, sizeof line, "%.400s (%s in sweep.h5)", ix.runs[i].id, ix.runs[i].status);
        st = add_line(&out->missing, &out->n_missing, line, NULL);
    }
    rm_sweep_index_table_free(&ix);
    return st;
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
    if (st == RM_OK) st = find_missing(out);
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
    free(r->missing);
    memset(r, 0, sizeof *r);
}
