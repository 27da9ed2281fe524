/* The settings table: one row per setting (public name, type, offset into rm_config,
 * default, help, range or allowed values). rm_config_defaults, rm_config_set, the
 * per-setting checks, the iteration API and therefore the YAML printer all read it, so
 * adding a setting is adding a row. */
#include "regmix/config.h"
#include "regmix/nn.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h> /* strncasecmp (POSIX) */

typedef enum {
    K_INT,   /* int */
    K_I64,   /* int64_t */
    K_U64,   /* uint64_t */
    K_BOOL,  /* int 0/1 */
    K_FLOAT, /* double */
    K_STR,   /* char[size], free text (paths) */
    K_ID,    /* char[size], run identifier: [A-Za-z0-9._+=-], not starting with '.' or '-' */
    K_ENUM,  /* char[size], one of values */
    K_EVAL   /* an attack list: eval[] and n_eval, or final_eval[] and n_final_eval (count_offset);
                lo = the fewest attacks allowed */
} kind_t;

typedef struct {
    const char *name;
    kind_t kind;
    size_t offset, size;
    const char *def;
    const char *help;
    double lo, hi;                   /* numeric range, where has_lo / has_hi */
    unsigned char has_lo, has_hi, lo_open, hi_open;
    const char *const *values;       /* K_ENUM: NULL-terminated */
    /* K_ENUM: a family of names besides `values` (e.g. "wrn-D-W"): its description, and
     * a test returning 0 for a name outside the family, 1 for a valid member, -1 for a
     * malformed one (reason in why) */
    const char *family;
    int (*in_family)(const char *value, char *why, size_t why_size);
    unsigned char hash;              /* HASH_ALWAYS (0), HASH_NEVER, HASH_IF_NOT_DEFAULT, HASH_AS_DEFAULT */
    size_t count_offset;             /* K_EVAL: offset of the list's int count */
} setting_t;

/* Which settings make a run's identity (rm_config_hash_text):
 * - HASH_ALWAYS: the science settings of regmix 0.1.0;
 * - HASH_NEVER: where and how often the run is written (outdir, run_id, checkpoint_every);
 * - HASH_IF_NOT_DEFAULT: every setting added after 0.1.0. It enters the hash text only
 *   when it differs from its default, so adding a setting keeps the identity (hash, and
 *   the run ids derived from it) of every run written before: old run files keep
 *   resuming. A new setting's default must therefore mean "what regmix did before".
 * - HASH_AS_DEFAULT: a 0.1.0 setting taken out of the identity (data_dir: where the data
 *   lives, recorded in /provenance instead). Its line stays in the hash text but always
 *   with the default value, so default configurations keep their 0.1.0 hash while two
 *   runs differing only in it share one.
 * - HASH_TRADES_WEIGHT (trades_beta only): regmix 0.1.0 had one `beta` for AMR's
 *   auxiliary weight and TRADES' weight, and a TRADES run's hash text carries its TRADES
 *   weight on the `beta` line. So for method trades the `beta` line of the hash text
 *   holds trades_beta (beta itself must stay at its default there: rm_config_validate),
 *   and trades_beta has no line of its own; for the other methods trades_beta does
 *   nothing and is not hashed. A TRADES run keeps its 0.1.0 identity, and two TRADES
 *   runs with different weights never share one (see rm_config_setting_hash_value). */
enum {
    HASH_ALWAYS = 0, HASH_NEVER = 1, HASH_IF_NOT_DEFAULT = 2, HASH_AS_DEFAULT = 3, HASH_TRADES_WEIGHT = 4
};

static const char *const models[] = {"fmnist-cnn", "preact-resnet18", "resnet18", NULL};
static const char *const datasets[] = {"fashion-mnist", "mnist", "cifar10", "cifar100", NULL};
static const char *const methods[] = {"pgi", "fgsm-rs", "pgd-at", "trades", "pgk", NULL};
static const char *const regs[] = {"none", "mse", "amr", "agr", "regmix", NULL};
static const char *const agr_dirs[] = {"c||f", "f||c", "both", NULL};
static const char *const schedules[] = {"multistep", "cyclic", "cosine", "constant", NULL};
static const char *const ema_modes[] = {"auto", "on", "off", NULL};
static const char *const eval_models[] = {"ema", "student", NULL};
static const char *const precisions[] = {"f32", "bf16", NULL};

/* model: the WideResNet family, parsed by the engine that builds it */
static int model_family(const char *value, char *why, size_t why_size) {
    return rm_net_wrn_parse(value, NULL, NULL, why, why_size);
}

#define AT(f) .offset = offsetof(rm_config, f), .size = sizeof(((rm_config *)0)->f)
#define GE(x) .lo = (x), .has_lo = 1
#define COUNT_AT(f) .count_offset = offsetof(rm_config, f) /* K_EVAL: where the list's length is */
#define GT(x) .lo = (x), .has_lo = 1, .lo_open = 1
#define LE(x) .hi = (x), .has_hi = 1
#define LT(x) .hi = (x), .has_hi = 1, .hi_open = 1

static const setting_t table[] = {
    /* model and data */
    {"model", K_ENUM, AT(model), "fmnist-cnn", "network architecture: fmnist-cnn | preact-resnet18 | resnet18 | wrn-D-W (WideResNet, D = 6n+4, e.g. wrn-34-10); any model takes any dataset's image shape", .values = models,
     .family = "wrn-D-W (D = 6n+4 >= 10, W = 1..32)", .in_family = model_family},
    {"dataset", K_ENUM, AT(dataset), "fashion-mnist", "training and test data", .values = datasets},
    {"data_dir", K_STR, AT(data_dir), "", "folder of the dataset files; empty: the dataset's default folder", .hash = HASH_AS_DEFAULT},
    {"train_subset", K_I64, AT(train_subset), "0", "training samples used (first N after the seeded shuffle); 0: all", GE(0)},
    {"val_size", K_I64, AT(val_size), "0", "samples held out of the training set for validation; 0: none", GE(0)},
    {"test_subset", K_I64, AT(test_subset), "1000", "test samples evaluated per evaluation; 0: all", GE(0)},
    {"augment", K_INT, AT(augment), "-1", "training augmentation: -1 dataset default (CIFAR pad+crop+flip on, MNIST off), 0 off, 1 on", GE(-1), LE(1)},
    /* method */
    {"method", K_ENUM, AT(method), "pgi", "training method: how the perturbation is made and which loss terms are used", .values = methods},
    {"reg", K_ENUM, AT(reg), "regmix", "regulariser of pgi, pgk and fgsm-rs (pgd-at and trades need none)", .values = regs},
    {"alpha", K_FLOAT, AT(alpha), "1", "AMR weight of KL(p_f || p_i)", GE(0)},
    {"beta", K_FLOAT, AT(beta), "0.5", "AMR weight of KL(p_i || p_f) (reg amr and regmix; keep the default with method trades)", GE(0)},
    {"trades_beta", K_FLOAT, AT(trades_beta), "6", "TRADES weight of KL(p_c || p_f) (method trades)", GE(0),
     .hash = HASH_TRADES_WEIGHT},
    {"gamma", K_FLOAT, AT(gamma), "1", "AGR weight", GE(0)},
    {"lambda", K_FLOAT, AT(lambda), "10", "MSE regulariser weight", GE(0)},
    {"amr_stop_f", K_BOOL, AT(amr_stop_f), "0", "AMR: no gradient through the final-output side"},
    {"amr_stop_i", K_BOOL, AT(amr_stop_i), "0", "AMR: no gradient through the initial-output side"},
    {"agr_dir", K_ENUM, AT(agr_dir), "c||f", "AGR direction: KL(p_c || p_f), KL(p_f || p_c) or both", .values = agr_dirs},
    {"agr_detach", K_BOOL, AT(agr_detach), "0", "AGR: no gradient through the clean pass"},
    {"label_smoothing", K_FLOAT, AT(label_smoothing), "0.6", "target weight s of the true class in CE_ls; 1: plain cross-entropy", GT(0), LE(1)},
    {"eps", K_FLOAT, AT(eps), "0.1", "L-inf training (and default evaluation) budget, pixel units; fractions allowed: 8/255", GE(0), LE(1)},
    {"step", K_FLOAT, AT(step), "0.1", "attack step size a, pixel units; at most 2 x eps (a larger sign step is clipped to the same attack)", GT(0), LE(1)},
    {"reset_every", K_INT, AT(reset_every), "40", "PGI: re-initialise the per-sample prior and momentum every N epochs", GE(1)},
    {"pgi_momentum", K_FLOAT, AT(pgi_momentum), "0.3", "PGI: gradient momentum mu", GE(0), LE(1)},
    {"train_attack_steps", K_INT, AT(train_attack_steps), "10", "pgd-at and trades: attack iterations during training", GE(1)},
    {"ema", K_ENUM, AT(ema), "auto", "EMA model of the weights and BN statistics (FGSM-PGK's prior-guided ensemble): auto = on for pgk, off for the other methods", .values = ema_modes, .hash = HASH_IF_NOT_DEFAULT},
    {"ema_value", K_FLOAT, AT(ema_value), "0.82", "pgk EMA: decay cap c = min(1, 0.99999 r / ema_value) when r = n_f / (n_i + 1) >= ema_value, else ema_decay", GT(0), .hash = HASH_IF_NOT_DEFAULT},
    {"ema_decay", K_FLOAT, AT(ema_decay), "0.999", "EMA: decay cap c when r < ema_value, and for every method without r (all but pgk)", GE(0), LE(1), .hash = HASH_IF_NOT_DEFAULT},
    {"ema_gate", K_BOOL, AT(ema_gate), "0", "pgk EMA: update only on steps with r >= ema_value (what FGSM_PGK_CIFAR100.py does); off: every step", .hash = HASH_IF_NOT_DEFAULT},
    /* optimisation */
    {"epochs", K_INT, AT(epochs), "8", "training epochs", GE(1)},
    {"batch", K_INT, AT(batch), "128", "mini-batch size; at most the training samples (after train_subset and val_size)", GE(1)},
    {"lr", K_FLOAT, AT(lr), "0.1", "peak SGD learning rate", GT(0)},
    {"lr_schedule", K_ENUM, AT(lr_schedule), "multistep", "per-iteration learning-rate schedule", .values = schedules},
    {"momentum", K_FLOAT, AT(momentum), "0.9", "SGD momentum", GE(0), LT(1)},
    {"weight_decay", K_FLOAT, AT(weight_decay), "5e-4", "SGD weight decay (all parameters)", GE(0)},
    {"seed", K_U64, AT(seed), "0", "run seed: every random choice derives from it"},
    {"threads", K_INT, AT(threads), "0", "OpenMP threads of this run; 0: automatic; at most the CPUs online", GE(0)},
    {"precision", K_ENUM, AT(precision), "f32", "arithmetic of convolutions and linear layers: f32, or bf16 (bf16 weights and activations on AMX / AVX-512 BF16; master weights, optimiser, losses, BN statistics and attacks stay f32; 3x3 stride-1 Winograd layers stay f32 on AVX-512 BF16 without AMX; runs f32 where the CPU has no bf16; /provenance notes both)", .values = precisions, .hash = HASH_IF_NOT_DEFAULT},
    /* evaluation */
    {"eval_attacks", K_EVAL, AT(eval), "clean,fgsm,pgd20,cw20", "evaluation attacks (comma-separated or a YAML sequence)", GE(1), COUNT_AT(n_eval)},
    {"eval_every", K_INT, AT(eval_every), "1", "evaluate every N epochs (and always after the last)", GE(1)},
    {"eval_model", K_ENUM, AT(eval_model), "ema", "model that evaluation uses when the run has an EMA: ema or student (the trained weights)", .values = eval_models, .hash = HASH_IF_NOT_DEFAULT},
    {"co_threshold", K_FLOAT, AT(co_threshold), "0.5", "catastrophic overfitting: flagged when PGD acc < co_threshold * FGSM acc and FGSM acc > 0.3", GE(0), LE(1)},
    {"final_eval_attacks", K_EVAL, AT(final_eval), "", "attacks evaluated after the last epoch only, in addition to eval_attacks (columns final_NAME); empty: none", GE(0), COUNT_AT(n_final_eval), .hash = HASH_IF_NOT_DEFAULT},
    {"final_test_subset", K_I64, AT(final_test_subset), "-1", "test samples of the final attacks (the same fixed choice as test_subset=N); -1: test_subset; 0: all", GE(-1), .hash = HASH_IF_NOT_DEFAULT},
    {"final_aa_images", K_I64, AT(final_aa_images), "0", "AutoAttack entries of final_eval_attacks (aa, aa-fast and components, any budget) run on test_subset=N's samples only, a subset of the final ones; 0: all", GE(0), .hash = HASH_IF_NOT_DEFAULT},
    /* output */
    {"outdir", K_STR, AT(outdir), "results/runs", "folder of the run files", .hash = HASH_NEVER},
    {"run_id", K_ID, AT(run_id), "", "name of the run; empty: derived from the settings (sweeps) or \"run\"", .hash = HASH_NEVER},
    {"checkpoint_every", K_INT, AT(checkpoint_every), "1", "epochs between checkpoints; 0: only at the end", GE(0), .hash = HASH_NEVER},
};

#define N_SETTINGS ((int)(sizeof table / sizeof table[0]))

int rm_config_setting_count(void) { return N_SETTINGS; }

static const setting_t *row(int i) { return i >= 0 && i < N_SETTINGS ? &table[i] : NULL; }

const char *rm_config_setting_name(int i) { return row(i) ? row(i)->name : NULL; }
const char *rm_config_setting_help(int i) { return row(i) ? row(i)->help : NULL; }
const char *rm_config_setting_default(int i) { return row(i) ? row(i)->def : NULL; }

int rm_config_setting_hashed(const rm_config *c, int i) {
    const setting_t *s = row(i);
    if (!s || s->hash == HASH_NEVER || s->hash == HASH_TRADES_WEIGHT) return 0;
    if (s->hash == HASH_ALWAYS || s->hash == HASH_AS_DEFAULT) return 1;
    rm_config d;
    rm_config_defaults(&d);
    char now[RM_CFG_STR * 2], def[RM_CFG_STR * 2];
    if (rm_config_setting_text(c, i, now, sizeof now) < 0 || rm_config_setting_text(&d, i, def, sizeof def) < 0)
        return 1;
    return strcmp(now, def) != 0;
}

int rm_config_setting_hashed_as_default(int i) { return row(i) && row(i)->hash == HASH_AS_DEFAULT; }

int rm_config_setting_hash_value(const rm_config *c, int i, char *buf, size_t size) {
    const setting_t *s = row(i);
    if (c && s && strcmp(s->name, "beta") == 0 && strcmp(c->method, "trades") == 0)
        return rm_config_setting_text(c, rm_config_setting_find("trades_beta"), buf, size);
    return rm_config_setting_text(c, i, buf, size);
}

rm_setting_type rm_config_setting_type(int i) {
    const setting_t *s = row(i);
    if (!s) return RM_SETTING_STRING;
    switch (s->kind) {
    case K_INT: case K_I64: case K_U64: case K_BOOL: return RM_SETTING_INT;
    case K_FLOAT: return RM_SETTING_FLOAT;
    default: return RM_SETTING_STRING;
    }
}

int rm_config_setting_find(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < N_SETTINGS; i++)
        if (strcmp(table[i].name, name) == 0) return i;
    return -1;
}

#define FIELD(c, s, type) ((type *)((char *)(c) + (s)->offset))
#define CFIELD(c, s, type) ((const type *)((const char *)(c) + (s)->offset))
#define COUNT(c, s) ((int *)((char *)(c) + (s)->count_offset))
#define CCOUNT(c, s) ((const int *)((const char *)(c) + (s)->count_offset))

/* ---- text of values and ranges ---- */

int rm_config_setting_text(const rm_config *c, int i, char *buf, size_t size) {
    const setting_t *s = row(i);
    if (!c || !s || !buf || size == 0) return -1;
    int n = 0;
    char num[40];
    switch (s->kind) {
    case K_INT: n = snprintf(buf, size, "%d", *CFIELD(c, s, int)); break;
    case K_I64: n = snprintf(buf, size, "%" PRId64, *CFIELD(c, s, int64_t)); break;
    case K_U64: n = snprintf(buf, size, "%" PRIu64, *CFIELD(c, s, uint64_t)); break;
    case K_BOOL: n = snprintf(buf, size, "%s", *CFIELD(c, s, int) ? "true" : "false"); break;
    case K_FLOAT:
        rm_format_number(*CFIELD(c, s, double), num, sizeof num);
        n = snprintf(buf, size, "%s", num);
        break;
    case K_STR: case K_ID: case K_ENUM:
        n = snprintf(buf, size, "%.*s", (int)(s->size - 1), CFIELD(c, s, char));
        break;
    case K_EVAL:
        buf[0] = '\0';
        for (int k = 0; k < *CCOUNT(c, s) && k < RM_CFG_MAX_EVAL; k++) {
            if (k) {
                if ((size_t)n + 1 >= size) return -1;
                buf[n++] = ',';
                buf[n] = '\0';
            }
            int m = rm_eval_attack_spec(&CFIELD(c, s, rm_eval_attack)[k], buf + n, size - (size_t)n);
            if (m < 0) return -1;
            n += m;
        }
        break;
    }
    return n >= 0 && (size_t)n < size ? n : -1;
}

void rm_config_setting_range(int i, char *buf, size_t size) {
    const setting_t *s = row(i);
    if (!buf || size == 0) return;
    buf[0] = '\0';
    if (!s) return;
    char lo[40], hi[40];
    rm_format_number(s->lo, lo, sizeof lo);
    rm_format_number(s->hi, hi, sizeof hi);
    size_t n = 0;
    switch (s->kind) {
    case K_ENUM:
        for (int k = 0; s->values[k] && n < size; k++)
            n += (size_t)snprintf(buf + n, size - n, "%s%s", k ? " | " : "", s->values[k]);
        if (s->family && n < size) snprintf(buf + n, size - n, " | %s", s->family);
        return;
    case K_BOOL: snprintf(buf, size, "0/1, true/false, yes/no, on/off"); return;
    case K_EVAL:
        snprintf(buf, size, "clean, fgsm, pgdK, pgdKxR, cwK, cwKxR, aa, aa-fast, apgd-ce, apgd-t, fab-t, square, "
                 "each optionally @budget; %d to %d, distinct",
                 (int)s->lo, RM_CFG_MAX_EVAL);
        return;
    case K_STR: snprintf(buf, size, "text, at most %zu bytes", s->size - 1); return;
    case K_ID:
        snprintf(buf, size, "letters, digits and . _ + = -, not starting with . or -, at most %zu bytes",
                 s->size - 1);
        return;
    default: break;
    }
    const char *what = s->kind == K_FLOAT ? "number" : "integer";
    if (s->has_lo && s->has_hi)
        snprintf(buf, size, "%s in %c%s, %s%c", what, s->lo_open ? '(' : '[', lo, hi, s->hi_open ? ')' : ']');
    else if (s->has_lo)
        snprintf(buf, size, "%s %s %s", what, s->lo_open ? ">" : ">=", lo);
    else if (s->has_hi)
        snprintf(buf, size, "%s %s %s", what, s->hi_open ? "<" : "<=", hi);
    else
        snprintf(buf, size, "%s", s->kind == K_U64 ? "integer >= 0" : what);
}

void rm_config_setting_value(const rm_config *c, int i, double *num, char *text, size_t size) {
    const setting_t *s = row(i);
    if (!c || !s) return;
    rm_setting_type t = rm_config_setting_type(i);
    if (t == RM_SETTING_STRING) {
        if (num) *num = NAN;
        if (text && size) {
            if (rm_config_setting_text(c, i, text, size) < 0) text[size - 1] = '\0';
        }
        return;
    }
    if (text && size) text[0] = '\0';
    if (!num) return;
    switch (s->kind) {
    case K_INT: case K_BOOL: *num = *CFIELD(c, s, int); break;
    case K_I64: *num = (double)*CFIELD(c, s, int64_t); break;
    case K_U64: *num = (double)*CFIELD(c, s, uint64_t); break;
    case K_FLOAT: *num = *CFIELD(c, s, double); break;
    default: *num = NAN; break;
    }
}

/* ---- suggestions for misspelt names and values ---- */

/* Case-insensitive Levenshtein distance (both strings shorter than 64). */
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la >= 64 || lb >= 64) return INT_MAX;
    int prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int same = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]);
            int v = prev[j - 1] + !same;
            if (prev[j] + 1 < v) v = prev[j] + 1;
            if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
            cur[j] = v;
        }
        memcpy(prev, cur, (lb + 1) * sizeof *cur);
    }
    return prev[lb];
}

/* The closest candidate if it is close enough to be a plausible typo, else NULL. */
static const char *suggest(const char *typed, const char *const *cands, size_t stride, int n) {
    const char *best = NULL;
    int best_d = INT_MAX;
    for (int k = 0; k < n; k++) {
        const char *cand = *(const char *const *)((const char *)cands + (size_t)k * stride);
        if (!cand) break;
        int d = edit_distance(typed, cand);
        if (d < best_d) best_d = d, best = cand;
    }
    int len = (int)strlen(typed);
    return best && (best_d <= 2 || best_d <= len / 3) && best_d < len ? best : NULL;
}

/* ---- checks of one value ---- */

/* Valid UTF-8 of printable code points (YAML's printable set: no control characters),
 * so that every string setting survives a YAML round trip unchanged. */
static const char *text_error(const char *t) {
    const unsigned char *p = (const unsigned char *)t;
    while (*p) {
        unsigned cp;
        int extra;
        if (*p < 0x80) cp = *p, extra = 0;
        else if ((*p & 0xe0) == 0xc0) cp = *p & 0x1fu, extra = 1;
        else if ((*p & 0xf0) == 0xe0) cp = *p & 0x0fu, extra = 2;
        else if ((*p & 0xf8) == 0xf0) cp = *p & 0x07u, extra = 3;
        else return "is not valid UTF-8";
        for (int k = 1; k <= extra; k++) {
            if ((p[k] & 0xc0) != 0x80) return "is not valid UTF-8";
            cp = (cp << 6) | (p[k] & 0x3fu);
        }
        static const unsigned min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return "is not valid UTF-8";
        if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) || cp == 0xfffe || cp == 0xffff)
            return "contains a control character";
        p += extra + 1;
    }
    return NULL;
}

static int in_range(const setting_t *s, double v) {
    if (s->has_lo && (s->lo_open ? !(v > s->lo) : !(v >= s->lo))) return 0;
    if (s->has_hi && (s->hi_open ? !(v < s->hi) : !(v <= s->hi))) return 0;
    return 1;
}

static rm_status range_fail(const setting_t *s, int i, const char *value_text, const char *origin) {
    char range[128];
    rm_config_setting_range(i, range, sizeof range);
    return rm_fail(RM_ERR_ARG, "%s%s%s: %s is out of range (%s)", origin ? origin : "",
                   origin ? ": " : "", s->name, value_text, range);
}

rm_status rm_config_check_setting(const rm_config *c, int i, const char *origin) {
    const setting_t *s = row(i);
    if (!c || !s) return rm_fail(RM_ERR_ARG, "rm_config_check_setting: no config or setting %d", i);
    const char *o = origin ? origin : "", *sep = origin ? ": " : "";
    char text[64];
    switch (s->kind) {
    case K_INT: case K_I64: case K_U64: case K_FLOAT: {
        double v;
        rm_config_setting_value(c, i, &v, NULL, 0);
        rm_config_setting_text(c, i, text, sizeof text);
        if (s->kind == K_FLOAT && !isfinite(v))
            return rm_fail(RM_ERR_ARG, "%s%s%s: %s is not a finite number", o, sep, s->name, text);
        if (!in_range(s, v)) return range_fail(s, i, text, origin);
        return RM_OK;
    }
    case K_BOOL: {
        int v = *CFIELD(c, s, int);
        if (v != 0 && v != 1)
            return rm_fail(RM_ERR_ARG, "%s%s%s: %d is not a boolean (0 or 1)", o, sep, s->name, v);
        return RM_OK;
    }
    case K_STR: case K_ID: case K_ENUM: {
        const char *t = CFIELD(c, s, char);
        if (!memchr(t, '\0', s->size))
            return rm_fail(RM_ERR_ARG, "%s%s%s: not NUL-terminated within %zu bytes", o, sep, s->name, s->size);
        if (s->kind == K_ENUM) {
            for (int k = 0; s->values[k]; k++)
                if (strcmp(t, s->values[k]) == 0) return RM_OK;
            char why[160];
            int member = s->in_family ? s->in_family(t, why, sizeof why) : 0;
            if (member > 0) return RM_OK;
            if (member < 0) return rm_fail(RM_ERR_ARG, "%s%s%s: '%.80s': %s", o, sep, s->name, t, why);
            char range[256];
            rm_config_setting_range(i, range, sizeof range);
            const char *hint = suggest(t, s->values, sizeof *s->values, INT_MAX);
            return rm_fail(RM_ERR_ARG, "%s%s%s: unknown value '%.80s' (expected %s)%s%s%s", o, sep,
                           s->name, t, range, hint ? "; did you mean '" : "", hint ? hint : "",
                           hint ? "'?" : "");
        }
        const char *why = text_error(t);
        if (why) return rm_fail(RM_ERR_ARG, "%s%s%s: '%.80s' %s", o, sep, s->name, t, why);
        if (s->kind == K_ID) {
            size_t ok = strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+=-");
            if (t[ok] != '\0' || t[0] == '.' || t[0] == '-')
                return rm_fail(RM_ERR_ARG, "%s%s%s: '%.80s' is not a valid run id (letters, digits and "
                               ". _ + = -, not starting with '.' or '-')", o, sep, s->name, t);
        }
        return RM_OK;
    }
    case K_EVAL: {
        const rm_eval_attack *list = CFIELD(c, s, rm_eval_attack);
        const int n = *CCOUNT(c, s);
        if (n < (int)s->lo || n > RM_CFG_MAX_EVAL)
            return rm_fail(RM_ERR_ARG, "%s%s%s: %d attacks (expected %d to %d)", o, sep, s->name,
                           n, (int)s->lo, RM_CFG_MAX_EVAL);
        /* Re-derive every attack from its spec: catches hand-filled structs whose name
         * does not match the fields, out-of-range fields and duplicate names. */
        for (int k = 0; k < n; k++) {
            const rm_eval_attack *a = &list[k];
            rm_eval_attack back;
            char spec[96];
            if (rm_eval_attack_spec(a, spec, sizeof spec) < 0 || rm_eval_attack_error(spec, &back) ||
                back.steps != a->steps || back.restarts != a->restarts || back.eps != a->eps ||
                strncmp(back.name, a->name, sizeof a->name) != 0)
                return rm_fail(RM_ERR_ARG, "%s%s%s: attack %d (kind %d, steps %d, restarts %d, "
                               "eps %g, name '%.31s') is not a valid attack", o, sep, s->name, k + 1,
                               (int)a->kind, a->steps, a->restarts, a->eps, a->name);
            for (int j = 0; j < k; j++)
                if (strncmp(list[j].name, a->name, sizeof a->name) == 0)
                    return rm_fail(RM_ERR_ARG, "%s%s%s: attacks %d and %d are both named %s",
                                   o, sep, s->name, j + 1, k + 1, a->name);
        }
        return RM_OK;
    }
    }
    return RM_OK;
}

/* ---- parsing one value into the struct ---- */

/* Integers are exact: a plain decimal integer goes through strtoll/strtoull (all 64
 * bits); anything else ("1e3", "16/2") must be a number with an integral value. */
static int parse_integer(const char *text, int is_unsigned, int64_t *sv, uint64_t *uv) {
    const char *p = text;
    while (isspace((unsigned char)*p)) p++;
    size_t len = strlen(p);
    while (len && isspace((unsigned char)p[len - 1])) len--;
    char tmp[64];
    if (len == 0 || len >= sizeof tmp) return 0;
    memcpy(tmp, p, len);
    tmp[len] = '\0';
    size_t digits_from = (tmp[0] == '+' || tmp[0] == '-') ? 1 : 0;
    if (len > digits_from && strspn(tmp + digits_from, "0123456789") == len - digits_from) {
        char *end;
        errno = 0;
        if (is_unsigned) {
            if (tmp[0] == '-') return strspn(tmp + 1, "0") == len - 1 ? (*uv = 0, 1) : -1;
            *uv = strtoull(tmp, &end, 10);
        } else {
            *sv = strtoll(tmp, &end, 10);
        }
        return errno == ERANGE ? -1 : 1;
    }
    double v;
    if (rm_number_error(tmp, &v) || v != floor(v)) return 0;
    if (is_unsigned) {
        if (v < 0) return -1;
        if (v >= 18446744073709551616.0) return -1;
        *uv = (uint64_t)v;
    } else {
        if (v < -9223372036854775808.0 || v >= 9223372036854775808.0) return -1;
        *sv = (int64_t)v;
    }
    return 1;
}

static int parse_bool(const char *text, int *out) {
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    const char *p = text;
    while (isspace((unsigned char)*p)) p++;
    size_t len = strlen(p);
    while (len && isspace((unsigned char)p[len - 1])) len--;
    for (int k = 0; k < 4; k++) {
        if (strlen(yes[k]) == len && strncasecmp(p, yes[k], len) == 0) return *out = 1, 1;
        if (strlen(no[k]) == len && strncasecmp(p, no[k], len) == 0) return *out = 0, 1;
    }
    return 0;
}

/* Trimmed copy of text into buf (0 if it does not fit). */
static int trimmed(const char *text, char *buf, size_t size) {
    while (isspace((unsigned char)*text)) text++;
    size_t len = strlen(text);
    while (len && isspace((unsigned char)text[len - 1])) len--;
    if (len >= size) return 0;
    memcpy(buf, text, len);
    buf[len] = '\0';
    return 1;
}

/* Parses `value` into setting s of c (types and lengths; ranges are checked after). */
static rm_status apply(rm_config *c, const setting_t *s, int i, const char *value, const char *origin) {
    const char *o = origin ? origin : "", *sep = origin ? ": " : "";
    switch (s->kind) {
    case K_INT: case K_I64: case K_U64: {
        int64_t sv = 0;
        uint64_t uv = 0;
        int r = parse_integer(value, s->kind == K_U64, &sv, &uv);
        if (r == 0)
            return rm_fail(RM_ERR_ARG, "%s%s%s: expected an integer, got '%.80s'", o, sep, s->name, value);
        if (r < 0 || (s->kind == K_INT && (sv < INT_MIN || sv > INT_MAX))) {
            char shown[96];
            if (!trimmed(value, shown, sizeof shown)) snprintf(shown, sizeof shown, "%.80s", value);
            if (r > 0) /* fits 64 bits, not an int */
                return rm_fail(RM_ERR_ARG, "%s%s%s: %s does not fit in an int", o, sep, s->name, shown);
            return range_fail(s, i, shown, origin);
        }
        if (s->kind == K_INT) *FIELD(c, s, int) = (int)sv;
        else if (s->kind == K_I64) *FIELD(c, s, int64_t) = sv;
        else *FIELD(c, s, uint64_t) = uv;
        return RM_OK;
    }
    case K_BOOL:
        if (!parse_bool(value, FIELD(c, s, int)))
            return rm_fail(RM_ERR_ARG, "%s%s%s: expected a boolean (0/1, true/false, yes/no, on/off), got '%.80s'",
                           o, sep, s->name, value);
        return RM_OK;
    case K_FLOAT: {
        const char *why = rm_number_error(value, FIELD(c, s, double));
        if (!why) return RM_OK;
        int plain = strcmp(why, "not a number") == 0 || strcmp(why, "empty") == 0;
        return rm_fail(RM_ERR_ARG, "%s%s%s: expected a number, got '%.80s'%s%s%s", o, sep, s->name, value,
                       plain ? "" : " (", plain ? "" : why, plain ? "" : ")");
    }
    case K_ENUM: {
        char t[64];
        if (!trimmed(value, t, sizeof t) || strlen(t) >= s->size) {
            char range[256];
            rm_config_setting_range(i, range, sizeof range);
            return rm_fail(RM_ERR_ARG, "%s%s%s: unknown value '%.80s' (expected %s)", o, sep, s->name, value, range);
        }
        memcpy(FIELD(c, s, char), t, strlen(t) + 1);
        return RM_OK; /* membership: rm_config_check_setting */
    }
    case K_STR: case K_ID: {
        /* Free text is taken verbatim (a path may start with a space); only the length
         * and the characters are checked. */
        size_t len = strlen(value);
        if (len >= s->size)
            return rm_fail(RM_ERR_ARG, "%s%s%s: value of %zu bytes is too long (at most %zu): '%.40s...'",
                           o, sep, s->name, len, s->size - 1, value);
        memcpy(FIELD(c, s, char), value, len + 1);
        return RM_OK;
    }
    case K_EVAL:
        return rm_eval_attack_list_parse(value, FIELD(c, s, rm_eval_attack), COUNT(c, s), origin, s->name,
                                         s->lo == 0);
    }
    return RM_OK;
}

rm_status rm_config_set(rm_config *c, const char *key, const char *value, const char *origin) {
    const char *o = origin ? origin : "", *sep = origin ? ": " : "";
    if (!c || !key) return rm_fail(RM_ERR_ARG, "%s%srm_config_set: NULL config or key", o, sep);
    char name[64];
    const char *k = key;
    size_t klen = strlen(key);
    if (!value) {
        const char *eq = strchr(key, '=');
        if (!eq) return rm_fail(RM_ERR_ARG, "%s%sexpected key=value, got '%.80s'", o, sep, key);
        klen = (size_t)(eq - key);
        value = eq + 1;
    }
    while (klen && isspace((unsigned char)*k)) k++, klen--;
    while (klen && isspace((unsigned char)k[klen - 1])) klen--;
    if (klen == 0) return rm_fail(RM_ERR_ARG, "%s%sempty setting name", o, sep);
    if (klen >= sizeof name)
        return rm_fail(RM_ERR_ARG, "%s%sunknown setting '%.40s...'", o, sep, k);
    memcpy(name, k, klen);
    name[klen] = '\0';

    int i = rm_config_setting_find(name);
    if (i < 0) {
        const char *hint = suggest(name, &table[0].name, sizeof table[0], N_SETTINGS);
        if (hint)
            return rm_fail(RM_ERR_ARG, "%s%sunknown setting '%s' (did you mean '%s'?)", o, sep, name, hint);
        return rm_fail(RM_ERR_ARG, "%s%sunknown setting '%s'", o, sep, name);
    }
    /* Work on a copy so that a rejected value leaves *c as it was. */
    rm_config tmp = *c;
    RM_TRY(apply(&tmp, &table[i], i, value, origin));
    RM_TRY(rm_config_check_setting(&tmp, i, origin));
    *c = tmp;
    return RM_OK;
}

void rm_config_defaults(rm_config *c) {
    if (!c) return;
    memset(c, 0, sizeof *c);
    for (int i = 0; i < N_SETTINGS; i++) {
        if (rm_config_set(c, table[i].name, table[i].def, "default") != RM_OK) {
            /* A wrong default is a programming error in the table above. */
            fprintf(stderr, "regmix: bad default of setting %s: %s\n", table[i].name, rm_error_message());
            abort();
        }
    }
}
