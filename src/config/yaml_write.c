/* The configuration as canonical YAML text (one `key: value` line per setting, table
 * order), and the run hash over it. The text is written so that rm_config_load_yaml
 * reads back exactly the same values, and so that general YAML readers (PyYAML) see
 * strings as strings. */
#include "regmix/config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h> /* strcasecmp (POSIX) */

typedef struct {
    char *buf;
    size_t size, len;
    int overflow;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
    if (o->len + n >= o->size) {
        o->overflow = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void puts_(out_t *o, const char *s) { put(o, s, strlen(s)); }

/* Plain (unquoted) only for text YAML reads back verbatim as a string: a letter or '/'
 * or '_' first, then letters, digits and . _ / + = -; and not a word that YAML 1.1
 * readers turn into a boolean or null. Everything else is double-quoted. */
static int needs_quotes(const char *s) {
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off", "y", "n", "null"};
    if (!isalpha((unsigned char)s[0]) && s[0] != '/' && s[0] != '_') return 1;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._/+=-", *p)) return 1;
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
        if (strcasecmp(s, words[k]) == 0) return 1;
    return 0;
}

static void put_string(out_t *o, const char *s) {
    if (!needs_quotes(s)) {
        puts_(o, s);
        return;
    }
    put(o, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\', esc[1] = (char)*p;
            put(o, esc, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            /* rm_config_set refuses control characters; printed escaped all the same */
            snprintf(esc, sizeof esc, "\\x%02x", *p);
            puts_(o, esc);
        } else {
            put(o, (const char *)p, 1); /* UTF-8 bytes go through as they are */
        }
    }
    put(o, "\"", 1);
}

static int write_yaml(const rm_config *c, char *buf, size_t size, int for_hash) {
    if (!c || !buf || size == 0) return -1;
    out_t o = {buf, size, 0, 0};
    buf[0] = '\0';
    char text[RM_CFG_STR * 2];
    rm_config defaults;
    int have_defaults = 0;
    for (int i = 0; i < rm_config_setting_count(); i++) {
        const char *name = rm_config_setting_name(i);
        if (for_hash && !rm_config_setting_hashed(c, i)) continue;
        const rm_config *from = c;
        if (for_hash && rm_config_setting_hashed_as_default(i)) { /* data_dir: not the identity */
            if (!have_defaults) rm_config_defaults(&defaults), have_defaults = 1;
            from = &defaults;
        }
        int n = for_hash ? rm_config_setting_hash_value(from, i, text, sizeof text)
                         : rm_config_setting_text(from, i, text, sizeof text);
        if (n < 0) return -1;
        puts_(&o, name);
        puts_(&o, ": ");
        if (strcmp(name, "eval_attacks") == 0 || strcmp(name, "final_eval_attacks") == 0) {
            /* a flow sequence: [clean, fgsm, pgd20@0.047058823529411764] ([] when empty);
             * text is the specs joined by ',' and a spec holds no comma */
            put(&o, "[", 1);
            for (const char *p = text; *p; p++) {
                if (*p == ',') puts_(&o, ", ");
                else put(&o, p, 1);
            }
            put(&o, "]", 1);
        } else if (rm_config_setting_type(i) == RM_SETTING_STRING) {
            put_string(&o, text);
        } else {
            puts_(&o, text);
        }
        put(&o, "\n", 1);
    }
    return o.overflow ? -1 : (int)o.len;
}

int rm_config_to_yaml(const rm_config *c, char *buf, size_t size) { return write_yaml(c, buf, size, 0); }

int rm_config_hash_text(const rm_config *c, char *buf, size_t size) { return write_yaml(c, buf, size, 1); }

void rm_config_hash(const rm_config *c, char out[17]) {
    char text[RM_CFG_YAML_MAX];
    int n = rm_config_hash_text(c, text, sizeof text);
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64: offset basis, prime 2^40 + 2^8 + 0xb3 */
    for (int k = 0; k < n; k++) h = (h ^ (uint8_t)text[k]) * 0x100000001b3ULL;
    snprintf(out, 17, "%016" PRIx64, h);
}
