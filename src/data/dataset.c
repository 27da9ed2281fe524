/* rm_dataset: allocation, loading by name (file names and default folders per
 * dataset), and the seeded subset / validation split. */
#include "regmix/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

rm_status rm_dataset_alloc(rm_dataset *out, const char *name, int64_t n, int c, int h, int w,
                           int num_classes) {
    memset(out, 0, sizeof *out);
    if (n < 1 || c < 1 || h < 1 || w < 1 || num_classes < 1)
        return rm_fail(RM_ERR_ARG,
                       "dataset %s: bad shape n=%lld c=%d h=%d w=%d num_classes=%d",
                       name, (long long)n, c, h, w, num_classes);
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    if ((uint64_t)n > SIZE_MAX / sizeof(float) / per)
        return rm_fail(RM_ERR_ARG, "dataset %s: %lld images of %zu values overflow size_t",
                       name, (long long)n, per);
    snprintf(out->name, sizeof out->name, "%s", name);
    out->n = n;
    out->c = c;
    out->h = h;
    out->w = w;
    out->num_classes = num_classes;
    out->images = rm_alloc((size_t)n * per * sizeof(float));
    out->labels = rm_alloc((size_t)n * sizeof(int32_t));
    out->source_index = rm_alloc((size_t)n * sizeof(int64_t));
    if (!out->images || !out->labels || !out->source_index) {
        rm_dataset_free(out);
        return RM_ERR_NOMEM; /* rm_alloc recorded the message */
    }
    for (int64_t i = 0; i < n; i++) out->source_index[i] = i;
    return RM_OK;
}

void rm_dataset_free(rm_dataset *d) {
    if (!d) return;
    rm_free(d->images);
    rm_free(d->labels);
    rm_free(d->source_index);
    memset(d, 0, sizeof *d);
}

const char *rm_dataset_default_dir(const char *name) {
    if (!name) return NULL;
    if (strcmp(name, "fashion-mnist") == 0) return "/usr/share/datasets/fashion-mnist";
    if (strcmp(name, "mnist") == 0) return "/usr/share/datasets/mnist";
    if (strcmp(name, "cifar10") == 0) return "/usr/share/datasets/cifar-10-batches-bin";
    if (strcmp(name, "cifar100") == 0 || strcmp(name, "cifar100-coarse") == 0)
        return "/usr/share/datasets/cifar-100-binary";
    return NULL;
}

static rm_status join_path(char *buf, size_t size, const char *dir, const char *file) {
    int n = snprintf(buf, size, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= size)
        return rm_fail(RM_ERR_ARG, "path %s/%s is longer than %zu bytes", dir, file, size - 1);
    return RM_OK;
}

/* dir/stem.gz when it exists, else dir/stem when that exists, else dir/stem.gz (so
 * that the error of the missing file names the official name). */
static rm_status idx_path(char *buf, size_t size, const char *dir, const char *stem) {
    char gz[4096];
    int n = snprintf(gz, sizeof gz, "%s.gz", stem);
    if (n < 0 || (size_t)n >= sizeof gz) return rm_fail(RM_ERR_ARG, "file name %s too long", stem);
    RM_TRY(join_path(buf, size, dir, gz));
    if (access(buf, F_OK) == 0) return RM_OK;
    RM_TRY(join_path(buf, size, dir, stem));
    if (access(buf, F_OK) == 0) return RM_OK;
    return join_path(buf, size, dir, gz);
}

static rm_status load_idx_pair(const char *name, const char *dir, int train, rm_dataset *out) {
    const char *split = train ? "train" : "t10k";
    char stem[64], images[4096], labels[4096];
    snprintf(stem, sizeof stem, "%s-images-idx3-ubyte", split);
    RM_TRY(idx_path(images, sizeof images, dir, stem));
    snprintf(stem, sizeof stem, "%s-labels-idx1-ubyte", split);
    RM_TRY(idx_path(labels, sizeof labels, dir, stem));
    return rm_idx_load(images, labels, 10, name, out);
}

static rm_status load_cifar(const char *name, const char *dir, int train, rm_cifar_kind kind,
                            rm_dataset *out) {
    char paths[5][4096];
    const char *ptrs[5];
    int count = 0;
    if (kind == RM_CIFAR10 && train) {
        for (int i = 0; i < 5; i++) {
            char file[32];
            snprintf(file, sizeof file, "data_batch_%d.bin", i + 1);
            RM_TRY(join_path(paths[count], sizeof paths[count], dir, file));
            count++;
        }
    } else {
        const char *file = kind == RM_CIFAR10 ? "test_batch.bin" : train ? "train.bin" : "test.bin";
        RM_TRY(join_path(paths[count], sizeof paths[count], dir, file));
        count++;
    }
    for (int i = 0; i < count; i++) ptrs[i] = paths[i];
    return rm_cifar_load(kind, ptrs, count, name, out);
}

rm_status rm_dataset_load(const char *name, const char *dir, int train, rm_dataset *out) {
    memset(out, 0, sizeof *out);
    if (!rm_dataset_default_dir(name)) /* also the list of known names */
        return rm_fail(RM_ERR_ARG,
                       "unknown dataset '%s' (expected fashion-mnist, mnist, cifar10, cifar100, "
                       "cifar100-coarse)", name ? name : "(null)");
    const char *d = dir ? dir : rm_dataset_default_dir(name);
    if (strcmp(name, "fashion-mnist") == 0 || strcmp(name, "mnist") == 0)
        return load_idx_pair(name, d, train, out);
    if (strcmp(name, "cifar10") == 0) return load_cifar(name, d, train, RM_CIFAR10, out);
    if (strcmp(name, "cifar100") == 0) return load_cifar(name, d, train, RM_CIFAR100_FINE, out);
    return load_cifar(name, d, train, RM_CIFAR100_COARSE, out);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* dst = the samples ids[0..k) of src (ids sorted ascending, so file order is kept). */
static rm_status take(const rm_dataset *src, int64_t *ids, int64_t k, rm_dataset *dst) {
    qsort(ids, (size_t)k, sizeof *ids, cmp_i64);
    RM_TRY(rm_dataset_alloc(dst, src->name, k, src->c, src->h, src->w, src->num_classes));
    size_t per = (size_t)src->c * (size_t)src->h * (size_t)src->w;
    for (int64_t j = 0; j < k; j++) {
        int64_t i = ids[j];
        memcpy(dst->images + (size_t)j * per, src->images + (size_t)i * per, per * sizeof(float));
        dst->labels[j] = src->labels[i];
        dst->source_index[j] = src->source_index ? src->source_index[i] : i;
    }
    return RM_OK;
}

rm_status rm_dataset_split(const rm_dataset *full, int64_t train_n, int64_t val_n,
                           rm_rng *rng, rm_dataset *train, rm_dataset *val) {
    memset(train, 0, sizeof *train);
    if (val) memset(val, 0, sizeof *val);
    int64_t n = full->n;
    if (train_n == 0) train_n = n - val_n;
    if (train_n < 1 || val_n < 0 || train_n + val_n > n)
        return rm_fail(RM_ERR_ARG, "dataset %s: cannot take %lld training + %lld validation "
                       "samples out of %lld", full->name, (long long)train_n, (long long)val_n,
                       (long long)n);
    if (val_n > 0 && !val)
        return rm_fail(RM_ERR_ARG, "dataset %s: val_n = %lld but no validation dataset given",
                       full->name, (long long)val_n);
    if ((uint64_t)n > UINT32_MAX)
        return rm_fail(RM_ERR_ARG, "dataset %s: %lld samples is too many to shuffle",
                       full->name, (long long)n);
    int64_t *perm = rm_alloc((size_t)n * sizeof *perm);
    if (!perm) return RM_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)rm_rng_below(rng, (uint32_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    rm_status st = take(full, perm, train_n, train);
    if (st == RM_OK && val_n > 0) st = take(full, perm + (n - val_n), val_n, val);
    rm_free(perm);
    if (st != RM_OK) {
        rm_dataset_free(train);
        if (val) rm_dataset_free(val);
    }
    return st;
}
