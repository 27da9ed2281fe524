/* regmix train: one configuration end to end.
 *
 * A method is a composition (method.md): how the final perturbation d is made (the
 * attack: prior-guided FGSM, FGSM with random start, PGD, TRADES' KL attack) and which
 * loss terms the step has (CE_ls on the final output, the regulariser R over the
 * initial / final / clean passes, TRADES' KL). Each pass the loss uses is taped and
 * back-propagated into the shared weight gradients.
 *
 * Every epoch produces one row of metrics (rm_trainer_metric_*): loss terms, train
 * accuracy on the final adversarial examples, test accuracy under each evaluation
 * attack, learning rate, timings and the catastrophic-overfitting flag. */
#ifndef REGMIX_TRAIN_H
#define REGMIX_TRAIN_H

#include "regmix/attack.h"
#include "regmix/config.h"
#include "regmix/data.h"
#include "regmix/method.h"
#include "regmix/optim.h"

typedef struct rm_trainer rm_trainer;

typedef struct {
    char name[48];
    const char *units;
    const char *description;
} rm_metric_def;

/* Loads the data, builds the network (seeded initialisation), the optimiser and the
 * attack state. Prints nothing. */
rm_status rm_trainer_create(const rm_config *cfg, rm_trainer **out);
void rm_trainer_destroy(rm_trainer *t);

int rm_trainer_metric_count(const rm_trainer *t);
const rm_metric_def *rm_trainer_metric(const rm_trainer *t, int i);
int rm_trainer_metric_index(const rm_trainer *t, const char *name); /* -1 if absent */

/* Epochs completed so far (0 before the first). */
int rm_trainer_epoch(const rm_trainer *t);

/* Called after every training batch with (epoch 1-based, batches done, batches in the
 * epoch, seconds so far). Returning non-zero asks the trainer to stop at this batch
 * boundary (preemption): rm_trainer_run_epoch then returns RM_ERR_INTERRUPTED and the
 * half-done epoch is part of the state a checkpoint saves, so the run continues from the
 * next batch when resumed. */
typedef int (*rm_batch_hook)(void *ctx, int epoch, int64_t done, int64_t total, double seconds);

/* Trains one epoch (or the rest of an interrupted one) and, when due, evaluates; fills
 * row[rm_trainer_metric_count()]. Not-applicable values (a loss term the method lacks,
 * skipped evaluation) are NaN. A NaN/Inf loss stops with RM_ERR_DIVERGED. */
rm_status rm_trainer_run_epoch(rm_trainer *t, double *row, rm_batch_hook hook, void *ctx);

/* Accuracy (%) of the current weights on `data` (NULL: the run's test subset) under one
 * evaluation attack, batch norm in inference mode. Each batch draws its random numbers
 * from its own stream (seed, epoch, attack, batch index). In a data-parallel group
 * (rm_trainer_set_dp) every rank must call it: rank r evaluates batches r, r + K, ...
 * and the correct counts are summed, so the result equals one rank's exactly. */
rm_status rm_trainer_evaluate(rm_trainer *t, const rm_dataset *data, const rm_eval_attack *atk,
                              double *accuracy);

/* Checkpoints (include/regmix/runfile.h): the whole state an exact resume needs —
 * weights and BN statistics, SGD momentum, PGI buffers, RNG streams, epoch and
 * iteration — written atomically beside the run file `run_path`. */
rm_status rm_trainer_save_checkpoint(rm_trainer *t, const char *run_path, const char *config_hash);
/* Restores it; weights_only: just the model (evaluating a finished run). */
rm_status rm_trainer_load_checkpoint(rm_trainer *t, const char *run_path, int weights_only);

/* Data parallel (include/regmix/method.h): from now on this trainer is one of the
 * rm_dp_size(g) ranks that train the configuration together; every rank must call
 * rm_trainer_run_epoch (and the checkpoint loads) in step. The trainer keeps its
 * meaning: same batches, same metrics, same weights on every rank, equal to one rank up
 * to float rounding. Evaluation is split: each rank evaluates a share of the test
 * batches and the counts are summed (rm_trainer_evaluate). Refused when a batch of the epoch,
 * the last one included, has fewer samples than the group has ranks. */
rm_status rm_trainer_set_dp(rm_trainer *t, rm_dp *g);

rm_net *rm_trainer_net(rm_trainer *t);
const rm_dataset *rm_trainer_test_set(const rm_trainer *t);

#endif
