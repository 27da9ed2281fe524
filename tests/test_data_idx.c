/* IDX reader: small IDX files written here (gzipped through zlib, or plain) are read
 * back with exact pixels and labels; corrupt variants fail with the right status and a
 * message naming the file and the fault. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "proc.h"

#include "regmix/data.h"

enum { N = 3, H = 4, W = 3 }; /* H != W so that a swapped header would show */

static char tmpdir[256];
static unsigned char pixels[N * H * W];
static unsigned char labels[N] = {3, 0, 9};

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/regmix_test_data_idx_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    for (int i = 0; i < N * H * W; i++) pixels[i] = (unsigned char)((i * 37 + 11) % 256);
    pixels[0] = 0; /* the extremes map to exactly 0 and 1 */
    pixels[5] = 255;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_tree(tmpdir);
    return 0;
}

static const char *path_of(const char *file) {
    static char buf[4][512];
    static int next = 0;
    char *p = buf[next++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, file);
    return p;
}

static void put_be32(unsigned char *b, uint32_t v) {
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

/* Writes header (magic, dims) + body to file, gzipped when gz. */
static void write_idx(const char *file, int gz, uint32_t magic, const uint32_t *dims, int ndim,
                      const unsigned char *body, size_t body_len) {
    unsigned char head[16];
    put_be32(head, magic);
    for (int i = 0; i < ndim; i++) put_be32(head + 4 + 4 * i, dims[i]);
    size_t head_len = 4 + 4 * (size_t)ndim;
    if (gz) {
        gzFile f = gzopen(path_of(file), "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, head, (unsigned)head_len), (int)head_len);
        if (body_len) assert_int_equal(gzwrite(f, body, (unsigned)body_len), (int)body_len);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path_of(file), "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(head, 1, head_len, f), head_len);
        if (body_len) assert_int_equal(fwrite(body, 1, body_len, f), body_len);
        assert_int_equal(fclose(f), 0);
    }
}

static void write_images(const char *file, int gz, uint32_t n, size_t body_len) {
    uint32_t dims[3] = {n, H, W};
    write_idx(file, gz, 0x00000803, dims, 3, pixels, body_len);
}

static void write_labels(const char *file, int gz, uint32_t n, const unsigned char *lab) {
    uint32_t dims[1] = {n};
    write_idx(file, gz, 0x00000801, dims, 1, lab, n);
}

static void check_contents(const rm_dataset *d) {
    assert_int_equal(d->n, N);
    assert_int_equal(d->c, 1);
    assert_int_equal(d->h, H);
    assert_int_equal(d->w, W);
    assert_int_equal(d->num_classes, 10);
    for (int i = 0; i < N * H * W; i++) assert_true(d->images[i] == (float)pixels[i] / 255.0f);
    assert_true(d->images[0] == 0.0f);
    assert_true(d->images[5] == 1.0f);
    /* pixel (row 2, col 1) of image 1 is byte 16 + 12 + 2*3 + 1 of the stream */
    assert_true(d->images[1 * H * W + 2 * W + 1] == (float)((19 * 37 + 11) % 256) / 255.0f);
    for (int i = 0; i < N; i++) {
        assert_int_equal(d->labels[i], labels[i]);
        assert_int_equal(d->source_index[i], i);
    }
}

static void test_gz_roundtrip(void **state) {
    (void)state;
    write_images("img.gz", 1, N, sizeof pixels);
    write_labels("lab.gz", 1, N, labels);
    rm_dataset d;
    assert_int_equal(rm_idx_load(path_of("img.gz"), path_of("lab.gz"), 10, "mnist", &d), RM_OK);
    assert_string_equal(d.name, "mnist");
    check_contents(&d);
    rm_dataset_free(&d);
    assert_null(d.images);
}

static void test_plain_roundtrip(void **state) {
    (void)state;
    write_images("img.raw", 0, N, sizeof pixels);
    write_labels("lab.raw", 0, N, labels);
    rm_dataset d;
    assert_int_equal(rm_idx_load(path_of("img.raw"), path_of("lab.raw"), 10, "x", &d), RM_OK);
    check_contents(&d);
    rm_dataset_free(&d);
}

/* By name: the .gz names for the training split, the plain names for the test split. */
static void test_load_by_name(void **state) {
    (void)state;
    write_images("train-images-idx3-ubyte.gz", 1, N, sizeof pixels);
    write_labels("train-labels-idx1-ubyte.gz", 1, N, labels);
    write_images("t10k-images-idx3-ubyte", 0, N, sizeof pixels);
    write_labels("t10k-labels-idx1-ubyte", 0, N, labels);
    rm_dataset d;
    assert_int_equal(rm_dataset_load("fashion-mnist", tmpdir, 1, &d), RM_OK);
    assert_string_equal(d.name, "fashion-mnist");
    check_contents(&d);
    rm_dataset_free(&d);
    assert_int_equal(rm_dataset_load("mnist", tmpdir, 0, &d), RM_OK);
    check_contents(&d);
    rm_dataset_free(&d);
}

/* Loads and expects failure `code` with every string of `needles` in the message. */
static void expect_fail(const char *img, const char *lab, rm_status code, const char *n1,
                        const char *n2) {
    rm_error_clear();
    rm_dataset d;
    rm_status st = rm_idx_load(path_of(img), path_of(lab), 10, "mnist", &d);
    const char *msg = rm_error_message();
    print_message("expected failure: %s\n", msg);
    assert_int_equal(st, code);
    assert_non_null(strstr(msg, n1));
    if (n2) assert_non_null(strstr(msg, n2));
    assert_null(d.images); /* nothing leaks out of a failed load */
    assert_int_equal(d.n, 0);
    rm_error_clear();
}

static void test_bad_magic(void **state) {
    (void)state;
    uint32_t dims[3] = {N, H, W};
    write_idx("bad-img.gz", 1, 0x00000804, dims, 3, pixels, sizeof pixels);
    write_labels("lab.gz", 1, N, labels);
    expect_fail("bad-img.gz", "lab.gz", RM_ERR_FORMAT, "bad-img.gz", "bad magic number 0x00000804");
    /* a label file given where the images belong */
    expect_fail("lab.gz", "lab.gz", RM_ERR_FORMAT, "lab.gz: bad magic number 0x00000801", NULL);
    write_images("img.gz", 1, N, sizeof pixels);
    uint32_t ldims[1] = {N};
    write_idx("bad-lab.gz", 1, 0x01000801, ldims, 1, labels, N);
    expect_fail("img.gz", "bad-lab.gz", RM_ERR_FORMAT, "bad-lab.gz", "bad magic number 0x01000801");
}

static void test_truncated(void **state) {
    (void)state;
    write_labels("lab.gz", 1, N, labels);
    /* header promises 3 images, the stream holds 2.5 */
    write_images("short-img.gz", 1, N, sizeof pixels - H * W / 2);
    expect_fail("short-img.gz", "lab.gz", RM_ERR_FORMAT, "short-img.gz", "truncated");
    /* labels end early */
    write_images("img.gz", 1, N, sizeof pixels);
    unsigned char head[8];
    put_be32(head, 0x00000801);
    put_be32(head + 4, N);
    gzFile f = gzopen(path_of("short-lab.gz"), "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, head, 8), 8);
    assert_int_equal(gzwrite(f, labels, N - 1), N - 1);
    assert_int_equal(gzclose(f), Z_OK);
    expect_fail("img.gz", "short-lab.gz", RM_ERR_FORMAT, "short-lab.gz", "truncated");
    /* a file cut inside its header */
    put_be32(head, 0x00000803);
    FILE *g = fopen(path_of("stub-img"), "wb");
    assert_non_null(g);
    assert_int_equal(fwrite(head, 1, 6, g), 6);
    assert_int_equal(fclose(g), 0);
    expect_fail("stub-img", "lab.gz", RM_ERR_FORMAT, "stub-img", "truncated");
}

/* The gzip stream itself cut short (a partial download). */
static void test_truncated_gzip_stream(void **state) {
    (void)state;
    static unsigned char big[16 + 400 * H * W];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 2654435761u >> 24);
    put_be32(big, 0x00000803);
    put_be32(big + 4, 400);
    put_be32(big + 8, H);
    put_be32(big + 12, W);
    gzFile f = gzopen(path_of("full.gz"), "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, big, sizeof big), (int)sizeof big);
    assert_int_equal(gzclose(f), Z_OK);
    FILE *in = fopen(path_of("full.gz"), "rb");
    assert_non_null(in);
    static unsigned char comp[sizeof big * 2];
    size_t len = fread(comp, 1, sizeof comp, in);
    fclose(in);
    assert_true(len > 40);
    FILE *out = fopen(path_of("cut-img.gz"), "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(comp, 1, len / 2, out), len / 2);
    assert_int_equal(fclose(out), 0);
    unsigned char lab[400] = {0};
    write_labels("lab400.gz", 1, 400, lab);
    expect_fail("cut-img.gz", "lab400.gz", RM_ERR_FORMAT, "cut-img.gz", NULL);
}

/* A header that declares more data than the file can hold (2^31 - 1 images of 2^31 - 1
 * by 2 pixels: 2^63 bytes) is refused before any allocation, naming the file: plain
 * files by their size, gzip streams by deflate's largest expansion (1032x). Found by
 * fuzzing (tests/fuzz/regressions/fuzz_idx): the reader allocated first. */
static void test_header_larger_than_file(void **state) {
    (void)state;
    uint32_t dims[3] = {0x7fffffffu, 0x7fffffffu, 2};
    write_labels("lab.gz", 1, N, labels);
    write_idx("huge-img", 0, 0x00000803, dims, 3, pixels, sizeof pixels);
    expect_fail("huge-img", "lab.gz", RM_ERR_FORMAT, "huge-img", "declares");
    write_idx("huge-img.gz", 1, 0x00000803, dims, 3, pixels, sizeof pixels);
    expect_fail("huge-img.gz", "lab.gz", RM_ERR_FORMAT, "huge-img.gz", "gzip file");
    uint32_t n[1] = {0x7fffffffu};
    write_images("img.gz", 1, N, sizeof pixels);
    write_idx("huge-lab", 0, 0x00000801, n, 1, labels, N);
    expect_fail("img.gz", "huge-lab", RM_ERR_FORMAT, "huge-lab", "declares");
}

static void test_trailing_bytes(void **state) {
    (void)state;
    /* header says 2 images, 3 follow */
    write_images("long-img.gz", 1, 2, sizeof pixels);
    write_labels("lab2.gz", 1, 2, labels);
    expect_fail("long-img.gz", "lab2.gz", RM_ERR_FORMAT, "long-img.gz", "trailing bytes");
}

static void test_label_out_of_range(void **state) {
    (void)state;
    write_images("img.gz", 1, N, sizeof pixels);
    unsigned char bad[N] = {3, 0, 12};
    write_labels("t10k-labels-idx1-ubyte.gz", 1, N, bad);
    expect_fail("img.gz", "t10k-labels-idx1-ubyte.gz", RM_ERR_FORMAT,
                "t10k-labels-idx1-ubyte.gz: label 12 at index 2 is out of range [0, 10)", NULL);
}

static void test_count_mismatch(void **state) {
    (void)state;
    write_images("img.gz", 1, N, sizeof pixels);
    write_labels("lab2.gz", 1, 2, labels);
    expect_fail("img.gz", "lab2.gz", RM_ERR_FORMAT, "has 3 images but", "lab2.gz has 2 labels");
}

static void test_missing_file(void **state) {
    (void)state;
    write_labels("lab.gz", 1, N, labels);
    expect_fail("no-such-images.gz", "lab.gz", RM_ERR_IO, "no-such-images.gz",
                "No such file or directory");
    write_images("img.gz", 1, N, sizeof pixels);
    expect_fail("img.gz", "no-such-labels.gz", RM_ERR_IO, "no-such-labels.gz", NULL);
    /* by name: the error names the official file name */
    rm_error_clear();
    rm_dataset d;
    assert_int_equal(rm_dataset_load("mnist", path_of("empty-subdir"), 1, &d), RM_ERR_IO);
    assert_non_null(strstr(rm_error_message(), "empty-subdir/train-images-idx3-ubyte.gz"));
    rm_error_clear();
}

static void test_unknown_name(void **state) {
    (void)state;
    rm_error_clear();
    rm_dataset d;
    assert_int_equal(rm_dataset_load("imagenet", tmpdir, 1, &d), RM_ERR_ARG);
    assert_non_null(strstr(rm_error_message(), "unknown dataset 'imagenet'"));
    rm_error_clear();
    assert_null(rm_dataset_default_dir("imagenet"));
    assert_string_equal(rm_dataset_default_dir("fashion-mnist"), "/usr/share/datasets/fashion-mnist");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gz_roundtrip),
        cmocka_unit_test(test_plain_roundtrip),
        cmocka_unit_test(test_load_by_name),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_truncated_gzip_stream),
        cmocka_unit_test(test_header_larger_than_file),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_label_out_of_range),
        cmocka_unit_test(test_count_mismatch),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_unknown_name),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
