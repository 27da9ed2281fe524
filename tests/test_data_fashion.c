/* The real Fashion-MNIST files in the default folder (skipped when it is absent).
 * Expected values were read from the files with an independent reader
 * (`zcat ... | od` and Python's gzip module), not from this code:
 *   train: 60000 images, 6000 per class, label[0] = 9 (ankle boot), label[59999] = 5,
 *          image 0 byte sum 76247, image 0 pixel (14, 14) = 217;
 *   test:  10000 images, labels 9, 2, 1, 1 first, image 9999 byte sum 24390,
 *          image 9999 pixel (14, 14) = 132. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>
#include <unistd.h>

#include "regmix/data.h"

static int have_files(void) {
    const char *dir = rm_dataset_default_dir("fashion-mnist");
    if (access(dir, R_OK) == 0) return 1;
    print_message("SKIPPED: %s is absent; the real Fashion-MNIST test needs it\n", dir);
    return 0;
}

/* Sum of the original bytes of image i (values are byte / 255, so round back). */
static long byte_sum(const rm_dataset *d, int64_t i) {
    long s = 0;
    for (int p = 0; p < 784; p++) s += lroundf(d->images[i * 784 + p] * 255.0f);
    return s;
}

static void test_train(void **state) {
    (void)state;
    if (!have_files()) skip();
    rm_dataset d;
    rm_status st = rm_dataset_load("fashion-mnist", NULL, 1, &d);
    if (st != RM_OK) print_message("%s\n", rm_error_message());
    assert_int_equal(st, RM_OK);
    assert_int_equal(d.n, 60000);
    assert_int_equal(d.c, 1);
    assert_int_equal(d.h, 28);
    assert_int_equal(d.w, 28);
    assert_int_equal(d.num_classes, 10);
    assert_int_equal(d.labels[0], 9);
    assert_int_equal(d.labels[59999], 5);
    int counts[10] = {0};
    for (int64_t i = 0; i < d.n; i++) counts[d.labels[i]]++;
    for (int k = 0; k < 10; k++) assert_int_equal(counts[k], 6000);
    assert_int_equal(byte_sum(&d, 0), 76247);
    assert_true(d.images[14 * 28 + 14] == 217.0f / 255.0f);
    float lo = 1.0f, hi = 0.0f;
    for (size_t i = 0; i < (size_t)d.n * 784; i++) {
        lo = d.images[i] < lo ? d.images[i] : lo;
        hi = d.images[i] > hi ? d.images[i] : hi;
    }
    assert_true(lo == 0.0f && hi == 1.0f); /* [0, 1], no normalisation */
    rm_dataset_free(&d);
}

static void test_test_split(void **state) {
    (void)state;
    if (!have_files()) skip();
    rm_dataset d;
    assert_int_equal(rm_dataset_load("fashion-mnist", NULL, 0, &d), RM_OK);
    assert_int_equal(d.n, 10000);
    const int32_t first[4] = {9, 2, 1, 1};
    for (int i = 0; i < 4; i++) assert_int_equal(d.labels[i], first[i]);
    assert_int_equal(byte_sum(&d, 9999), 24390);
    assert_true(d.images[9999 * 784 + 14 * 28 + 14] == 132.0f / 255.0f);
    rm_dataset_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train),
        cmocka_unit_test(test_test_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
