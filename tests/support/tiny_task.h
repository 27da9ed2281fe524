/* A learnable synthetic classification task for the attack tests, and a few SGD steps on
 * it, so that attacks meet a model with real margins.
 *
 * K class templates T_k in {-1, +1}^d (d uniforms, one per element, in class order);
 * an example of class y (drawn uniformly) is x = clamp(0.5 + 0.12 T_y + 0.25 N(0,1), 0, 1)
 * per element: learnable, not separable by a wide margin, with pixels at 0 and 1. */
#ifndef REGMIX_TEST_TINY_TASK_H
#define REGMIX_TEST_TINY_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "regmix/nn.h"

typedef struct {
    int K;
    size_t d;
    float *templ; /* (K, d) */
    rm_rng rng;   /* every draw of the task: templates, then batches */
} tiny_task;

/* Draws the templates from a generator seeded with `seed`. */
void tiny_task_init(tiny_task *t, int K, size_t d, uint64_t seed);
void tiny_task_free(tiny_task *t);
/* B examples: per example its label, then its d normals. */
void tiny_task_batch(tiny_task *t, int B, float *x, int32_t *y);
/* `steps` SGD steps (momentum 0.9, no weight decay, rate lr) on plain CE over fresh
 * batches of `batch` examples, in training mode; returns the last batch's loss. */
double tiny_task_train(tiny_task *t, rm_net *net, int steps, int batch, double lr);

#endif
