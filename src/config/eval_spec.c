/* Evaluation attack specs: "clean", "fgsm", "pgdK", "pgdKxR", "cwK", "cwKxR", and the
 * AutoAttack names "aa", "aa-fast", "apgd-ce", "apgd-t", "fab-t", "square", each
 * optionally "@budget". The canonical name doubles as the metric name suffix in result
 * files, so it must not contain '/' or '@': a budget is written "_eps" + %.4g of it
 * (pgd20@12/255 -> "pgd20_eps0.04706"). Two specs with the same name would write the
 * same metric: duplicates are an error. */
#include "regmix/config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define MAX_STEPS 10000
#define MAX_RESTARTS 100

static const char *const kind_prefix[] = {"clean", "fgsm", "pgd", "cw"};

/* AutoAttack and its components (bits as in attack.h's RM_AA_*). */
static const struct {
    const char *name;
    unsigned parts;
} auto_names[] = {{"aa", 15u}, {"aa-fast", 3u}, {"apgd-ce", 1u}, {"apgd-t", 2u}, {"fab-t", 4u}, {"square", 8u}};
#define N_AUTO (sizeof auto_names / sizeof *auto_names)

/* Reads 1..6 decimal digits at *p into *v (advancing *p); 0 if there are none. */
static int read_count(const char **p, const char *end, long *v) {
    const char *s = *p;
    long x = 0;
    while (*p < end && isdigit((unsigned char)**p) && *p - s < 6) x = 10 * x + (*(*p)++ - '0');
    if (*p == s || (*p < end && isdigit((unsigned char)**p))) return 0;
    *v = x;
    return 1;
}

/* "pgd20", "pgd50x5", "fgsm": the spec without its budget. */
static int base_name(const rm_eval_attack *a, char *buf, size_t size) {
    if (a->kind == RM_EVAL_AUTO) {
        for (size_t i = 0; i < N_AUTO; i++)
            if (auto_names[i].parts == a->aa_parts) return snprintf(buf, size, "%s", auto_names[i].name);
        return -1;
    }
    if (a->kind == RM_EVAL_CLEAN || a->kind == RM_EVAL_FGSM)
        return snprintf(buf, size, "%s", kind_prefix[a->kind]);
    if (a->restarts > 1)
        return snprintf(buf, size, "%s%dx%d", kind_prefix[a->kind], a->steps, a->restarts);
    return snprintf(buf, size, "%s%d", kind_prefix[a->kind], a->steps);
}

const char *rm_eval_attack_error(const char *spec, rm_eval_attack *out) {
    if (!spec) return "no value";
    const char *p = spec, *end = spec + strlen(spec);
    while (p < end && isspace((unsigned char)*p)) p++;
    while (end > p && isspace((unsigned char)end[-1])) end--;
    if (p == end) return "empty attack spec";
    const char *at = memchr(p, '@', (size_t)(end - p));
    const char *body_end = at ? at : end;

    rm_eval_attack a;
    memset(&a, 0, sizeof a);
    a.restarts = 1;
    int k = -1;
    for (size_t i = 0; i < N_AUTO; i++)
        if ((size_t)(body_end - p) == strlen(auto_names[i].name) &&
            memcmp(p, auto_names[i].name, strlen(auto_names[i].name)) == 0) {
            k = RM_EVAL_AUTO;
            a.aa_parts = auto_names[i].parts;
            p = body_end;
            break;
        }
    for (int i = 0; i < 4 && k < 0; i++) {
        size_t n = strlen(kind_prefix[i]);
        if ((size_t)(body_end - p) >= n && memcmp(p, kind_prefix[i], n) == 0) {
            k = i;
            p += n;
            break;
        }
    }
    static const char *const expected =
        "expected clean, fgsm, pgdK, pgdKxR, cwK or cwKxR, or AutoAttack (aa, aa-fast, apgd-ce, apgd-t, "
        "fab-t, square), optionally with @budget";
    if (k < 0) return expected;
    a.kind = (rm_eval_kind)k;
    if (a.kind == RM_EVAL_AUTO) {
        /* whole name matched above */
    } else if (a.kind == RM_EVAL_CLEAN || a.kind == RM_EVAL_FGSM) {
        if (p != body_end) return expected;
        a.steps = a.kind == RM_EVAL_FGSM ? 1 : 0;
    } else {
        long steps, restarts = 1;
        if (!read_count(&p, body_end, &steps) || steps < 1 || steps > MAX_STEPS)
            return "steps K must be an integer from 1 to 10000";
        if (p < body_end && *p == 'x') {
            p++;
            if (!read_count(&p, body_end, &restarts) || restarts < 1 || restarts > MAX_RESTARTS)
                return "restarts R must be an integer from 1 to 100";
        }
        if (p != body_end) return expected;
        a.steps = (int)steps;
        a.restarts = (int)restarts;
    }
    if (at) {
        if (a.kind == RM_EVAL_CLEAN) return "clean takes no budget";
        char budget[64];
        size_t n = (size_t)(end - at - 1);
        if (n >= sizeof budget) return "budget is not a number";
        memcpy(budget, at + 1, n);
        budget[n] = '\0';
        if (n == 0 || isspace((unsigned char)budget[0]) || rm_number_error(budget, &a.eps))
            return "budget is not a number";
        if (!(a.eps > 0.0 && a.eps <= 1.0))
            return "budget must be in (0, 1], in pixel units (write 12/255, not 12)";
    }
    int len = base_name(&a, a.name, sizeof a.name);
    if (a.eps > 0.0)
        len += snprintf(a.name + len, sizeof a.name - (size_t)len, "_eps%.4g", a.eps);
    if (len < 0 || (size_t)len >= sizeof a.name) return "name too long"; /* cannot happen */
    if (out) *out = a;
    return NULL;
}

rm_status rm_eval_attack_parse(const char *spec, rm_eval_attack *out) {
    const char *why = rm_eval_attack_error(spec, out);
    if (why) return rm_fail(RM_ERR_ARG, "eval attack '%.80s': %s", spec ? spec : "(null)", why);
    return RM_OK;
}

int rm_eval_attack_spec(const rm_eval_attack *a, char *buf, size_t size) {
    if (!a || a->kind < RM_EVAL_CLEAN || a->kind > RM_EVAL_AUTO) return -1;
    char b[48], num[32] = "";
    const int len = base_name(a, b, sizeof b);
    if (len < 0 || len >= (int)sizeof b) return -1;
    if (a->eps > 0.0) rm_format_number(a->eps, num, sizeof num);
    int n = snprintf(buf, size, "%s%s%s", b, a->eps > 0.0 ? "@" : "", num);
    return n >= 0 && (size_t)n < size ? n : -1;
}

rm_status rm_eval_attacks_parse(const char *text, rm_eval_attack *list, int *n,
                                const char *origin) {
    return rm_eval_attack_list_parse(text, list, n, origin, "eval_attacks", 0);
}

rm_status rm_eval_attack_list_parse(const char *text, rm_eval_attack *list, int *n, const char *origin,
                                    const char *setting, int allow_empty) {
    const char *sep = origin ? ": " : "";
    if (!origin) origin = "";
    if (!text || !list || !n || !setting) return rm_fail(RM_ERR_ARG, "rm_eval_attack_list_parse: NULL argument");
    rm_eval_attack tmp[RM_CFG_MAX_EVAL];
    int count = 0;
    const char *p = text;
    if (allow_empty && strspn(text, " \t") == strlen(text)) { /* "" or blanks: no attacks */
        *n = 0;
        return RM_OK;
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[96];
        if (len >= sizeof item)
            return rm_fail(RM_ERR_ARG, "%s%s%s: entry '%.40s...' is too long", origin, sep, setting, p);
        memcpy(item, p, len);
        item[len] = '\0';
        if (count == RM_CFG_MAX_EVAL)
            return rm_fail(RM_ERR_ARG, "%s%s%s: at most %d attacks, got more in '%.200s'",
                           origin, sep, setting, RM_CFG_MAX_EVAL, text);
        const char *why = rm_eval_attack_error(item, &tmp[count]);
        if (why) {
            if (!comma && count == 0 && strspn(item, " \t") == len)
                return rm_fail(RM_ERR_ARG, "%s%s%s: empty list (at least one attack, e.g. clean)",
                               origin, sep, setting);
            return rm_fail(RM_ERR_ARG, "%s%s%s: '%s': %s", origin, sep, setting, item, why);
        }
        for (int j = 0; j < count; j++)
            if (strcmp(tmp[j].name, tmp[count].name) == 0)
                return rm_fail(RM_ERR_ARG, "%s%s%s: '%s' duplicates attack %d (both are named %s)",
                               origin, sep, setting, item, j + 1, tmp[j].name);
        count++;
        if (!comma) break;
        p = comma + 1;
    }
    memcpy(list, tmp, (size_t)count * sizeof *tmp);
    *n = count;
    return RM_OK;
}
