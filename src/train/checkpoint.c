/* Trainer state <-> checkpoint: everything an exact resume needs (weights and BN
 * statistics, SGD momentum, PGI buffers, the RNG streams, epoch and iteration). */
#include <stdio.h>
#include <string.h>

#include "regmix/runfile.h"
#include "train/trainer_internal.h"

typedef struct {
    const char *name;
    rm_rng *rng;
} rng_slot;

static int rng_slots(rm_trainer *t, rng_slot *out) {
    out[0] = (rng_slot){"rng/shuffle", &t->rng_shuffle};
    out[1] = (rng_slot){"rng/augment", &t->rng_aug};
    out[2] = (rng_slot){"rng/attack", &t->rng_attack};
    return 3;
}

static void pack_sums(const epoch_sums *s, double *f, int64_t *i) {
    f[0] = s->loss, f[1] = s->ce, f[2] = s->mse, f[3] = s->amr, f[4] = s->agr, f[5] = s->trades;
    i[0] = s->correct, i[1] = s->seen, i[2] = s->batches;
}

static void unpack_sums(epoch_sums *s, const double *f, const int64_t *i) {
    *s = (epoch_sums){f[0], f[1], f[2], f[3], f[4], f[5], i[0], i[1], i[2]};
}

static rm_status add_params(rm_trainer *t, rm_checkpoint_writer *w) {
    size_t np;
    rm_param *p = rm_net_params(t->net, &np);
    char name[128];
    for (size_t i = 0; i < np; i++) {
        snprintf(name, sizeof name, "model/%s", p[i].name);
        RM_TRY(rm_checkpoint_add(w, name, RM_DT_F32, p[i].ndim, p[i].dims, p[i].data));
        float *mom = rm_sgd_momentum(t->opt, i);
        if (!mom) continue;
        snprintf(name, sizeof name, "optimizer/%s.momentum", p[i].name);
        RM_TRY(rm_checkpoint_add(w, name, RM_DT_F32, p[i].ndim, p[i].dims, mom));
    }
    return RM_OK;
}

static rm_status add_state(rm_trainer *t, rm_checkpoint_writer *w) {
    RM_TRY(add_params(t, w));
    rm_pgi_state *pgi = rm_method_pgi(t->method);
    if (pgi) {
        int64_t dims[2] = {pgi->n, (int64_t)pgi->d};
        RM_TRY(rm_checkpoint_add(w, "attack/D", RM_DT_F32, 2, dims, pgi->D));
        RM_TRY(rm_checkpoint_add(w, "attack/M", RM_DT_F32, 2, dims, pgi->M));
        RM_TRY(rm_checkpoint_add(w, "attack/fresh", RM_DT_U8, 1, dims, pgi->fresh));
    }
    rng_slot r[4];
    int64_t four = 4;
    for (int i = 0, n = rng_slots(t, r); i < n; i++)
        RM_TRY(rm_checkpoint_add(w, r[i].name, RM_DT_U64, 1, &four, r[i].rng->s));
    if (t->in_epoch) { /* preempted at a batch boundary: the half-done epoch */
        int64_t n = t->train.n, six = 6, three = 3;
        double loss_sums[6];
        int64_t counts[3];
        pack_sums(&t->sums, loss_sums, counts);
        RM_TRY(rm_checkpoint_add(w, "epoch/order", RM_DT_I64, 1, &n, t->batcher.order));
        RM_TRY(rm_checkpoint_add(w, "epoch/pos", RM_DT_I64, 0, NULL, &t->batcher.pos));
        RM_TRY(rm_checkpoint_add(w, "epoch/loss_sums", RM_DT_F64, 1, &six, loss_sums));
        RM_TRY(rm_checkpoint_add(w, "epoch/counts", RM_DT_I64, 1, &three, counts));
        RM_TRY(rm_checkpoint_add(w, "epoch/train_seconds", RM_DT_F64, 0, NULL, &t->epoch_train_seconds));
    }
    return RM_OK;
}

rm_status rm_trainer_save_checkpoint(rm_trainer *t, const char *run_path, const char *config_hash) {
    rm_checkpoint_writer *w;
    RM_TRY(rm_checkpoint_begin(run_path, config_hash, &w));
    rm_status st = add_state(t, w);
    if (st != RM_OK) {
        rm_checkpoint_abort(w);
        return st;
    }
    rm_checkpoint_meta meta = {.epoch = t->epoch, .iteration = t->iteration,
                               .steps = rm_sgd_steps_taken(t->opt)};
    return rm_checkpoint_commit(w, &meta);
}

/* Model weights only (regmix eval, and the first part of a resume). */
static rm_status read_params(rm_trainer *t, rm_checkpoint_reader *r, int with_optimizer) {
    size_t np;
    rm_param *p = rm_net_params(t->net, &np);
    char name[128];
    for (size_t i = 0; i < np; i++) {
        snprintf(name, sizeof name, "model/%s", p[i].name);
        RM_TRY(rm_checkpoint_read(r, name, RM_DT_F32, p[i].ndim, p[i].dims, p[i].data));
        float *mom = with_optimizer ? rm_sgd_momentum(t->opt, i) : NULL;
        if (!mom) continue;
        snprintf(name, sizeof name, "optimizer/%s.momentum", p[i].name);
        RM_TRY(rm_checkpoint_read(r, name, RM_DT_F32, p[i].ndim, p[i].dims, mom));
    }
    rm_net_params_changed(t->net);
    return RM_OK;
}

static rm_status read_state(rm_trainer *t, rm_checkpoint_reader *r) {
    RM_TRY(read_params(t, r, 1));
    rm_pgi_state *pgi = rm_method_pgi(t->method);
    if (pgi) {
        int64_t dims[2] = {pgi->n, (int64_t)pgi->d};
        RM_TRY(rm_checkpoint_read(r, "attack/D", RM_DT_F32, 2, dims, pgi->D));
        RM_TRY(rm_checkpoint_read(r, "attack/M", RM_DT_F32, 2, dims, pgi->M));
        RM_TRY(rm_checkpoint_read(r, "attack/fresh", RM_DT_U8, 1, dims, pgi->fresh));
    }
    rng_slot s[4];
    int64_t four = 4;
    for (int i = 0, n = rng_slots(t, s); i < n; i++)
        RM_TRY(rm_checkpoint_read(r, s[i].name, RM_DT_U64, 1, &four, s[i].rng->s));
    t->in_epoch = rm_checkpoint_has(r, "epoch/pos");
    if (t->in_epoch) {
        int64_t n = t->train.n, six = 6, three = 3;
        double loss_sums[6];
        int64_t counts[3];
        RM_TRY(rm_checkpoint_read(r, "epoch/order", RM_DT_I64, 1, &n, t->batcher.order));
        RM_TRY(rm_checkpoint_read(r, "epoch/pos", RM_DT_I64, 0, NULL, &t->batcher.pos));
        RM_TRY(rm_checkpoint_read(r, "epoch/loss_sums", RM_DT_F64, 1, &six, loss_sums));
        RM_TRY(rm_checkpoint_read(r, "epoch/counts", RM_DT_I64, 1, &three, counts));
        unpack_sums(&t->sums, loss_sums, counts);
        RM_TRY(rm_checkpoint_read(r, "epoch/train_seconds", RM_DT_F64, 0, NULL, &t->epoch_train_seconds));
    }
    return RM_OK;
}

rm_status rm_trainer_load_checkpoint(rm_trainer *t, const char *run_path, int weights_only) {
    rm_checkpoint_reader *r;
    rm_checkpoint_meta meta;
    RM_TRY(rm_checkpoint_open(run_path, &r, &meta));
    rm_status st = weights_only ? read_params(t, r, 0) : read_state(t, r);
    rm_checkpoint_close(r);
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
