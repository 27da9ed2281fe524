/* A checkpoint exported by regmix loads into the PyTorch twin with strict=True and gives
 * the same logits there, for the new residual networks on Fashion-MNIST's 1x28x28 images:
 * `regmix train model=M` (a few batches, so the weights and BN statistics are trained),
 * then the checkpoint's model/<name> tensors into an rm_net here and into the twin by
 * tests/pytorch/eval_checkpoint.py (strict load), and the eval-mode logits of the first
 * 32 test images compared. Both run float32 with different kernels: max |diff| within
 * 1e-4 of the largest logit. Skipped (with a message) without /usr/bin/python3 + torch
 * or without the Fashion-MNIST files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "regmix/data.h"
#include "regmix/nn.h"
#include "regmix/runfile.h"
#include "proc.h"

enum { N_IMAGES = 32, K = 10 };
#define TOL_LOGITS 1e-4

/* SKIPPED reason, or NULL when torch and Fashion-MNIST are there. */
static const char *missing_prerequisite(void) {
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", &sb) != 0)
        return "the Fashion-MNIST files in /usr/share/datasets/fashion-mnist";
    if (stat("/usr/bin/python3", &sb) != 0 || system("/usr/bin/python3 -c 'import torch, h5py' >/dev/null 2>&1") != 0)
        return "/usr/bin/python3 with torch and h5py (Debian: python3-torch python3-h5py)";
    return NULL;
}

/* The checkpoint's weights into a fresh net for 1x28x28 images. */
static rm_net *load_net(const char *model, const char *run_path) {
    rm_net *net = NULL;
    assert_int_equal(rm_net_create(model, 1, 28, 28, K, &net), RM_OK);
    rm_checkpoint_reader *r = NULL;
    assert_int_equal(rm_checkpoint_open(run_path, &r, NULL), RM_OK);
    size_t n;
    rm_param *p = rm_net_params(net, &n);
    for (size_t i = 0; i < n; i++) {
        char name[128];
        snprintf(name, sizeof name, "model/%s", p[i].name);
        if (rm_checkpoint_read(r, name, RM_DT_F32, p[i].ndim, p[i].dims, p[i].data) != RM_OK)
            fail_msg("%s: %s", name, rm_error_message());
    }
    rm_checkpoint_close(r);
    rm_net_params_changed(net);
    return net;
}

static void check_model(const char *model) {
    const char *missing = missing_prerequisite();
    if (missing) {
        printf("SKIPPED: needs %s\n", missing);
        skip();
    }
    char dir[] = "/tmp/regmix-ptsd-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[4096], out[8192], run_path[256], logits_path[256];
    snprintf(run_path, sizeof run_path, "%s/r.h5", dir);
    snprintf(logits_path, sizeof logits_path, "%s/torch.logits", dir);
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 %s train model=%s train_subset=64 batch=32 epochs=1 test_subset=32 threads=1 "
             "eval_attacks=clean run_id=r outdir=%s --quiet 2>&1",
             REGMIX_BINARY, model, dir);
    int rc = rm_test_run_capture(cmd, out, sizeof out);
    if (rc != 0) fail_msg("regmix train model=%s failed (%d):\n%s", model, rc, out);

    /* regmix's side: eval-mode logits of the first N_IMAGES test images */
    rm_net *net = load_net(model, run_path);
    rm_dataset test;
    assert_int_equal(rm_dataset_load("fashion-mnist", NULL, 0, &test), RM_OK);
    float ours[N_IMAGES * K], theirs[N_IMAGES * K];
    rm_tape *tape = NULL;
    assert_int_equal(rm_tape_create(net, &tape), RM_OK);
    assert_int_equal(rm_net_forward(net, tape, RM_MODE_EVAL, test.images, N_IMAGES, ours), RM_OK);
    size_t n_params;
    rm_net_params(net, &n_params);

    /* PyTorch's side: strict load, the same images */
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/../pytorch/eval_checkpoint.py %s --first %d --logits %s 2>&1",
             REGMIX_TEST_DATA_DIR, run_path, N_IMAGES, logits_path);
    rc = rm_test_run_capture(cmd, out, sizeof out);
    printf("%s", out);
    if (rc != 0) fail_msg("eval_checkpoint.py failed (%d)", rc);
    char expect[128];
    snprintf(expect, sizeof expect, "loaded %zu tensors strictly into %s 1x28x28", n_params, model);
    assert_non_null(strstr(out, expect));
    FILE *f = fopen(logits_path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(theirs, sizeof(float), N_IMAGES * K, f), N_IMAGES * K);
    assert_int_equal(fgetc(f), EOF);
    fclose(f);

    double max_diff = 0.0, max_ref = 0.0;
    int agree = 0;
    for (int b = 0; b < N_IMAGES; b++) {
        int a1 = 0, a2 = 0;
        for (int k = 0; k < K; k++) {
            int i = b * K + k;
            max_diff = fmax(max_diff, fabs((double)ours[i] - theirs[i]));
            max_ref = fmax(max_ref, fabs((double)theirs[i]));
            if (ours[i] > ours[b * K + a1]) a1 = k;
            if (theirs[i] > theirs[b * K + a2]) a2 = k;
        }
        agree += a1 == a2;
    }
    double rel = max_diff / fmax(max_ref, 1e-30);
    printf("  %s: %zu tensors; logits of %d test images: max |diff| %.3e, rel %.3e (<= %.0e), same class %d/%d\n",
           model, n_params, N_IMAGES, max_diff, rel, TOL_LOGITS, agree, N_IMAGES);
    assert_true(rel <= TOL_LOGITS);
    assert_true(max_ref > 0.0);

    rm_tape_destroy(tape);
    rm_net_destroy(net);
    rm_dataset_free(&test);
    rm_test_remove_tree(dir);
}

static void test_resnet18_strict_load(void **state) {
    (void)state;
    check_model("resnet18");
}

static void test_wrn_10_2_strict_load(void **state) {
    (void)state;
    check_model("wrn-10-2");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet18_strict_load),
        cmocka_unit_test(test_wrn_10_2_strict_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
