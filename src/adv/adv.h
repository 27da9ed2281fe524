/* Internals shared by the attack files: the attacker's scratch and the sign step. */
#ifndef REGMIX_ADV_INTERNAL_H
#define REGMIX_ADV_INTERNAL_H

#include "regmix/attack.h"

struct rm_attacker {
    rm_net *net;
    rm_tape *tape;   /* one pass at a time: every attack step is forward then backward */
    int max_batch, K;
    size_t d;        /* C*H*W */
    float *xadv;     /* (max_batch, d): x + delta, the network's input */
    float *logits;   /* (max_batch, K) */
    float *dlogits;  /* (max_batch, K): d objective / d logits */
    float *grad;     /* (max_batch, d): d objective / d input */
    float *cur;      /* (max_batch, d): delta of the running PGD restart */
    float *zclean;   /* (max_batch, K): clean logits (TRADES) */
};

static inline float adv_sign(float g) { return g > 0.0f ? 1.0f : (g < 0.0f ? -1.0f : 0.0f); }

/* Shape and pointer checks common to every attack entry point. */
rm_status adv_check_batch(const char *fn, const rm_attacker *a, const float *x, int B);
rm_status adv_check_budget(const char *fn, float eps, float step, int steps);
rm_status adv_check_labels(const char *fn, const int32_t *y, int B, int K);

/* One ascent step, in place: delta = P(delta + step * sign(g)), sign(0) = 0.
 * delta, g, x: n floats. */
void adv_sign_step(float *delta, const float *g, const float *x, size_t n, float eps,
                   float step);

/* delta = P(U(-eps, eps)), n uniforms drawn in element order. */
void adv_uniform_start(float *delta, const float *x, size_t n, float eps, rm_rng *rng);

/* Forward on x + delta (delta may be NULL), in `mode`; logits land in a->logits. */
rm_status adv_forward(rm_attacker *a, rm_mode mode, const float *x, const float *delta, int B);

/* Back-propagates a->dlogits (filled by the caller after adv_forward) to the input:
 * grad (B, C, H, W). No weight gradient. */
rm_status adv_backward_input(rm_attacker *a, float *grad);

/* Arg max of one row of K logits, the lowest index at ties (how every attack and the
 * accuracy count classify). */
int adv_argmax(const float *z, int K);

/* Forward on x + delta, then hit[b] = 1 where the arg max (lowest index at ties) is y[b];
 * *correct (if not NULL) = the number of hits. hit may be NULL. Labels not checked. */
rm_status adv_classify(rm_attacker *a, rm_mode mode, const float *x, const float *delta,
                       const int32_t *y, int B, unsigned char *hit, int *correct);

#endif
