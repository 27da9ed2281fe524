/* regmix method: one training step of any method, as a composition (sweeps/METHOD.md) of
 *   - the attack that makes the final perturbation d: prior-guided FGSM (pgi; pgk:
 *     FGSM-PGK, whose momentum weights the new gradient by 2 - r, r = n_f / (n_i + 1)),
 *     FGSM with random start (fgsm-rs), PGD (pgd-at), TRADES' KL attack (trades);
 *   - the loss terms over the taped passes: CE_ls(z_f) (TRADES: CE(z_c) + trades_beta KL),
 *     plus the regulariser R = mse | amr | agr | regmix over z_f, z_i, z_c.
 * Every pass the loss uses keeps its own tape and is back-propagated into the shared
 * weight gradients. The optimiser step is the caller's (trainer, tests). */
#ifndef REGMIX_METHOD_H
#define REGMIX_METHOD_H

#include <mpi.h>

#include "regmix/attack.h"
#include "regmix/config.h"

/* ---- data parallelism: K ranks train one configuration together ----
 * Every rank holds the whole global batch (same data, same RNG streams) and computes the
 * passes on its contiguous slice (rm_dp_slice); batch-norm statistics, loss sums and
 * weight gradients are summed over the group in rank order, so every rank keeps the
 * same weights, equal to one rank training the whole batch up to float rounding. */
typedef struct rm_dp rm_dp;

/* A group over `comm` (duplicated: the group's collectives never mix with the
 * caller's messages). */
rm_status rm_dp_create(MPI_Comm comm, rm_dp **out);
void rm_dp_destroy(rm_dp *g);
int rm_dp_rank(const rm_dp *g);
int rm_dp_size(const rm_dp *g);
/* Element-wise sum of buf[0..n) over the group, in place. The sum runs in rank order
 * (a non-commutative MPI operation), so the result is the same on every rank and in
 * every run with the same group size. */
rm_status rm_dp_allreduce(rm_dp *g, double *buf, int n);
/* Samples [*lo, *hi) of a batch of B for `rank` of `size`: contiguous slices in rank
 * order whose sizes differ by at most 1. */
void rm_dp_slice(int B, int rank, int size, int *lo, int *hi);
/* Ends the whole MPI job (MPI_Abort on the group's communicator, which Open MPI carries
 * to every rank of the mpirun) with exit code `code`: for a failure of this rank alone
 * while the others are inside the group's collectives, which no collective could tell
 * them about. Does not return. */
void rm_dp_abort(rm_dp *g, int code);

typedef struct rm_method rm_method;

/* Batch means of the loss terms of one step; terms the method lacks are 0. Counts are
 * of the whole (global) batch, from the step's training-mode passes. */
typedef struct {
    double loss, ce, mse, amr, agr, trades;
    int correct;         /* n_f: final adversarial examples classified correctly */
    int correct_initial; /* n_i: the same for the initial pass z_i (pgi, pgk, fgsm-rs; else 0) */
    double r;            /* pgk: attack quality n_f / (n_i + 1); NaN for the other methods */
} rm_step_terms;

/* n_train: training samples (pgi and pgk keep per-sample buffers indexed by sample id). */
rm_status rm_method_create(const rm_config *cfg, rm_net *net, int64_t n_train, int max_batch,
                           rm_method **out);
void rm_method_destroy(rm_method *m);

/* Call at the start of every epoch (0-based): PGI re-initialises its buffers on epoch 0
 * and every reset_every epochs. */
void rm_method_start_epoch(rm_method *m, int epoch);

/* One step: makes d, runs the passes (training-mode batch norm), evaluates the loss
 * terms and leaves d loss / d weights in the network's gradients (zeroed first).
 * ids: the samples' ids (PGI buffers); rng: the run's attack stream.
 * A NaN/Inf loss is RM_ERR_DIVERGED. */
rm_status rm_method_gradients(rm_method *m, const float *x, const int32_t *y, const int64_t *ids,
                              int B, rm_rng *rng, rm_step_terms *terms);

/* Trains data-parallel over g from now on (NULL: alone). rm_method_gradients keeps its
 * meaning: x, y, ids are the whole global batch on every rank, the terms are the global
 * batch means and the network's gradients are the global batch's (the same on every
 * rank). Also switches the network to synchronised batch norm. Refused when
 * max_batch < the group size. */
rm_status rm_method_set_dp(rm_method *m, rm_dp *g);

/* The PGI buffers of pgi and pgk (NULL for other methods): checkpoints and tests read
 * and set them. */
rm_pgi_state *rm_method_pgi(rm_method *m);
/* The final perturbation d of the last step, (B, C, H, W). Data-parallel: the whole
 * batch for pgi and fgsm-rs, only the rank's slice for pgd-at and trades. */
const float *rm_method_delta(const rm_method *m);
/* Which optional terms the method has (for metrics: the others are reported as NaN). */
int rm_method_has_term(const rm_method *m, const char *term); /* "mse" "amr" "agr" "trades" */

#endif
