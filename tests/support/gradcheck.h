/* Central finite-difference gradient checker (in the spirit of ggml's test-grad0).
 *
 * f(ctx) evaluates a scalar (in double) from the current contents of x; the checker
 * perturbs x[i] by +-h in place, restores it, and compares
 *     numeric = (f(x + h e_i) - f(x - h e_i)) / (2h)
 * with analytic[i]. An element passes when |a - n| <= atol + rtol * max(|a|, |n|).
 * On the first failure it prints every quantity involved and returns 0. */
#ifndef REGMIX_TEST_GRADCHECK_H
#define REGMIX_TEST_GRADCHECK_H

#include <stddef.h>

typedef double (*rm_scalar_fn)(void *ctx);

/* Checks every element when stride == 1, else every stride-th one (large tensors).
 * Returns 1 when all checked elements pass. Prints one summary line per tensor. */
int rm_check_gradient(const char *name, rm_scalar_fn f, void *ctx, float *x, size_t n,
                      const float *analytic, double h, double atol, double rtol,
                      size_t stride);

#endif
