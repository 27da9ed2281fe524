/* Relative cost of a run (the model is documented at rm_sweep_run_cost in
 * include/regmix/sweep.h): the scheduler starts the longest runs first so that the
 * ranks finish together. Units: forward passes of one fmnist-cnn image. */
#include <string.h>

#include "regmix/sweep.h"

static int is(const char *a, const char *b) { return strcmp(a, b) == 0; }

static double train_samples(const rm_config *c) {
    double n = c->train_subset > 0 ? (double)c->train_subset
               : (is(c->dataset, "cifar10") || is(c->dataset, "cifar100")) ? 50000.0 : 60000.0;
    n -= (double)c->val_size;
    return n > 0 ? n : 0;
}

/* Per training image: a forward 1, a backward to the input 1, to input and weights 2. */
static double train_cost_per_image(const rm_config *c) {
    double k = c->train_attack_steps;
    if (is(c->method, "pgd-at")) return 2 * k + 3;  /* K attack steps + final pass */
    if (is(c->method, "trades")) return 2 * k + 7;  /* clean forward + K steps + clean and adversarial passes */
    /* pgi, fgsm-rs: initial pass with its input gradient (2) + final pass (3) */
    double cost = 5;
    if (is(c->reg, "mse") || is(c->reg, "amr") || is(c->reg, "regmix")) cost += 2; /* back through z_i */
    if (is(c->reg, "agr") || is(c->reg, "regmix")) cost += 3;                     /* clean pass */
    return cost;
}

/* Per test image and evaluation: clean 1, fgsm 3 (gradient pass + final forward), PGD/CW
 * K steps of forward+backward plus the final forward, per restart. */
static double eval_cost_per_image(const rm_config *c) {
    double cost = 0;
    for (int k = 0; k < c->n_eval && k < RM_CFG_MAX_EVAL; k++) {
        const rm_eval_attack *a = &c->eval[k];
        switch (a->kind) {
        case RM_EVAL_CLEAN: cost += 1; break;
        case RM_EVAL_FGSM: cost += 3; break;
        case RM_EVAL_PGD:
        case RM_EVAL_CW: cost += (2.0 * a->steps + 1) * a->restarts; break;
        case RM_EVAL_AUTO: /* an upper bound (every example survives every component): APGD-CE
                              100 steps, APGD-T 9 x 100, FAB-T 9 x 100 x 3 passes, Square 5000 */
            cost += (a->aa_parts & 1u ? 201 : 0) + (a->aa_parts & 2u ? 1809 : 0) +
                    (a->aa_parts & 4u ? 2700 : 0) + (a->aa_parts & 8u ? 5001 : 0);
            break;
        }
    }
    return cost;
}

double rm_sweep_run_cost(const rm_sweep_run *r) {
    if (!r) return 0;
    const rm_config *c = &r->cfg;
    double model = is(c->model, "preact-resnet18") ? 120.0 : 1.0;
    double epochs = c->epochs > 0 ? c->epochs : 0;
    int every = c->eval_every > 0 ? c->eval_every : 1;
    double evals = (double)((c->epochs + every - 1) / every);
    double test = c->test_subset > 0 && c->test_subset < 10000 ? (double)c->test_subset : 10000.0;
    return model * (epochs * train_samples(c) * train_cost_per_image(c) +
                    evals * test * eval_cost_per_image(c));
}
