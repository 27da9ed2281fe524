/* IDX reader (the MNIST / Fashion-MNIST format), gzipped or plain, through zlib.
 *
 * Layout: big-endian magic 0x0000 08 D (08 = unsigned byte, D = number of dimensions),
 * D big-endian uint32 sizes, then the bytes in row-major order. Images are IDX3
 * (N, H, W), labels IDX1 (N). */
#include "regmix/data.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

typedef struct {
    const char *path;
    gzFile f;
    uint32_t dims[3];
} idx_file;

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Reads up to `bytes` bytes, stopping early only at the end of the file (*got tells how
 * many came); a failing read is an I/O error or a corrupt gzip stream. */
static rm_status read_some(idx_file *x, void *buf, size_t bytes, const char *what, size_t *got) {
    *got = 0;
    while (*got < bytes) {
        size_t want = bytes - *got;
        if (want > (1u << 30)) want = 1u << 30; /* gzread takes an unsigned int */
        int r = gzread(x->f, (unsigned char *)buf + *got, (unsigned)want);
        if (r < 0) {
            int err = 0;
            const char *msg = gzerror(x->f, &err);
            if (err == Z_ERRNO)
                return rm_fail(RM_ERR_IO, "gzread(%s): %s", x->path, strerror(errno));
            return rm_fail(RM_ERR_FORMAT, "%s: corrupt data while reading the %s: %s", x->path,
                           what, msg);
        }
        if (r == 0) break;
        *got += (size_t)r;
    }
    return RM_OK;
}

/* A short read is a truncated file (RM_ERR_FORMAT); `done` and `total` place this read
 * within the part `what`, so that the message gives the sizes of the whole part. */
static rm_status read_exact(idx_file *x, void *buf, size_t bytes, const char *what, size_t done,
                            size_t total) {
    size_t got;
    RM_TRY(read_some(x, buf, bytes, what, &got));
    if (got < bytes)
        return rm_fail(RM_ERR_FORMAT, "%s: truncated: %zu bytes of %s expected, only %zu "
                       "present", x->path, total, what, done + got);
    return RM_OK;
}

static rm_status open_idx(idx_file *x, const char *path, int ndim, const char *kind) {
    x->path = path;
    errno = 0;
    x->f = gzopen(path, "rb");
    if (!x->f)
        return rm_fail(RM_ERR_IO, "gzopen(%s): %s", path,
                       errno ? strerror(errno) : "out of memory");
    if (gzbuffer(x->f, 1u << 18) != 0) /* fewer, larger reads of the 26 MB training images */
        return rm_fail(RM_ERR_IO, "gzbuffer(%s) failed", path);
    unsigned char head[4 + 4 * 3];
    RM_TRY(read_exact(x, head, 4, "magic number", 0, 4));
    uint32_t magic = be32(head), expected = 0x00000800u | (uint32_t)ndim;
    if (magic != expected)
        return rm_fail(RM_ERR_FORMAT, "%s: bad magic number 0x%08x, expected 0x%08x (an "
                       "IDX%d unsigned-byte %s file)", path, magic, expected, ndim, kind);
    RM_TRY(read_exact(x, head + 4, 4 * (size_t)ndim, "header", 4, 4 + 4 * (size_t)ndim));
    for (int i = 0; i < ndim; i++) {
        x->dims[i] = be32(head + 4 + 4 * i);
        if (x->dims[i] == 0 || x->dims[i] > INT32_MAX)
            return rm_fail(RM_ERR_FORMAT, "%s: dimension %d of the header is %u", path, i,
                           x->dims[i]);
    }
    return RM_OK;
}

/* The header's sizes must fit the file before anything is allocated: a corrupt or hostile
 * header (found by fuzzing: 0x5b68... bytes from a 75-byte file) would otherwise make the
 * reader allocate up to 2^93 bytes before it finds the file truncated. A plain file holds
 * exactly its payload; a gzip stream expands at most 1032 times (deflate's limit). */
static rm_status check_declared_size(idx_file *x, int ndim) {
    struct stat sb;
    if (stat(x->path, &sb) != 0) return rm_fail(RM_ERR_IO, "stat(%s): %s", x->path, strerror(errno));
    double declared = 1, file = (double)sb.st_size, header = 4 + 4 * ndim; /* one byte per value */
    for (int i = 0; i < ndim; i++) declared *= x->dims[i];
    double room = gzdirect(x->f) ? file - header : 1032.0 * file;
    if (declared > room)
        return rm_fail(RM_ERR_FORMAT, "%s: the header declares %.0f bytes of data, more than a %s file of "
                       "%lld bytes can hold (corrupt or truncated)", x->path, declared,
                       gzdirect(x->f) ? "plain" : "gzip", (long long)sb.st_size);
    return RM_OK;
}

/* After the declared contents the file must end: trailing bytes mean the header lies. */
static rm_status expect_end(idx_file *x, const char *what) {
    unsigned char extra;
    int r = gzread(x->f, &extra, 1);
    if (r > 0)
        return rm_fail(RM_ERR_FORMAT, "%s: trailing bytes after the %u %s declared in the header",
                       x->path, x->dims[0], what);
    if (r < 0) {
        int err = 0;
        const char *msg = gzerror(x->f, &err);
        return rm_fail(err == Z_ERRNO ? RM_ERR_IO : RM_ERR_FORMAT, "%s: at the end: %s",
                       x->path, err == Z_ERRNO ? strerror(errno) : msg);
    }
    return RM_OK;
}

static rm_status close_idx(idx_file *x) {
    if (!x->f) return RM_OK;
    int r = gzclose(x->f);
    x->f = NULL;
    if (r != Z_OK) return rm_fail(RM_ERR_IO, "gzclose(%s) returned %d", x->path, r);
    return RM_OK;
}

/* Converts the pixels chunk by chunk so that the bytes never need a second full copy. */
static rm_status read_pixels(idx_file *x, float *dst, size_t count) {
    unsigned char chunk[1 << 16];
    for (size_t done = 0; done < count;) {
        size_t k = count - done < sizeof chunk ? count - done : sizeof chunk;
        RM_TRY(read_exact(x, chunk, k, "pixel data", done, count));
        for (size_t i = 0; i < k; i++) dst[done + i] = (float)chunk[i] / 255.0f;
        done += k;
    }
    return RM_OK;
}

static rm_status read_labels(idx_file *x, int32_t *dst, size_t n, int num_classes) {
    unsigned char chunk[1 << 16];
    for (size_t done = 0; done < n;) {
        size_t k = n - done < sizeof chunk ? n - done : sizeof chunk;
        RM_TRY(read_exact(x, chunk, k, "labels", done, n));
        for (size_t i = 0; i < k; i++) {
            if (chunk[i] >= num_classes)
                return rm_fail(RM_ERR_FORMAT, "%s: label %d at index %zu is out of range [0, %d)",
                               x->path, chunk[i], done + i, num_classes);
            dst[done + i] = chunk[i];
        }
        done += k;
    }
    return RM_OK;
}

static rm_status load(idx_file *im, idx_file *lb, const char *images_path,
                      const char *labels_path, int num_classes, const char *name,
                      rm_dataset *out) {
    RM_TRY(open_idx(im, images_path, 3, "image"));
    RM_TRY(open_idx(lb, labels_path, 1, "label"));
    RM_TRY(check_declared_size(im, 3));
    RM_TRY(check_declared_size(lb, 1));
    if (im->dims[0] != lb->dims[0])
        return rm_fail(RM_ERR_FORMAT, "%s has %u images but %s has %u labels", images_path,
                       im->dims[0], labels_path, lb->dims[0]);
    RM_TRY(rm_dataset_alloc(out, name, im->dims[0], 1, (int)im->dims[1], (int)im->dims[2],
                            num_classes));
    RM_TRY(read_pixels(im, out->images, (size_t)out->n * out->h * out->w));
    RM_TRY(expect_end(im, "images"));
    RM_TRY(read_labels(lb, out->labels, (size_t)out->n, num_classes));
    RM_TRY(expect_end(lb, "labels"));
    return RM_OK;
}

rm_status rm_idx_load(const char *images_path, const char *labels_path, int num_classes,
                      const char *name, rm_dataset *out) {
    memset(out, 0, sizeof *out);
    if (num_classes < 1 || num_classes > 256)
        return rm_fail(RM_ERR_ARG, "num_classes %d for %s is not in [1, 256]", num_classes,
                       labels_path);
    idx_file im = {0}, lb = {0};
    rm_status st = load(&im, &lb, images_path, labels_path, num_classes, name, out);
    rm_status c1 = close_idx(&im), c2 = close_idx(&lb);
    if (st == RM_OK) st = c1 != RM_OK ? c1 : c2;
    if (st != RM_OK) rm_dataset_free(out);
    return st;
}
