/* Internal state of one training run. */
#ifndef REGMIX_TRAINER_INTERNAL_H
#define REGMIX_TRAINER_INTERNAL_H

#include "regmix/loss.h"
#include "regmix/method.h"
#include "regmix/train.h"

enum { MAX_METRICS = 64 }; /* the command line's metric rows hold 64 (src/cli/run_output.c) */

/* Loss-term sums over an epoch (for the means in the metrics row). */
typedef struct {
    double loss, ce, mse, amr, agr, trades;
    int64_t correct, seen, batches;
} epoch_sums;

struct rm_trainer {
    rm_config cfg;
    rm_method *method;
    rm_dataset train, val, test;
    rm_batcher batcher;
    rm_augment aug;
    rm_net *net;
    rm_sgd *opt;
    rm_lr_schedule sched;
    rm_attacker *attacker; /* evaluation */
    rm_ema *ema;           /* the EMA model; NULL when the run keeps none */
    rm_rng rng_shuffle, rng_aug, rng_attack;
    int B, K;
    size_t d; /* C*H*W */
    float *x, *delta;
    int32_t *y;
    int64_t *ids;
    int epoch;       /* epochs completed */
    int in_epoch;    /* an epoch is half done (interrupted at a batch boundary) */
    epoch_sums sums; /* of the epoch in progress */
    double epoch_train_seconds; /* training time of the epoch in progress before the interruption */
    long iteration;  /* SGD steps taken */
    long total_iterations;
    int n_metrics;
    rm_metric_def metrics[MAX_METRICS];
    int m_eval0;     /* index of the first evaluation metric */
    int m_eval_ema;  /* index of eval_ema (runs with an EMA), else -1 */
    int m_extra0;    /* index of the first metric of rm_eval_extra_metrics (after the timings) */
    rm_dp *dp;       /* data-parallel group (NULL: alone): evaluation splits its batches */
    int m_final0;    /* index of the first final_* metric (final_eval_attacks), else -1 */
};

/* The test set of c's dataset, or the `subset` samples of the fixed seeded choice, in file
 * order (0, or not below the set's size: all); a choice contains every smaller one. */
rm_status rm_trainer_load_test(const rm_config *c, int64_t subset, rm_dataset *out);

/* The final evaluation (final_eval.c): its columns, appended last, and their values on
 * the last epoch's row (a no-op for runs without final_eval_attacks). */
rm_status rm_final_define_metrics(rm_trainer *t);
rm_status rm_final_evaluate(rm_trainer *t, double *row);



#endif
