/* One prior-guided FGSM step (rm_method, method "pgi") on the batch of a PyTorch float64
 * fixture, tests/data/pgi_step_<reg>.rmfx (tests/pytorch/gen_pgi_step_fixtures.py:
 * fmnist-cnn, formula weights, B = 8, prior e set in the PGI buffers, M = 0), compared
 * with the reference, printing the max difference per tensor:
 *   loss terms (rm_step_terms) and every weight gradient: rel <= 1e-3;
 *   d (rm_method_delta) and the next prior D: equal to 1e-6 (both are P(e + a sign(.))
 *     of the same float32 values, so they agree exactly once sign(g) agrees);
 *   the next momentum M = g / ||g||_1: rel <= 1e-3, and its sign element by element;
 *   BN running statistics after the step (three train-mode passes for regmix, two for
 *   mse) and the passes' logits (a separate net, same weights): rel <= 1e-4.
 * The reference is float64 and the generator kept every ReLU / max-pool / sign decision
 * far (>= 250x) from the float32 error of any summation order, so these bounds hold for
 * whatever kernels oneDNN picks, and for one rank as for a data-parallel group.
 * Used by test_pytorch_pgi_step (one rank) and test_dp_mpi (data parallel). */
#ifndef REGMIX_TEST_PGI_STEP_CHECK_H
#define REGMIX_TEST_PGI_STEP_CHECK_H

#include "regmix/method.h"

/* Called after the net, the method and the PGI buffers are set up (and after
 * rm_method_set_dp), just before the step: tests inject faults here. */
typedef void (*pgi_step_hook)(rm_net *net, rm_method *m, void *ctx);

/* Runs the step on the fixture for `reg` ("mse" or "regmix"); data parallel over dp when
 * dp != NULL (every rank checks the whole result it holds). Set-up errors fail the
 * calling CMocka test (outside a test they exit the process with status 255).
 * Returns the number of comparisons that failed (0: the step agrees with PyTorch). */
int pgi_step_check(const char *reg, rm_dp *dp, pgi_step_hook hook, void *ctx);

#endif
