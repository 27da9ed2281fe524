/* Batches, shuffling, augmentation and the subset / validation split, on synthetic
 * datasets whose every pixel encodes its sample id, so that any mix-up shows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regmix/data.h"

/* n samples of c x h x w; pixel p of sample i = i * 1000 + p; label i % k. */
static void make(rm_dataset *d, int64_t n, int c, int h, int w, int k) {
    assert_int_equal(rm_dataset_alloc(d, "synthetic", n, c, h, w, k), RM_OK);
    size_t per = (size_t)c * h * w;
    for (int64_t i = 0; i < n; i++) {
        for (size_t p = 0; p < per; p++) d->images[i * per + p] = (float)(i * 1000 + (int64_t)p);
        d->labels[i] = (int32_t)(i % k);
    }
}

/* Runs one epoch; writes the ids in visiting order into all_ids, checks that every slot
 * holds the image and label of the id it reports. Returns the number of samples. */
static int64_t run_epoch(rm_batcher *b, rm_rng *rng, int64_t *all_ids, int64_t *nbatches,
                         int64_t *last_size) {
    const rm_dataset *d = b->data;
    size_t per = (size_t)d->c * d->h * d->w;
    float *img = malloc((size_t)b->batch_size * per * sizeof *img);
    int32_t *lab = malloc((size_t)b->batch_size * sizeof *lab);
    int64_t *ids = malloc((size_t)b->batch_size * sizeof *ids);
    assert_non_null(img);
    rm_batcher_start_epoch(b, rng);
    int64_t total = 0, count;
    *nbatches = 0;
    for (;;) {
        assert_int_equal(rm_batcher_next(b, img, lab, ids, NULL, NULL, &count), RM_OK);
        if (count == 0) break;
        (*nbatches)++;
        *last_size = count;
        for (int64_t j = 0; j < count; j++) {
            assert_true(ids[j] >= 0 && ids[j] < d->n);
            assert_memory_equal(img + j * per, d->images + ids[j] * per, per * sizeof(float));
            assert_int_equal(lab[j], d->labels[ids[j]]);
            /* the pixel value still tells the sample: independent of the dataset arrays */
            assert_true(img[j * per] == (float)(ids[j] * 1000));
            all_ids[total++] = ids[j];
        }
    }
    free(img);
    free(lab);
    free(ids);
    return total;
}

static void assert_permutation(const int64_t *ids, int64_t n) {
    char *seen = calloc((size_t)n, 1);
    for (int64_t i = 0; i < n; i++) {
        assert_true(ids[i] >= 0 && ids[i] < n);
        assert_int_equal(seen[ids[i]], 0);
        seen[ids[i]] = 1;
    }
    free(seen);
}

static void test_epoch_is_permutation(void **state) {
    (void)state;
    rm_dataset d;
    make(&d, 103, 2, 3, 4, 10);
    rm_batcher b;
    assert_int_equal(rm_batcher_init(&b, &d, 10, 0), RM_OK);
    assert_int_equal(rm_batcher_num_batches(&b), 11);
    rm_rng rng;
    rm_rng_seed(&rng, 1234);
    int64_t ids[103], nb, last = 0;
    assert_int_equal(run_epoch(&b, &rng, ids, &nb, &last), 103);
    assert_int_equal(nb, 11);
    assert_int_equal(last, 3); /* 103 = 10 * 10 + 3 */
    assert_permutation(ids, 103);
    int moved = 0;
    for (int i = 0; i < 103; i++) moved += ids[i] != i;
    assert_true(moved > 50); /* really shuffled */
    /* evaluation order: identity */
    assert_int_equal(run_epoch(&b, NULL, ids, &nb, &last), 103);
    for (int i = 0; i < 103; i++) assert_int_equal(ids[i], i);
    rm_batcher_free(&b);
    rm_dataset_free(&d);
}

static void test_drop_last(void **state) {
    (void)state;
    rm_dataset d;
    make(&d, 103, 1, 2, 2, 10);
    rm_batcher b;
    assert_int_equal(rm_batcher_init(&b, &d, 10, 1), RM_OK);
    assert_int_equal(rm_batcher_num_batches(&b), 10);
    rm_rng rng;
    rm_rng_seed(&rng, 5);
    int64_t ids[103], nb, last = 0;
    assert_int_equal(run_epoch(&b, &rng, ids, &nb, &last), 100);
    assert_int_equal(nb, 10);
    assert_int_equal(last, 10);
    char seen[103] = {0};
    for (int i = 0; i < 100; i++) {
        assert_int_equal(seen[ids[i]], 0);
        seen[ids[i]] = 1;
    }
    /* the epoch stays over */
    int64_t count = -1;
    assert_int_equal(rm_batcher_next(&b, NULL, NULL, NULL, NULL, NULL, &count), RM_OK);
    assert_int_equal(count, 0);
    rm_batcher_free(&b);
    rm_dataset_free(&d);
}

static void test_shuffle_determinism(void **state) {
    (void)state;
    rm_dataset d;
    make(&d, 50, 1, 1, 1, 10);
    rm_batcher b;
    assert_int_equal(rm_batcher_init(&b, &d, 7, 0), RM_OK);
    int64_t a[50], a2[50], c[50], e2[50], nb, last;
    rm_rng r1, r2, r3;
    rm_rng_seed(&r1, 42);
    rm_rng_seed(&r2, 42);
    rm_rng_seed(&r3, 43);
    run_epoch(&b, &r1, a, &nb, &last);
    run_epoch(&b, &r2, a2, &nb, &last);
    run_epoch(&b, &r3, c, &nb, &last);
    assert_memory_equal(a, a2, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    run_epoch(&b, &r1, e2, &nb, &last); /* the next epoch of the same stream differs */
    assert_memory_not_equal(a, e2, sizeof a);
    assert_permutation(e2, 50);
    rm_batcher_free(&b);
    rm_dataset_free(&d);
}

/* 1 x 3 x 3 image [[1,2,3],[4,5,6],[7,8,9]]; expectations worked out by hand from
 * torchvision's definition: pad with zeros, crop the window at (dy, dx), then mirror. */
static void test_augment_known_offsets(void **state) {
    (void)state;
    const float in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float out[9];
    rm_augment_image(in, out, 1, 3, 3, 1, 0, 0, 0); /* shifted down-right */
    const float e1[9] = {0, 0, 0, 0, 1, 2, 0, 4, 5};
    assert_memory_equal(out, e1, sizeof e1);
    rm_augment_image(in, out, 1, 3, 3, 1, 2, 1, 0); /* shifted up */
    const float e2[9] = {4, 5, 6, 7, 8, 9, 0, 0, 0};
    assert_memory_equal(out, e2, sizeof e2);
    rm_augment_image(in, out, 1, 3, 3, 0, 0, 0, 1); /* flip only */
    const float e3[9] = {3, 2, 1, 6, 5, 4, 9, 8, 7};
    assert_memory_equal(out, e3, sizeof e3);
    rm_augment_image(in, out, 1, 3, 3, 1, 1, 2, 1); /* crop to the left, then mirror */
    const float e4[9] = {0, 3, 2, 0, 6, 5, 0, 9, 8};
    assert_memory_equal(out, e4, sizeof e4);
    rm_augment_image(in, out, 1, 3, 3, 0, 0, 0, 0); /* identity */
    assert_memory_equal(out, in, sizeof in);
    rm_augment_image(in, out, 1, 3, 3, 1, 1, 1, 0); /* centre window of the padding */
    assert_memory_equal(out, in, sizeof in);
}

/* Every channel gets the same window; a 4-wide pad of a 32x32 image (the CIFAR setting). */
static void test_augment_channels(void **state) {
    (void)state;
    enum { C = 3, S = 32 };
    static float in[C * S * S], out[C * S * S];
    for (int i = 0; i < C * S * S; i++) in[i] = (float)(i + 1);
    rm_augment_image(in, out, C, S, S, 4, 6, 1, 0); /* rows +2, columns -3 */
    for (int k = 0; k < C; k++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                int sy = y + 2, sx = x - 3;
                float want = (sy < S && sx >= 0) ? (float)(k * S * S + sy * S + sx + 1) : 0.0f;
                assert_true(out[(k * S + y) * S + x] == want);
            }
}

/* Randomly augmented batches: each slot is its sample's image under some admissible
 * (dy, dx, flip), all offsets and both flips occur, and no draw happens without aug. */
static void test_augment_in_batches(void **state) {
    (void)state;
    enum { P = 2 };
    rm_dataset d;
    make(&d, 64, 2, 5, 6, 10);
    size_t per = 2 * 5 * 6;
    rm_batcher b;
    assert_int_equal(rm_batcher_init(&b, &d, 64, 0), RM_OK);
    rm_rng order, aug_rng;
    rm_rng_seed(&order, 1);
    rm_rng_seed(&aug_rng, 2);
    rm_augment aug = {P, 1};
    float *img = malloc(64 * per * sizeof *img), cand[60];
    int64_t ids[64], count;
    int seen_dy[2 * P + 1] = {0}, seen_dx[2 * P + 1] = {0}, seen_flip[2] = {0};
    for (int epoch = 0; epoch < 8; epoch++) {
        rm_batcher_start_epoch(&b, &order);
        assert_int_equal(rm_batcher_next(&b, img, NULL, ids, &aug, &aug_rng, &count), RM_OK);
        assert_int_equal(count, 64);
        for (int j = 0; j < 64; j++) {
            int matches = 0;
            for (int dy = 0; dy <= 2 * P; dy++)
                for (int dx = 0; dx <= 2 * P; dx++)
                    for (int f = 0; f < 2; f++) {
                        rm_augment_image(d.images + ids[j] * per, cand, 2, 5, 6, P, dy, dx, f);
                        if (memcmp(cand, img + j * per, sizeof cand) == 0) {
                            matches++;
                            seen_dy[dy] = seen_dx[dx] = seen_flip[f] = 1;
                        }
                    }
            assert_int_equal(matches, 1); /* unique: the pixel values are all distinct */
        }
    }
    for (int i = 0; i <= 2 * P; i++) assert_true(seen_dy[i] && seen_dx[i]);
    assert_true(seen_flip[0] && seen_flip[1]);
    /* augmentation requested without an rng is refused */
    rm_batcher_start_epoch(&b, NULL);
    rm_error_clear();
    assert_int_equal(rm_batcher_next(&b, img, NULL, ids, &aug, NULL, &count), RM_ERR_ARG);
    rm_error_clear();
    /* {0, 0}: identity, and the rng is not touched */
    rm_augment none = {0, 0};
    rm_rng before = aug_rng;
    assert_int_equal(rm_batcher_next(&b, img, NULL, ids, &none, &aug_rng, &count), RM_OK);
    assert_memory_equal(&before, &aug_rng, sizeof before);
    assert_memory_equal(img, d.images, 64 * per * sizeof(float));
    free(img);
    rm_batcher_free(&b);
    rm_dataset_free(&d);
}

static void test_augment_defaults(void **state) {
    (void)state;
    rm_augment a = rm_augment_default("cifar10");
    assert_int_equal(a.pad, 4);
    assert_int_equal(a.flip, 1);
    a = rm_augment_default("cifar100");
    assert_int_equal(a.pad, 4);
    assert_int_equal(a.flip, 1);
    a = rm_augment_default("fashion-mnist");
    assert_int_equal(a.pad, 0);
    assert_int_equal(a.flip, 0);
    a = rm_augment_default("mnist");
    assert_int_equal(a.pad, 0);
    assert_int_equal(a.flip, 0);
}

static void check_part(const rm_dataset *full, const rm_dataset *part) {
    size_t per = (size_t)full->c * full->h * full->w;
    for (int64_t j = 0; j < part->n; j++) {
        int64_t s = part->source_index[j];
        assert_true(s >= 0 && s < full->n);
        if (j > 0) assert_true(s > part->source_index[j - 1]); /* file order kept */
        assert_memory_equal(part->images + j * per, full->images + s * per, per * sizeof(float));
        assert_int_equal(part->labels[j], full->labels[s]);
    }
}

static void test_split(void **state) {
    (void)state;
    rm_dataset full, tr, va, tr2, va2;
    make(&full, 200, 1, 2, 2, 10);
    rm_rng rng;
    rm_rng_seed(&rng, 7);
    assert_int_equal(rm_dataset_split(&full, 0, 50, &rng, &tr, &va), RM_OK);
    assert_int_equal(tr.n, 150);
    assert_int_equal(va.n, 50);
    assert_int_equal(tr.num_classes, 10);
    check_part(&full, &tr);
    check_part(&full, &va);
    char seen[200] = {0};
    for (int64_t j = 0; j < tr.n; j++) seen[tr.source_index[j]]++;
    for (int64_t j = 0; j < va.n; j++) seen[va.source_index[j]]++;
    for (int i = 0; i < 200; i++) assert_int_equal(seen[i], 1); /* disjoint and complete */
    /* same seed: same split; another seed: another split */
    rm_rng_seed(&rng, 7);
    assert_int_equal(rm_dataset_split(&full, 0, 50, &rng, &tr2, &va2), RM_OK);
    assert_memory_equal(va.source_index, va2.source_index, 50 * sizeof(int64_t));
    rm_dataset_free(&tr2);
    rm_dataset_free(&va2);
    rm_rng_seed(&rng, 8);
    assert_int_equal(rm_dataset_split(&full, 0, 50, &rng, &tr2, &va2), RM_OK);
    assert_memory_not_equal(va.source_index, va2.source_index, 50 * sizeof(int64_t));
    rm_dataset_free(&tr2);
    rm_dataset_free(&va2);
    /* a subset of a split: source_index still points into the full dataset */
    assert_int_equal(rm_dataset_split(&tr, 30, 0, &rng, &tr2, NULL), RM_OK);
    assert_int_equal(tr2.n, 30);
    check_part(&full, &tr2);
    for (int64_t j = 0; j < tr2.n; j++) assert_int_equal(seen[tr2.source_index[j]], 1);
    for (int64_t j = 0; j < va.n; j++)
        for (int64_t k = 0; k < tr2.n; k++) assert_true(va.source_index[j] != tr2.source_index[k]);
    rm_dataset_free(&tr2);
    /* training subset plus validation */
    assert_int_equal(rm_dataset_split(&full, 30, 20, &rng, &tr2, &va2), RM_OK);
    assert_int_equal(tr2.n, 30);
    assert_int_equal(va2.n, 20);
    for (int64_t j = 0; j < va2.n; j++)
        for (int64_t k = 0; k < tr2.n; k++) assert_true(va2.source_index[j] != tr2.source_index[k]);
    rm_dataset_free(&tr2);
    rm_dataset_free(&va2);
    /* too many */
    rm_error_clear();
    assert_int_equal(rm_dataset_split(&full, 160, 50, &rng, &tr2, &va2), RM_ERR_ARG);
    assert_non_null(strstr(rm_error_message(), "160 training + 50 validation samples out of 200"));
    assert_null(tr2.images);
    rm_error_clear();
    rm_dataset_free(&tr);
    rm_dataset_free(&va);
    rm_dataset_free(&full);
}

/* A 5000-sample subset of 10 balanced classes holds each class 500 +- 5 sigma times. */
static void test_split_balanced(void **state) {
    (void)state;
    rm_dataset full, sub;
    make(&full, 20000, 1, 1, 1, 10);
    rm_rng rng;
    rm_rng_seed(&rng, 99);
    assert_int_equal(rm_dataset_split(&full, 5000, 0, &rng, &sub, NULL), RM_OK);
    int counts[10] = {0};
    for (int64_t j = 0; j < sub.n; j++) counts[sub.labels[j]]++;
    /* hypergeometric sd ~ sqrt(5000 * 0.1 * 0.9 * 15000/19999) ~ 18.4 */
    for (int k = 0; k < 10; k++) assert_true(counts[k] > 500 - 92 && counts[k] < 500 + 92);
    rm_dataset_free(&sub);
    rm_dataset_free(&full);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epoch_is_permutation),
        cmocka_unit_test(test_drop_last),
        cmocka_unit_test(test_shuffle_determinism),
        cmocka_unit_test(test_augment_known_offsets),
        cmocka_unit_test(test_augment_channels),
        cmocka_unit_test(test_augment_in_batches),
        cmocka_unit_test(test_augment_defaults),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_balanced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
