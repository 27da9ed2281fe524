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
#define RM_CFG_MAX_EVAL 12

typedef enum { RM_EVAL_CLEAN, RM_EVAL_FGSM, RM_EVAL_PGD, RM_EVAL_CW, RM_EVAL_AUTO } rm_eval_kind;

/* One evaluation attack, written "clean", "fgsm", "pgd20", "pgd50x5" (5 restarts),
 * "cw20", or AutoAttack: "aa" (APGD-CE, APGD-T, FAB-T, Square), "aa-fast" (APGD-CE,
 * APGD-T) or one component alone ("apgd-ce", "apgd-t", "fab-t", "square"); optionally
 * with a budget: "pgd20@12/255", "aa@12/255". */
typedef struct {
    rm_eval_kind kind;
    int steps;       /* PGD / CW iterations (0 for clean and AutoAttack, 1 for fgsm) */
    int restarts;    /* >= 1 */
    unsigned aa_parts; /* RM_EVAL_AUTO: the components (RM_AA_* bits of attack.h), else 0 */
    double eps;      /* 0 = the run's eps */
    char name[32];   /* canonical text, also the metric name suffix: "pgd20", "pgd50x5",
                        and with a budget "pgd20_eps0.04706" (eps with 4 significant digits,
                        %.4g: no '/' or '@', which HDF5 dataset names cannot hold well) */
} rm_eval_attack;

typedef struct {
    /* model and data */
    char model[RM_CFG_STR];      /* fmnist-cnn | preact-resnet18 | resnet18 | wrn-D-W */
    char dataset[RM_CFG_STR];    /* fashion-mnist | mnist | cifar10 | cifar100 */
    char data_dir[RM_CFG_STR];   /* "" = the dataset's default directory */
    int64_t train_subset;        /* 0 = all training samples */
    int64_t val_size;            /* held out of train for validation; 0 = none */
    int64_t test_subset;         /* test samples evaluated per epoch; 0 = all */
    int augment;                 /* -1 = dataset default (CIFAR on, MNIST off), 0, 1 */
    /* method */
    char method[32];             /* pgi | fgsm-rs | pgd-at | trades | pgk */
    char reg[32];                /* none | mse | amr | agr | regmix (pgi, pgk and fgsm-rs) */
    double alpha, beta, gamma, lambda; /* AMR weights, AGR weight, MSE weight */
    double trades_beta;          /* TRADES weight of KL(p_c || p_f) */
    int amr_stop_f, amr_stop_i;  /* per-side stop-gradient flags of AMR */
    char agr_dir[8];             /* c||f | f||c | both */
    int agr_detach;              /* detach the clean side of AGR */
    double label_smoothing;      /* s: target weight of the true class; 1 = plain CE */
    double eps, step;            /* attack budget and step size, pixel units in [0,1] */
    int reset_every;             /* PGI: re-initialise the per-sample buffers every N epochs */
    double pgi_momentum;         /* mu = 0.3 */
    int train_attack_steps;      /* pgd-at / trades: attack iterations during training */
    char ema[8];                 /* auto | on | off: EMA model (auto: on for pgk) */
    double ema_value;            /* pgk: r at which the EMA decay cap becomes adaptive (0.82) */
    double ema_decay;            /* decay cap below ema_value and without r (0.999) */
    int ema_gate;                /* pgk: update the EMA only when r >= ema_value */
    /* optimisation */
    int epochs, batch;
    double lr, momentum, weight_decay;
    char lr_schedule[32];        /* multistep | cyclic | cosine | constant */
    uint64_t seed;
    int threads;                 /* OpenMP threads of this run; 0 = automatic */
    char precision[8];           /* f32 | bf16: arithmetic of convolutions and linear layers (nn.h) */
    /* evaluation */
    int n_eval;
    rm_eval_attack eval[RM_CFG_MAX_EVAL];
    int eval_every;              /* evaluate every N epochs (and always the last) */
    char eval_model[16];         /* ema | student: which model evaluation uses when an EMA exists */
    double co_threshold;         /* catastrophic overfitting: PGD acc below this fraction of FGSM acc
                                    (and FGSM acc > 0.3); see rm_config_co_flag */
    /* the final evaluation: after the last epoch only, in addition to eval[] (columns final_*) */
    int n_final_eval;            /* final_eval_attacks; 0 = none (the default) */
    rm_eval_attack final_eval[RM_CFG_MAX_EVAL];
    int64_t final_test_subset;   /* test samples of the final attacks; -1 = test_subset, 0 = all */
    int64_t final_aa_images;     /* AutoAttack entries of final_eval: test_subset=N's images only; 0 = all */
    /* output */
    char outdir[RM_CFG_STR];
    char run_id[RM_CFG_STR];     /* "" = derived from the values (sweeps) or "run" */
    int checkpoint_every;        /* epochs between checkpoints (0 = only at the end) */
} rm_config;

/* Defaults: the FGSM-PGI reference hyper-parameters on Fashion-MNIST scale
 * (see README "Settings"). */
void rm_config_defaults(rm_config *c);

/* Applies one `key=value` (or key, value) setting; the error names `origin`
 * (e.g. "command line" or "run.yaml:12"; NULL: no prefix). With value == NULL, key is
 * split at its first '='. Each value is checked against the setting's type, range or
 * allowed values here; on failure *c is left unchanged. Messages look like
 * "run.yaml:7: eps: expected a number, got 'big'" or
 * "command line: unknown setting 'lamda' (did you mean 'lambda'?)". */
rm_status rm_config_set(rm_config *c, const char *key, const char *value, const char *origin);

/* Reads a YAML mapping of settings from a file (libyaml); errors name file:line:key.
 * The top level must be a mapping of scalars (an empty file sets nothing); eval_attacks
 * may also be a sequence of scalars. Comments are allowed; nested mappings, aliases,
 * duplicate keys and several documents are errors. Scalars are taken as text (no YAML
 * type resolution): "8/255", "yes" and "c||f" mean what rm_config_set makes of them.
 * A missing file is RM_ERR_IO naming the path, a bad file RM_ERR_FORMAT (also a file
 * larger than 1 MiB: no run file is), a bad value RM_ERR_ARG. */
rm_status rm_config_load_yaml(rm_config *c, const char *path);

/* The same from YAML text in memory (a run file's /config "yaml"); errors name
 * origin:line. Run files written before trades_beta existed (regmix 0.1) have no
 * trades_beta key and kept a TRADES run's weight in beta: for such a text with method
 * trades, trades_beta takes beta's value and beta its default, so the old run reads
 * back with its meaning (and its hash, see rm_config_hash_text). */
rm_status rm_config_load_yaml_text(rm_config *c, const char *text, const char *origin);

/* Validation after all settings are applied: every setting's type/range/allowed values
 * again (the struct may have been filled by code), then the cross-field rules:
 * - (none between model and dataset: every model takes the dataset's image shape);
 * - reg applies to pgi, pgk and fgsm-rs only: pgd-at and trades require reg: none (an
 *   error, not silently ignored, so that equal science never hashes differently);
 * - beta stays at its default with method trades (its weight is trades_beta; regmix 0.1
 *   used beta for it, so a beta given for trades is refused, not ignored);
 * - step <= 2 eps when eps > 0 (a larger sign step is clipped to the same attack);
 * - ema_gate needs method pgk with its EMA on;
 * - val_size < train_subset and batch <= train_subset - val_size when train_subset > 0;
 * - 1 <= n_eval <= RM_CFG_MAX_EVAL with distinct attack names;
 * - final_test_subset and final_aa_images stay at their defaults unless
 *   final_eval_attacks lists attacks, and final_aa_images > 0 needs an AutoAttack entry
 *   (aa, aa-fast, apgd-ce, apgd-t, fab-t, square) in it (a setting that would do nothing
 *   is refused, not ignored). */
rm_status rm_config_validate(const rm_config *c);

/* Checks that need the machine and the data, when a run starts (the trainer calls it;
 * rm_config_validate stays a function of the settings, so a run file written on a
 * bigger node still loads elsewhere): threads not above the CPUs online here
 * (sysconf(_SC_NPROCESSORS_ONLN); several ranks of a node may oversubscribe it
 * together, one run may not), and batch not above train_samples, the training samples
 * left after train_subset and val_size (a negative count skips that check). */
rm_status rm_config_check_run(const rm_config *c, int64_t train_samples);

/* 1 when the run keeps an EMA model: ema "on", or "auto" with method pgk. */
int rm_config_ema_enabled(const rm_config *c);

/* Catastrophic overfitting flag of one evaluation (accuracies as fractions in [0, 1]):
 * 1 when fgsm_acc > 0.3 and pgd_acc < co_threshold * fgsm_acc, else 0. The FGSM
 * accuracy is the "fgsm" attack at the run's budget, the PGD accuracy that of the first
 * pgd attack at the run's budget in eval_attacks (rm_config_co_attacks); the 0.3 floor
 * keeps a model that is simply not robust yet (both accuracies low) from being flagged. */
int rm_config_co_flag(const rm_config *c, double fgsm_acc, double pgd_acc);
/* Indices into c->eval of those two attacks; returns 0 (and -1s) when either is absent,
 * in which case no CO flag is recorded. */
int rm_config_co_attacks(const rm_config *c, int *fgsm_index, int *pgd_index);

/* The resolved configuration as YAML text (every setting, fixed order, canonical
 * number formatting) into buf; returns the length or -1 if it did not fit.
 * One `key: value` line per setting in table order; numbers in the shortest of
 * %.15g/%.16g/%.17g that reads back as the same double; booleans true/false; strings
 * double-quoted when YAML would not read them back as the same plain string;
 * eval_attacks as a flow sequence of specs that parse back exactly ("pgd20@0.047..."),
 * so that rm_config_load_yaml(rm_config_to_yaml(c)) == c field by field.
 * RM_CFG_YAML_MAX bytes are always enough. */
#define RM_CFG_YAML_MAX 8192
int rm_config_to_yaml(const rm_config *c, char *buf, size_t size);

/* The text that is hashed: rm_config_to_yaml's lines of the settings for which
 * rm_config_setting_hashed is true. Left out: outdir, run_id and checkpoint_every, which
 * do not change the science (resuming elsewhere or with another checkpoint cadence is the
 * same run), and every setting added after regmix 0.1.0 while it has its default value
 * (so adding a setting never changes the identity of existing runs). data_dir (where the
 * data lives) is written with its default value "" whatever it is: not part of the
 * identity, yet default configurations keep their 0.1.0 hash. threads stays in:
 * the thread count changes the floating-point reduction order and hence the bits.
 * TRADES' weight: regmix 0.1.0 stored it in `beta`, so for method trades the `beta` line
 * carries trades_beta's value and trades_beta has no line (for other methods it does
 * nothing and is left out): every 0.1.0 TRADES run keeps its hash.
 * Returns the length or -1. */
int rm_config_hash_text(const rm_config *c, char *buf, size_t size);

/* 64-bit FNV-1a of rm_config_hash_text, as 16 lowercase hex digits (the run's identity). */
void rm_config_hash(const rm_config *c, char out[17]);

/* Table of settings for iteration (HDF5 attributes, help text): name, type, value text. */
/* 1 if setting i is part of c's hash text (see rm_config_hash_text), else 0. */
int rm_config_setting_hashed(const rm_config *c, int i);
/* 1 if setting i enters the hash text with its default value whatever its value
 * (data_dir), else 0. */
int rm_config_setting_hashed_as_default(int i);
/* The value text of setting i's line in the hash text: rm_config_setting_text, except
 * `beta` of a trades run, which holds trades_beta (see rm_config_hash_text). */
int rm_config_setting_hash_value(const rm_config *c, int i, char *buf, size_t size);
typedef enum { RM_SETTING_INT, RM_SETTING_FLOAT, RM_SETTING_STRING } rm_setting_type;
int rm_config_setting_count(void);
const char *rm_config_setting_name(int i);
rm_setting_type rm_config_setting_type(int i);
const char *rm_config_setting_help(int i);
/* value of setting i: numbers as double, text as string (one of them is set):
 * INT and FLOAT settings set *num and text to ""; STRING settings set text and *num to
 * NaN. Either pointer may be NULL. seed above 2^53 is not exact as a double: use
 * rm_config_setting_text for an exact value. Booleans are INT 0/1, eval_attacks is
 * STRING (comma-separated specs). */
void rm_config_setting_value(const rm_config *c, int i, double *num, char *text, size_t size);
/* Checks the current value of setting i (type, range, allowed values, text); errors are
 * prefixed with origin (may be NULL). rm_config_set and rm_config_validate use it. */
rm_status rm_config_check_setting(const rm_config *c, int i, const char *origin);
/* Index of the setting called `name`, or -1. */
int rm_config_setting_find(const char *name);
/* Value of setting i as canonical text (unquoted; what to_yaml prints for scalars,
 * eval_attacks comma-separated). Returns the length, or -1 if it did not fit. */
int rm_config_setting_text(const rm_config *c, int i, char *buf, size_t size);
/* Default value as text ("0.1", "fmnist-cnn") and the allowed values as text
 * ("[0, 1]", ">= 1", "fmnist-cnn | preact-resnet18"), for help output. */
const char *rm_config_setting_default(int i);
void rm_config_setting_range(int i, char *buf, size_t size);

/* "8/255", "0.1", "1e-3", " -2 " -> double; surrounding white space is trimmed;
 * rejects "", trailing garbage, "1/0", "8/", hexadecimal, NaN and infinities. */
rm_status rm_parse_number(const char *text, double *out);
/* The same without recording an error: NULL on success, else a static reason
 * ("not a number", "division by zero", ...) for callers that phrase their own message. */
const char *rm_number_error(const char *text, double *out);
/* Shortest of %.15g, %.16g, %.17g that strtod reads back as exactly v; an exponent
 * form gets a decimal point ("1.0e-05", not "1e-05") so YAML 1.1 readers see a float. */
void rm_format_number(double v, char *buf, size_t size);

/* One eval attack spec (white space around it trimmed): "clean", "fgsm", "pgdK",
 * "pgdKxR", "cwK", "cwKxR" (1 <= K <= 10000, 1 <= R <= 100), "aa", "aa-fast", "apgd-ce",
 * "apgd-t", "fab-t", "square", optionally "@budget" with budget a number in (0, 1]
 * ("pgd20@12/255"; not on clean). NULL on success, else a static reason. */
const char *rm_eval_attack_error(const char *spec, rm_eval_attack *out);
rm_status rm_eval_attack_parse(const char *spec, rm_eval_attack *out);
/* Text that parses back to exactly *a: the name without budget, "@" and the budget in
 * rm_format_number form ("pgd50x5@0.047058823529411764"). Returns length or -1. */
int rm_eval_attack_spec(const rm_eval_attack *a, char *buf, size_t size);
/* A comma-separated list of specs into list[0..*n) (at most RM_CFG_MAX_EVAL, at least
 * one, names distinct); errors are prefixed with origin (may be NULL). On failure the
 * list is left unchanged. */
rm_status rm_eval_attacks_parse(const char *text, rm_eval_attack *list, int *n,
                                const char *origin);
/* The same for any attack-list setting: errors name `setting`; with allow_empty, "" (or
 * blanks) is the empty list (final_eval_attacks). */
rm_status rm_eval_attack_list_parse(const char *text, rm_eval_attack *list, int *n, const char *origin,
                                    const char *setting, int allow_empty);

#endif
