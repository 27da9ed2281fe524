/* regmix optim: SGD with momentum and weight decay (PyTorch torch.optim.SGD semantics,
 * dampening 0, no Nesterov) and learning-rate schedules stepped per iteration. */
#ifndef REGMIX_OPTIM_H
#define REGMIX_OPTIM_H

#include "regmix/nn.h"

typedef struct {
    double momentum;     /* 0.9 in the reference code */
    double weight_decay; /* 5e-4, applied to every trained parameter (not to buffers) */
} rm_sgd_config;

typedef struct rm_sgd rm_sgd;

/* params: the net's array (rm_net_params); entries with is_buffer are skipped. */
rm_status rm_sgd_create(rm_param *params, size_t count, rm_sgd_config cfg, rm_sgd **out);
void rm_sgd_destroy(rm_sgd *opt);

/* One step with learning rate lr:  d = grad + wd * w;  buf = momentum * buf + d
 * (buf = d on the first step);  w -= lr * buf.  Buffers and parameters whose grad is
 * NULL are left unchanged. The caller then calls rm_net_params_changed(). */
void rm_sgd_step(rm_sgd *opt, double lr);

/* Momentum buffer of params[i] (numel floats, PyTorch layout) for checkpoints;
 * NULL for buffers. rm_sgd_steps_taken() > 0 means the buffers are initialised. */
float *rm_sgd_momentum(rm_sgd *opt, size_t i);
long rm_sgd_steps_taken(const rm_sgd *opt);
void rm_sgd_set_steps_taken(rm_sgd *opt, long steps); /* when restoring a checkpoint */

/* ---- learning-rate schedules, evaluated per iteration ---- */
typedef enum {
    RM_LR_CONSTANT = 0,
    RM_LR_MULTISTEP, /* lr * gamma^(number of milestones passed); milestones are
                        fractions of all iterations (reference: 100/110, 105/110) */
    RM_LR_CYCLIC,    /* triangular: 0 -> lr at peak fraction -> 0 (Wong et al.) */
    RM_LR_COSINE     /* lr * (1 + cos(pi * t / T)) / 2 */
} rm_lr_kind;

#define RM_LR_MAX_MILESTONES 8

typedef struct {
    rm_lr_kind kind;
    double lr;                /* base (peak) learning rate */
    int n_milestones;
    double milestones[RM_LR_MAX_MILESTONES]; /* fractions in (0, 1], increasing */
    double gamma;             /* multistep factor, 0.1 */
    double peak;              /* cyclic: fraction of iterations at the peak, 0.4 */
} rm_lr_schedule;

/* Parses "constant", "multistep", "cyclic", "cosine" into kind with defaults
 * (milestones 100/110, 105/110; gamma 0.1; peak 0.4); unknown name: RM_ERR_ARG. */
rm_status rm_lr_schedule_init(rm_lr_schedule *s, const char *name, double lr);
const char *rm_lr_kind_name(rm_lr_kind kind);

/* Validates a schedule filled in by hand or from a config: lr finite and >= 0;
 * multistep: 0..RM_LR_MAX_MILESTONES strictly increasing fractions in (0, 1], gamma >= 0;
 * cyclic: peak in (0, 1). RM_ERR_ARG naming the field and value otherwise. */
rm_status rm_lr_schedule_check(const rm_lr_schedule *s);

/* The iteration from which milestone fraction m applies: floor(m * total), where a
 * product that is an integer up to rounding counts as that integer (100/110 of 110 -> 100;
 * of 43010 = 110 epochs x 391 -> 39100, the first iteration of epoch 100). */
long rm_lr_milestone_iteration(double m, long total);

/* Learning rate for iteration `it` (0-based) of `total` iterations; `it` is clamped to
 * [0, total], total <= 0 gives lr.
 *   constant:  lr
 *   multistep: lr * gamma^k, k = number of milestones m with it >= rm_lr_milestone_iteration
 *              (torch MultiStepLR stepped after every iteration, integer milestones)
 *   cyclic:    np.interp(it, [0, peak*total, total], [0, lr, 0]): 0 at it = 0 and at total
 *   cosine:    lr * (1 + cos(pi * it / total)) / 2 (CosineAnnealingLR, T_max = total) */
double rm_lr_at(const rm_lr_schedule *s, long it, long total);

#endif
