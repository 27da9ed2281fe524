/* regmix data: image-classification datasets in memory, batches and augmentation.
 *
 * Readers: IDX (MNIST, Fashion-MNIST; gzipped or plain, read through zlib) and the
 * CIFAR-10 / CIFAR-100 binary versions. Every dataset becomes the same struct: images
 * as float in [0,1] (byte / 255, no mean/std normalisation) in (N, C, H, W) order,
 * labels as int32 in [0, num_classes).
 *
 * Sample ids: a sample's id is its index in the rm_dataset it belongs to, 0..n-1.
 * Batches report the ids of the samples they hold, so per-sample state (the prior
 * perturbation of prior-guided FGSM) can be kept in arrays of n entries indexed by
 * id; ids never change across epochs or shuffles. A dataset made by
 * rm_dataset_split() is compact (its ids are again 0..n-1) and records in
 * source_index the index each sample had in the file it was read from.
 *
 * Malformed input (bad magic, truncated file, size not a multiple of the record size,
 * image/label count mismatch, label out of range) fails with RM_ERR_FORMAT, a missing
 * or unreadable file with RM_ERR_IO; the message names the file and what is wrong. */
#ifndef REGMIX_DATA_H
#define REGMIX_DATA_H

#include "regmix/common.h"

#define RM_DATASET_NAME_MAX 32

typedef struct {
    char name[RM_DATASET_NAME_MAX]; /* "fashion-mnist", "mnist", "cifar10", ... */
    int64_t n;                      /* number of samples */
    int c, h, w;                    /* image shape: 1x28x28 (MNIST), 3x32x32 (CIFAR) */
    int num_classes;
    float *images;                  /* (n, c, h, w), values byte / 255 */
    int32_t *labels;                /* (n), in [0, num_classes) */
    int64_t *source_index;          /* (n), index of each sample in its source file(s) */
} rm_dataset;

/* Loads a dataset by name:
 *   "fashion-mnist", "mnist"  IDX files {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
 *                             (the same names without .gz are tried when the .gz is absent)
 *   "cifar10"                 data_batch_1.bin .. data_batch_5.bin / test_batch.bin
 *   "cifar100"                train.bin / test.bin, fine labels (100 classes)
 *   "cifar100-coarse"         the same files, coarse labels (20 classes)
 * dir: the folder holding the files; NULL takes rm_dataset_default_dir(name).
 * train: 1 for the training split, 0 for the test split.
 * An unknown name is RM_ERR_ARG. `out` is zeroed first; free it with rm_dataset_free. */
rm_status rm_dataset_load(const char *name, const char *dir, int train, rm_dataset *out);
void rm_dataset_free(rm_dataset *d);

/* Allocates a zero-filled dataset (source_index = identity) for readers and tests.
 * n >= 1, c, h, w >= 1, num_classes >= 1; on failure `out` is left empty. */
rm_status rm_dataset_alloc(rm_dataset *out, const char *name, int64_t n, int c, int h, int w,
                           int num_classes);

/* Default folder per name (NULL for an unknown name):
 *   fashion-mnist /usr/share/datasets/fashion-mnist, mnist /usr/share/datasets/mnist,
 *   cifar10 /usr/share/datasets/cifar-10-batches-bin,
 *   cifar100(-coarse) /usr/share/datasets/cifar-100-binary. */
const char *rm_dataset_default_dir(const char *name);

/* ---- the readers behind rm_dataset_load, usable on any paths ---- */

/* An IDX3 unsigned-byte image file (magic 0x00000803, N x H x W) and its IDX1 label
 * file (magic 0x00000801, N); labels must lie in [0, num_classes). c = 1. */
rm_status rm_idx_load(const char *images_path, const char *labels_path, int num_classes,
                      const char *name, rm_dataset *out);

typedef enum {
    RM_CIFAR10 = 0,      /* records: label, 3072 pixel bytes (R plane, G, B; each 32x32) */
    RM_CIFAR100_FINE,    /* records: coarse label, fine label, 3072 pixel bytes; fine used */
    RM_CIFAR100_COARSE   /* the same records, coarse label used (20 classes) */
} rm_cifar_kind;

/* Concatenates the records of `count` files, in the order given (source_index counts
 * across them). Each file must be a non-empty multiple of the record size. */
rm_status rm_cifar_load(rm_cifar_kind kind, const char *const *paths, int count,
                        const char *name, rm_dataset *out);

/* ---- subsets and a held-out validation split ----
 * One seeded permutation p of 0..n-1 (Fisher-Yates on rng): `train` receives the first
 * train_n ids of p (train_n = 0: all n - val_n remaining ones) and `val` the last val_n,
 * so the two are disjoint and each is a uniform random subset (class-balanced in
 * expectation). Within each part the samples keep their order in `full`. Both are new,
 * compact datasets (ids 0..n-1); source_index maps them back to the files.
 * val may be NULL when val_n == 0. train_n + val_n > full->n is RM_ERR_ARG. */
rm_status rm_dataset_split(const rm_dataset *full, int64_t train_n, int64_t val_n,
                           rm_rng *rng, rm_dataset *train, rm_dataset *val);

/* ---- augmentation: zero pad + random crop back to H x W, random horizontal flip ---- */
typedef struct {
    int pad;  /* zero padding on each side before the random H x W crop; 0 = no crop */
    int flip; /* 1: mirror left-right with probability 1/2 */
} rm_augment;

/* The training augmentation of the reference code per dataset: pad 4 + flip for
 * CIFAR-10/100, none for MNIST / Fashion-MNIST (and unknown names). */
rm_augment rm_augment_default(const char *name);

/* One image (c, h, w) -> out (c, h, w), in != out:
 *   out[k][y][x] = in[k][y + dy - pad][x' + dx - pad] (0 where that is outside the image),
 *   x' = w - 1 - x when flip, else x;  dy, dx in [0, 2 * pad].
 * pad 0, dy = dx = 0, flip 0 copies the image. */
void rm_augment_image(const float *in, float *out, int c, int h, int w, int pad, int dy,
                      int dx, int flip);

/* Draws dy, dx (in that order, each rm_rng_below(2 * pad + 1), only when pad > 0) and
 * then flip (rm_rng_below(2), only when aug->flip) and applies them. */
void rm_augment_random(const rm_augment *aug, rm_rng *rng, const float *in, float *out,
                       int c, int h, int w);

/* ---- batches ----
 * An epoch visits every sample once in the order `order`: a seeded Fisher-Yates
 * permutation (rm_rng_below) for training, the identity for evaluation. */
typedef struct {
    const rm_dataset *data; /* borrowed; must outlive the batcher */
    int64_t batch_size;
    int drop_last;          /* 1: skip a last batch smaller than batch_size */
    int64_t *order;         /* (n) sample ids of the current epoch */
    int64_t pos;            /* next position in order */
} rm_batcher;

rm_status rm_batcher_init(rm_batcher *b, const rm_dataset *data, int64_t batch_size,
                          int drop_last);
void rm_batcher_free(rm_batcher *b);

/* Starts an epoch: order = the identity, then shuffled by Fisher-Yates on rng unless rng
 * is NULL. The order depends only on the rng state: keep one rng across epochs for a
 * new order each epoch (same seed, same sequence of orders). */
void rm_batcher_start_epoch(rm_batcher *b, rm_rng *rng);

/* Batches per epoch under drop_last. */
int64_t rm_batcher_num_batches(const rm_batcher *b);

/* Copies the next batch: images (B, C, H, W), labels (B), ids (B) — ids[j] is the id
 * of the sample in slot j, and labels[j] its label. images/labels/ids may each be NULL
 * to skip them; they must hold batch_size entries. aug (NULL = none) is applied per
 * sample with draws from aug_rng (required when aug crops or flips), in slot order.
 * *count = the number of samples placed, 0 when the epoch is over (under drop_last,
 * also when fewer than batch_size samples are left). */
rm_status rm_batcher_next(rm_batcher *b, float *images, int32_t *labels, int64_t *ids,
                          const rm_augment *aug, rm_rng *aug_rng, int64_t *count);

#endif
