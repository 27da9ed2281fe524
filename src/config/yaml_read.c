/* Reading a run file: a YAML mapping of settings, through libyaml's event parser.
 * Every scalar is handed to rm_config_set as text with origin "path:line", so the file
 * and the command line share one set of rules and messages. The settings go into a
 * copy that replaces *c only when the whole file was read without error.
 * Hostile input: a file is at most RM_CFG_FILE_MAX bytes, and the event parser never
 * expands aliases (an alias is refused where it appears), so a "billion laughs"
 * document costs one pass over at most a megabyte. */
#include "regmix/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

typedef struct {
    yaml_parser_t parser;
    yaml_event_t ev;
    int have_ev; /* ev holds an event that must be deleted */
    const char *path;
    int has_trades_beta; /* the mapping had a trades_beta key */
} reader_t;

#define RM_CFG_FILE_MAX (1 << 20) /* a run file is a page of settings: refuse anything huge */

static const char *event_name(yaml_event_type_t t) {
    switch (t) {
    case YAML_SCALAR_EVENT: return "a scalar";
    case YAML_SEQUENCE_START_EVENT: return "a sequence";
    case YAML_MAPPING_START_EVENT: return "a mapping";
    case YAML_ALIAS_EVENT: return "an alias";
    default: return "something else";
    }
}

static size_t line_of(const yaml_event_t *ev) { return ev->start_mark.line + 1; }

/* Advances to the next event (deleting the previous one). */
static rm_status next(reader_t *r) {
    if (r->have_ev) yaml_event_delete(&r->ev);
    r->have_ev = 0;
    if (!yaml_parser_parse(&r->parser, &r->ev)) {
        const yaml_parser_t *p = &r->parser;
        if (p->error == YAML_MEMORY_ERROR)
            return rm_fail(RM_ERR_NOMEM, "%s: yaml_parser_parse: out of memory", r->path);
        if (p->error == YAML_READER_ERROR)
            return rm_fail(RM_ERR_FORMAT, "%s: cannot read YAML: %s at byte %zu", r->path,
                           p->problem ? p->problem : "reader error", p->problem_offset);
        return rm_fail(RM_ERR_FORMAT, "%s:%zu: YAML syntax error: %s%s%s", r->path,
                       p->problem_mark.line + 1, p->problem ? p->problem : "unknown problem",
                       p->context ? " " : "", p->context ? p->context : "");
    }
    r->have_ev = 1;
    return RM_OK;
}

/* The scalar of the current event as a C string (NUL bytes from "\0" escapes refused). */
static rm_status scalar_text(reader_t *r, const char **out) {
    const yaml_event_t *ev = &r->ev;
    const char *v = (const char *)ev->data.scalar.value;
    if (strlen(v) != ev->data.scalar.length)
        return rm_fail(RM_ERR_FORMAT, "%s:%zu: a scalar contains a NUL character", r->path, line_of(ev));
    *out = v;
    return RM_OK;
}

/* eval_attacks (or final_eval_attacks) as a sequence: each item is checked with its own line, then the list is
 * joined with commas and set as one value (which catches duplicates). */
static rm_status read_sequence(reader_t *r, rm_config *c, const char *key, const char *origin) {
    char joined[RM_CFG_MAX_EVAL * 100] = "";
    size_t len = 0;
    int count = 0;
    for (;;) {
        RM_TRY(next(r));
        if (r->ev.type == YAML_SEQUENCE_END_EVENT) break;
        if (r->ev.type != YAML_SCALAR_EVENT)
            return rm_fail(RM_ERR_FORMAT, "%s:%zu: %s: expected a list of attack names, got %s inside it",
                           r->path, line_of(&r->ev), key, event_name(r->ev.type));
        const char *item = "";
        RM_TRY(scalar_text(r, &item));
        if (++count > RM_CFG_MAX_EVAL)
            return rm_fail(RM_ERR_ARG, "%s:%zu: %s: at most %d attacks", r->path, line_of(&r->ev), key,
                           RM_CFG_MAX_EVAL);
        const char *why = strchr(item, ',') ? "one attack per list item (no commas)"
                                            : rm_eval_attack_error(item, NULL);
        if (why)
            return rm_fail(RM_ERR_ARG, "%s:%zu: %s: '%.80s': %s", r->path, line_of(&r->ev), key, item, why);
        size_t n = strlen(item);
        if (len + n + 2 > sizeof joined) /* items that passed the check are short */
            return rm_fail(RM_ERR_ARG, "%s:%zu: %s: list too long", r->path, line_of(&r->ev), key);
        if (len) joined[len++] = ',';
        memcpy(joined + len, item, n + 1);
        len += n;
    }
    return rm_config_set(c, key, joined, origin);
}

static rm_status read_mapping(reader_t *r, rm_config *c) {
    int first_line[256] = {0}; /* per setting: line of its first occurrence */
    char key[128], origin[1100];
    for (;;) {
        RM_TRY(next(r));
        if (r->ev.type == YAML_MAPPING_END_EVENT) return RM_OK;
        size_t line = line_of(&r->ev);
        if (r->ev.type != YAML_SCALAR_EVENT)
            return rm_fail(RM_ERR_FORMAT, "%s:%zu: expected a setting name, got %s", r->path, line,
                           event_name(r->ev.type));
        const char *k = "";
        RM_TRY(scalar_text(r, &k));
        snprintf(key, sizeof key, "%s", k);
        snprintf(origin, sizeof origin, "%.1000s:%zu", r->path, line);
        int i = rm_config_setting_find(key);
        if (i < 0) return rm_config_set(c, key, "", origin); /* the unknown-key message */
        if (strcmp(key, "trades_beta") == 0) r->has_trades_beta = 1;
        if (i < 256 && first_line[i])
            return rm_fail(RM_ERR_FORMAT, "%s: duplicate setting '%s' (first given on line %d)", origin, key,
                           first_line[i]);
        if (i < 256) first_line[i] = (int)line;

        RM_TRY(next(r));
        snprintf(origin, sizeof origin, "%.1000s:%zu", r->path, line_of(&r->ev));
        const char *v = "";
        switch (r->ev.type) {
        case YAML_SCALAR_EVENT:
            RM_TRY(scalar_text(r, &v));
            RM_TRY(rm_config_set(c, key, v, origin));
            break;
        case YAML_SEQUENCE_START_EVENT:
            if (strcmp(key, "eval_attacks") != 0 && strcmp(key, "final_eval_attacks") != 0)
                return rm_fail(RM_ERR_FORMAT, "%s: %s: expected a single value, got a sequence", origin, key);
            RM_TRY(read_sequence(r, c, key, origin));
            break;
        default:
            return rm_fail(RM_ERR_FORMAT, "%s: %s: expected a value, got %s (settings are not nested)",
                           origin, key, event_name(r->ev.type));
        }
    }
}

static rm_status read_stream(reader_t *r, rm_config *c) {
    RM_TRY(next(r)); /* stream start */
    RM_TRY(next(r));
    if (r->ev.type == YAML_STREAM_END_EVENT) return RM_OK; /* empty file, or comments only */
    RM_TRY(next(r));  /* after document start: the top-level node */
    if (r->ev.type == YAML_SCALAR_EVENT && r->ev.data.scalar.length == 0 &&
        r->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        /* "---" alone: an empty document, nothing set */
    } else if (r->ev.type == YAML_MAPPING_START_EVENT) {
        RM_TRY(read_mapping(r, c));
    } else {
        return rm_fail(RM_ERR_FORMAT, "%s:%zu: the top level must be a mapping of settings (key: value), got %s",
                       r->path, line_of(&r->ev), event_name(r->ev.type));
    }
    RM_TRY(next(r)); /* document end */
    RM_TRY(next(r));
    if (r->ev.type != YAML_STREAM_END_EVENT)
        return rm_fail(RM_ERR_FORMAT, "%s:%zu: more than one YAML document; a run file holds one mapping",
                       r->path, line_of(&r->ev));
    return RM_OK;
}

/* Reads the settings of an initialised parser into *c, which changes only when the
 * whole input was read without error; frees the parser. */
static rm_status load(reader_t *r, rm_config *c) {
    rm_config tmp = *c;
    rm_status st = read_stream(r, &tmp);
    if (r->have_ev) yaml_event_delete(&r->ev);
    yaml_parser_delete(&r->parser);
    if (st == RM_OK) *c = tmp;
    return st;
}

/* Reads the whole file (at most RM_CFG_FILE_MAX bytes) into a NUL-terminated buffer. */
static rm_status read_file(const char *path, char **out, size_t *len) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return rm_fail(RM_ERR_IO, "fopen(%s): %s", path, strerror(errno));
    char *buf = rm_alloc(RM_CFG_FILE_MAX + 2);
    if (!buf) {
        fclose(f);
        return RM_ERR_NOMEM;
    }
    errno = 0;
    size_t n = fread(buf, 1, RM_CFG_FILE_MAX + 1, f);
    rm_status st = RM_OK;
    if (ferror(f)) st = rm_fail(RM_ERR_IO, "fread(%s): %s", path, errno ? strerror(errno) : "read error");
    else if (n > RM_CFG_FILE_MAX)
        st = rm_fail(RM_ERR_FORMAT, "%s: larger than %d bytes; not a run file", path, RM_CFG_FILE_MAX);
    if (fclose(f) != 0 && st == RM_OK) st = rm_fail(RM_ERR_IO, "fclose(%s): %s", path, strerror(errno));
    if (st != RM_OK) {
        rm_free(buf);
        return st;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return RM_OK;
}

/* Reads YAML text of `len` bytes (NUL bytes are libyaml's to refuse). */
static rm_status load_text(rm_config *c, const char *text, size_t len, const char *origin, int *has_trades_beta) {
    reader_t r;
    memset(&r, 0, sizeof r);
    r.path = origin;
    if (!yaml_parser_initialize(&r.parser))
        return rm_fail(RM_ERR_NOMEM, "%s: yaml_parser_initialize failed", origin);
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
    rm_status st = load(&r, c);
    if (has_trades_beta) *has_trades_beta = r.has_trades_beta;
    return st;
}

rm_status rm_config_load_yaml(rm_config *c, const char *path) {
    if (!c || !path) return rm_fail(RM_ERR_ARG, "rm_config_load_yaml: NULL config or path");
    char *text;
    size_t len = 0;
    RM_TRY(read_file(path, &text, &len));
    rm_status st = load_text(c, text, len, path, NULL);
    rm_free(text);
    return st;
}

rm_status rm_config_load_yaml_text(rm_config *c, const char *text, const char *origin) {
    if (!c || !text || !origin) return rm_fail(RM_ERR_ARG, "rm_config_load_yaml_text: NULL argument");
    rm_config tmp = *c;
    int has_trades_beta = 0;
    RM_TRY(load_text(&tmp, text, strlen(text), origin, &has_trades_beta));
    /* Written before trades_beta existed: a TRADES run's weight is its beta. */
    if (!has_trades_beta && strcmp(tmp.method, "trades") == 0) {
        tmp.trades_beta = tmp.beta;
        rm_config d;
        rm_config_defaults(&d);
        tmp.beta = d.beta;
    }
    *c = tmp;
    return RM_OK;
}
