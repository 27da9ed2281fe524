/* Epoch orders and batch filling. The batch keeps the ids of its samples so that
 * per-sample state follows a sample through every shuffle. */
#include "regmix/data.h"

#include <string.h>

rm_status rm_batcher_init(rm_batcher *b, const rm_dataset *data, int64_t batch_size,
                          int drop_last) {
    memset(b, 0, sizeof *b);
    if (!data || data->n < 1 || !data->images)
        return rm_fail(RM_ERR_ARG, "batcher: empty dataset");
    if (batch_size < 1)
        return rm_fail(RM_ERR_ARG, "batcher for %s: batch size %lld < 1", data->name,
                       (long long)batch_size);
    if ((uint64_t)data->n > UINT32_MAX)
        return rm_fail(RM_ERR_ARG, "batcher for %s: %lld samples is too many to shuffle",
                       data->name, (long long)data->n);
    b->order = rm_alloc((size_t)data->n * sizeof *b->order);
    if (!b->order) return RM_ERR_NOMEM;
    b->data = data;
    b->batch_size = batch_size;
    b->drop_last = drop_last ? 1 : 0;
    rm_batcher_start_epoch(b, NULL);
    return RM_OK;
}

void rm_batcher_free(rm_batcher *b) {
    if (!b) return;
    rm_free(b->order);
    memset(b, 0, sizeof *b);
}

void rm_batcher_start_epoch(rm_batcher *b, rm_rng *rng) {
    int64_t n = b->data->n;
    for (int64_t i = 0; i < n; i++) b->order[i] = i;
    if (rng) {
        for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
            int64_t j = (int64_t)rm_rng_below(rng, (uint32_t)(i + 1));
            int64_t t = b->order[i];
            b->order[i] = b->order[j];
            b->order[j] = t;
        }
    }
    b->pos = 0;
}

int64_t rm_batcher_num_batches(const rm_batcher *b) {
    int64_t n = b->data->n;
    return b->drop_last ? n / b->batch_size : (n + b->batch_size - 1) / b->batch_size;
}

rm_status rm_batcher_next(rm_batcher *b, float *images, int32_t *labels, int64_t *ids,
                          const rm_augment *aug, rm_rng *aug_rng, int64_t *count) {
    *count = 0;
    const rm_dataset *d = b->data;
    int augmenting = aug && (aug->pad > 0 || aug->flip);
    if (aug && aug->pad < 0)
        return rm_fail(RM_ERR_ARG, "augmentation of %s: pad %d < 0", d->name, aug->pad);
    if (augmenting && !aug_rng)
        return rm_fail(RM_ERR_ARG, "augmentation of %s requested without an rng", d->name);
    int64_t left = d->n - b->pos;
    if (left <= 0 || (b->drop_last && left < b->batch_size)) return RM_OK;
    int64_t k = left < b->batch_size ? left : b->batch_size;
    size_t per = (size_t)d->c * (size_t)d->h * (size_t)d->w;
    for (int64_t j = 0; j < k; j++) {
        int64_t id = b->order[b->pos + j];
        if (ids) ids[j] = id;
        if (labels) labels[j] = d->labels[id];
        if (!images) continue;
        const float *src = d->images + (size_t)id * per;
        float *dst = images + (size_t)j * per;
        if (augmenting)
            rm_augment_random(aug, aug_rng, src, dst, d->c, d->h, d->w);
        else
            memcpy(dst, src, per * sizeof *dst);
    }
    b->pos += k;
    *count = k;
    return RM_OK;
}
