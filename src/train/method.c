/* A method = an attack that makes the final perturbation + loss terms over the passes
 * (sweeps/METHOD.md). rm_method_gradients() runs the gradient part of one step of any
 * composition; the trainer adds the optimiser step. */
#include <math.h>
#include <string.h>

#include "regmix/loss.h"
#include "regmix/method.h"
#include "train/dp_internal.h"

typedef enum { ATTACK_PGI, ATTACK_FGSM_RS, ATTACK_PGD, ATTACK_TRADES, ATTACK_PGK } attack_kind;
typedef enum { REG_NONE, REG_MSE, REG_AMR, REG_AGR, REG_REGMIX } reg_kind;

/* Which passes and terms a method's step has. */
typedef struct {
    attack_kind attack;
    reg_kind reg;
    int prior_guided; /* pgi, pgk: per-sample prior D and momentum M */
    int has_initial;  /* z_i = f(x + e) is computed (pgi, pgk, fgsm-rs) */
    int uses_initial; /* z_i = f(x + e) is back-propagated into the weights (mse, amr, regmix) */
    int uses_clean;   /* z_c = f(x) is taped (agr, regmix, trades) */
    double s_main;    /* label smoothing of the main CE term (1 = plain CE) */
} method_plan;

struct rm_method {
    rm_config cfg;
    method_plan mp;
    rm_net *net;
    rm_attacker *attacker;
    rm_pgi_state pgi;
    rm_tape *tape_f, *tape_i, *tape_c;
    int K, max_batch;
    size_t d;
    float *x; /* the batch, kept for the passes */
    float *xadv, *e, *g, *delta, *zf, *zi, *zc, *dzf, *dzi, *dzc;
    int32_t *y;
    const int64_t *ids;
    /* data parallel: this rank's samples [lo, hi) of the global batch B; the logits
     * buffers (zf, zi, zc, dz*) hold the slice only */
    rm_dp *dp;
    int lo, hi, B;
};

static reg_kind parse_reg(const char *r) {
    if (!strcmp(r, "mse")) return REG_MSE;
    if (!strcmp(r, "amr")) return REG_AMR;
    if (!strcmp(r, "agr")) return REG_AGR;
    if (!strcmp(r, "regmix")) return REG_REGMIX;
    return REG_NONE;
}

static rm_status method_plan_make(const rm_config *cfg, method_plan *mp) {
    memset(mp, 0, sizeof *mp);
    mp->reg = parse_reg(cfg->reg);
    if (strcmp(cfg->reg, "none") && mp->reg == REG_NONE)
        return rm_fail(RM_ERR_ARG, "reg: unknown regulariser '%s'", cfg->reg);
    mp->s_main = 1.0;
    if (!strcmp(cfg->method, "pgi") || !strcmp(cfg->method, "pgk")) {
        mp->attack = !strcmp(cfg->method, "pgi") ? ATTACK_PGI : ATTACK_PGK;
        mp->s_main = cfg->label_smoothing;
    } else if (!strcmp(cfg->method, "fgsm-rs")) {
        mp->attack = ATTACK_FGSM_RS;
    } else if (!strcmp(cfg->method, "pgd-at")) {
        mp->attack = ATTACK_PGD;
    } else if (!strcmp(cfg->method, "trades")) {
        mp->attack = ATTACK_TRADES;
    } else {
        return rm_fail(RM_ERR_ARG, "method: unknown method '%s'", cfg->method);
    }
    mp->prior_guided = mp->attack == ATTACK_PGI || mp->attack == ATTACK_PGK;
    mp->has_initial = mp->prior_guided || mp->attack == ATTACK_FGSM_RS;
    mp->uses_initial = mp->reg == REG_MSE || mp->reg == REG_AMR || mp->reg == REG_REGMIX;
    if (mp->uses_initial && !mp->has_initial)
        return rm_fail(RM_ERR_ARG, "reg: '%s' needs the initial adversarial pass of pgi, pgk or fgsm-rs, "
                       "method '%s' has none (use reg=none or reg=agr)", cfg->reg, cfg->method);
    mp->uses_clean = mp->reg == REG_AGR || mp->reg == REG_REGMIX || mp->attack == ATTACK_TRADES;
    return RM_OK;
}

static void add_into(float *dst, const float *a, const float *b, size_t n) {
#pragma omp parallel for simd schedule(static) if (n > 1u << 15)
    for (size_t i = 0; i < n; i++) dst[i] = a[i] + b[i];
}

/* v *= b / B: a slice's batch-mean gradient as its share of the global batch mean
 * (untouched when the slice is the whole batch, so one rank stays bit-identical). */
static void scale_floats(float *v, size_t n, int b, int B) {
    if (b == B) return;
    const float f = (float)((double)b / (double)B);
    for (size_t i = 0; i < n; i++) v[i] *= f;
}

/* Advance rng by `count` draws of the kind an attack's random start makes, so that a
 * rank attacking only its slice uses the numbers one rank would use for those samples. */
static void skip_uniforms(rm_rng *rng, size_t count, float eps) {
    for (size_t i = 0; i < count; i++) (void)rm_rng_uniform_range(rng, -eps, eps);
}
static void skip_normals(rm_rng *rng, size_t count) {
    for (size_t i = 0; i < count; i++) (void)rm_rng_normal(rng);
}

/* Step 1-4 of the PGI step, or the FGSM-RS equivalent: the initial pass on x + e
 * (taped: the regulariser may back-propagate through it), its input gradient g, and
 * the final perturbation. PGK leaves the prior update to pgk_update_prior (after the
 * final pass). */
static rm_status fast_attack(rm_method *t, int B, rm_rng *rng) {
    const rm_config *c = &t->cfg;
    size_t n = (size_t)B * t->d, off = (size_t)t->lo * t->d;
    int b = t->hi - t->lo;
    float eps = (float)c->eps, step = (float)c->step;
    if (t->mp.prior_guided) {
        RM_TRY(rm_pgi_begin(&t->pgi, t->x, t->ids, B, rng, t->e));
    } else {
        for (size_t i = 0; i < n; i++) t->e[i] = rm_rng_uniform_range(rng, -eps, eps);
        rm_project(t->e, t->x, n, eps);
    }
    /* e for the whole batch on every rank (same draws as one rank); passes on the slice */
    add_into(t->xadv + off, t->x + off, t->e + off, (size_t)b * t->d);
    RM_TRY(rm_net_forward(t->net, t->tape_i, RM_MODE_TRAIN, t->xadv + off, b, t->zi));
    size_t nk = (size_t)b * t->K;
    memset(t->dzi, 0, nk * sizeof(float));
    double s = t->mp.prior_guided ? c->label_smoothing : 1.0;
    RM_TRY(rm_ce_ls(t->zi, t->y + t->lo, b, t->K, s, NULL, t->dzi));
    scale_floats(t->dzi, nk, b, B); /* d(global mean)/dz: ||g||_1 is over the whole batch */
    RM_TRY(rm_net_backward(t->net, t->tape_i, t->dzi, t->g + off, RM_GRAD_INPUT));
    /* every rank gets the whole g, then updates the PGI buffers / d exactly as one rank */
    if (t->dp) RM_TRY(dp_allgather_rows(t->dp, t->g, B, t->d));
    if (t->mp.attack == ATTACK_PGI) {
        RM_TRY(rm_pgi_update(&t->pgi, t->x, t->ids, B, t->e, t->g, t->delta));
    } else if (t->mp.attack == ATTACK_PGK) {
        RM_TRY(rm_pgi_final(&t->pgi, t->x, B, t->e, t->g, t->delta));
    } else {
        for (size_t i = 0; i < n; i++) {
            float sg = (float)((t->g[i] > 0) - (t->g[i] < 0));
            t->delta[i] = t->e[i] + step * sg;
        }
        rm_project(t->delta, t->x, n, eps);
    }
    return RM_OK;
}

/* The multi-step attacks run on the slice only; the rng skips the other ranks' draws
 * (one restart, B*C*H*W draws in element order), so it ends where one rank's would. */
static rm_status make_perturbation(rm_method *t, int B, rm_rng *rng) {
    const rm_config *c = &t->cfg;
    size_t d = t->d, off = (size_t)t->lo * d, before = off, after = (size_t)(B - t->hi) * d;
    int b = t->hi - t->lo;
    float eps = (float)c->eps;
    switch (t->mp.attack) {
    case ATTACK_PGI:
    case ATTACK_PGK:
    case ATTACK_FGSM_RS: return fast_attack(t, B, rng);
    case ATTACK_PGD:
        /* Madry et al. / Rice et al.: the attack runs with the model in training mode
         * (synchronised batch norm when data-parallel: every rank runs the same passes,
         * one restart and a fixed number of steps) */
        skip_uniforms(rng, before, eps);
        RM_TRY(rm_pgd(t->attacker, RM_MODE_TRAIN, t->x + off, t->y + t->lo, b, eps, (float)c->step,
                      c->train_attack_steps, 1, RM_ATTACK_LOSS_CE, rng, t->delta + off, NULL));
        skip_uniforms(rng, after, eps);
        return RM_OK;
    case ATTACK_TRADES:
        /* TRADES' reference code switches to model.eval() for the inner maximisation */
        skip_normals(rng, before);
        RM_TRY(rm_trades_attack(t->attacker, RM_MODE_EVAL, t->x + off, b, eps, (float)c->step,
                                c->train_attack_steps, rng, t->delta + off));
        skip_normals(rng, after);
        return RM_OK;
    }
    return rm_fail(RM_ERR_ARG, "unknown attack");
}

static int count_correct(const float *z, const int32_t *y, int B, int K) {
    int n = 0;
    for (int b = 0; b < B; b++) {
        int best = 0;
        for (int k = 1; k < K; k++)
            if (z[(size_t)b * K + k] > z[(size_t)b * K + best]) best = k;
        n += best == y[b];
    }
    return n;
}

/* Data parallel: the slice's batch means become its share of the global means (x b/B)
 * and are summed over the group with the correct counts (the last `counts` entries of
 * v), in rank order. */
static rm_status reduce_terms(rm_method *t, double *v, int nv, int counts, size_t nk) {
    int b = t->hi - t->lo, B = t->B;
    scale_floats(t->dzf, nk, b, B);
    scale_floats(t->dzi, nk, b, B);
    scale_floats(t->dzc, nk, b, B);
    if (!t->dp) return RM_OK;
    for (int i = 0; i < nv - counts; i++) v[i] *= (double)b / (double)B;
    return rm_dp_allreduce(t->dp, v, nv);
}

/* Step 6: L = main term + R, gradients accumulated per pass (on this rank's slice). */
static rm_status loss_terms(rm_method *t, rm_step_terms *terms) {
    const rm_config *c = &t->cfg;
    int K = t->K, B = t->hi - t->lo; /* the slice */
    const int32_t *y = t->y + t->lo;
    size_t nk = (size_t)B * K;
    memset(t->dzf, 0, nk * sizeof(float));
    memset(t->dzi, 0, nk * sizeof(float));
    memset(t->dzc, 0, nk * sizeof(float));
    double ce = 0, mse = 0, amr = 0, agr = 0, trades = 0;
    if (t->mp.attack == ATTACK_TRADES) {
        RM_TRY(rm_ce_ls(t->zc, y, B, K, 1.0, &ce, t->dzc));
        RM_TRY(rm_kl(t->zc, t->zf, B, K, c->trades_beta, &trades, t->dzc, t->dzf));
    } else {
        RM_TRY(rm_ce_ls(t->zf, y, B, K, t->mp.s_main, &ce, t->dzf));
    }
    rm_amr_config ac = {c->alpha, c->beta, c->amr_stop_f, c->amr_stop_i};
    rm_agr_config gc = {c->gamma, RM_AGR_C_F, c->agr_detach};
    RM_TRY(rm_agr_direction_parse(c->agr_dir, &gc.dir));
    switch (t->mp.reg) {
    case REG_NONE: break;
    case REG_MSE: RM_TRY(rm_mse_logits(t->zf, t->zi, B, K, c->lambda, &mse, t->dzf, t->dzi)); break;
    case REG_AMR: RM_TRY(rm_amr(t->zf, t->zi, B, K, &ac, &amr, t->dzf, t->dzi)); break;
    case REG_AGR: RM_TRY(rm_agr(t->zc, t->zf, B, K, &gc, &agr, t->dzc, t->dzf)); break;
    case REG_REGMIX:
        RM_TRY(rm_amr(t->zf, t->zi, B, K, &ac, &amr, t->dzf, t->dzi));
        RM_TRY(rm_agr(t->zc, t->zf, B, K, &gc, &agr, t->dzc, t->dzf));
        break;
    }
    double v[7] = {ce, mse, amr, agr, trades, count_correct(t->zf, y, B, K),
                   t->mp.has_initial ? count_correct(t->zi, y, B, K) : 0};
    RM_TRY(reduce_terms(t, v, 7, 2, nk));
    ce = v[0], mse = v[1], amr = v[2], agr = v[3], trades = v[4];
    double loss = ce + mse + amr + agr + trades;
    /* after the sums: every rank of a group sees the same loss and stops together */
    RM_TRY(rm_loss_check_finite("training loss", loss));
    *terms = (rm_step_terms){loss, ce, mse, amr, agr, trades, (int)v[5], (int)v[6], NAN};
    return RM_OK;
}

/* FGSM-PGK: the attack quality r = n_f / (n_i + 1) of this step (global-batch counts;
 * the + 1, from PGK's CIFAR-100 and Tiny ImageNet scripts, never divides by zero)
 * weights the new gradient in the momentum, M[I] <- (2 - r) g / ||g||_1 + mu M[I], and
 * the prior follows the momentum, D[I] <- P(e + a sign(M[I])). */
static rm_status pgk_update_prior(rm_method *t, int B, rm_step_terms *terms) {
    terms->r = (double)terms->correct / ((double)terms->correct_initial + 1.0);
    return rm_pgi_update_prior(&t->pgi, t->x, t->ids, B, t->e, t->g, 2.0 - terms->r);
}

rm_status rm_method_gradients(rm_method *t, const float *x, const int32_t *y, const int64_t *ids,
                              int B, rm_rng *rng, rm_step_terms *terms) {
    int size = rm_dp_size(t->dp);
    if (B < size || B > t->max_batch || !x || !y || (t->mp.prior_guided && !ids))
        return rm_fail(RM_ERR_ARG, "rm_method_gradients: bad batch (B=%d, max %d, %d data-parallel rank(s))",
                       B, t->max_batch, size);
    size_t n = (size_t)B * t->d;
    memcpy(t->x, x, n * sizeof(float));
    memcpy(t->y, y, (size_t)B * sizeof(int32_t));
    t->ids = ids;
    t->B = B;
    rm_dp_slice(B, rm_dp_rank(t->dp), size, &t->lo, &t->hi);
    int b = t->hi - t->lo;
    size_t off = (size_t)t->lo * t->d;
    RM_TRY(make_perturbation(t, B, rng));
    /* Step 5: the final adversarial output (training-mode batch norm) */
    add_into(t->xadv + off, t->x + off, t->delta + off, (size_t)b * t->d);
    RM_TRY(rm_net_forward(t->net, t->tape_f, RM_MODE_TRAIN, t->xadv + off, b, t->zf));
    if (t->mp.uses_clean) RM_TRY(rm_net_forward(t->net, t->tape_c, RM_MODE_TRAIN, t->x + off, b, t->zc));
    RM_TRY(loss_terms(t, terms));
    if (t->mp.attack == ATTACK_PGK) RM_TRY(pgk_update_prior(t, B, terms));
    /* back-propagate into the weights through every pass the loss used */
    rm_net_zero_grad(t->net);
    RM_TRY(rm_net_backward(t->net, t->tape_f, t->dzf, NULL, RM_GRAD_WEIGHTS));
    if (t->mp.uses_initial) RM_TRY(rm_net_backward(t->net, t->tape_i, t->dzi, NULL, RM_GRAD_WEIGHTS));
    if (t->mp.uses_clean) RM_TRY(rm_net_backward(t->net, t->tape_c, t->dzc, NULL, RM_GRAD_WEIGHTS));
    if (t->dp) { /* the global batch's gradient, the same on every rank */
        size_t np;
        rm_param *p = rm_net_params(t->net, &np);
        for (size_t i = 0; i < np; i++)
            if (p[i].grad) RM_TRY(dp_allreduce_floats(t->dp, p[i].grad, p[i].numel));
    }
    return RM_OK;
}

void rm_method_start_epoch(rm_method *t, int epoch) {
    if (t->mp.prior_guided && epoch % t->cfg.reset_every == 0) rm_pgi_reset(&t->pgi);
}

rm_status rm_method_set_dp(rm_method *t, rm_dp *g) {
    if (g && rm_dp_size(g) > t->max_batch)
        return rm_fail(RM_ERR_ARG, "data parallel: batch %d cannot be split over %d ranks", t->max_batch,
                       rm_dp_size(g));
    t->dp = g;
    rm_net_set_allreduce(t->net, g ? dp_net_allreduce : NULL, g);
    return RM_OK;
}

rm_pgi_state *rm_method_pgi(rm_method *t) { return t->mp.prior_guided ? &t->pgi : NULL; }
const float *rm_method_delta(const rm_method *t) { return t->delta; }

int rm_method_has_term(const rm_method *t, const char *term) {
    reg_kind r = t->mp.reg;
    if (!strcmp(term, "mse")) return r == REG_MSE;
    if (!strcmp(term, "amr")) return r == REG_AMR || r == REG_REGMIX;
    if (!strcmp(term, "agr")) return r == REG_AGR || r == REG_REGMIX;
    if (!strcmp(term, "trades")) return t->mp.attack == ATTACK_TRADES;
    return 0;
}

rm_status rm_method_create(const rm_config *cfg, rm_net *net, int64_t n_train, int max_batch,
                           rm_method **out) {
    *out = NULL;
    rm_method *t = rm_alloc(sizeof *t);
    if (!t) return RM_ERR_NOMEM;
    t->cfg = *cfg;
    t->net = net;
    t->K = rm_net_num_classes(net);
    t->d = rm_net_input_size(net);
    t->max_batch = max_batch;
    rm_status st = method_plan_make(cfg, &t->mp);
    if (st == RM_OK) st = rm_tape_create(net, &t->tape_f);
    if (st == RM_OK) st = rm_tape_create(net, &t->tape_i);
    if (st == RM_OK) st = rm_tape_create(net, &t->tape_c);
    if (st == RM_OK) st = rm_attacker_create(net, max_batch, &t->attacker);
    if (st == RM_OK && t->mp.prior_guided)
        st = rm_pgi_init(&t->pgi, n_train, t->d, (float)cfg->eps, (float)cfg->step, (float)cfg->pgi_momentum);
    size_t n = (size_t)max_batch * t->d, nk = (size_t)max_batch * t->K;
    float **img[] = {&t->x, &t->xadv, &t->e, &t->g, &t->delta};
    for (size_t i = 0; st == RM_OK && i < sizeof img / sizeof *img; i++)
        if (!(*img[i] = rm_alloc(n * sizeof(float)))) st = RM_ERR_NOMEM;
    float **lg[] = {&t->zf, &t->zi, &t->zc, &t->dzf, &t->dzi, &t->dzc};
    for (size_t i = 0; st == RM_OK && i < sizeof lg / sizeof *lg; i++)
        if (!(*lg[i] = rm_alloc(nk * sizeof(float)))) st = RM_ERR_NOMEM;
    if (st == RM_OK && !(t->y = rm_alloc((size_t)max_batch * sizeof(int32_t)))) st = RM_ERR_NOMEM;
    if (st != RM_OK) {
        rm_method_destroy(t);
        return st;
    }
    *out = t;
    return RM_OK;
}

void rm_method_destroy(rm_method *t) {
    if (!t) return;
    rm_tape_destroy(t->tape_f);
    rm_tape_destroy(t->tape_i);
    rm_tape_destroy(t->tape_c);
    rm_attacker_destroy(t->attacker);
    if (t->mp.prior_guided) rm_pgi_free(&t->pgi);
    void *bufs[] = {t->x, t->xadv, t->e, t->g, t->delta, t->zf, t->zi, t->zc, t->dzf, t->dzi, t->dzc, t->y};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) rm_free(bufs[i]);
    rm_free(t);
}
