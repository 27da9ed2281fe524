/* Learning-rate schedules evaluated per iteration `it` (0-based) of `total` iterations;
 * rm_lr_at(s, it, total) is the rate used by the optimiser step of iteration `it`. */
#include "regmix/optim.h"

#include <math.h>
#include <string.h>

static const double pi = 3.14159265358979323846; /* M_PI is not ISO C */

static const struct {
    const char *name;
    rm_lr_kind kind;
} lr_kinds[] = {
    {"constant", RM_LR_CONSTANT},
    {"multistep", RM_LR_MULTISTEP},
    {"cyclic", RM_LR_CYCLIC},
    {"cosine", RM_LR_COSINE},
};

const char *rm_lr_kind_name(rm_lr_kind kind) {
    for (size_t i = 0; i < sizeof lr_kinds / sizeof lr_kinds[0]; i++)
        if (lr_kinds[i].kind == kind) return lr_kinds[i].name;
    return "unknown";
}

rm_status rm_lr_schedule_init(rm_lr_schedule *s, const char *name, double lr) {
    if (!s) return rm_fail(RM_ERR_ARG, "rm_lr_schedule_init: schedule is NULL");
    memset(s, 0, sizeof *s);
    s->lr = lr;
    s->n_milestones = 2; /* FGSM-PGI reference: x0.1 at 100/110 and 105/110 of training */
    s->milestones[0] = 100.0 / 110.0;
    s->milestones[1] = 105.0 / 110.0;
    s->gamma = 0.1;
    s->peak = 0.4; /* Wong et al.: peak at 2/5 of the epochs */
    if (!name) return rm_fail(RM_ERR_ARG, "lr schedule name is NULL");
    for (size_t i = 0; i < sizeof lr_kinds / sizeof lr_kinds[0]; i++) {
        if (strcmp(name, lr_kinds[i].name) == 0) {
            s->kind = lr_kinds[i].kind;
            return rm_lr_schedule_check(s);
        }
    }
    return rm_fail(RM_ERR_ARG,
                   "lr schedule \"%s\": unknown (expected constant, multistep, cyclic, cosine)",
                   name);
}

rm_status rm_lr_schedule_check(const rm_lr_schedule *s) {
    if (!s) return rm_fail(RM_ERR_ARG, "rm_lr_schedule_check: schedule is NULL");
    if (!isfinite(s->lr) || s->lr < 0.0)
        return rm_fail(RM_ERR_ARG, "lr %g: must be finite and >= 0", s->lr);
    switch (s->kind) {
    case RM_LR_CONSTANT:
    case RM_LR_COSINE: return RM_OK;
    case RM_LR_MULTISTEP:
        if (s->n_milestones < 0 || s->n_milestones > RM_LR_MAX_MILESTONES)
            return rm_fail(RM_ERR_ARG, "lr n_milestones %d: must be in [0, %d]",
                           s->n_milestones, RM_LR_MAX_MILESTONES);
        for (int k = 0; k < s->n_milestones; k++) {
            double m = s->milestones[k];
            if (!(m > 0.0 && m <= 1.0))
                return rm_fail(RM_ERR_ARG, "lr milestone[%d] %g: must be a fraction in (0, 1]",
                               k, m);
            if (k > 0 && !(m > s->milestones[k - 1]))
                return rm_fail(RM_ERR_ARG, "lr milestone[%d] %g: must exceed milestone[%d] %g",
                               k, m, k - 1, s->milestones[k - 1]);
        }
        if (!isfinite(s->gamma) || s->gamma < 0.0)
            return rm_fail(RM_ERR_ARG, "lr gamma %g: must be finite and >= 0", s->gamma);
        return RM_OK;
    case RM_LR_CYCLIC:
        if (!(s->peak > 0.0 && s->peak < 1.0))
            return rm_fail(RM_ERR_ARG, "lr peak %g: must be a fraction in (0, 1)", s->peak);
        return RM_OK;
    }
    return rm_fail(RM_ERR_ARG, "lr schedule kind %d: unknown", (int)s->kind);
}

/* First iteration that runs at the reduced rate for milestone fraction m: floor(m * total).
 * m * total is rounded to the nearest integer when it is one up to rounding (100/110 is
 * not exact in binary, but 100/110 * 110 must switch at 100, not 99). */
long rm_lr_milestone_iteration(double m, long total) {
    double x = m * (double)total;
    double r = nearbyint(x);
    if (fabs(x - r) <= 1e-9 * fmax(1.0, fabs(x))) return (long)r;
    return (long)floor(x);
}

double rm_lr_at(const rm_lr_schedule *s, long it, long total) {
    if (total <= 0) return s->lr; /* degenerate: nothing to schedule over */
    if (it < 0) it = 0;
    if (it > total) it = total;
    const double t = (double)it, T = (double)total;
    switch (s->kind) {
    case RM_LR_CONSTANT: return s->lr;
    case RM_LR_MULTISTEP: {
        /* torch MultiStepLR stepped once per iteration: iteration `it` runs after `it`
         * scheduler steps, so milestone switch iteration i applies from it == i on */
        double lr = s->lr;
        for (int k = 0; k < s->n_milestones && k < RM_LR_MAX_MILESTONES; k++)
            if (it >= rm_lr_milestone_iteration(s->milestones[k], total)) lr *= s->gamma;
        return lr;
    }
    case RM_LR_CYCLIC: {
        /* np.interp([t], [0, peak*T, T], [0, lr, 0]), the same arithmetic as numpy */
        const double xp = s->peak * T;
        if (t <= 0.0 || t >= T) return 0.0;
        if (t < xp) return (s->lr / xp) * t;
        if (t == xp) return s->lr;
        return (-s->lr / (T - xp)) * (t - xp) + s->lr;
    }
    case RM_LR_COSINE: return s->lr * (1.0 + cos(pi * t / T)) / 2.0;
    }
    return s->lr;
}
