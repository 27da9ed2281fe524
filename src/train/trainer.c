/* Run set-up, the epoch loop and the metrics row. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "train/trainer_internal.h"

static void add_metric(rm_trainer *t, const char *name, const char *units, const char *desc) {
    if (t->n_metrics >= MAX_METRICS) return;
    rm_metric_def *m = &t->metrics[t->n_metrics++];
    snprintf(m->name, sizeof m->name, "%.*s", (int)sizeof m->name - 1, name);
    m->units = units;
    m->description = desc;
}

/* The metric list: fixed training metrics, then one test accuracy per evaluation
 * attack, then timings, then the evaluation's extras (AutoAttack components, warnings).
 * Names are the HDF5 dataset names and CSV headers. */
static rm_status define_metrics(rm_trainer *t) {
    add_metric(t, "epoch", "1", "epochs completed (1-based)");
    add_metric(t, "lr", "1", "learning rate at the last step of the epoch");
    add_metric(t, "loss", "nats", "mean total training loss over the epoch's batches");
    add_metric(t, "loss_ce", "nats", "mean main cross-entropy term (CE_ls on the final adversarial output; TRADES: CE on clean)");
    add_metric(t, "loss_mse", "1", "mean MSE regulariser term (lambda included); NaN if not in the method");
    add_metric(t, "loss_amr", "nats", "mean AMR term alpha*KL(p_f||p_i) + beta*KL(p_i||p_f); NaN if not in the method");
    add_metric(t, "loss_agr", "nats", "mean AGR term gamma*KL(p_c||p_f) (direction per config); NaN if not in the method");
    add_metric(t, "loss_trades", "nats", "mean TRADES term trades_beta*KL(p_c||p_adv); NaN if not in the method");
    add_metric(t, "train_acc", "%", "training accuracy on the final adversarial examples");
    t->m_eval0 = t->n_metrics;
    for (int i = 0; i < t->cfg.n_eval; i++) {
        char name[48];
        snprintf(name, sizeof name, "test_%s", t->cfg.eval[i].name);
        add_metric(t, name, "%", "test accuracy under this evaluation attack (inference-mode BN); NaN if not evaluated this epoch");
    }
    add_metric(t, "co_flag", "1", "catastrophic overfitting: 1 if PGD accuracy < co_threshold x FGSM accuracy");
    add_metric(t, "train_seconds", "s", "wall time of the epoch's training steps");
    add_metric(t, "eval_seconds", "s", "wall time of the epoch's evaluation");
    add_metric(t, "epoch_seconds", "s", "wall time of the whole epoch");
    add_metric(t, "images_per_s", "1/s", "training images per second");
    t->m_eval_ema = -1;
    if (t->ema) { /* only in runs with an EMA: older runs keep their columns */
        t->m_eval_ema = t->n_metrics;
        add_metric(t, "eval_ema", "1", "model of this row's test_* accuracies: 1 the EMA model, 0 the student (trained weights); NaN if not evaluated");
    }
    /* AutoAttack components, zero-gradient shares, gradient-masking warnings */
    t->m_extra0 = t->n_metrics;
    rm_metric_def extra[MAX_METRICS];
    const int n_extra = rm_eval_extra_metrics(&t->cfg, extra, MAX_METRICS);
    if (t->n_metrics + n_extra > MAX_METRICS)
        return rm_fail(RM_ERR_ARG, "eval_attacks: these %d attacks need %d metric columns, more than the %d a run "
                       "records (each aa adds 5: its 4 components and its zero-gradient share); use fewer attacks",
                       t->cfg.n_eval, t->n_metrics + n_extra, MAX_METRICS);
    for (int i = 0; i < n_extra; i++) add_metric(t, extra[i].name, extra[i].units, extra[i].description);
    return rm_final_define_metrics(t); /* final_* (runs with final_eval_attacks) */
}

int rm_trainer_metric_count(const rm_trainer *t) { return t->n_metrics; }
const rm_metric_def *rm_trainer_metric(const rm_trainer *t, int i) {
    return i >= 0 && i < t->n_metrics ? &t->metrics[i] : NULL;
}
int rm_trainer_metric_index(const rm_trainer *t, const char *name) {
    for (int i = 0; i < t->n_metrics; i++)
        if (!strcmp(t->metrics[i].name, name)) return i;
    return -1;
}
int rm_trainer_epoch(const rm_trainer *t) { return t->epoch; }
rm_net *rm_trainer_net(rm_trainer *t) { return t->net; }
rm_ema *rm_trainer_ema(rm_trainer *t) { return t->ema; }
const rm_dataset *rm_trainer_test_set(const rm_trainer *t) { return &t->test; }

rm_status rm_trainer_load_test(const rm_config *c, int64_t subset, rm_dataset *out) {
    rm_dataset test_full;
    RM_TRY(rm_dataset_load(c->dataset, c->data_dir[0] ? c->data_dir : NULL, 0, &test_full));
    if (subset > 0 && subset < test_full.n) {
        /* the same test subset for every run (fixed seed), so runs are comparable; the
         * shuffle does not depend on the size, so a smaller subset lies inside a larger
         * one (both kept in file order) */
        rm_rng fixed;
        rm_rng_derive(&fixed, 0, "test-subset");
        rm_status st = rm_dataset_split(&test_full, subset, 0, &fixed, out, NULL);
        rm_dataset_free(&test_full);
        return st;
    }
    *out = test_full;
    return RM_OK;
}

static rm_status load_data(rm_trainer *t) {
    const rm_config *c = &t->cfg;
    const char *dir = c->data_dir[0] ? c->data_dir : NULL;
    rm_dataset full;
    RM_TRY(rm_dataset_load(c->dataset, dir, 1, &full));
    /* the subset / validation split depends on the run seed */
    rm_rng r;
    rm_rng_derive(&r, c->seed, "split");
    rm_status st = RM_OK;
    if (c->train_subset > 0 || c->val_size > 0) {
        if (c->train_subset + c->val_size > full.n)
            st = rm_fail(RM_ERR_ARG, "train_subset (%lld) + val_size (%lld) exceeds the %lld training samples of %s",
                         (long long)c->train_subset, (long long)c->val_size, (long long)full.n, c->dataset);
        else
            st = rm_dataset_split(&full, c->train_subset, c->val_size, &r, &t->train,
                                  c->val_size > 0 ? &t->val : NULL);
        rm_dataset_free(&full);
    } else {
        t->train = full;
    }
    RM_TRY(st);
    RM_TRY(rm_trainer_load_test(c, c->test_subset, &t->test));
    t->aug = rm_augment_default(c->dataset);
    if (c->augment == 0) t->aug = (rm_augment){0, 0};
    if (c->augment == 1) t->aug = (rm_augment){4, 1};
    return RM_OK;
}

static rm_status alloc_buffers(rm_trainer *t) {
    size_t n = (size_t)t->B * t->d;
    if (!(t->x = rm_alloc(n * sizeof(float))) || !(t->delta = rm_alloc(n * sizeof(float)))) return RM_ERR_NOMEM;
    if (!(t->y = rm_alloc((size_t)t->B * sizeof(int32_t)))) return RM_ERR_NOMEM;
    if (!(t->ids = rm_alloc((size_t)t->B * sizeof(int64_t)))) return RM_ERR_NOMEM;
    return RM_OK;
}

static rm_status setup(rm_trainer *t) {
    const rm_config *c = &t->cfg;
    if (c->threads > 0) omp_set_num_threads(c->threads);
    RM_TRY(load_data(t));
    RM_TRY(rm_config_check_run(c, t->train.n)); /* threads vs CPUs, batch vs samples */
    /* every model takes the dataset's image shape */
    RM_TRY(rm_net_create(c->model, t->train.c, t->train.h, t->train.w, t->train.num_classes, &t->net));
    rm_precision prec;
    RM_TRY(rm_precision_parse(c->precision, &prec));
    RM_TRY(rm_net_set_precision(t->net, prec)); /* f32 where the CPU has no bf16 (provenance says so) */
    rm_net_init(t->net, c->seed);
    if (rm_config_ema_enabled(c)) RM_TRY(rm_ema_create(t->net, &t->ema));
    t->K = t->train.num_classes;
    t->d = rm_net_input_size(t->net);
    t->B = c->batch;
    size_t np;
    rm_param *params = rm_net_params(t->net, &np);
    RM_TRY(rm_sgd_create(params, np, (rm_sgd_config){c->momentum, c->weight_decay}, &t->opt));
    RM_TRY(rm_lr_schedule_init(&t->sched, c->lr_schedule, c->lr));
    RM_TRY(rm_batcher_init(&t->batcher, &t->train, t->B, 0));
    t->total_iterations = (long)c->epochs * rm_batcher_num_batches(&t->batcher);
    RM_TRY(rm_method_create(c, t->net, t->train.n, t->B, &t->method));
    RM_TRY(rm_attacker_create(t->net, t->B, &t->attacker));
    rm_rng_derive(&t->rng_shuffle, c->seed, "shuffle");
    rm_rng_derive(&t->rng_aug, c->seed, "augment");
    rm_rng_derive(&t->rng_attack, c->seed, "attack");
    RM_TRY(alloc_buffers(t));
    return define_metrics(t);
}

rm_status rm_trainer_create(const rm_config *cfg, rm_trainer **out) {
    *out = NULL;
    rm_trainer *t = rm_alloc(sizeof *t);
    if (!t) return RM_ERR_NOMEM;
    t->cfg = *cfg;
    rm_status st = setup(t);
    if (st != RM_OK) {
        rm_trainer_destroy(t);
        return st;
    }
    *out = t;
    return RM_OK;
}

void rm_trainer_destroy(rm_trainer *t) {
    if (!t) return;
    rm_method_destroy(t->method);
    rm_ema_destroy(t->ema);
    rm_attacker_destroy(t->attacker);
    rm_sgd_destroy(t->opt);
    rm_net_destroy(t->net);
    rm_batcher_free(&t->batcher);
    rm_dataset_free(&t->train);
    rm_dataset_free(&t->val);
    rm_dataset_free(&t->test);
    void *bufs[] = {t->x, t->delta, t->y, t->ids};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) rm_free(bufs[i]);
    rm_free(t);
}

rm_status rm_trainer_set_dp(rm_trainer *t, rm_dp *g) {
    int k = rm_dp_size(g);
    int64_t last = t->train.n % t->B;
    if (g && (t->B < k || (last > 0 && last < k && !t->batcher.drop_last)))
        return rm_fail(RM_ERR_ARG, "data parallel: batch %d (last batch of the epoch: %lld samples of %lld) "
                       "cannot be split over %d ranks", t->B, (long long)(last ? last : t->B),
                       (long long)t->train.n, k);
    RM_TRY(rm_method_set_dp(t->method, g));
    t->dp = g;
    return RM_OK;
}

/* ---- evaluation ---- */

/* Counts of one evaluation over its batches (AutoAttack: per component). */
typedef struct {
    int64_t correct, seen;
    rm_aa_stats aa;                          /* the last batch's (for the component list) */
    int64_t robust_after[RM_AA_MAX_PARTS];   /* summed over the batches */
    int64_t apgd_runs, zero_grad_runs;
} eval_counts;

static rm_status eval_batch(rm_trainer *t, const rm_eval_attack *atk, const float *x,
                            const int32_t *y, int B, rm_rng *rng, eval_counts *ec) {
    float eps = (float)(atk->eps > 0 ? atk->eps : t->cfg.eps);
    float *delta = t->delta;
    int correct = 0;
    switch (atk->kind) {
    case RM_EVAL_CLEAN:
        RM_TRY(rm_count_correct(t->attacker, RM_MODE_EVAL, x, NULL, y, B, &correct));
        ec->correct += correct;
        return RM_OK;
    case RM_EVAL_FGSM:
        RM_TRY(rm_fgsm(t->attacker, RM_MODE_EVAL, x, y, B, eps, eps, 1, rng, delta));
        break;
    case RM_EVAL_PGD:
    case RM_EVAL_CW:
        RM_TRY(rm_pgd(t->attacker, RM_MODE_EVAL, x, y, B, eps, eps / 4, atk->steps, atk->restarts,
                      atk->kind == RM_EVAL_CW ? RM_ATTACK_LOSS_CW : RM_ATTACK_LOSS_CE, rng, delta, NULL));
        break;
    case RM_EVAL_AUTO: {
        rm_aa_params p;
        rm_aa_params_default(&p);
        unsigned char *robust = rm_alloc((size_t)B);
        if (!robust) return RM_ERR_NOMEM;
        rm_status st = rm_autoattack(t->attacker, RM_MODE_EVAL, x, y, B, eps, atk->aa_parts, &p, rng, delta,
                                     robust, &ec->aa);
        rm_free(robust);
        RM_TRY(st);
        for (int i = 0; i < ec->aa.n_parts; i++) ec->robust_after[i] += ec->aa.robust_after[i];
        ec->apgd_runs += ec->aa.apgd_runs;
        ec->zero_grad_runs += ec->aa.zero_grad_runs;
        break;
    }
    }
    RM_TRY(rm_count_correct(t->attacker, RM_MODE_EVAL, x, delta, y, B, &correct));
    ec->correct += correct;
    return RM_OK;
}

rm_status rm_trainer_evaluate_full(rm_trainer *t, const rm_dataset *data, const rm_eval_attack *atk,
                                   rm_eval_result *res) {
    return rm_trainer_evaluate_as(t, data, atk, "eval", res);
}

rm_status rm_trainer_evaluate_as(rm_trainer *t, const rm_dataset *data, const rm_eval_attack *atk,
                                 const char *purpose_prefix, rm_eval_result *res) {
    if (!data) data = &t->test;
    rm_batcher b;
    RM_TRY(rm_batcher_init(&b, data, t->B, 0));
    rm_batcher_start_epoch(&b, NULL);
    /* a data-parallel group splits the batches: rank r takes batches r, r + K, ... */
    const int rank = rm_dp_rank(t->dp), size = rm_dp_size(t->dp);
    int64_t count, batch = 0;
    eval_counts ec;
    memset(&ec, 0, sizeof ec);
    rm_status st;
    while ((st = rm_batcher_next(&b, t->x, t->y, NULL, NULL, NULL, &count)) == RM_OK && count > 0) {
        if (batch++ % size != rank) continue;
        /* evaluation randomness is its own stream per epoch, attack and batch, so
         * evaluating (or not) never changes the training trajectory and a batch gets
         * the same numbers whichever rank evaluates it */
        rm_rng rng;
        char purpose[96];
        snprintf(purpose, sizeof purpose, "%s:%d:%s:%lld", purpose_prefix, t->epoch, atk->name,
                 (long long)(batch - 1));
        rm_rng_derive(&rng, t->cfg.seed, purpose);
        st = eval_batch(t, atk, t->x, t->y, (int)count, &rng, &ec);
        if (st != RM_OK) break;
        ec.seen += count;
    }
    rm_batcher_free(&b);
    /* every rank joins the sum even after a local failure (its status is returned);
     * the counts are integers, exact in double */
    double sums[4 + RM_AA_MAX_PARTS];
    sums[0] = (double)ec.correct, sums[1] = (double)ec.seen;
    sums[2] = (double)ec.apgd_runs, sums[3] = (double)ec.zero_grad_runs;
    for (int i = 0; i < RM_AA_MAX_PARTS; i++) sums[4 + i] = (double)ec.robust_after[i];
    rm_status sum_st = t->dp ? rm_dp_allreduce(t->dp, sums, 4 + RM_AA_MAX_PARTS) : RM_OK;
    RM_TRY(st);
    RM_TRY(sum_st);
    if (t->dp) {
        ec.correct = (int64_t)sums[0], ec.seen = (int64_t)sums[1];
        ec.apgd_runs = (int64_t)sums[2], ec.zero_grad_runs = (int64_t)sums[3];
        for (int i = 0; i < RM_AA_MAX_PARTS; i++) ec.robust_after[i] = (int64_t)sums[4 + i];
    }
    const double total = (double)ec.seen;
    memset(res, 0, sizeof *res);
    res->accuracy = ec.seen ? 100.0 * (double)ec.correct / total : NAN;
    res->zero_grad = ec.apgd_runs ? 100.0 * (double)ec.zero_grad_runs / (double)ec.apgd_runs : NAN;
    if (atk->kind == RM_EVAL_AUTO) {
        /* the component list is the same for every batch; a group's leader always
         * evaluates batch 0, so it has the list */
        res->n_parts = ec.aa.n_parts;
        for (int i = 0; i < ec.aa.n_parts; i++) {
            res->part[i] = ec.aa.part[i];
            res->part_accuracy[i] = ec.seen ? 100.0 * (double)ec.robust_after[i] / total : NAN;
        }
    }
    return RM_OK;
}

rm_status rm_trainer_evaluate(rm_trainer *t, const rm_dataset *data, const rm_eval_attack *atk,
                              double *accuracy) {
    rm_eval_result res;
    RM_TRY(rm_trainer_evaluate_full(t, data, atk, &res));
    *accuracy = res.accuracy;
    return RM_OK;
}

/* ---- one epoch ---- */

/* One SGD step: the method's gradients, then the optimiser at this iteration's rate. */
static rm_status train_step(rm_trainer *t, int B, epoch_sums *sums) {
    rm_step_terms s;
    RM_TRY(rm_method_gradients(t->method, t->x, t->y, t->ids, B, &t->rng_attack, &s));
    rm_sgd_step(t->opt, rm_lr_at(&t->sched, t->iteration, t->total_iterations));
    rm_net_params_changed(t->net);
    if (t->ema) rm_ema_after_step(t->ema, &t->cfg, &s, NULL);
    t->iteration++;
    sums->loss += s.loss * B;
    sums->ce += s.ce * B;
    sums->mse += s.mse * B;
    sums->amr += s.amr * B;
    sums->agr += s.agr * B;
    sums->trades += s.trades * B;
    sums->correct += s.correct;
    sums->seen += B;
    sums->batches++;
    return RM_OK;
}

rm_status rm_trainer_run_epoch(rm_trainer *t, double *row, rm_batch_hook hook, void *ctx) {
    const rm_config *c = &t->cfg;
    for (int i = 0; i < t->n_metrics; i++) row[i] = NAN;
    if (!t->in_epoch) {
        rm_method_start_epoch(t->method, t->epoch);
        rm_batcher_start_epoch(&t->batcher, &t->rng_shuffle);
        memset(&t->sums, 0, sizeof t->sums);
        t->epoch_train_seconds = 0;
        t->in_epoch = 1;
    }
    double t0 = rm_now_seconds() - t->epoch_train_seconds;
    int64_t nb = rm_batcher_num_batches(&t->batcher), count;
    const rm_augment *aug = (t->aug.pad || t->aug.flip) ? &t->aug : NULL;
    while (1) {
        RM_TRY(rm_batcher_next(&t->batcher, t->x, t->y, t->ids, aug, &t->rng_aug, &count));
        if (count == 0) break;
        RM_TRY(train_step(t, (int)count, &t->sums));
        int64_t done = t->sums.batches;
        if (hook && hook(ctx, t->epoch + 1, done, nb, rm_now_seconds() - t0) && done < nb) {
            t->epoch_train_seconds = rm_now_seconds() - t0;
            return rm_fail(RM_ERR_INTERRUPTED, "stopped at batch %lld of %lld of epoch %d",
                           (long long)done, (long long)nb, t->epoch + 1);
        }
    }
    epoch_sums sums = t->sums;
    t->in_epoch = 0;
    double t1 = rm_now_seconds();
    t->epoch++;

    double n = (double)sums.seen;
    row[0] = t->epoch;
    row[1] = rm_lr_at(&t->sched, t->iteration - 1, t->total_iterations);
    row[2] = sums.loss / n;
    row[3] = sums.ce / n;
    if (rm_method_has_term(t->method, "mse")) row[4] = sums.mse / n;
    if (rm_method_has_term(t->method, "amr")) row[5] = sums.amr / n;
    if (rm_method_has_term(t->method, "agr")) row[6] = sums.agr / n;
    if (rm_method_has_term(t->method, "trades")) row[7] = sums.trades / n;
    row[8] = 100.0 * (double)sums.correct / n;

    int due = t->epoch % c->eval_every == 0 || t->epoch == c->epochs;
    if (due) {
        /* the EMA model, when the run has one and eval_model says so, is swapped into
         * the net for the evaluations and out again (exactly) afterwards */
        int use_ema = t->ema && !strcmp(c->eval_model, "ema");
        if (use_ema) rm_ema_swap(t->ema);
        rm_status st = RM_OK;
        rm_eval_result res[RM_CFG_MAX_EVAL];
        for (int i = 0; i < c->n_eval && st == RM_OK; i++) {
            st = rm_trainer_evaluate_full(t, NULL, &c->eval[i], &res[i]);
            if (st == RM_OK) row[t->m_eval0 + i] = res[i].accuracy;
        }
        if (st == RM_OK && t->epoch == c->epochs) st = rm_final_evaluate(t, row); /* final_* */
        if (use_ema) rm_ema_swap(t->ema);
        RM_TRY(st);
        if (t->m_eval_ema >= 0) row[t->m_eval_ema] = use_ema;
        int f, p;
        if (rm_config_co_attacks(c, &f, &p))
            row[t->m_eval0 + c->n_eval] =
                rm_config_co_flag(c, row[t->m_eval0 + f] / 100.0, row[t->m_eval0 + p] / 100.0);
        rm_eval_extra_values(c, res, row + t->m_extra0);
    }
    double t2 = rm_now_seconds();
    int m = t->m_eval0 + c->n_eval + 1;
    row[m] = t1 - t0;
    row[m + 1] = t2 - t1;
    row[m + 2] = t2 - t0;
    row[m + 3] = n / (t1 - t0);
    return RM_OK;
}
