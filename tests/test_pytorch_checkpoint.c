/* A checkpoint written by regmix loads into the PyTorch model of the same architecture
 * (tests/pytorch/eval_checkpoint.py, the committed example) and gives the same clean test
 * accuracy there as `regmix eval` on the full Fashion-MNIST test set. Both evaluate in
 * float32 with different kernels, so an image whose top two logits are within rounding
 * could flip: at most 1 image of 10 000 may differ (none did when this was written). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "proc.h"

static void test_checkpoint_same_accuracy_in_pytorch(void **state) {
    (void)state;
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", &sb) != 0 || stat("/usr/bin/python3", &sb) != 0) {
        printf("SKIPPED: needs Fashion-MNIST and /usr/bin/python3 with python3-torch\n");
        return;
    }
    char dir[] = "/tmp/regmix-ptckpt-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 %s train train_subset=2048 test_subset=64 epochs=1 threads=1 eval_attacks=clean "
             "run_id=r outdir=%s --quiet 2>&1",
             REGMIX_BINARY, dir);
    assert_int_equal(rm_test_run_capture(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s eval %s/r.h5 --attacks clean --test-subset 0", REGMIX_BINARY, dir);
    assert_int_equal(rm_test_run_capture(cmd, out, sizeof out), 0);
    const char *p = strstr(out, "\"test_clean\":");
    assert_non_null(p);
    double ours = strtod(p + strlen("\"test_clean\":"), NULL);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/../pytorch/eval_checkpoint.py %s/r.h5", REGMIX_TEST_DATA_DIR, dir);
    assert_int_equal(rm_test_run_capture(cmd, out, sizeof out), 0);
    double theirs = -1;
    int correct = -1, n = -1;
    const char *acc = strstr(out, "accuracy ");
    assert_non_null(acc);
    assert_int_equal(sscanf(acc, "accuracy %lf %d/%d", &theirs, &correct, &n), 3);
    assert_int_equal(n, 10000);
    double diff_images = (ours - theirs) / 100.0 * n;
    printf("  regmix eval: %.2f %%   PyTorch with the loaded checkpoint: %.2f %% (%d/%d); %+.0f images\n", ours,
           theirs, correct, n, diff_images);
    assert_true(ours > 50.0); /* a trained model, not chance */
    assert_true(diff_images <= 1.0 && diff_images >= -1.0);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_checkpoint_same_accuracy_in_pytorch)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
