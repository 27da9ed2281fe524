/* CIFAR-10 / CIFAR-100 binary readers: small record files written here are read back
 * with exact pixels (C, H, W order) and labels; corrupt variants fail with the right
 * status and a message naming the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

#include "regmix/data.h"

enum { PIX = 3072 };

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/regmix_test_data_cifar_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static void clear_dir(void) {
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

static int teardown(void **state) {
    (void)state;
    rm_test_remove_tree(tmpdir);
    return 0;
}

static const char *path_of(const char *file) {
    static char buf[8][512];
    static int next = 0;
    char *p = buf[next++ % 8];
    snprintf(p, 512, "%s/%s", tmpdir, file);
    return p;
}

/* The pixel byte at (channel k, row y, column x) of the sample with global index s:
 * a pattern that differs between channels, rows, columns and samples. */
static unsigned char pixel(int s, int k, int y, int x) {
    return (unsigned char)((s * 53 + k * 101 + y * 7 + x * 3) % 256);
}

/* Writes records for samples first .. first+count-1 of a file; labels[] per sample.
 * label_bytes 1 (CIFAR-10: label) or 2 (CIFAR-100: coarse, fine). extra appends junk. */
static void write_cifar(const char *file, int label_bytes, int first, int count,
                        const unsigned char (*labels)[2], int extra) {
    FILE *f = fopen(path_of(file), "wb");
    assert_non_null(f);
    unsigned char rec[2 + PIX];
    for (int s = first; s < first + count; s++) {
        for (int b = 0; b < label_bytes; b++) rec[b] = labels[s][b];
        for (int k = 0; k < 3; k++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    rec[label_bytes + k * 1024 + y * 32 + x] = pixel(s, k, y, x);
        assert_int_equal(fwrite(rec, 1, (size_t)label_bytes + PIX, f), (size_t)label_bytes + PIX);
    }
    for (int i = 0; i < extra; i++) assert_int_equal(fputc(7, f), 7);
    assert_int_equal(fclose(f), 0);
}

static void check_pixels(const rm_dataset *d, int first_global) {
    assert_int_equal(d->c, 3);
    assert_int_equal(d->h, 32);
    assert_int_equal(d->w, 32);
    for (int i = 0; i < d->n; i++)
        for (int k = 0; k < 3; k++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++) {
                    float v = d->images[(((size_t)i * 3 + k) * 32 + y) * 32 + x];
                    assert_true(v == (float)pixel(first_global + i, k, y, x) / 255.0f);
                }
}

/* CIFAR-10 training split: five files of 1, 2, 1, 1, 2 records concatenated in order. */
static const unsigned char c10_labels[9][2] = {{6, 0}, {9, 0}, {9, 0}, {4, 0}, {1, 0},
                                               {0, 0}, {2, 0}, {7, 0}, {3, 0}};

static void write_cifar10_dir(void) {
    const int sizes[5] = {1, 2, 1, 1, 2};
    char file[32];
    for (int i = 0, first = 0; i < 5; first += sizes[i], i++) {
        snprintf(file, sizeof file, "data_batch_%d.bin", i + 1);
        write_cifar(file, 1, first, sizes[i], c10_labels, 0);
    }
    write_cifar("test_batch.bin", 1, 7, 2, c10_labels, 0);
}

static void test_cifar10_by_name(void **state) {
    (void)state;
    clear_dir();
    write_cifar10_dir();
    rm_dataset d;
    assert_int_equal(rm_dataset_load("cifar10", tmpdir, 1, &d), RM_OK);
    assert_string_equal(d.name, "cifar10");
    assert_int_equal(d.n, 7);
    assert_int_equal(d.num_classes, 10);
    check_pixels(&d, 0);
    for (int i = 0; i < 7; i++) {
        assert_int_equal(d.labels[i], c10_labels[i][0]);
        assert_int_equal(d.source_index[i], i);
    }
    /* spot check against a hand-computed byte: sample 5, green (k=1), row 2, col 3 */
    assert_true(d.images[5 * 3072 + 1 * 1024 + 2 * 32 + 3] == (float)((5 * 53 + 101 + 14 + 9) % 256) / 255.0f);
    rm_dataset_free(&d);
    assert_int_equal(rm_dataset_load("cifar10", tmpdir, 0, &d), RM_OK);
    assert_int_equal(d.n, 2);
    check_pixels(&d, 7);
    assert_int_equal(d.labels[0], 7);
    assert_int_equal(d.labels[1], 3);
    rm_dataset_free(&d);
}

static const unsigned char c100_labels[4][2] = {{19, 99}, {0, 0}, {7, 42}, {11, 58}};

static void test_cifar100_fine_and_coarse(void **state) {
    (void)state;
    clear_dir();
    write_cifar("train.bin", 2, 0, 3, c100_labels, 0);
    write_cifar("test.bin", 2, 3, 1, c100_labels, 0);
    rm_dataset d;
    assert_int_equal(rm_dataset_load("cifar100", tmpdir, 1, &d), RM_OK);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.num_classes, 100);
    check_pixels(&d, 0);
    assert_int_equal(d.labels[0], 99);
    assert_int_equal(d.labels[1], 0);
    assert_int_equal(d.labels[2], 42);
    rm_dataset_free(&d);
    assert_int_equal(rm_dataset_load("cifar100-coarse", tmpdir, 1, &d), RM_OK);
    assert_int_equal(d.num_classes, 20);
    check_pixels(&d, 0);
    assert_int_equal(d.labels[0], 19);
    assert_int_equal(d.labels[1], 0);
    assert_int_equal(d.labels[2], 7);
    rm_dataset_free(&d);
    assert_int_equal(rm_dataset_load("cifar100", tmpdir, 0, &d), RM_OK);
    assert_int_equal(d.n, 1);
    check_pixels(&d, 3);
    assert_int_equal(d.labels[0], 58);
    rm_dataset_free(&d);
}

static void expect_fail(const char *name, int train, rm_status code, const char *n1,
                        const char *n2) {
    rm_error_clear();
    rm_dataset d;
    rm_status st = rm_dataset_load(name, tmpdir, train, &d);
    const char *msg = rm_error_message();
    print_message("expected failure: %s\n", msg);
    assert_int_equal(st, code);
    assert_non_null(strstr(msg, n1));
    if (n2) assert_non_null(strstr(msg, n2));
    assert_null(d.images);
    assert_int_equal(d.n, 0);
    rm_error_clear();
}

static void test_size_not_multiple(void **state) {
    (void)state;
    clear_dir();
    write_cifar10_dir();
    write_cifar("data_batch_4.bin", 1, 4, 1, c10_labels, 5); /* 3078 bytes */
    expect_fail("cifar10", 1, RM_ERR_FORMAT, "data_batch_4.bin",
                "size 3078 bytes is not a multiple of the record size 3073");
    /* a CIFAR-10 file read as CIFAR-100: 2 records of 3073 = 6146 bytes, not k * 3074 */
    write_cifar("train.bin", 1, 0, 2, c10_labels, 0);
    expect_fail("cifar100", 1, RM_ERR_FORMAT, "train.bin", "record size 3074");
    FILE *f = fopen(path_of("test.bin"), "wb");
    assert_non_null(f);
    assert_int_equal(fclose(f), 0);
    expect_fail("cifar100", 0, RM_ERR_FORMAT, "test.bin", "empty");
}

static void test_label_out_of_range(void **state) {
    (void)state;
    clear_dir();
    write_cifar10_dir();
    const unsigned char bad[3][2] = {{1, 0}, {2, 0}, {10, 0}};
    write_cifar("data_batch_3.bin", 1, 0, 3, bad, 0);
    expect_fail("cifar10", 1, RM_ERR_FORMAT,
                "data_batch_3.bin: label 10 at index 2 is out of range [0, 10)", NULL);
    /* fine label 100 */
    const unsigned char bad100[2][2] = {{3, 5}, {3, 100}};
    write_cifar("train.bin", 2, 0, 2, bad100, 0);
    expect_fail("cifar100", 1, RM_ERR_FORMAT, "train.bin: label 100 at index 1 is out of range [0, 100)", NULL);
    /* coarse label 20 with a valid fine label: fine loads, coarse does not */
    const unsigned char badc[1][2] = {{20, 5}};
    write_cifar("test.bin", 2, 0, 1, badc, 0);
    rm_dataset d;
    assert_int_equal(rm_dataset_load("cifar100", tmpdir, 0, &d), RM_OK);
    assert_int_equal(d.labels[0], 5);
    rm_dataset_free(&d);
    expect_fail("cifar100-coarse", 0, RM_ERR_FORMAT, "test.bin: label 20 at index 0 is out of range [0, 20)", NULL);
}

static void test_missing_file(void **state) {
    (void)state;
    clear_dir();
    write_cifar10_dir();
    assert_int_equal(unlink(path_of("data_batch_3.bin")), 0);
    expect_fail("cifar10", 1, RM_ERR_IO, "data_batch_3.bin", "No such file or directory");
    expect_fail("cifar100", 0, RM_ERR_IO, "test.bin", "No such file or directory");
}

/* rm_cifar_load on explicit paths keeps their order and counts source_index across them. */
static void test_explicit_paths(void **state) {
    (void)state;
    clear_dir();
    write_cifar("a.bin", 1, 0, 2, c10_labels, 0);
    write_cifar("b.bin", 1, 2, 3, c10_labels, 0);
    const char *paths[2] = {path_of("a.bin"), path_of("b.bin")};
    rm_dataset d;
    assert_int_equal(rm_cifar_load(RM_CIFAR10, paths, 2, "mine", &d), RM_OK);
    assert_string_equal(d.name, "mine");
    assert_int_equal(d.n, 5);
    check_pixels(&d, 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(d.labels[i], c10_labels[i][0]);
        assert_int_equal(d.source_index[i], i);
    }
    rm_dataset_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cifar10_by_name),
        cmocka_unit_test(test_cifar100_fine_and_coarse),
        cmocka_unit_test(test_size_not_multiple),
        cmocka_unit_test(test_label_out_of_range),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_explicit_paths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
