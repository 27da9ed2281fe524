/* CIFAR-10 / CIFAR-100 binary readers.
 *
 * CIFAR-10 record: 1 label byte + 3072 pixel bytes; CIFAR-100 record: coarse label byte,
 * fine label byte + 3072 pixel bytes. Pixels are 3 planes (R, G, B) of 32x32 in row-major
 * order, i.e. already (C, H, W). Files are plain (the .bin files of the official
 * archives), so their size is known up front and checked against the record size. */
#include "regmix/data.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

enum { CIFAR_C = 3, CIFAR_H = 32, CIFAR_W = 32, CIFAR_PIXELS = CIFAR_C * CIFAR_H * CIFAR_W };
enum { CHUNK_RECORDS = 256 };

typedef struct {
    int label_bytes;  /* bytes before the pixels */
    int label_offset; /* which of them is the label used */
    int num_classes;
    const char *layout; /* for messages */
} cifar_format;

static cifar_format format_of(rm_cifar_kind kind) {
    switch (kind) {
    case RM_CIFAR100_FINE: return (cifar_format){2, 1, 100, "coarse label + fine label + 3072 pixel bytes"};
    case RM_CIFAR100_COARSE: return (cifar_format){2, 0, 20, "coarse label + fine label + 3072 pixel bytes"};
    case RM_CIFAR10:
    default: return (cifar_format){1, 0, 10, "1 label byte + 3072 pixel bytes"};
    }
}

/* Number of records in `path`, checking that the size is a non-zero multiple of rec. */
static rm_status count_records(const char *path, size_t rec, const cifar_format *fmt,
                               int64_t *records) {
    struct stat sb;
    if (stat(path, &sb) != 0) return rm_fail(RM_ERR_IO, "stat(%s): %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return rm_fail(RM_ERR_IO, "%s is not a regular file", path);
    if (sb.st_size == 0) return rm_fail(RM_ERR_FORMAT, "%s: the file is empty", path);
    if ((uint64_t)sb.st_size % rec != 0)
        return rm_fail(RM_ERR_FORMAT, "%s: size %lld bytes is not a multiple of the record "
                       "size %zu (%s)", path, (long long)sb.st_size, rec, fmt->layout);
    *records = (int64_t)((uint64_t)sb.st_size / rec);
    return RM_OK;
}

/* Reads `records` records of `path` into images/labels starting at sample `first`. */
static rm_status read_file(const char *path, const cifar_format *fmt, size_t rec,
                           int64_t records, int64_t first, unsigned char *buf,
                           rm_dataset *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return rm_fail(RM_ERR_IO, "fopen(%s): %s", path, strerror(errno));
    rm_status st = RM_OK;
    for (int64_t done = 0; done < records && st == RM_OK;) {
        int64_t k = records - done < CHUNK_RECORDS ? records - done : CHUNK_RECORDS;
        size_t got = fread(buf, rec, (size_t)k, f);
        if (got != (size_t)k) {
            st = ferror(f) ? rm_fail(RM_ERR_IO, "fread(%s): %s", path, strerror(errno))
                           : rm_fail(RM_ERR_FORMAT, "%s: truncated: ends after %lld of %lld "
                                     "records", path, (long long)(done + (int64_t)got),
                                     (long long)records);
            break;
        }
        for (int64_t r = 0; r < k; r++) {
            const unsigned char *p = buf + (size_t)r * rec;
            int label = p[fmt->label_offset];
            int64_t i = first + done + r;
            if (label >= fmt->num_classes) {
                st = rm_fail(RM_ERR_FORMAT, "%s: label %d at index %lld is out of range [0, %d)",
                             path, label, (long long)(done + r), fmt->num_classes);
                break;
            }
            out->labels[i] = label;
            float *img = out->images + (size_t)i * CIFAR_PIXELS;
            const unsigned char *px = p + fmt->label_bytes;
            for (int j = 0; j < CIFAR_PIXELS; j++) img[j] = (float)px[j] / 255.0f;
        }
        done += k;
    }
    if (fclose(f) != 0 && st == RM_OK)
        st = rm_fail(RM_ERR_IO, "fclose(%s): %s", path, strerror(errno));
    return st;
}

rm_status rm_cifar_load(rm_cifar_kind kind, const char *const *paths, int count,
                        const char *name, rm_dataset *out) {
    memset(out, 0, sizeof *out);
    if (count < 1 || count > 64)
        return rm_fail(RM_ERR_ARG, "dataset %s: %d CIFAR files given (1 to 64)", name, count);
    cifar_format fmt = format_of(kind);
    size_t rec = (size_t)fmt.label_bytes + CIFAR_PIXELS;
    int64_t per_file[64], total = 0;
    for (int i = 0; i < count; i++) {
        RM_TRY(count_records(paths[i], rec, &fmt, &per_file[i]));
        total += per_file[i];
    }
    RM_TRY(rm_dataset_alloc(out, name, total, CIFAR_C, CIFAR_H, CIFAR_W, fmt.num_classes));
    unsigned char *buf = rm_alloc(rec * CHUNK_RECORDS);
    rm_status st = buf ? RM_OK : RM_ERR_NOMEM;
    int64_t first = 0;
    for (int i = 0; i < count && st == RM_OK; i++) {
        st = read_file(paths[i], &fmt, rec, per_file[i], first, buf, out);
        first += per_file[i];
    }
    rm_free(buf);
    if (st != RM_OK) rm_dataset_free(out);
    return st;
}
