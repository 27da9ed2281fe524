/* Finite-difference checks of every layer type, in training and inference mode, at
 * batch sizes 1 and 3: the input gradient and every parameter gradient of a tiny
 * network "tiny:<layer>" (the layer under test and a linear head) are compared with
 * central differences of the scalar  L = sum_ij c_ij * logits_ij  (c fixed, random).
 * Also: backward-data-only returns the same input gradient as the full backward, and
 * two taped passes back-propagate to the sum of their separate weight gradients. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "regmix/nn.h"

enum { K = 5 };

typedef struct {
    rm_net *net;
    rm_tape *tape;
    rm_mode mode;
    int batch;
    float *x, *logits, *coef;
} fd_ctx;

static double objective(void *p) {
    fd_ctx *c = p;
    rm_net_params_changed(c->net); /* the checker may have perturbed a weight */
    assert_int_equal(rm_net_forward(c->net, c->tape, c->mode, c->x, c->batch, c->logits), RM_OK);
    double s = 0;
    for (int i = 0; i < c->batch * K; i++) s += (double)c->coef[i] * c->logits[i];
    return s;
}

static void fill(rm_rng *r, float *v, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) v[i] = rm_rng_uniform_range(r, lo, hi);
}

/* Randomise BN parameters and running statistics so inference mode is not trivial. */
static void randomise_bn(rm_net *net, rm_rng *r) {
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    for (size_t i = 0; i < np; i++) {
        if (p[i].fan_in != 0) continue;
        int is_var = strstr(p[i].name, "running_var") || strstr(p[i].name, ".weight");
        fill(r, p[i].data, p[i].numel, is_var ? 0.5f : -0.3f, is_var ? 1.5f : 0.3f);
    }
    rm_net_params_changed(net);
}

static int check_model(const char *model, int C, rm_mode mode, int batch) {
    printf("%s, %s mode, batch %d\n", model, mode == RM_MODE_TRAIN ? "train" : "eval", batch);
    rm_net *net;
    assert_int_equal(rm_net_create(model, C, 6, 6, K, &net), RM_OK);
    rm_net_init(net, 7);
    rm_rng r;
    rm_rng_seed(&r, 42 + (uint64_t)batch);
    randomise_bn(net, &r);
    fd_ctx c = {.net = net, .mode = mode, .batch = batch};
    assert_int_equal(rm_tape_create(net, &c.tape), RM_OK);
    size_t nx = (size_t)batch * rm_net_input_size(net);
    c.x = rm_alloc(nx * sizeof(float));
    c.logits = rm_alloc((size_t)batch * K * sizeof(float));
    c.coef = rm_alloc((size_t)batch * K * sizeof(float));
    float *dx = rm_alloc(nx * sizeof(float)), *dx_only = rm_alloc(nx * sizeof(float));
    fill(&r, c.x, nx, -1.f, 1.f);
    fill(&r, c.coef, (size_t)batch * K, -1.f, 1.f);
    /* ReLU and max pooling have kinks: put the inputs on a shuffled grid of distinct
     * values (spacing 2/nx, none at 0) and use a smaller step, so that no central
     * difference straddles a kink or a tie. */
    int kinked = strstr(model, "relu") || strstr(model, "maxpool");
    double h_in = 1e-2;
    if (!strcmp(model, "tiny:bnrelu")) {
        /* The kink is at BN output 0, which a grid input cannot keep away from. Instead
         * each channel holds two balanced clusters, x = +-1 +- 0.05, so x_hat ~ +-1
         * (train) or |x - mean| / sigma >= 0.53 (eval, running mean within 0.3, variance
         * at most 1.5); with gamma >= 0.5 and |beta| <= 0.1 every BN output is at least
         * 0.16 from 0, far beyond what a step of 1e-2 moves it. */
        int C = 16;
        size_t hw = nx / (size_t)batch / (size_t)C;
        for (int b = 0; b < batch; b++)
            for (int ch = 0; ch < C; ch++) {
                float *v = c.x + ((size_t)b * C + ch) * hw;
                for (size_t i = 0; i < hw; i++) v[i] = (i % 2 ? 1.f : -1.f) + rm_rng_uniform_range(&r, -0.05f, 0.05f);
            }
        rm_param *beta = rm_net_find_param(net, "bn.bias");
        assert_non_null(beta);
        for (size_t i = 0; i < beta->numel; i++) beta->data[i] /= 3;
        rm_net_params_changed(net);
    } else if (kinked) {
        for (size_t i = 0; i < nx; i++) c.x[i] = (float)((i + 0.5) * (2.0 / nx) - 1.0);
        for (size_t i = nx - 1; i > 0; i--) {
            size_t j = rm_rng_below(&r, (uint32_t)(i + 1));
            float t = c.x[i];
            c.x[i] = c.x[j];
            c.x[j] = t;
        }
        h_in = 0.2 / nx;
    }

    objective(&c);
    rm_net_zero_grad(net);
    assert_int_equal(rm_net_backward(net, c.tape, c.coef, dx, RM_GRAD_INPUT | RM_GRAD_WEIGHTS), RM_OK);
    /* backward-data-only must give the same input gradient and touch no weight grad */
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    float *saved = rm_alloc(p[0].numel * sizeof(float));
    memcpy(saved, p[0].grad, p[0].numel * sizeof(float));
    assert_int_equal(rm_net_backward(net, c.tape, c.coef, dx_only, RM_GRAD_INPUT), RM_OK);
    assert_memory_equal(dx, dx_only, nx * sizeof(float));
    assert_memory_equal(saved, p[0].grad, p[0].numel * sizeof(float));

    /* float32 forward: step 1e-2 on O(1) inputs keeps rounding noise ~1e-5 */
    int ok = rm_check_gradient("input", objective, &c, c.x, nx, dx, h_in, 2e-3, 2e-2, 1);
    for (size_t i = 0; i < np; i++) {
        if (p[i].is_buffer) continue;
        size_t stride = p[i].numel > 2000 ? 7 : 1;
        ok &= rm_check_gradient(p[i].name, objective, &c, p[i].data, p[i].numel, p[i].grad, 1e-2,
                                2e-3, 2e-2, stride);
    }
    rm_free(saved);
    rm_free(dx);
    rm_free(dx_only);
    rm_free(c.x);
    rm_free(c.logits);
    rm_free(c.coef);
    rm_tape_destroy(c.tape);
    rm_net_destroy(net);
    return ok;
}

/* C input channels, on 6x6 images */
static void check_layer(const char *model, int C) {
    static const rm_mode modes[2] = {RM_MODE_TRAIN, RM_MODE_EVAL};
    static const int batches[2] = {1, 3};
    int ok = 1;
    for (int m = 0; m < 2; m++)
        for (int b = 0; b < 2; b++) ok &= check_model(model, C, modes[m], batches[b]);
    assert_true(ok);
}

static void test_conv(void **s) { (void)s; check_layer("tiny:conv", 3); }
static void test_conv16_stride2(void **s) { (void)s; check_layer("tiny:conv16", 16); }
static void test_conv1x1(void **s) { (void)s; check_layer("tiny:conv1x1", 16); }
static void test_batchnorm(void **s) { (void)s; check_layer("tiny:bn", 16); }
/* the engine fuses a ReLU that alone reads a batch norm's output into the batch norm */
static void test_batchnorm_relu(void **s) { (void)s; check_layer("tiny:bnrelu", 16); }
static void test_relu(void **s) { (void)s; check_layer("tiny:relu", 3); }
static void test_maxpool(void **s) { (void)s; check_layer("tiny:maxpool", 16); }
static void test_avgpool(void **s) { (void)s; check_layer("tiny:avgpool", 16); }
static void test_global_avgpool(void **s) { (void)s; check_layer("tiny:gap", 16); }
static void test_linear(void **s) { (void)s; check_layer("tiny:linear", 3); }
static void test_residual_add(void **s) { (void)s; check_layer("tiny:add", 16); }

/* Two tapes of different inputs: backward through both accumulates exactly the sum of
 * the weight gradients of the two passes taken separately. */
static void test_two_tapes_sum(void **state) {
    (void)state;
    rm_net *net;
    assert_int_equal(rm_net_create("fmnist-cnn", 1, 28, 28, 10, &net), RM_OK);
    rm_net_init(net, 3);
    int B = 4;
    size_t nx = (size_t)B * rm_net_input_size(net);
    float *x1 = rm_alloc(nx * 4), *x2 = rm_alloc(nx * 4), *l = rm_alloc(B * 10 * 4), *d1 = rm_alloc(B * 10 * 4),
          *d2 = rm_alloc(B * 10 * 4);
    rm_rng r;
    rm_rng_seed(&r, 5);
    fill(&r, x1, nx, 0, 1);
    fill(&r, x2, nx, 0, 1);
    fill(&r, d1, B * 10, -1, 1);
    fill(&r, d2, B * 10, -1, 1);
    rm_tape *t1, *t2;
    assert_int_equal(rm_tape_create(net, &t1), RM_OK);
    assert_int_equal(rm_tape_create(net, &t2), RM_OK);
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    float *g1[64] = {0}, *g2[64] = {0};
    /* separate passes */
    for (int pass = 0; pass < 2; pass++) {
        rm_net_zero_grad(net);
        assert_int_equal(rm_net_forward(net, t1, RM_MODE_TRAIN, pass ? x2 : x1, B, l), RM_OK);
        assert_int_equal(rm_net_backward(net, t1, pass ? d2 : d1, NULL, RM_GRAD_WEIGHTS), RM_OK);
        for (size_t i = 0; i < np; i++) {
            if (!p[i].grad) continue;
            float **g = pass ? g2 : g1;
            g[i] = rm_alloc(p[i].numel * 4);
            memcpy(g[i], p[i].grad, p[i].numel * 4);
        }
    }
    /* both passes taped first, then both backwards */
    rm_net_zero_grad(net);
    assert_int_equal(rm_net_forward(net, t1, RM_MODE_TRAIN, x1, B, l), RM_OK);
    assert_int_equal(rm_net_forward(net, t2, RM_MODE_TRAIN, x2, B, l), RM_OK);
    assert_int_equal(rm_net_backward(net, t1, d1, NULL, RM_GRAD_WEIGHTS), RM_OK);
    assert_int_equal(rm_net_backward(net, t2, d2, NULL, RM_GRAD_WEIGHTS), RM_OK);
    double worst = 0;
    for (size_t i = 0; i < np; i++) {
        if (!p[i].grad) continue;
        for (size_t k = 0; k < p[i].numel; k++) {
            double want = (double)g1[i][k] + g2[i][k];
            double diff = fabs(want - p[i].grad[k]) / (1e-6 + fabs(want));
            if (diff > worst) worst = diff;
        }
        rm_free(g1[i]);
        rm_free(g2[i]);
    }
    printf("two tapes: max relative difference from the sum of separate gradients %.3e\n", worst);
    assert_true(worst < 1e-5);
    rm_free(x1); rm_free(x2); rm_free(l); rm_free(d1); rm_free(d2);
    rm_tape_destroy(t1);
    rm_tape_destroy(t2);
    rm_net_destroy(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv),          cmocka_unit_test(test_conv16_stride2),
        cmocka_unit_test(test_conv1x1),       cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_batchnorm_relu),
        cmocka_unit_test(test_relu),          cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_avgpool),       cmocka_unit_test(test_global_avgpool),
        cmocka_unit_test(test_linear),        cmocka_unit_test(test_residual_add),
        cmocka_unit_test(test_two_tapes_sum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
