/* A checkpoint written by regmix loads into the PyTorch model of the same architecture
 * (tests/pytorch/eval_checkpoint.py, the committed example) and gives the same clean test
 * accuracy there as `regmix eval` on the full Fashion-MNIST test set. Both evaluate in
 * float32 with different kernels, so an image whose top two logits are within rounding
 * could flip: at most 1 image of 10 000 may differ (none did when this was written).
 * The run is FGSM-PGK, so its checkpoint holds two models, the EMA (ema/) and the
 * student (model/): each is checked, chosen with --model on both sides, and the default
 * of both sides is the EMA. `regmix eval --model ema` of a run without an EMA is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "proc.h"

/* regmix eval RUN --model M --test-subset 0 (M NULL: no option): accuracy (%) from the
 * JSON line, which also names the model */
static double regmix_eval(const char *run, const char *model) {
    char cmd[2048], out[4096], want[64];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s eval %s --attacks clean --test-subset 0%s%s", REGMIX_BINARY, run,
             model ? " --model " : "", model ? model : "");
    assert_int_equal(rm_test_run_capture(cmd, out, sizeof out), 0);
    snprintf(want, sizeof want, "\"model\":\"%s\"", model ? model : "ema");
    assert_non_null(strstr(out, want));
    const char *p = strstr(out, "\"test_clean\":");
    assert_non_null(p);
    return strtod(p + strlen("\"test_clean\":"), NULL);
}

/* eval_checkpoint.py RUN [--model M]: accuracy (%); n images in *n */
static double pytorch_eval(const char *run, const char *model, int *n) {
    char cmd[2048], out[4096], which[16];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/../pytorch/eval_checkpoint.py %s%s%s", REGMIX_TEST_DATA_DIR, run,
             model ? " --model " : "", model ? model : "");
    assert_int_equal(rm_test_run_capture(cmd, out, sizeof out), 0);
    double theirs = -1;
    int correct = -1;
    const char *line = strstr(out, "accuracy "); /* after the "loaded ... strictly" line */
    assert_non_null(line);
    assert_int_equal(sscanf(line, "accuracy %lf %d/%d model %15s", &theirs, &correct, n, which), 4);
    assert_string_equal(which, model ? model : "ema");
    return theirs;
}

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
             "OMP_NUM_THREADS=1 %s train method=pgk train_subset=2048 test_subset=64 epochs=1 threads=1 "
             "eval_attacks=clean run_id=r outdir=%s --quiet 2>&1",
             REGMIX_BINARY, dir);
    assert_int_equal(rm_test_run_capture(cmd, out, sizeof out), 0);
    char run[256];
    snprintf(run, sizeof run, "%s/r.h5", dir);
    const char *models[] = {NULL, "ema", "student"};
    double acc[3];
    for (int i = 0; i < 3; i++) {
        int n = -1;
        double ours = regmix_eval(run, models[i]), theirs = pytorch_eval(run, models[i], &n);
        assert_int_equal(n, 10000);
        double diff_images = (ours - theirs) / 100.0 * n;
        printf("  %-18s regmix eval: %.2f %%   PyTorch with the loaded checkpoint: %.2f %%; %+.0f images\n",
               models[i] ? models[i] : "default (ema)", ours, theirs, diff_images);
        assert_true(ours > 50.0); /* a trained model, not chance */
        assert_true(diff_images <= 1.0 && diff_images >= -1.0);
        acc[i] = ours;
    }
    assert_true(acc[0] == acc[1]); /* the default is the EMA */

    /* a run without an EMA: --model ema is a usage error naming the run */
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 %s train train_subset=256 test_subset=64 epochs=1 threads=1 eval_attacks=clean "
             "run_id=plain outdir=%s --quiet 2>&1", REGMIX_BINARY, dir);
    assert_int_equal(rm_test_run_capture(cmd, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "%s eval %s/plain.h5 --attacks clean --model ema 2>&1", REGMIX_BINARY, dir);
    int rc = rm_test_run_capture(cmd, out, sizeof out);
    printf("  --model ema without an EMA: exit %d: %s", WEXITSTATUS(rc), out);
    assert_int_equal(WEXITSTATUS(rc), 2);
    assert_non_null(strstr(out, "has no EMA model"));
    rm_test_remove_tree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_checkpoint_same_accuracy_in_pytorch)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
