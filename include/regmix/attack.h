/* regmix attacks: L-infinity attacks on a network, all projecting onto the eps-ball and
 * the [0,1] box (sweeps/METHOD.md, "Notation": the projection P). Perturbations `delta` are (B, C, H, W) plain
 * floats like the images; x + delta is the adversarial image.
 *
 * Training attacks run the network in training mode (batch statistics, as the reference
 * code does); evaluation attacks in inference mode: the caller passes the mode. */
#ifndef REGMIX_ATTACK_H
#define REGMIX_ATTACK_H

#include "regmix/nn.h"

/* P(v): clamp delta to [-eps, eps], then to [-x, 1-x]. n = B*C*H*W. */
void rm_project(float *delta, const float *x, size_t n, float eps);

/* Scratch shared by the attacks of one network: a tape and buffers for batches of up
 * to max_batch images. */
typedef struct rm_attacker rm_attacker;
rm_status rm_attacker_create(rm_net *net, int max_batch, rm_attacker **out);
void rm_attacker_destroy(rm_attacker *a);

/* The objectives the attacks ascend (all batch means, sweeps/METHOD.md):
 *   CE: cross-entropy (s = 1);  CW: max_{j != y} z_j - z_y;
 *   KL: KL(softmax(z_clean) || softmax(z)), z_clean a constant (TRADES; not for rm_pgd). */
typedef enum { RM_ATTACK_LOSS_CE, RM_ATTACK_LOSS_CW, RM_ATTACK_LOSS_KL } rm_attack_loss;

/* The objective at the image x + delta (delta may be NULL: at x) and its gradient with
 * respect to the input image (= with respect to delta), exactly as every attack uses it:
 * one forward pass in `mode` and a backward pass with RM_GRAD_INPUT only (no weight
 * gradient). y: labels for CE and CW (unused for KL); zc: (B, K) clean logits for KL
 * (unused otherwise). grad (B, C, H, W) is overwritten; value may be NULL.
 * A non-finite objective is RM_ERR_DIVERGED. */
rm_status rm_attack_gradient(rm_attacker *a, rm_mode mode, rm_attack_loss loss,
                             const float *x, const float *delta, const int32_t *y,
                             const float *zc, int B, double *value, float *grad);

/* FGSM (random_start 0): delta = P(step * sign(g)) (plain FGSM: step = eps); with random
 * start (Wong et al.): delta = P(s + step * sign(g)), s = P(U(-eps,eps)).
 * g = d CE / d x at x + start; sign(0) = 0. The random start draws B*C*H*W uniforms in
 * element order; without it the rng is not used (may be NULL). */
rm_status rm_fgsm(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y, int B,
                  float eps, float step, int random_start, rm_rng *rng, float *delta);

/* PGD-k with uniform random start, step size `step`, `restarts` restarts, on CE or
 * the CW margin loss. Worst case per example: the returned delta of an example is the
 * one of the first restart that made it misclassified, else the last restart's.
 * If `robust` is not NULL, robust[b] = 1 when example b survived every restart.
 * "Survived" is judged at the last iterate of each restart. The rng advances by exactly
 * restarts * B*C*H*W uniforms (each restart's start, in element order), so restart r of
 * a call equals a one-restart call made with the rng as it stands after r such draws. */
rm_status rm_pgd(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y, int B,
                 float eps, float step, int steps, int restarts, rm_attack_loss loss,
                 rm_rng *rng, float *delta, unsigned char *robust);

/* TRADES inner maximisation: delta from x + 0.001 N(0,1), `steps` steps of size `step`
 * ascending KL(p_clean || p_adv) (p_clean = softmax(f(x)) in `mode`, computed once and
 * fixed), projected each step; the start is projected too. Draws B*C*H*W normals. */
rm_status rm_trades_attack(rm_attacker *a, rm_mode mode, const float *x, int B, float eps,
                           float step, int steps, rm_rng *rng, float *delta);

/* Number of correct predictions of the network on x + delta (delta may be NULL): arg max
 * of the logits, the lowest index at ties, equal to y. */
rm_status rm_count_correct(rm_attacker *a, rm_mode mode, const float *x, const float *delta,
                           const int32_t *y, int B, int *correct);

/* ---- AutoAttack (Croce & Hein, ICML 2020) ----
 * The standard L-infinity robustness evaluation: APGD-CE, APGD-T (targeted DLR), FAB-T
 * and Square, each run only on the examples still robust, so that an example counts as
 * robust only if it survives all of them (worst case per example). Every output keeps
 * x + delta in the eps-ball and in [0,1]. All batched on the input-gradient path
 * (RM_GRAD_INPUT backward, no weight gradient); seeded by the caller's rng. The exact
 * algorithms, and where regmix departs from the public reference code, are in
 * sweeps/METHOD.md, "AutoAttack". Evaluation passes RM_MODE_EVAL. */

/* APGD's step-size controller for one example. With N iterations, the first period
 * lasts max(int(0.22 N), 1) iterations and each next one max(int(0.03 N), 1) fewer, but
 * at least max(int(0.06 N), 1): for N = 100 the checkpoints come after iterations 22, 41,
 * 57, 70, 80, 87, 93 and 99. At a checkpoint the step is halved, and the example restarts from its best point,
 * when
 *   (1) the loss rose (strictly, iterate over the previous iterate, the first iterate
 *       over the start) in at most rho = 0.75 of the iterations of the period, or
 *   (2) the step was not halved at the previous checkpoint and the best loss has not
 *       risen since it. */
typedef struct {
    float step;           /* current step size */
    double loss_best;     /* highest loss so far (the start's included) */
    double loss_prev;     /* loss of the previous iterate */
    double best_at_check; /* loss_best at the previous checkpoint (the start's loss at first) */
    int rises;            /* iterations of this period whose loss rose */
    int since_check;      /* iterations since the previous checkpoint */
    int period;           /* length of the current period */
    int period_min, period_decr;
    int halved_last;      /* 1 when the step was halved at the previous checkpoint (1 at start:
                             condition (2) cannot hold at the first checkpoint) */
} rm_apgd_sched;

enum { RM_APGD_IMPROVED = 1u, RM_APGD_HALVED = 2u };

/* iters: N, the attack's iterations; step0 = 2 eps; loss0 = the loss at the start point. */
void rm_apgd_sched_init(rm_apgd_sched *s, int iters, float step0, double loss0);
/* Records the loss of the next iterate; returns RM_APGD_IMPROVED when it is a new best
 * (strictly higher), plus RM_APGD_HALVED when this iteration is a checkpoint at which
 * the step was halved (the caller then moves the example back to its best point). */
unsigned rm_apgd_sched_update(rm_apgd_sched *s, double loss);

/* APGD on a batch (x, delta: (B, C, H, W)): ascends CE (target NULL) or the targeted DLR
 * loss towards class target[b] (!= y[b]; K >= 4). rng: B streams, example b draws from
 * rng[b] only (advanced in place). Start: delta = eps * u / max|u| with
 * u ~ U(-1, 1)^(C H W) (C*H*W uniforms in element order), projected to [0,1]; step 2 eps; `iters` iterations of
 *   z = P(x_k + eta_k sign(g_k)),  x_{k+1} = P(x_k + a (z - x_k) + (1 - a)(x_k - x_{k-1}))
 * (a = 1 at the first iteration, 0.75 after), eta_k from rm_apgd_sched per example.
 * robust[b] = 0 when some iterate (or the start) is misclassified; delta[b] is then the
 * last misclassified iterate, otherwise the iterate of highest loss. The clean point is
 * not looked at (the caller drops misclassified examples first). *zero_grad (may be NULL)
 * = the examples whose input gradient at the start point is exactly zero everywhere. */
rm_status rm_apgd(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y,
                  const int32_t *target, int B, float eps, int iters, rm_rng *rng,
                  float *delta, unsigned char *robust, int *zero_grad);

/* FAB's projection in the L-infinity norm: the smallest max|d_i| such that
 * sum_i w_i d_i = r and 0 <= u_i + d_i <= 1 (u: n values in [0,1]). Every coordinate
 * with w_i != 0 moves towards the side that changes w.d in the direction of r, by
 * min(lambda, its room to the box), with lambda the smallest value that reaches r;
 * coordinates with w_i = 0 stay. When even the box corner cannot reach r, d is that
 * corner (every coordinate moved by its whole room). *lambda = max |d_i|. */
rm_status rm_fab_project_linf(const float *u, const float *w, size_t n, double r, float *d,
                              double *lambda);

/* FAB-T (targeted, L-inf; Croce & Hein 2020, minimally distorted adversarial examples):
 * from the clean point, `iters` steps towards the linearised boundary between y[b] and
 * target[b] (projections of the current and of the clean point, alpha_max 0.1, eta 1.05,
 * beta 0.9), keeping the smallest misclassified perturbation found. robust[b] = 0 when
 * one was found with max |delta| <= eps; delta[b] is then that perturbation, else 0.
 * Deterministic (no random start: FAB-T runs one restart in the standard evaluation). */
rm_status rm_fab_t(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y,
                   const int32_t *target, int B, float eps, int iters, float *delta,
                   unsigned char *robust);

/* Square (Andriushchenko et al. 2020, L-inf, margin loss z_y - max_{j != y} z_j,
 * minimised): start from vertical stripes of +-eps, then `queries` random-search steps,
 * each proposing, per example still correctly classified, a square of side
 * s = round(sqrt(p h w)) (p from p_init by the halving schedule of the reference) at a
 * random place, set to x +- eps per channel; a proposal is kept when it lowers the
 * margin or misclassifies. Only forward passes. robust[b] = 0 when x + delta[b] is
 * misclassified at the end. rng: B streams, example b draws from rng[b] only: C*W signs
 * for the start, then per query two positions and C signs (METHOD.md). */
rm_status rm_square(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y, int B,
                    float eps, int queries, float p_init, rm_rng *rng, float *delta,
                    unsigned char *robust);
/* The fraction p of the image a square covers at query i (0-based) of Square's L-inf
 * schedule: p_init, halved after queries 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000. */
float rm_square_p(float p_init, int i);

/* Components of an AutoAttack evaluation, run in this order. */
enum {
    RM_AA_APGD_CE = 1u,
    RM_AA_APGD_T = 2u,
    RM_AA_FAB_T = 4u,
    RM_AA_SQUARE = 8u,
    RM_AA_STANDARD = 15u, /* "aa" */
    RM_AA_FAST = 3u       /* "aa-fast": APGD-CE + APGD-T */
};
#define RM_AA_MAX_PARTS 4

typedef struct {
    int apgd_iters;      /* 100 */
    int n_targets;       /* 9: APGD-T and FAB-T try the 9 most likely wrong classes (K-1 if fewer) */
    int fab_iters;       /* 100 */
    int square_queries;  /* 5000 */
    float square_p_init; /* 0.8 */
} rm_aa_params;
void rm_aa_params_default(rm_aa_params *p);

typedef struct {
    int clean_correct;                    /* examples correct on the clean images */
    int n_parts;                          /* components run */
    unsigned part[RM_AA_MAX_PARTS];       /* which, in order (RM_AA_APGD_CE, ...) */
    int robust_after[RM_AA_MAX_PARTS];    /* examples still robust after component i */
    int apgd_runs;                        /* APGD runs: one per example attacked and target */
    int zero_grad_runs;                   /* of those, runs whose start gradient was all zero */
} rm_aa_stats;

/* Name of one component: "apgd-ce", "apgd-t", "fab-t", "square" (NULL if unknown). */
const char *rm_aa_part_name(unsigned part);

/* The evaluation: classify x; then each component in `components` (a set of RM_AA_*
 * bits), in the order above, on the examples still robust; APGD-T and FAB-T once per
 * target, the classes ranked 2nd, 3rd, ... by the clean logits, each run on the examples
 * still robust. robust[b] = 1 when example b is correct on x and survived everything;
 * delta[b] = the perturbation that fooled it (0 when the clean image already was
 * misclassified or nothing fooled it). stats may be NULL. Needs K >= 4 for APGD-T.
 * Randomness: B seeds drawn from rng (always B draws, whatever the data), one per
 * example; a component's stream for example b is derived from that seed and the
 * component's name, so an example's result depends neither on the other examples in the
 * batch nor on which components ran before (up to the floating-point order of the
 * network's kernels). A fooled verdict counts only when the network, run again on
 * x + delta, confirms the misclassification. */
rm_status rm_autoattack(rm_attacker *a, rm_mode mode, const float *x, const int32_t *y, int B,
                        float eps, unsigned components, const rm_aa_params *p, rm_rng *rng,
                        float *delta, unsigned char *robust, rm_aa_stats *stats);

/* ---- prior-guided FGSM (FGSM-PGI, momentum variant): per-sample buffers ----
 * D (prior perturbation) and M (gradient momentum), one (C,H,W) entry per training
 * sample, indexed by sample id so they follow the sample through shuffling. */
typedef struct {
    int64_t n;        /* training samples */
    size_t d;         /* C*H*W */
    float *D, *M;
    unsigned char *fresh; /* 1: the sample's buffers are (re)initialised at next use */
    float eps, step, mu;
} rm_pgi_state;

rm_status rm_pgi_init(rm_pgi_state *s, int64_t n, size_t d, float eps, float step, float mu);
void rm_pgi_free(rm_pgi_state *s);
/* Start of a reset epoch (epoch 0 and every reset_every): mark every sample fresh. */
void rm_pgi_reset(rm_pgi_state *s);
/* Step 1: e = D[I] projected for these images; a fresh sample gets
 * D <- P(step * sign(U(-eps, eps))), M <- 0 first (drawn from rng, in batch order:
 * C*H*W uniforms per fresh sample, in element order), with P relative to its image now.
 * Ids must lie in [0, n) (else RM_ERR_ARG, nothing changed) and be distinct in a batch. */
rm_status rm_pgi_begin(rm_pgi_state *s, const float *x, const int64_t *ids, int B, rm_rng *rng,
                       float *e);
/* Steps 3-4, given g = d CE_ls(z_i, y) / d e:
 *   M[I] <- g / ||g||_1 + mu M[I]   (L1 norm over the whole batch tensor)
 *   d     = P(e + step sign(g))     (the final perturbation, written to `delta`)
 *   D[I] <- P(e + step sign(M[I]))  (the prior for the next epoch)
 * A zero gradient norm adds 0 to M; a non-finite one is RM_ERR_DIVERGED. */
rm_status rm_pgi_update(rm_pgi_state *s, const float *x, const int64_t *ids, int B,
                        const float *e, const float *g, float *delta);
/* rm_pgi_update in its two halves, for FGSM-PGK, whose momentum weight needs the final
 * pass that d feeds:
 *   rm_pgi_final:        d = P(e + step sign(g))                  (state unchanged)
 *   rm_pgi_update_prior: M[I] <- w g / ||g||_1 + mu M[I],  D[I] <- P(e + step sign(M[I]))
 * rm_pgi_update is rm_pgi_final then rm_pgi_update_prior with w = 1 (FGSM-PGI);
 * FGSM-PGK takes w = 2 - r, r = n_f / (n_i + 1) (include/regmix/method.h). */
rm_status rm_pgi_final(const rm_pgi_state *s, const float *x, int B, const float *e, const float *g,
                       float *delta);
rm_status rm_pgi_update_prior(rm_pgi_state *s, const float *x, const int64_t *ids, int B,
                              const float *e, const float *g, double w);

#endif
