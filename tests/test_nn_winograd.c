/* Winograd convolutions. The engine lets oneDNN choose the convolution algorithm per
 * layer and pass (dnnl_convolution_auto): Winograd F(4x4, 3x3) for 3x3 stride-1 layers
 * at batch sizes where it is faster (about 2x on AVX-512 in f32), direct convolution
 * elsewhere, in particular at batch 1. The test holds Winograd to the accuracy the
 * PyTorch fixtures demand of the f32 engine (test_pytorch_models: logits and input
 * gradient within 1e-4, weight gradients within 1e-3, as max |diff| / max |ref|).
 *
 * Inference mode (batch norm on running statistics: every image is independent): one
 * pass over a batch of 128 (Winograd where oneDNN takes it; the kernels are printed)
 * against 128 passes of one image each (direct convolution):
 * - tiny:wino (two 32->32 3x3 convolutions on 32x32 images, a linear head, no kink; the
 *   first reads the plain input image, the second is Winograd-sized):
 *   logits, d loss / d image and the weight gradients (the single-image backward passes
 *   add into the gradients) -- Winograd's forward, backward-data and backward-weights;
 * - fmnist-cnn and preact-resnet18: the logits. Their gradients are not compared: a ReLU
 *   input within Winograd's 1e-6 of zero may take the other branch and move one image's
 *   gradient by 1e-3 (the reason the fixture generator repairs its inputs).
 * A wrong Winograd transform or layout gives errors of order 1. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "regmix/nn.h"

enum { K = 10, B = 128 };

typedef struct {
    float *logits, *dx, *grads;
    size_t nx, ngrads;
} result;

static double max_rel(const float *a, const float *ref, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - ref[i]));
        m = fmax(m, fabs((double)ref[i]));
    }
    return m > 0 ? d / m : d;
}

/* The image shape the model was written for: 1x28x28 (fmnist-cnn), 32x32x32 (tiny:wino,
 * Winograd-sized), else 3x32x32. */
static void usual_shape(const char *model, int *c, int *h, int *w) {
    if (!strcmp(model, "fmnist-cnn")) *c = 1, *h = *w = 28;
    else if (!strcmp(model, "tiny:wino")) *c = 32, *h = *w = 32;
    else *c = 3, *h = *w = 32;
}

/* Forward + backward (input and weights) in inference mode over `chunk` images at a
 * time; the weight gradients of the chunks add up. */
static void run(const char *model, int chunk, result *r, char *kernels, size_t ksize) {
    rm_net *net;
    int c, h, w;
    usual_shape(model, &c, &h, &w);
    assert_int_equal(rm_net_create(model, c, h, w, K, &net), RM_OK);
    fixture_fill_params(net);
    assert_int_equal(rm_net_conv_kernels(net, chunk, kernels, ksize), RM_OK);
    rm_tape *tape;
    assert_int_equal(rm_tape_create(net, &tape), RM_OK);
    size_t d = rm_net_input_size(net);
    r->nx = (size_t)B * d;
    float *x = rm_alloc(r->nx * sizeof(float)), *dz = rm_alloc((size_t)B * K * sizeof(float));
    r->dx = rm_alloc(r->nx * sizeof(float));
    r->logits = rm_alloc((size_t)B * K * sizeof(float));
    rm_rng rng;
    rm_rng_seed(&rng, 17);
    for (size_t i = 0; i < r->nx; i++) x[i] = rm_rng_uniform(&rng);
    for (int i = 0; i < B * K; i++) dz[i] = (rm_rng_uniform(&rng) - 0.5f) / B;
    rm_net_zero_grad(net);
    for (int b = 0; b < B; b += chunk) {
        assert_int_equal(rm_net_forward(net, tape, RM_MODE_EVAL, x + (size_t)b * d, chunk, r->logits + (size_t)b * K),
                         RM_OK);
        assert_int_equal(rm_net_backward(net, tape, dz + (size_t)b * K, r->dx + (size_t)b * d,
                                         RM_GRAD_INPUT | RM_GRAD_WEIGHTS),
                         RM_OK);
    }
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    r->ngrads = 0;
    for (size_t i = 0; i < np; i++) r->ngrads += p[i].grad ? p[i].numel : 0;
    r->grads = rm_alloc(r->ngrads * sizeof(float));
    for (size_t i = 0, at = 0; i < np; i++)
        if (p[i].grad) {
            memcpy(r->grads + at, p[i].grad, p[i].numel * sizeof(float));
            at += p[i].numel;
        }
    rm_free(x);
    rm_free(dz);
    rm_tape_destroy(tape);
    rm_net_destroy(net);
}

/* per-parameter comparison of the concatenated weight gradients */
static double worst_grad(const char *model, const float *a, const float *ref) {
    rm_net *net;
    int c, h, w;
    usual_shape(model, &c, &h, &w);
    assert_int_equal(rm_net_create(model, c, h, w, K, &net), RM_OK);
    size_t np, at = 0;
    rm_param *p = rm_net_params(net, &np);
    double worst = 0;
    for (size_t i = 0; i < np; i++)
        if (p[i].grad) {
            worst = fmax(worst, max_rel(a + at, ref + at, p[i].numel));
            at += p[i].numel;
        }
    rm_net_destroy(net);
    return worst;
}

static void check_model(const char *model, int gradients) {
    result big, one;
    char kb[512], k1[512];
    run(model, B, &big, kb, sizeof kb);
    run(model, 1, &one, k1, sizeof k1);
    printf("  %s, convolutions at batch %d: %s\n", model, B, kb);
    printf("  %s, convolutions at batch 1: %s\n", model, k1);
    if (!strstr(kb, "wino")) printf("  (oneDNN takes no Winograd here on this CPU: batch %d vs 1 compares direct with direct)\n", B);
    double el = max_rel(big.logits, one.logits, (size_t)B * K);
    printf("  batch %d vs %d single images: logits %.2e (tol 1e-4)", B, B, el);
    assert_true(el <= 1e-4);
    if (gradients) {
        double ed = max_rel(big.dx, one.dx, big.nx), eg = worst_grad(model, big.grads, one.grads);
        printf(", input gradient %.2e (tol 1e-4), worst weight gradient %.2e (tol 1e-3)", ed, eg);
        assert_true(ed <= 1e-4);
        assert_true(eg <= 1e-3);
    }
    printf("\n");
    rm_free(big.logits), rm_free(big.dx), rm_free(big.grads);
    rm_free(one.logits), rm_free(one.dx), rm_free(one.grads);
}

static void test_winograd_layer(void **state) {
    (void)state;
    check_model("tiny:wino", 1);
}

static void test_fmnist_cnn_logits(void **state) {
    (void)state;
    check_model("fmnist-cnn", 0);
}

static void test_preact_resnet18_logits(void **state) {
    (void)state;
    check_model("preact-resnet18", 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_winograd_layer),
        cmocka_unit_test(test_fmnist_cnn_logits),
        cmocka_unit_test(test_preact_resnet18_logits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
