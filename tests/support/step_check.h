/* Comparisons shared by the PyTorch training-step tests (test_pytorch_pgi_step,
 * test_pytorch_pgk_step): each prints one line per quantity, in the style of
 * fixture_compare ("  <label> ... OK" / "NOT OK"), and returns 1 when it agrees. */
#ifndef REGMIX_TEST_STEP_CHECK_H
#define REGMIX_TEST_STEP_CHECK_H

#include "fixture.h"

/* A scalar (a loss term, r, the EMA decay) against its [1] record: rel <= max_rel. */
int step_check_scalar(const char *label, double ours, fixture_record *ref, double max_rel);

/* A count (n_i, n_f, examples classified correctly) against its [1] record: equal. */
int step_check_count(const char *label, int ours, fixture_record *ref);

/* A perturbation (d or the next prior D, n floats) against its record: every element
 * within max_diff (both are P(e + a sign(.)) of the same float32 values: exact once the
 * signs agree). */
int step_check_exact(const char *label, const float *ours, size_t n, fixture_record *ref, double max_diff);

/* The momentum M (n floats): rel <= max_rel as fixture_compare, and the same sign
 * element by element (sign(M) picks the next prior); also prints the C error against
 * the smallest |M| the generator kept. */
int step_check_momentum(const char *label, const float *M, size_t n, fixture_record *ref, double max_rel);

/* The logits of the step's passes (records <prefix>logits_i, _f, and _c if present),
 * recomputed by a separate network of src's model holding src's weights, in training
 * mode (batch statistics: src's running statistics do not matter), on x + e, x + d
 * and x. Says whether a gradient mismatch comes from the forward passes or from the
 * step's composition. */
int step_check_pass_logits(fixture_file *fx, const char *prefix, rm_net *src, const float *x,
                           const float *e, const float *d, int B, double max_rel);

#endif
