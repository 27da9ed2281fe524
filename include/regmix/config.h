/* regmix config: the settings of one run, their defaults, parsing and printing.
 *
 * Setting names are a stable interface (sweeps, job scripts and users' scripts rely on
 * them). A run is configured from a YAML file of `key: value` pairs plus `key=value`
 * overrides on the command line; numbers may be written as fractions ("8/255").
 * Unknown keys, wrong types and out-of-range values are errors naming the file, line
 * and key. */
#ifndef REGMIX_CONFIG_H
#define REGMIX_CONFIG_H

#include <stdint.h>

#include "regmix/common.h"

#define RM_CFG_STR 256
#define RM_CFG_MAX_EVAL 8

typedef enum { RM_EVAL_CLEAN, RM_EVAL_FGSM, RM_EVAL_PGD, RM_EVAL_CW } rm_eval_kind;

/* One evaluation attack, written "clean", "fgsm", "pgd20", "pgd50x5" (5 restarts),
 * "cw20", optionally with a budget: "pgd20@12/255". */
typedef struct {
    rm_eval_kind kind;
    int steps;       /* PGD / CW iterations (0 for clean, 1 for fgsm) */
    int restarts;    /* >= 1 */
    double eps;      /* 0 = the run's eps */
    char name[32];   /* canonical text, also the metric name suffix: "pgd20", "pgd20_eps0.047" */
} rm_eval_attack;

typedef struct {
    /* model and data */
    char model[RM_CFG_STR];      /* fmnist-cnn | preact-resnet18 */
    char dataset[RM_CFG_STR];    /* fashion-mnist | mnist | cifar10 | cifar100 */
    char data_dir[RM_CFG_STR];   /* "" = the dataset's default directory */
    int64_t train_subset;        /* 0 = all training samples */
    int64_t val_size;            /* held out of train for validation; 0 = none */
    int64_t test_subset;         /* test samples evaluated per epoch; 0 = all */
    int augment;                 /* -1 = dataset default (CIFAR on, MNIST off), 0, 1 */
    /* method */
    char method[32];             /* pgi | fgsm-rs | pgd-at | trades */
    char reg[32];                /* none | mse | amr | agr | regmix (pgi and fgsm-rs) */
    double alpha, beta, gamma, lambda; /* AMR weights, AGR weight, MSE weight (and TRADES beta) */
    int amr_stop_f, amr_stop_i;  /* per-side stop-gradient flags of AMR */
    char agr_dir[8];             /* c||f | f||c | both */
    int agr_detach;              /* detach the clean side of AGR */
    double label_smoothing;      /* s: target weight of the true class; 1 = plain CE */
    double eps, step;            /* attack budget and step size, pixel units in [0,1] */
    int reset_every;             /* PGI: re-initialise the per-sample buffers every N epochs */
    double pgi_momentum;         /* mu = 0.3 */
    int train_attack_steps;      /* pgd-at / trades: attack iterations during training */
    /* optimisation */
    int epochs, batch;
    double lr, momentum, weight_decay;
    char lr_schedule[32];        /* multistep | cyclic | cosine | constant */
    uint64_t seed;
    int threads;                 /* OpenMP threads of this run; 0 = automatic */
    /* evaluation */
    int n_eval;
    rm_eval_attack eval[RM_CFG_MAX_EVAL];
    int eval_every;              /* evaluate every N epochs (and always the last) */
    double co_threshold;         /* catastrophic overfitting: PGD acc below this fraction of FGSM acc */
    /* output */
    char outdir[RM_CFG_STR];
    char run_id[RM_CFG_STR];     /* "" = derived from the values (sweeps) or "run" */
    int checkpoint_every;        /* epochs between checkpoints (0 = only at the end) */
} rm_config;

/* Defaults: the FGSM-PGI reference hyper-parameters on Fashion-MNIST scale
 * (see README "Settings"). */
void rm_config_defaults(rm_config *c);

/* Applies one `key=value` (or key, value) setting; the error names `origin`
 * (e.g. "command line" or "run.yaml:12"). */
rm_status rm_config_set(rm_config *c, const char *key, const char *value, const char *origin);

/* Reads a YAML mapping of settings from a file (libyaml); errors name file:line:key. */
rm_status rm_config_load_yaml(rm_config *c, const char *path);

/* Cross-field validation after all settings are applied (e.g. step > 0, known model). */
rm_status rm_config_validate(const rm_config *c);

/* The resolved configuration as YAML text (every setting, fixed order, canonical
 * number formatting) into buf; returns the length or -1 if it did not fit. */
int rm_config_to_yaml(const rm_config *c, char *buf, size_t size);

/* 64-bit FNV-1a of rm_config_to_yaml's text, as 16 hex digits (the run's identity). */
void rm_config_hash(const rm_config *c, char out[17]);

/* Table of settings for iteration (HDF5 attributes, help text): name, type, value text. */
typedef enum { RM_SETTING_INT, RM_SETTING_FLOAT, RM_SETTING_STRING } rm_setting_type;
int rm_config_setting_count(void);
const char *rm_config_setting_name(int i);
rm_setting_type rm_config_setting_type(int i);
const char *rm_config_setting_help(int i);
/* value of setting i: numbers as double, text as string (one of them is set) */
void rm_config_setting_value(const rm_config *c, int i, double *num, char *text, size_t size);

/* "8/255", "0.1", "1e-3" -> double; rejects trailing garbage, division by zero. */
rm_status rm_parse_number(const char *text, double *out);

#endif
