/* regmix train: one configuration end to end.
 *
 * A method is a composition (sweeps/METHOD.md): how the final perturbation d is made (the
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

/* ---- AutoAttack results and gradient-masking warnings (sweeps/METHOD.md) ---- */

/* One evaluation attack's outcome. */
typedef struct {
    double accuracy;                       /* % correct under the attack */
    int n_parts;                           /* AutoAttack: components run, in order; else 0 */
    unsigned part[RM_AA_MAX_PARTS];        /* RM_AA_APGD_CE, ... */
    double part_accuracy[RM_AA_MAX_PARTS]; /* % still robust after component i */
    double zero_grad;                      /* % of APGD runs (one per example and target) whose
                                              input gradient at the start was all zero; NaN
                                              when no APGD ran */
} rm_eval_result;

/* rm_trainer_evaluate with the whole outcome. */
rm_status rm_trainer_evaluate_full(rm_trainer *t, const rm_dataset *data, const rm_eval_attack *atk,
                                   rm_eval_result *res);
/* The same with the random streams named purpose_prefix:epoch:attack:batch: "eval" is
 * the per-epoch evaluation's (rm_trainer_evaluate_full), "final" the final evaluation's
 * (final_eval_attacks after the last epoch), so the two never share random numbers. */
rm_status rm_trainer_evaluate_as(rm_trainer *t, const rm_dataset *data, const rm_eval_attack *atk,
                                 const char *purpose_prefix, rm_eval_result *res);

/* Thresholds of the warnings, in percentage points (or % of APGD runs). */
#define RM_GM_SQUARE_POINTS 0.2   /* Square beats the white-box attacks by more than this */
#define RM_GM_ZERO_GRAD_SHARE 1.0 /* more than this share of APGD runs start at a zero gradient */
#define RM_GM_RISE_POINTS 1.0     /* robust accuracy rises by more than this */

/* Gradient-masking warnings of one evaluation (the run's list c->eval with its results):
 * 1 = warning, 0 = checked and fine, NaN = the list has nothing to check.
 *   square:    Square lowered the robust accuracy the white-box components of an "aa" left
 *              by more than RM_GM_SQUARE_POINTS, or a "square" in the list is below every
 *              white-box attack at its budget by more than that;
 *   zero_grad: some attack with APGD had more than RM_GM_ZERO_GRAD_SHARE % of its APGD
 *              runs start at an all-zero input gradient;
 *   monotone:  of two attacks of one family (same kind, components and restarts), the one
 *              with more steps at the same budget, or with a bigger budget and the same
 *              steps, left more than RM_GM_RISE_POINTS points more robust accuracy. */
typedef struct {
    double square, zero_grad, monotone;
} rm_gm_flags;
void rm_gm_check(const rm_config *c, const rm_eval_result *res, rm_gm_flags *out);
/* One line per warning raised, into buf ("" when none): what was seen, with the numbers. */
void rm_gm_explain(const rm_config *c, const rm_eval_result *res, char *buf, size_t size);

/* The metric columns an epoch's evaluation adds after the fixed ones, in order:
 * test_<name>.<component> (% robust after each component, for attacks with two or more
 * components), zero_grad_<name> (% of APGD runs at a zero gradient, for attacks with
 * APGD), then gm_square, gm_zero_grad, gm_monotone where the list gives the check
 * something to check. Returns how many there are; writes the first min(that, max) to defs. */
int rm_eval_extra_metrics(const rm_config *c, rm_metric_def *defs, int max);
/* Their values for one evaluated epoch (res: one result per c->eval entry); out must hold
 * as many as rm_eval_extra_metrics counts. */
void rm_eval_extra_values(const rm_config *c, const rm_eval_result *res, double *out);

/* Checkpoints (include/regmix/runfile.h): the whole state an exact resume needs —
 * weights and BN statistics, the EMA model's, SGD momentum, PGI buffers, RNG streams,
 * epoch and iteration — written atomically beside the run file `run_path`. */
rm_status rm_trainer_save_checkpoint(rm_trainer *t, const char *run_path, const char *config_hash);
/* Restores it; weights_only: just the model and its EMA (evaluating a finished run). */
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

/* ---- the EMA model (FGSM-PGK's "prior-guided ensemble") ----
 * A shadow copy of every parameter and batch-norm running statistic (rm_net_params:
 * weights and buffers alike), initialised to the initial weights and updated after
 * every optimiser step:
 *   shadow <- k shadow + (1 - k) w,   k = min(c, (t + 1) / (t + 10)),   t = updates so far
 * with the cap c from the step's attack quality r (rm_ema_cap). A run keeps one when
 * rm_config_ema_enabled (setting ema; on by default for pgk). Evaluation then uses it
 * (setting eval_model), and checkpoints hold it beside the trained ("student") weights. */
typedef struct rm_ema rm_ema;

/* The EMA of `net`, starting from its current weights; t = 0. */
rm_status rm_ema_create(rm_net *net, rm_ema **out);
void rm_ema_destroy(rm_ema *e);
/* The cap c of a step with attack quality r (pgk: n_f / (n_i + 1); NaN for methods
 * without it): c = ema_decay when r is NaN or r < ema_value, else
 * c = min(1, 0.99999 r / ema_value) (FGSM-PGK's public code). */
double rm_ema_cap(const rm_config *c, double r);
/* k = min(cap, (t + 1) / (t + 10)). */
double rm_ema_decay(double cap, int64_t t);
/* One update with decay k (float32 shadow, each element computed in double); t += 1. */
void rm_ema_update(rm_ema *e, double k);
/* The update after an optimiser step whose terms are s: k = rm_ema_decay(rm_ema_cap(c,
 * s->r), t). With ema_gate, a step with r < ema_value is skipped. Returns 1 and sets
 * *k_used (may be NULL) when it updated, 0 when skipped. */
int rm_ema_after_step(rm_ema *e, const rm_config *c, const rm_step_terms *s, double *k_used);
int64_t rm_ema_updates(const rm_ema *e);
void rm_ema_set_updates(rm_ema *e, int64_t t); /* when restoring a checkpoint */
/* The shadow of rm_net_params(net)[i] (numel floats, PyTorch layout); NULL past the end. */
float *rm_ema_shadow(rm_ema *e, size_t i);
/* Exchanges the network's weights and buffers with the shadow (then
 * rm_net_params_changed): the net holds the EMA model; a second swap restores both
 * exactly. */
void rm_ema_swap(rm_ema *e);

/* The trainer's EMA (NULL when the run keeps none). rm_trainer_evaluate evaluates the
 * net as it is; the epoch loop swaps the EMA in around its evaluations when eval_model
 * is ema, and records which model it used in the metric column eval_ema. */
rm_ema *rm_trainer_ema(rm_trainer *t);

#endif
