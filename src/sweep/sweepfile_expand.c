/* Expanding a read sweep file into runs: nested loops over the grid axes and zip groups
 * (first outermost), exclusion, each run's config (base + its axis values, run_id,
 * outdir), its id, validation, and the checks that no two runs are the same experiment
 * or share an id. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sweepfile_internal.h"

/* Combinations looked at before exclusion (each is cheap: index arithmetic). */
#define SW_MAX_COMBOS 1000000

const char *sw_strip_source(const char *msg) {
    const char *colon = strchr(msg, ':');
    if (!colon || colon - msg < 3 || strncmp(colon - 2, ".c", 2) != 0 || memchr(msg, ' ', (size_t)(colon - msg)))
        return msg;
    const char *d = colon + 1;
    if (!isdigit((unsigned char)*d)) return msg;
    while (isdigit((unsigned char)*d)) d++;
    return d[0] == ':' && d[1] == ' ' ? d + 2 : msg;
}

/* Value index on every axis of combination c (the last dimension varies fastest). */
static void decode(const sw_file *f, const int64_t *dim_size, int64_t c, int *vi) {
    int64_t idx[RM_SWEEP_MAX_AXES];
    for (int d = f->n_dims - 1; d >= 0; d--) {
        idx[d] = c % dim_size[d];
        c /= dim_size[d];
    }
    for (int a = 0; a < f->n_axes; a++) vi[a] = (int)idx[f->axes[a].dim];
}

static int entry_matches(const sw_exclude *x, const int *vi) {
    for (int k = 0; k < x->n_keys; k++)
        if (!x->match[k][vi[x->axis[k]]]) return 0;
    return 1;
}

/* Whether some exclude entry matches the combination; hits (may be NULL) counts the
 * matches of every entry. */
static int excluded(const sw_file *f, const int *vi, int *hits) {
    int any = 0;
    for (int e = 0; e < f->n_excl; e++) {
        if (!entry_matches(&f->excl[e], vi)) continue;
        any = 1;
        if (!hits) break;
        hits[e]++;
    }
    return any;
}

/* "reg=amr, seed=0" for messages. */
static void describe(const rm_sweep_run *r, char *buf, size_t size) {
    size_t n = 0;
    buf[0] = '\0';
    for (int a = 0; a < r->n_axes && n < size; a++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s=%s", a ? ", " : "", r->axis_name[a], r->axis_value[a]);
    if (r->n_axes == 0) snprintf(buf, size, "no axes");
}

static int last_line(const rm_sweep_run *r, int fallback) {
    int line = r->n_axes ? 0 : fallback;
    for (int a = 0; a < r->n_axes; a++)
        if (r->axis_line[a] > line) line = r->axis_line[a];
    return line;
}

static rm_status make_run(const sw_file *f, const int *vi, rm_sweep_run *r) {
    char origin[600];
    r->cfg = f->base;
    r->n_axes = f->n_axes;
    size_t n = 0;
    for (int a = 0; a < f->n_axes; a++) {
        const sw_axis *ax = &f->axes[a];
        const sw_value *v = &ax->v[vi[a]];
        snprintf(r->axis_name[a], sizeof r->axis_name[a], "%s", ax->name);
        snprintf(r->axis_value[a], sizeof r->axis_value[a], "%s", v->text);
        r->axis_line[a] = v->line;
        snprintf(origin, sizeof origin, "%.500s:%d", f->path, v->line);
        RM_TRY(rm_config_set(&r->cfg, ax->name, v->text, origin));

        char part[4 * RM_SWEEP_VALUE_MAX + 8]; /* "/" -> "over" at most quadruples */
        if (rm_sweep_id_part(v->text, part, sizeof part) < 0)
            return rm_fail(RM_ERR_ARG, "%s: %s: value too long for a run id", origin, ax->name);
        int m = snprintf(r->id + n, sizeof r->id - n, "%s%s-%s", a ? "_" : "", ax->name, part);
        if (m < 0 || (size_t)m >= sizeof r->id - n)
            return rm_fail(RM_ERR_ARG, "%s: run id '%.60s...' is longer than %d characters; use fewer or shorter "
                           "axis values", origin, r->id, RM_SWEEP_ID_MAX - 1);
        n += (size_t)m;
    }
    if (f->n_axes == 0) snprintf(r->id, sizeof r->id, "%s", f->name);
    snprintf(origin, sizeof origin, "%.400s: run %.150s", f->path, r->id);
    RM_TRY(rm_config_set(&r->cfg, "run_id", r->id, origin));
    if (!f->base_sets_outdir) {
        char outdir[128];
        snprintf(outdir, sizeof outdir, "results/%s", f->name);
        RM_TRY(rm_config_set(&r->cfg, "outdir", outdir, origin));
    }
    rm_config_hash(&r->cfg, r->hash);
    return RM_OK;
}

/* Every run through rm_config_validate; the first failure is reported with the run's id
 * and axis values, and how many runs fail in all. */
static rm_status validate_runs(const sw_file *f, const rm_sweep *s) {
    int first = -1, bad = 0;
    char why[1024] = "";
    for (int k = 0; k < s->n_runs; k++) {
        if (rm_config_validate(&s->runs[k].cfg) == RM_OK) continue;
        if (first < 0) {
            first = k;
            snprintf(why, sizeof why, "%s", sw_strip_source(rm_error_message()));
        }
        bad++;
        rm_error_clear();
    }
    if (first < 0) return RM_OK;
    const rm_sweep_run *r = &s->runs[first];
    char values[512], more[64] = "";
    describe(r, values, sizeof values);
    if (bad > 1) snprintf(more, sizeof more, " (%d of %d runs are invalid)", bad, s->n_runs);
    return rm_fail(RM_ERR_ARG, "%s:%d: run '%s' (%s) is invalid: %s%s", f->path, last_line(r, f->base_line),
                   r->id, values, why, more);
}

typedef struct {
    const char *key;
    int index;
} keyed_t;

static int by_key(const void *pa, const void *pb) {
    const keyed_t *a = pa, *b = pb;
    int c = strcmp(a->key, b->key);
    return c ? c : (a->index > b->index) - (a->index < b->index);
}

/* The axes on which two runs differ, "alpha 0.1 (line 7) / 1/10 (line 8)"; returns the
 * line of the later run's first differing value. */
static int differences(const rm_sweep_run *a, const rm_sweep_run *b, char *buf, size_t size) {
    size_t n = 0;
    int line = 0;
    buf[0] = '\0';
    for (int k = 0; k < a->n_axes && n < size; k++) {
        if (!strcmp(a->axis_value[k], b->axis_value[k])) continue;
        if (!line) line = b->axis_line[k];
        n += (size_t)snprintf(buf + n, size - n, "%s%s %s (line %d) / %s (line %d)", n ? ", " : "",
                              a->axis_name[k], a->axis_value[k], a->axis_line[k], b->axis_value[k], b->axis_line[k]);
    }
    return line;
}

/* No two runs with one hash (the same experiment twice) or one id (one result file).
 * Sorted by key, then by position; of several clashes the one completed first in
 * expansion order is reported. */
static rm_status check_unique(const sw_file *f, const rm_sweep *s) {
    keyed_t *order = rm_alloc((size_t)s->n_runs * sizeof *order);
    if (!order) return RM_ERR_NOMEM;
    rm_status st = RM_OK;
    for (int pass = 0; pass < 2 && st == RM_OK; pass++) {
        for (int k = 0; k < s->n_runs; k++) {
            order[k].key = pass == 0 ? s->runs[k].hash : s->runs[k].id;
            order[k].index = k;
        }
        qsort(order, (size_t)s->n_runs, sizeof *order, by_key);
        int clash = -1;
        for (int k = 1; k < s->n_runs; k++)
            if (!strcmp(order[k - 1].key, order[k].key) && (clash < 0 || order[k].index < order[clash].index))
                clash = k;
        if (clash < 0) continue;
        const rm_sweep_run *a = &s->runs[order[clash - 1].index], *b = &s->runs[order[clash].index];
        char diff[600];
        int line = differences(a, b, diff, sizeof diff);
        if (pass == 0)
            st = rm_fail(RM_ERR_ARG, "%s:%d: runs '%s' and '%s' are the same configuration (hash %s): %s; "
                         "the same value written twice, or an axis that does not change the run "
                         "(outdir, checkpoint_every, data_dir)", f->path, line, a->id, b->id, a->hash, diff);
        else
            st = rm_fail(RM_ERR_ARG, "%s:%d: two runs get the id '%s' once characters outside "
                         "[A-Za-z0-9.+-] are replaced: %s; write one of the values differently",
                         f->path, line, a->id, diff);
    }
    rm_free(order);
    return st;
}

rm_status sw_expand(const sw_file *f, rm_sweep *out) {
    int64_t dim_size[RM_SWEEP_MAX_AXES], total = 1;
    for (int a = 0; a < f->n_axes; a++) dim_size[f->axes[a].dim] = f->axes[a].n;
    for (int d = 0; d < f->n_dims; d++) {
        total *= dim_size[d];
        if (total > SW_MAX_COMBOS)
            return rm_fail(RM_ERR_FORMAT, "%s:%d: the axes give more than %d combinations; split the sweep",
                           f->path, f->axes[0].line, SW_MAX_COMBOS);
    }

    /* Count first: every exclude entry must remove something (else it is a typo), and
     * something must be left. */
    int vi[RM_SWEEP_MAX_AXES];
    int64_t kept = 0;
    int *hits = NULL;
    if (f->n_excl && !(hits = rm_alloc((size_t)f->n_excl * sizeof *hits))) return RM_ERR_NOMEM;
    for (int64_t c = 0; c < total; c++) {
        decode(f, dim_size, c, vi);
        if (!excluded(f, vi, hits)) kept++;
    }
    rm_status st = RM_OK;
    for (int x = 0; x < f->n_excl && st == RM_OK; x++)
        if (!hits[x])
            st = rm_fail(RM_ERR_FORMAT, "%s:%d: exclude: this entry matches no run (its values never occur "
                         "together)", f->path, f->excl[x].line);
    rm_free(hits);
    RM_TRY(st);
    if (kept == 0)
        return rm_fail(RM_ERR_FORMAT, "%s:%d: exclude removes all %lld combinations", f->path, f->excl[0].line,
                       (long long)total);
    if (kept > f->max_runs) {
        if (f->max_runs_line)
            return rm_fail(RM_ERR_FORMAT, "%s:%d: %lld runs, more than max_runs %d; split the sweep or raise "
                           "max_runs (at most %d)", f->path, f->max_runs_line, (long long)kept, f->max_runs,
                           SW_MAX_RUNS_LIMIT);
        return rm_fail(RM_ERR_FORMAT, "%s:%d: %lld runs, more than the %d a sweep may have unless it sets "
                       "max_runs; split the sweep, or raise the limit with a top-level 'max_runs: N' (at most %d)",
                       f->path, f->axes[0].line, (long long)kept, f->max_runs, SW_MAX_RUNS_LIMIT);
    }

    out->runs = rm_alloc((size_t)kept * sizeof *out->runs);
    if (!out->runs) return RM_ERR_NOMEM;
    out->n_excluded = (int)(total - kept);
    for (int64_t c = 0; c < total; c++) {
        decode(f, dim_size, c, vi);
        if (excluded(f, vi, NULL)) continue;
        RM_TRY(make_run(f, vi, &out->runs[out->n_runs]));
        out->n_runs++;
    }
    RM_TRY(validate_runs(f, out));
    return check_unique(f, out);
}
