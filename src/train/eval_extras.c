/* What an evaluation records beyond one accuracy per attack: the robust accuracy after
 * each AutoAttack component, the share of zero input gradients APGD met, and the three
 * gradient-masking warnings (sweeps/METHOD.md). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "regmix/train.h"

static double eff_eps(const rm_config *c, const rm_eval_attack *a) { return a->eps > 0 ? a->eps : c->eps; }

static int is_auto(const rm_eval_attack *a, unsigned parts_any) {
    return a->kind == RM_EVAL_AUTO && (a->aa_parts & parts_any);
}

static int n_parts(const rm_eval_attack *a) {
    int n = 0;
    for (unsigned p = a->aa_parts; p; p >>= 1) n += p & 1u;
    return a->kind == RM_EVAL_AUTO ? n : 0;
}

/* A white-box attack (uses gradients): everything but clean and Square alone. */
static int white_box(const rm_eval_attack *a) {
    return a->kind == RM_EVAL_FGSM || a->kind == RM_EVAL_PGD || a->kind == RM_EVAL_CW ||
           is_auto(a, RM_AA_APGD_CE | RM_AA_APGD_T | RM_AA_FAB_T);
}

/* Robust accuracy of attack j with its white-box components only (an "aa" before its
 * Square), or its accuracy when it has no Square. */
static double white_box_accuracy(const rm_eval_attack *a, const rm_eval_result *r) {
    if (a->kind == RM_EVAL_AUTO && (a->aa_parts & RM_AA_SQUARE) && r->n_parts >= 2)
        return r->part_accuracy[r->n_parts - 2];
    return r->accuracy;
}

/* j is stronger than i within one family: more steps at the same budget, or a bigger
 * budget with the same steps. */
static int stronger(const rm_config *c, const rm_eval_attack *j, const rm_eval_attack *i) {
    if (j->kind != i->kind || j->kind == RM_EVAL_CLEAN || j->aa_parts != i->aa_parts ||
        j->restarts != i->restarts)
        return 0;
    const double ej = eff_eps(c, j), ei = eff_eps(c, i);
    return (ej == ei && j->steps > i->steps) || (j->steps == i->steps && ej > ei);
}

typedef struct {
    int square, zero_grad, monotone; /* the check applies */
} applies;

static applies which_checks(const rm_config *c) {
    applies w = {0, 0, 0};
    for (int i = 0; i < c->n_eval; i++) {
        const rm_eval_attack *a = &c->eval[i];
        if (is_auto(a, RM_AA_APGD_CE | RM_AA_APGD_T)) w.zero_grad = 1;
        if (is_auto(a, RM_AA_SQUARE) && white_box(a)) w.square = 1;
        for (int j = 0; j < c->n_eval; j++) {
            const rm_eval_attack *b = &c->eval[j];
            if (stronger(c, b, a)) w.monotone = 1;
            if (a->kind == RM_EVAL_AUTO && a->aa_parts == RM_AA_SQUARE && white_box(b) && eff_eps(c, a) == eff_eps(c, b))
                w.square = 1;
        }
    }
    return w;
}

/* The three checks, each with the worst case found (for the explanation). */
typedef struct {
    double square_gain;   /* largest amount (points) by which Square beat the white-box attacks */
    int square_at;        /* the attack where it did */
    double zero_share;    /* largest zero-gradient share (%) */
    int zero_at;
    double rise;          /* largest rise (points) of a stronger attack */
    int rise_weak, rise_strong;
} findings;

static findings find(const rm_config *c, const rm_eval_result *res) {
    findings f = {-INFINITY, -1, -INFINITY, -1, -INFINITY, -1, -1};
    for (int i = 0; i < c->n_eval; i++) {
        const rm_eval_attack *a = &c->eval[i];
        const rm_eval_result *r = &res[i];
        if (is_auto(a, RM_AA_SQUARE) && white_box(a) && r->n_parts >= 2) {
            const double g = white_box_accuracy(a, r) - r->accuracy;
            if (g > f.square_gain) f.square_gain = g, f.square_at = i;
        }
        if (a->kind == RM_EVAL_AUTO && a->aa_parts == RM_AA_SQUARE) {
            double best = INFINITY; /* the lowest white-box accuracy at this budget */
            for (int j = 0; j < c->n_eval; j++)
                if (white_box(&c->eval[j]) && eff_eps(c, &c->eval[j]) == eff_eps(c, a)) {
                    const double v = white_box_accuracy(&c->eval[j], &res[j]);
                    if (v < best) best = v;
                }
            if (isfinite(best) && best - r->accuracy > f.square_gain) f.square_gain = best - r->accuracy, f.square_at = i;
        }
        if (is_auto(a, RM_AA_APGD_CE | RM_AA_APGD_T) && !isnan(r->zero_grad) && r->zero_grad > f.zero_share)
            f.zero_share = r->zero_grad, f.zero_at = i;
        for (int j = 0; j < c->n_eval; j++)
            if (stronger(c, &c->eval[j], a) && res[j].accuracy - r->accuracy > f.rise)
                f.rise = res[j].accuracy - r->accuracy, f.rise_weak = i, f.rise_strong = j;
    }
    return f;
}

void rm_gm_check(const rm_config *c, const rm_eval_result *res, rm_gm_flags *out) {
    const applies w = which_checks(c);
    const findings f = find(c, res);
    out->square = !w.square ? NAN : f.square_gain > RM_GM_SQUARE_POINTS;
    out->zero_grad = !w.zero_grad ? NAN : f.zero_share > RM_GM_ZERO_GRAD_SHARE;
    out->monotone = !w.monotone ? NAN : f.rise > RM_GM_RISE_POINTS;
}

void rm_gm_explain(const rm_config *c, const rm_eval_result *res, char *buf, size_t size) {
    if (!buf || size == 0) return;
    buf[0] = '\0';
    rm_gm_flags g;
    rm_gm_check(c, res, &g);
    const findings f = find(c, res);
    size_t n = 0;
    if (g.square == 1 && n < size)
        n += (size_t)snprintf(buf + n, size - n,
                              "gradient masking? %s: the black-box Square attack got %.2f points below the white-box "
                              "attacks (threshold %.1f)\n",
                              c->eval[f.square_at].name, f.square_gain, RM_GM_SQUARE_POINTS);
    if (g.zero_grad == 1 && n < size)
        n += (size_t)snprintf(buf + n, size - n,
                              "gradient masking? %s: %.2f %% of the APGD runs started at an all-zero input gradient "
                              "(threshold %.1f %%)\n",
                              c->eval[f.zero_at].name, f.zero_share, RM_GM_ZERO_GRAD_SHARE);
    if (g.monotone == 1 && n < size)
        snprintf(buf + n, size - n,
                 "gradient masking? robust accuracy rose from %.2f %% (%s) to %.2f %% (%s, the stronger attack; "
                 "threshold %.1f points)\n",
                 res[f.rise_weak].accuracy, c->eval[f.rise_weak].name, res[f.rise_strong].accuracy,
                 c->eval[f.rise_strong].name, RM_GM_RISE_POINTS);
}

static int put(rm_metric_def *defs, int n, int max, const char *name, const char *units, const char *desc) {
    if (n >= max) return n + 1; /* counted, not written */
    snprintf(defs[n].name, sizeof defs[n].name, "%s", name);
    defs[n].units = units;
    defs[n].description = desc;
    return n + 1;
}

int rm_eval_extra_metrics(const rm_config *c, rm_metric_def *defs, int max) {
    int n = 0;
    char name[sizeof defs->name];
    for (int i = 0; i < c->n_eval; i++) {
        const rm_eval_attack *a = &c->eval[i];
        if (n_parts(a) < 2) continue;
        static const unsigned order[RM_AA_MAX_PARTS] = {RM_AA_APGD_CE, RM_AA_APGD_T, RM_AA_FAB_T, RM_AA_SQUARE};
        for (int k = 0; k < RM_AA_MAX_PARTS; k++) {
            if (!(a->aa_parts & order[k])) continue;
            snprintf(name, sizeof name, "test_%s.%s", a->name, rm_aa_part_name(order[k]));
            n = put(defs, n, max, name, "%",
                    "robust test accuracy after this AutoAttack component (each component runs on the examples "
                    "still robust); NaN if not evaluated this epoch");
        }
    }
    for (int i = 0; i < c->n_eval; i++) {
        if (!is_auto(&c->eval[i], RM_AA_APGD_CE | RM_AA_APGD_T)) continue;
        snprintf(name, sizeof name, "zero_grad_%s", c->eval[i].name);
        n = put(defs, n, max, name, "%",
                "share of this attack's APGD runs (one per example and target) whose input gradient at the start "
                "point was all zero; NaN if not evaluated this epoch");
    }
    const applies w = which_checks(c);
    if (w.square)
        n = put(defs, n, max, "gm_square", "1",
                "gradient-masking warning: 1 if the black-box Square attack beat the white-box attacks by more "
                "than 0.2 points, else 0");
    if (w.zero_grad)
        n = put(defs, n, max, "gm_zero_grad", "1",
                "gradient-masking warning: 1 if more than 1 % of some attack's APGD runs started at an all-zero "
                "input gradient, else 0");
    if (w.monotone)
        n = put(defs, n, max, "gm_monotone", "1",
                "gradient-masking warning: 1 if robust accuracy rose by more than 1 point with more attack steps "
                "or a bigger budget, else 0");
    return n;
}

void rm_eval_extra_values(const rm_config *c, const rm_eval_result *res, double *out) {
    int n = 0;
    for (int i = 0; i < c->n_eval; i++)
        if (n_parts(&c->eval[i]) >= 2)
            for (int k = 0; k < res[i].n_parts; k++) out[n++] = res[i].part_accuracy[k];
    for (int i = 0; i < c->n_eval; i++)
        if (is_auto(&c->eval[i], RM_AA_APGD_CE | RM_AA_APGD_T)) out[n++] = res[i].zero_grad;
    const applies w = which_checks(c);
    rm_gm_flags g;
    rm_gm_check(c, res, &g);
    if (w.square) out[n++] = g.square;
    if (w.zero_grad) out[n++] = g.zero_grad;
    if (w.monotone) out[n++] = g.monotone;
}
