/* Internal state of one training run. */
#ifndef REGMIX_TRAINER_INTERNAL_H
#define REGMIX_TRAINER_INTERNAL_H

#include "regmix/loss.h"
#include "regmix/train.h"

enum { MAX_METRICS = 40 };

/* Which passes and terms a method's step has. */
typedef enum { ATTACK_PGI, ATTACK_FGSM_RS, ATTACK_PGD, ATTACK_TRADES } attack_kind;
typedef enum { REG_NONE, REG_MSE, REG_AMR, REG_AGR, REG_REGMIX } reg_kind;

typedef struct {
    attack_kind attack;
    reg_kind reg;
    int uses_initial; /* z_i = f(x + e) is taped and back-propagated (mse, amr, regmix) */
    int uses_clean;   /* z_c = f(x) is taped (agr, regmix, trades) */
    double s_main;    /* label smoothing of the main CE term (1 = plain CE) */
} method_plan;

/* Loss-term sums over an epoch (for the means in the metrics row). */
typedef struct {
    double loss, ce, mse, amr, agr, trades;
    int64_t correct, seen, batches;
} epoch_sums;

struct rm_trainer {
    rm_config cfg;
    method_plan mp;
    rm_dataset train, val, test;
    rm_batcher batcher;
    rm_augment aug;
    rm_net *net;
    rm_sgd *opt;
    rm_lr_schedule sched;
    rm_attacker *attacker;
    rm_pgi_state pgi;
    rm_tape *tape_f, *tape_i, *tape_c;
    rm_rng rng_shuffle, rng_aug, rng_attack;
    int B, K;
    size_t d; /* C*H*W */
    float *x, *xadv, *e, *g, *delta, *zf, *zi, *zc, *dzf, *dzi, *dzc;
    int32_t *y;
    int64_t *ids;
    int epoch;       /* epochs completed */
    long iteration;  /* SGD steps taken */
    long total_iterations;
    int n_metrics;
    rm_metric_def metrics[MAX_METRICS];
    int m_eval0;     /* index of the first evaluation metric */
};

rm_status method_plan_make(const rm_config *cfg, method_plan *mp);
rm_status train_step(rm_trainer *t, int B, epoch_sums *sums);

#endif
