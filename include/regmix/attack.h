/* regmix attacks: L-infinity attacks on a network, all projecting onto the eps-ball and
 * the [0,1] box (method.md, "P(v)"). Perturbations `delta` are (B, C, H, W) plain
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

/* The objectives the attacks ascend (all batch means, method.md):
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
