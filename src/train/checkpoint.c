/* Trainer state <-> checkpoint: everything an exact resume needs (weights and BN
 * statistics, the EMA model's, SGD momentum, PGI buffers, the RNG streams, epoch and
 * iteration). */
#include <stdio.h>
#include <string.h>

#include "regmix/runfile.h"
#include "train/trainer_internal.h"

/* One list of what a checkpoint holds, walked in both directions: a transfer writes
 * every tensor (save) or reads it back into the same place (load). */
typedef struct {
    rm_checkpoint_writer *w; /* saving, or */
    rm_checkpoint_reader *r; /* loading */
} transfer;

static rm_status tensor(transfer *x, const char *name, rm_dtype dtype, int ndim, const int64_t *dims,
                        void *data) {
    if (x->w) return rm_checkpoint_add(x->w, name, dtype, ndim, dims, data);
    return rm_checkpoint_read(x->r, name, dtype, ndim, dims, data);
}

/* model/<state_dict name> and, with the optimiser, optimizer/<name>.momentum */
static rm_status transfer_params(rm_trainer *t, transfer *x, int with_optimizer) {
    size_t np;
    rm_param *p = rm_net_params(t->net, &np);
    char name[128];
    for (size_t i = 0; i < np; i++) {
        snprintf(name, sizeof name, "model/%s", p[i].name);
        RM_TRY(tensor(x, name, RM_DT_F32, p[i].ndim, p[i].dims, p[i].data));
        float *mom = with_optimizer ? rm_sgd_momentum(t->opt, i) : NULL;
        if (!mom) continue;
        snprintf(name, sizeof name, "optimizer/%s.momentum", p[i].name);
        RM_TRY(tensor(x, name, RM_DT_F32, p[i].ndim, p[i].dims, mom));
    }
    if (x->r) rm_net_params_changed(t->net);
    return RM_OK;
}

/* The EMA model: ema/<state_dict name> for every parameter and BN statistic (the same
 * names and shapes as model/, so either group loads into the PyTorch twin), and
 * ema_updates, its update count t. */
static rm_status transfer_ema(rm_trainer *t, transfer *x) {
    if (!t->ema) return RM_OK;
    size_t np;
    rm_param *p = rm_net_params(t->net, &np);
    char name[128];
    for (size_t i = 0; i < np; i++) {
        snprintf(name, sizeof name, "ema/%s", p[i].name);
        RM_TRY(tensor(x, name, RM_DT_F32, p[i].ndim, p[i].dims, rm_ema_shadow(t->ema, i)));
    }
    int64_t updates = rm_ema_updates(t->ema);
    RM_TRY(tensor(x, "ema_updates", RM_DT_I64, 0, NULL, &updates));
    if (updates < 0) return rm_fail(RM_ERR_FORMAT, "checkpoint: ema_updates %lld is negative", (long long)updates);
    rm_ema_set_updates(t->ema, updates);
    return RM_OK;
}

/* The half-done epoch of a run preempted at a batch boundary: present in the
 * checkpoint exactly when t->in_epoch was set when it was written. */
static rm_status transfer_epoch(rm_trainer *t, transfer *x) {
    if (x->r) t->in_epoch = rm_checkpoint_has(x->r, "epoch/pos");
    if (!t->in_epoch) return RM_OK;
    int64_t n = t->train.n, six = 6, three = 3;
    epoch_sums *s = &t->sums;
    double f[6] = {s->loss, s->ce, s->mse, s->amr, s->agr, s->trades};
    int64_t counts[3] = {s->correct, s->seen, s->batches};
    RM_TRY(tensor(x, "epoch/order", RM_DT_I64, 1, &n, t->batcher.order));
    RM_TRY(tensor(x, "epoch/pos", RM_DT_I64, 0, NULL, &t->batcher.pos));
    RM_TRY(tensor(x, "epoch/loss_sums", RM_DT_F64, 1, &six, f));
    RM_TRY(tensor(x, "epoch/counts", RM_DT_I64, 1, &three, counts));
    RM_TRY(tensor(x, "epoch/train_seconds", RM_DT_F64, 0, NULL, &t->epoch_train_seconds));
    if (x->r) *s = (epoch_sums){f[0], f[1], f[2], f[3], f[4], f[5], counts[0], counts[1], counts[2]};
    return RM_OK;
}

static rm_status transfer_state(rm_trainer *t, transfer *x) {
    RM_TRY(transfer_params(t, x, 1));
    RM_TRY(transfer_ema(t, x));
    rm_pgi_state *pgi = rm_method_pgi(t->method);
    if (pgi) {
        int64_t dims[2] = {pgi->n, (int64_t)pgi->d};
        RM_TRY(tensor(x, "attack/D", RM_DT_F32, 2, dims, pgi->D));
        RM_TRY(tensor(x, "attack/M", RM_DT_F32, 2, dims, pgi->M));
        RM_TRY(tensor(x, "attack/fresh", RM_DT_U8, 1, dims, pgi->fresh));
    }
    int64_t four = 4;
    RM_TRY(tensor(x, "rng/shuffle", RM_DT_U64, 1, &four, t->rng_shuffle.s));
    RM_TRY(tensor(x, "rng/augment", RM_DT_U64, 1, &four, t->rng_aug.s));
    RM_TRY(tensor(x, "rng/attack", RM_DT_U64, 1, &four, t->rng_attack.s));
    return transfer_epoch(t, x);
}

rm_status rm_trainer_save_checkpoint(rm_trainer *t, const char *run_path, const char *config_hash) {
    transfer x = {0};
    RM_TRY(rm_checkpoint_begin(run_path, config_hash, &x.w));
    rm_status st = transfer_state(t, &x);
    if (st != RM_OK) {
        rm_checkpoint_abort(x.w);
        return st;
    }
    rm_checkpoint_meta meta = {.epoch = t->epoch, .iteration = t->iteration,
                               .steps = rm_sgd_steps_taken(t->opt)};
    return rm_checkpoint_commit(x.w, &meta);
}

rm_status rm_trainer_load_checkpoint(rm_trainer *t, const char *run_path, int weights_only) {
    transfer x = {0};
    rm_checkpoint_meta meta;
    RM_TRY(rm_checkpoint_open(run_path, &x.r, &meta));
    /* weights only: regmix eval of a finished run */
    rm_status st = weights_only ? transfer_params(t, &x, 0) : transfer_state(t, &x);
    if (st == RM_OK && weights_only) st = transfer_ema(t, &x);
    rm_checkpoint_close(x.r);
    RM_TRY(st);
    if (meta.epoch < 0 || meta.epoch > t->cfg.epochs)
        return rm_fail(RM_ERR_FORMAT, "checkpoint of %s: epoch %lld outside [0, %d]", run_path,
                       (long long)meta.epoch, t->cfg.epochs);
    /* the epoch also keys the evaluation RNG streams: evaluating a checkpoint with the
     * run's own attacks and test subset reproduces the run's numbers exactly */
    t->epoch = (int)meta.epoch;
    if (!weights_only) {
        t->iteration = (long)meta.iteration;
        rm_sgd_set_steps_taken(t->opt, (long)meta.steps);
    }
    return RM_OK;
}
