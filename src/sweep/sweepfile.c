/* Reading a sweep file (format: include/regmix/sweep.h). libyaml's document loader
 * gives a node tree with line marks; this file checks the structure and every value
 * (through rm_config_set, origin "path:line", so sweep files, run files and the command
 * line share one set of rules and messages) into an sw_file, which sw_expand turns into
 * runs. Sections are read in a fixed order (name, max_runs, description, base, grid, zip,
 * exclude) whatever their order in the file: the axis order is grid, then zip. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "sweepfile_internal.h"

#define SW_MAX_FILE (1 << 20)  /* a sweep file is a page of text; refuse anything huge */
#define SW_MAX_SETTINGS 256    /* upper bound of rm_config_setting_count() */
#define SW_MAX_EXCLUDE 256     /* exclude entries (each is tried on every combination) */

typedef struct {
    const char *path;
    yaml_document_t *doc;
    int base_line[SW_MAX_SETTINGS]; /* per setting: line of its key in base, 0 if absent */
} rd_t;

static int line_of(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }

static const char *kind_name(const yaml_node_t *n) {
    switch (n->type) {
    case YAML_SCALAR_NODE: return "a single value";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "nothing";
    }
}

static yaml_node_t *node_at(const rd_t *r, int index) { return yaml_document_get_node(r->doc, index); }

static int n_items(const yaml_node_t *n) {
    return (int)(n->data.sequence.items.top - n->data.sequence.items.start);
}
static yaml_node_t *item(const rd_t *r, const yaml_node_t *n, int k) {
    return node_at(r, n->data.sequence.items.start[k]);
}
static int n_pairs(const yaml_node_t *n) {
    return (int)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}
static yaml_node_t *pair_key(const rd_t *r, const yaml_node_t *n, int k) {
    return node_at(r, n->data.mapping.pairs.start[k].key);
}
static yaml_node_t *pair_value(const rd_t *r, const yaml_node_t *n, int k) {
    return node_at(r, n->data.mapping.pairs.start[k].value);
}

/* An empty optional section ("grid:" with nothing after it, "~" or "null"). */
static int is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *v = (const char *)n->data.scalar.value;
    return !strcmp(v, "") || !strcmp(v, "~") || !strcmp(v, "null");
}

/* The text of a scalar node (NUL bytes from "\0" escapes refused). */
static rm_status scalar_text(const rd_t *r, const yaml_node_t *n, const char *what, const char **out) {
    if (n->type != YAML_SCALAR_NODE)
        return rm_fail(RM_ERR_FORMAT, "%s:%d: %s: expected a single value, got %s", r->path, line_of(n), what,
                       kind_name(n));
    const char *v = (const char *)n->data.scalar.value;
    if (strlen(v) != n->data.scalar.length)
        return rm_fail(RM_ERR_FORMAT, "%s:%d: %s: a value contains a NUL character", r->path, line_of(n), what);
    *out = v;
    return RM_OK;
}

/* Keys of a mapping: scalars, each once. No mapping of a sweep file has more keys than
 * there are settings, so a larger one is refused before the (quadratic) duplicate check. */
static rm_status check_keys(const rd_t *r, const yaml_node_t *map, const char *what) {
    if (n_pairs(map) > SW_MAX_SETTINGS)
        return rm_fail(RM_ERR_FORMAT, "%s:%d: %s: %d keys in one mapping, at most %d; not a sweep file", r->path,
                       line_of(map), what, n_pairs(map), SW_MAX_SETTINGS);
    for (int k = 0; k < n_pairs(map); k++) {
        const yaml_node_t *key = pair_key(r, map, k);
        const char *name;
        if (key->type != YAML_SCALAR_NODE)
            return rm_fail(RM_ERR_FORMAT, "%s:%d: %s: expected a key, got %s", r->path, line_of(key), what,
                           kind_name(key));
        RM_TRY(scalar_text(r, key, what, &name));
        for (int j = 0; j < k; j++) {
            const yaml_node_t *prev = pair_key(r, map, j);
            if (!strcmp((const char *)prev->data.scalar.value, name))
                return rm_fail(RM_ERR_FORMAT, "%s:%d: %s: duplicate key '%.80s' (first on line %d)", r->path,
                               line_of(key), what, name, line_of(prev));
        }
    }
    return RM_OK;
}

/* The setting called `name`, with the configuration's own unknown-setting message
 * (and its "did you mean") when there is none. run_id is the sweep's to set. */
static rm_status find_setting(const rd_t *r, const char *name, int line, int *index) {
    char origin[600];
    snprintf(origin, sizeof origin, "%.500s:%d", r->path, line);
    int i = rm_config_setting_find(name);
    if (i < 0) {
        rm_config scratch;
        rm_config_defaults(&scratch);
        rm_status st = rm_config_set(&scratch, name, "", origin);
        return st != RM_OK ? st : rm_fail(RM_ERR_ARG, "%s: unknown setting '%.80s'", origin, name);
    }
    if (!strcmp(name, "run_id"))
        return rm_fail(RM_ERR_ARG, "%s: run_id is set by the sweep (each run's id is made of its axis values)",
                       origin);
    if (i >= SW_MAX_SETTINGS) return rm_fail(RM_ERR_ARG, "%s: setting index %d out of range", origin, i);
    *index = i;
    return RM_OK;
}

/* A setting's value as text: a scalar, or for eval_attacks a list of attack names
 * (each checked with its own line) joined with ','. */
static rm_status value_text(const rd_t *r, const yaml_node_t *v, const char *key, char *buf, size_t size,
                            const char *too_long) {
    if (v->type == YAML_SEQUENCE_NODE && !strcmp(key, "eval_attacks")) {
        size_t len = 0;
        buf[0] = '\0';
        if (n_items(v) == 0)
            return rm_fail(RM_ERR_ARG, "%s:%d: eval_attacks: empty list of attacks", r->path, line_of(v));
        for (int k = 0; k < n_items(v); k++) {
            const yaml_node_t *it = item(r, v, k);
            const char *a;
            RM_TRY(scalar_text(r, it, "eval_attacks: an attack in the list", &a));
            const char *why = strchr(a, ',') ? "one attack per list item (no commas)" : rm_eval_attack_error(a, NULL);
            if (why)
                return rm_fail(RM_ERR_ARG, "%s:%d: eval_attacks: '%.80s': %s", r->path, line_of(it), a, why);
            size_t n = strlen(a);
            if (len + n + 2 > size)
                return rm_fail(RM_ERR_ARG, "%s:%d: eval_attacks: list too long%s", r->path, line_of(v), too_long);
            if (len) buf[len++] = ',';
            memcpy(buf + len, a, n + 1);
            len += n;
        }
        return RM_OK;
    }
    const char *t;
    RM_TRY(scalar_text(r, v, key, &t));
    size_t n = strlen(t);
    if (n >= size)
        return rm_fail(RM_ERR_ARG, "%s:%d: %s: value of %zu characters is too long%s", r->path, line_of(v), key, n,
                       too_long);
    memcpy(buf, t, n + 1);
    return RM_OK;
}

/* ---- sections ---- */

static rm_status read_name(const rd_t *r, const yaml_node_t *key, const yaml_node_t *v, sw_file *f) {
    const char *t;
    RM_TRY(scalar_text(r, v, "name", &t));
    size_t n = strlen(t), ok = strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");
    if (n == 0 || n >= sizeof f->name || ok != n || t[0] == '.' || t[0] == '-')
        return rm_fail(RM_ERR_ARG, "%s:%d: name: '%.80s' is not a valid sweep name (1 to %zu letters, digits, "
                       "'.', '_' or '-', not starting with '.' or '-'; results go to results/NAME/)",
                       r->path, line_of(is_null(v) ? key : v), t, sizeof f->name - 1);
    memcpy(f->name, t, n + 1);
    return RM_OK;
}

static rm_status read_max_runs(const rd_t *r, const yaml_node_t *v, sw_file *f) {
    const char *t;
    RM_TRY(scalar_text(r, v, "max_runs", &t));
    char *end;
    long n = strtol(t, &end, 10);
    if (end == t || *end != '\0' || n < 1 || n > SW_MAX_RUNS_LIMIT)
        return rm_fail(RM_ERR_ARG, "%s:%d: max_runs: '%.80s' is not an integer from 1 to %d (the most runs this "
                       "sweep may expand to; default %d)", r->path, line_of(v), t, SW_MAX_RUNS_LIMIT,
                       RM_SWEEP_MAX_RUNS);
    f->max_runs = (int)n;
    f->max_runs_line = line_of(v);
    return RM_OK;
}

static rm_status read_description(const rd_t *r, const yaml_node_t *v, sw_file *f) {
    if (is_null(v)) return RM_OK;
    const char *t;
    RM_TRY(scalar_text(r, v, "description", &t));
    if (strlen(t) >= sizeof f->description)
        return rm_fail(RM_ERR_ARG, "%s:%d: description: %zu bytes, at most %zu", r->path, line_of(v), strlen(t),
                       sizeof f->description - 1);
    strcpy(f->description, t);
    return RM_OK;
}

static rm_status read_base(rd_t *r, const yaml_node_t *key, const yaml_node_t *v, sw_file *f) {
    f->base_line = line_of(key);
    if (is_null(v)) return RM_OK;
    if (v->type != YAML_MAPPING_NODE)
        return rm_fail(RM_ERR_FORMAT, "%s:%d: base: expected a mapping of settings (key: value), got %s", r->path,
                       line_of(v), kind_name(v));
    RM_TRY(check_keys(r, v, "base"));
    for (int k = 0; k < n_pairs(v); k++) {
        const yaml_node_t *key = pair_key(r, v, k), *val = pair_value(r, v, k);
        const char *name = (const char *)key->data.scalar.value;
        int i;
        RM_TRY(find_setting(r, name, line_of(key), &i));
        char text[SW_CANON_MAX], origin[600];
        RM_TRY(value_text(r, val, name, text, sizeof text, ""));
        snprintf(origin, sizeof origin, "%.500s:%d", r->path, line_of(val));
        RM_TRY(rm_config_set(&f->base, name, text, origin));
        r->base_line[i] = line_of(key);
        if (!strcmp(name, "outdir")) f->base_sets_outdir = 1;
    }
    return RM_OK;
}

static rm_status add_axis(rd_t *r, sw_file *f, const yaml_node_t *key, const yaml_node_t *val, int dim,
                          const char *section) {
    const char *name = (const char *)key->data.scalar.value;
    int i, line = line_of(key);
    RM_TRY(find_setting(r, name, line, &i));
    if (r->base_line[i])
        return rm_fail(RM_ERR_FORMAT, "%s:%d: %s: '%s' is set in base (line %d) and is also an axis; give it in "
                       "one place", r->path, line, section, name, r->base_line[i]);
    for (int a = 0; a < f->n_axes; a++)
        if (!strcmp(f->axes[a].name, name))
            return rm_fail(RM_ERR_FORMAT, "%s:%d: %s: axis '%s' is given twice (first on line %d)", r->path, line,
                           section, name, f->axes[a].line);
    if (f->n_axes == RM_SWEEP_MAX_AXES)
        return rm_fail(RM_ERR_FORMAT, "%s:%d: %s: '%s': more than %d axes", r->path, line, section, name,
                       RM_SWEEP_MAX_AXES);
    if (is_null(val) || (val->type == YAML_SEQUENCE_NODE && n_items(val) == 0))
        return rm_fail(RM_ERR_FORMAT, "%s:%d: %s: axis '%s' is empty (give a list of values)", r->path, line,
                       section, name);
    if (val->type != YAML_SEQUENCE_NODE)
        return rm_fail(RM_ERR_FORMAT, "%s:%d: %s: axis '%s': expected a list of values ([a, b] or '- a' lines), "
                       "got %s", r->path, line_of(val), section, name, kind_name(val));
    if (n_items(val) > f->max_runs) /* every value is in some run, so it would be refused later */
        return rm_fail(RM_ERR_FORMAT, "%s:%d: %s: axis '%s' has %d values, more runs than max_runs (%d) allows",
                       r->path, line_of(val), section, name, n_items(val), f->max_runs);

    sw_axis *ax = &f->axes[f->n_axes];
    memset(ax, 0, sizeof *ax);
    snprintf(ax->name, sizeof ax->name, "%s", name); /* setting names are short */
    ax->line = line;
    ax->dim = dim;
    ax->n = n_items(val);
    ax->v = rm_alloc((size_t)ax->n * sizeof *ax->v);
    if (!ax->v) return RM_ERR_NOMEM;
    f->n_axes++; /* owned by f from here: freed with it on any later failure */

    char too_long[64];
    snprintf(too_long, sizeof too_long, " for a run id (at most %d)", RM_SWEEP_VALUE_MAX - 1);
    for (int k = 0; k < ax->n; k++) {
        const yaml_node_t *it = item(r, val, k);
        sw_value *v = &ax->v[k];
        v->line = line_of(it);
        RM_TRY(value_text(r, it, name, v->text, sizeof v->text, too_long));
        char origin[600];
        snprintf(origin, sizeof origin, "%.500s:%d", r->path, v->line);
        rm_config scratch = f->base;
        RM_TRY(rm_config_set(&scratch, name, v->text, origin));
        if (rm_config_setting_text(&scratch, i, v->canon, sizeof v->canon) < 0)
            return rm_fail(RM_ERR_ARG, "%s: %s: value too long", origin, name);
    }
    return RM_OK;
}

static rm_status read_grid(rd_t *r, const yaml_node_t *v, sw_file *f) {
    if (is_null(v)) return RM_OK;
    if (v->type != YAML_MAPPING_NODE)
        return rm_fail(RM_ERR_FORMAT, "%s:%d: grid: expected a mapping of axes (setting: [values]), got %s",
                       r->path, line_of(v), kind_name(v));
    RM_TRY(check_keys(r, v, "grid"));
    for (int k = 0; k < n_pairs(v); k++)
        RM_TRY(add_axis(r, f, pair_key(r, v, k), pair_value(r, v, k), f->n_dims++, "grid"));
    return RM_OK;
}

static rm_status read_zip(rd_t *r, const yaml_node_t *v, sw_file *f) {
    if (is_null(v)) return RM_OK;
    if (v->type != YAML_SEQUENCE_NODE)
        return rm_fail(RM_ERR_FORMAT, "%s:%d: zip: expected a list of groups ('- setting: [values]' with the "
                       "settings of one group below each other), got %s", r->path, line_of(v), kind_name(v));
    for (int g = 0; g < n_items(v); g++) {
        const yaml_node_t *grp = item(r, v, g);
        if (grp->type != YAML_MAPPING_NODE || n_pairs(grp) == 0)
            return rm_fail(RM_ERR_FORMAT, "%s:%d: zip: a group must be a mapping of axes (setting: [values]), "
                           "got %s", r->path, line_of(grp), grp->type == YAML_MAPPING_NODE ? "an empty mapping"
                                                                                        : kind_name(grp));
        RM_TRY(check_keys(r, grp, "zip"));
        int first = f->n_axes, dim = f->n_dims++;
        for (int k = 0; k < n_pairs(grp); k++) {
            RM_TRY(add_axis(r, f, pair_key(r, grp, k), pair_value(r, grp, k), dim, "zip"));
            const sw_axis *a0 = &f->axes[first], *a = &f->axes[f->n_axes - 1];
            if (a->n != a0->n)
                return rm_fail(RM_ERR_FORMAT, "%s:%d: zip: '%s' has %d values but '%s' (line %d) has %d; the "
                               "lists of a zip group move together and need equal lengths", r->path, a->line,
                               a->name, a->n, a0->name, a0->line, a0->n);
        }
    }
    return RM_OK;
}

/* One alternative of an exclude value: marks the axis values it equals (compared as
 * the setting's canonical text, so "0.5" matches "1/2"). */
static rm_status exclude_value(const rd_t *r, const sw_file *f, int a, const yaml_node_t *v, unsigned char *match) {
    const sw_axis *ax = &f->axes[a];
    char text[SW_CANON_MAX], canon[SW_CANON_MAX], origin[600];
    RM_TRY(value_text(r, v, ax->name, text, sizeof text, ""));
    snprintf(origin, sizeof origin, "%.500s:%d", r->path, line_of(v));
    rm_config scratch = f->base;
    RM_TRY(rm_config_set(&scratch, ax->name, text, origin));
    if (rm_config_setting_text(&scratch, rm_config_setting_find(ax->name), canon, sizeof canon) < 0)
        return rm_fail(RM_ERR_ARG, "%s: %s: value too long", origin, ax->name);
    int hits = 0;
    for (int k = 0; k < ax->n; k++)
        if (!strcmp(ax->v[k].canon, canon)) match[k] = 1, hits++;
    if (!hits)
        return rm_fail(RM_ERR_ARG, "%s: exclude: %s '%.80s' is not a value of axis '%s' (line %d)", origin,
                       ax->name, text, ax->name, ax->line);
    return RM_OK;
}

/* A list is "any of these" values; for eval_attacks, whose value may itself be a list,
 * only a list of lists is. */
static int is_alternatives(const rd_t *r, const char *key, const yaml_node_t *v) {
    if (v->type != YAML_SEQUENCE_NODE) return 0;
    if (strcmp(key, "eval_attacks") != 0) return 1;
    return n_items(v) > 0 && item(r, v, 0)->type == YAML_SEQUENCE_NODE;
}

static rm_status read_exclude(rd_t *r, const yaml_node_t *v, sw_file *f) {
    if (is_null(v)) return RM_OK;
    if (v->type != YAML_SEQUENCE_NODE)
        return rm_fail(RM_ERR_FORMAT, "%s:%d: exclude: expected a list of entries ('- {setting: value, ...}'), "
                       "got %s", r->path, line_of(v), kind_name(v));
    int n = n_items(v);
    if (n == 0) return RM_OK;
    /* every entry is tried on every combination: bound the product */
    if (n > SW_MAX_EXCLUDE)
        return rm_fail(RM_ERR_FORMAT, "%s:%d: exclude: %d entries, at most %d (list several values of an axis in "
                       "one entry instead)", r->path, line_of(v), n, SW_MAX_EXCLUDE);
    f->excl = rm_alloc((size_t)n * sizeof *f->excl);
    if (!f->excl) return RM_ERR_NOMEM;
    for (int e = 0; e < n; e++) {
        const yaml_node_t *ent = item(r, v, e);
        sw_exclude *x = &f->excl[f->n_excl++];
        x->line = line_of(ent);
        if (ent->type != YAML_MAPPING_NODE || n_pairs(ent) == 0)
            return rm_fail(RM_ERR_FORMAT, "%s:%d: exclude: an entry must be a mapping of axis values "
                           "({setting: value, ...}), got %s", r->path, x->line,
                           ent->type == YAML_MAPPING_NODE ? "an empty mapping" : kind_name(ent));
        RM_TRY(check_keys(r, ent, "exclude"));
        for (int k = 0; k < n_pairs(ent); k++) {
            const yaml_node_t *key = pair_key(r, ent, k), *val = pair_value(r, ent, k);
            const char *name = (const char *)key->data.scalar.value;
            int a = 0;
            while (a < f->n_axes && strcmp(f->axes[a].name, name) != 0) a++;
            if (a == f->n_axes) {
                char axes[400] = "";
                for (int b = 0; b < f->n_axes; b++)
                    snprintf(axes + strlen(axes), sizeof axes - strlen(axes), "%s%s", b ? ", " : "", f->axes[b].name);
                return rm_fail(RM_ERR_FORMAT, "%s:%d: exclude: '%.80s' is not an axis of this sweep (axes: %s)",
                               r->path, line_of(key), name, f->n_axes ? axes : "none");
            }
            x->axis[x->n_keys] = a;
            unsigned char *m = x->match[x->n_keys] = rm_alloc((size_t)f->axes[a].n);
            if (!m) return RM_ERR_NOMEM;
            x->n_keys++; /* at most one key per axis: check_keys refused duplicates */
            if (is_alternatives(r, name, val)) {
                if (n_items(val) == 0)
                    return rm_fail(RM_ERR_FORMAT, "%s:%d: exclude: '%s': empty list", r->path, line_of(val), name);
                for (int j = 0; j < n_items(val); j++) RM_TRY(exclude_value(r, f, a, item(r, val, j), m));
            } else {
                RM_TRY(exclude_value(r, f, a, val, m));
            }
        }
    }
    return RM_OK;
}

/* ---- the whole file ---- */

static const char *const sections[] = {"name", "description", "base", "grid", "zip", "exclude", "max_runs"};
#define N_SECTIONS 7

static rm_status read_top(rd_t *r, const yaml_node_t *root, sw_file *f) {
    if (root->type != YAML_MAPPING_NODE)
        return rm_fail(RM_ERR_FORMAT, "%s:%d: the top level must be a mapping (name:, base:, grid:, ...), got %s",
                       r->path, line_of(root), kind_name(root));
    RM_TRY(check_keys(r, root, "top level"));
    const yaml_node_t *key[N_SECTIONS] = {0}, *val[N_SECTIONS] = {0};
    for (int k = 0; k < n_pairs(root); k++) {
        const yaml_node_t *kn = pair_key(r, root, k);
        const char *name = (const char *)kn->data.scalar.value;
        int s = 0;
        while (s < N_SECTIONS && strcmp(sections[s], name) != 0) s++;
        if (s == N_SECTIONS)
            return rm_fail(RM_ERR_FORMAT, "%s:%d: unknown top-level key '%.80s' (expected name, description, base, "
                           "grid, zip, exclude or max_runs; settings go under base:)", r->path, line_of(kn), name);
        key[s] = kn;
        val[s] = pair_value(r, root, k);
    }
    if (!val[0])
        return rm_fail(RM_ERR_FORMAT, "%s:%d: name: missing (required: the results go to results/NAME/)", r->path,
                       line_of(root));
    RM_TRY(read_name(r, key[0], val[0], f));
    if (val[6]) RM_TRY(read_max_runs(r, val[6], f)); /* first: it bounds the axes */
    if (val[1]) RM_TRY(read_description(r, val[1], f));
    if (val[2]) RM_TRY(read_base(r, key[2], val[2], f));
    if (val[3]) RM_TRY(read_grid(r, val[3], f));
    if (val[4]) RM_TRY(read_zip(r, val[4], f));
    if (val[5]) RM_TRY(read_exclude(r, val[5], f));
    return RM_OK;
}

void sw_file_free(sw_file *f) {
    if (!f) return;
    for (int a = 0; a < f->n_axes; a++) rm_free(f->axes[a].v);
    for (int e = 0; e < f->n_excl; e++)
        for (int k = 0; k < f->excl[e].n_keys; k++) rm_free(f->excl[e].match[k]);
    rm_free(f->excl);
    memset(f, 0, sizeof *f);
}

static rm_status read_text(const char *path, char **out) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return rm_fail(RM_ERR_IO, "fopen(%s): %s", path, strerror(errno));
    char *buf = rm_alloc(SW_MAX_FILE + 1);
    if (!buf) {
        fclose(fp);
        return RM_ERR_NOMEM;
    }
    errno = 0;
    size_t n = fread(buf, 1, SW_MAX_FILE + 1, fp);
    rm_status st = RM_OK;
    if (ferror(fp)) st = rm_fail(RM_ERR_IO, "fread(%s): %s", path, errno ? strerror(errno) : "read error");
    else if (n > SW_MAX_FILE) st = rm_fail(RM_ERR_FORMAT, "%s: larger than %d bytes; not a sweep file", path, SW_MAX_FILE);
    else if (memchr(buf, '\0', n)) st = rm_fail(RM_ERR_FORMAT, "%s: contains NUL bytes; not a text file", path);
    if (fclose(fp) != 0 && st == RM_OK) st = rm_fail(RM_ERR_IO, "fclose(%s): %s", path, strerror(errno));
    if (st != RM_OK) {
        rm_free(buf);
        return st;
    }
    *out = rm_alloc(n + 1); /* kept with the sweep: only as large as the file */
    if (*out) memcpy(*out, buf, n);
    rm_free(buf);
    return *out ? RM_OK : RM_ERR_NOMEM;
}

static rm_status parse_error(const char *path, const yaml_parser_t *p) {
    if (p->error == YAML_MEMORY_ERROR) return rm_fail(RM_ERR_NOMEM, "%s: yaml_parser_load: out of memory", path);
    if (p->error == YAML_READER_ERROR)
        return rm_fail(RM_ERR_FORMAT, "%s: cannot read YAML: %s at byte %zu", path,
                       p->problem ? p->problem : "reader error", p->problem_offset);
    return rm_fail(RM_ERR_FORMAT, "%s:%zu: YAML syntax error: %s%s%s", path, p->problem_mark.line + 1,
                   p->problem ? p->problem : "unknown problem", p->context ? " " : "", p->context ? p->context : "");
}

/* Hostile documents are refused by a streaming pass over the events before the
 * document is built, at the first offending event, with its line:
 * - aliases: libyaml's loader would share an aliased node rather than copy it, but a
 *   sweep has no use for aliases, and refusing them stops a "billion laughs" document
 *   (aliases of aliases, expanding without bound) at its first alias;
 * - nesting deeper than SW_MAX_DEPTH: a sweep needs 5 levels (zip, group, axis, value
 *   list), and libyaml's time grows with the square of the depth (a megabyte of '['
 *   would take an hour to load).
 * The events are parsed lazily, so either stops the parse where it is found. */
#define SW_MAX_DEPTH 8
static rm_status prescan(const char *path, const char *text) {
    yaml_parser_t parser;
    yaml_event_t ev;
    if (!yaml_parser_initialize(&parser)) return rm_fail(RM_ERR_NOMEM, "%s: yaml_parser_initialize failed", path);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    rm_status st = RM_OK;
    int depth = 0;
    for (;;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            st = parse_error(path, &parser);
            break;
        }
        yaml_event_type_t type = ev.type;
        size_t line = ev.start_mark.line + 1;
        if (type == YAML_ALIAS_EVENT)
            st = rm_fail(RM_ERR_FORMAT, "%s:%zu: alias '*%.80s': sweep files take no aliases (write the values out)",
                         path, line, (const char *)ev.data.alias.anchor);
        if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) depth++;
        if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) depth--;
        if (depth > SW_MAX_DEPTH)
            st = rm_fail(RM_ERR_FORMAT, "%s:%zu: lists or mappings nested more than %d deep; not a sweep file", path,
                         line, SW_MAX_DEPTH);
        yaml_event_delete(&ev);
        if (st != RM_OK || type == YAML_STREAM_END_EVENT) break;
    }
    yaml_parser_delete(&parser);
    return st;
}

/* Parses text into *doc (one document, not empty) and reads it into f. */
static rm_status read_yaml(const char *path, const char *text, sw_file *f) {
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    RM_TRY(prescan(path, text));
    if (!yaml_parser_initialize(&parser)) return rm_fail(RM_ERR_NOMEM, "%s: yaml_parser_initialize failed", path);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    rm_status st = RM_OK;
    if (!yaml_parser_load(&parser, &doc)) {
        st = parse_error(path, &parser);
        yaml_parser_delete(&parser);
        return st;
    }
    rd_t *r = rm_alloc(sizeof *r); /* base_line is a few KB: not on the stack */
    if (!r) st = RM_ERR_NOMEM;
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (st == RM_OK && !root)
        st = rm_fail(RM_ERR_FORMAT, "%s:1: empty sweep file (name: and grid: expected)", path);
    if (st == RM_OK) {
        if (!yaml_parser_load(&parser, &extra)) {
            st = parse_error(path, &parser);
        } else {
            const yaml_node_t *second = yaml_document_get_root_node(&extra);
            if (second)
                st = rm_fail(RM_ERR_FORMAT, "%s:%d: more than one YAML document; a sweep file holds one mapping",
                             path, (int)second->start_mark.line + 1);
            yaml_document_delete(&extra);
        }
    }
    if (st == RM_OK) {
        r->path = path;
        r->doc = &doc;
        st = read_top(r, root, f);
    }
    rm_free(r);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return st;
}

/* --set KEY=VALUE overrides of the base settings: applied after base, before the runs
 * are expanded (so they reach validation, hashes and the duplicate checks). */
static rm_status apply_sets(sw_file *f, const char *const *sets, int n_sets) {
    for (int i = 0; i < n_sets; i++) {
        const char *eq = strchr(sets[i], '=');
        char key[64], origin[128];
        size_t klen = eq ? (size_t)(eq - sets[i]) : 0;
        if (!eq || klen == 0 || klen >= sizeof key)
            return rm_fail(RM_ERR_ARG, "--set '%.100s': expected KEY=VALUE (a setting of regmix train)", sets[i]);
        memcpy(key, sets[i], klen);
        key[klen] = '\0';
        if (rm_config_setting_find(key) < 0)
            return rm_fail(RM_ERR_ARG, "--set %s: unknown setting '%s'", sets[i], key);
        if (!strcmp(key, "run_id"))
            return rm_fail(RM_ERR_ARG, "--set %s: run ids are made by the sweep", sets[i]);
        for (int a = 0; a < f->n_axes; a++)
            if (!strcmp(f->axes[a].name, key))
                return rm_fail(RM_ERR_ARG, "--set %s: '%s' is an axis of the sweep (line %d); --set changes base "
                               "settings only", sets[i], key, f->axes[a].line);
        snprintf(origin, sizeof origin, "--set %.100s", sets[i]);
        RM_TRY(rm_config_set(&f->base, key, eq + 1, origin));
        if (!strcmp(key, "outdir")) f->base_sets_outdir = 1;
    }
    return RM_OK;
}

rm_status rm_sweep_load(const char *path, rm_sweep *out) { return rm_sweep_load_with(path, NULL, 0, out); }

rm_status rm_sweep_load_with(const char *path, const char *const *sets, int n_sets, rm_sweep *out) {
    if (!out) return rm_fail(RM_ERR_ARG, "rm_sweep_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return rm_fail(RM_ERR_ARG, "rm_sweep_load: path is NULL");
    if (strlen(path) >= sizeof out->path)
        return rm_fail(RM_ERR_ARG, "rm_sweep_load: path longer than %zu bytes: %.80s...", sizeof out->path - 1, path);
    char *text;
    RM_TRY(read_text(path, &text));
    sw_file *f = rm_alloc(sizeof *f);
    if (!f) {
        rm_free(text);
        return RM_ERR_NOMEM;
    }
    f->path = path;
    f->base_line = 1;
    f->max_runs = RM_SWEEP_MAX_RUNS;
    rm_config_defaults(&f->base);
    rm_status st = read_yaml(path, text, f);
    if (st == RM_OK) st = apply_sets(f, sets, n_sets);
    if (st == RM_OK) st = sw_expand(f, out);
    if (st == RM_OK) {
        strcpy(out->name, f->name);
        strcpy(out->description, f->description);
        strcpy(out->path, path);
        out->n_axes = f->n_axes;
        for (int a = 0; a < f->n_axes; a++) strcpy(out->axes[a], f->axes[a].name);
        out->text = text;
    } else {
        rm_free(text);
        rm_sweep_free(out);
    }
    sw_file_free(f);
    rm_free(f);
    return st;
}

void rm_sweep_free(rm_sweep *s) {
    if (!s) return;
    rm_free(s->runs);
    rm_free(s->text);
    memset(s, 0, sizeof *s);
}

int rm_sweep_find(const rm_sweep *s, const char *id) {
    if (!s || !id) return -1;
    for (int k = 0; k < s->n_runs; k++)
        if (!strcmp(s->runs[k].id, id)) return k;
    return -1;
}
