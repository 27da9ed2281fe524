/* The gradients the attacks step on, checked against central finite differences:
 * - rm_attack_gradient (the one function every attack takes its input gradient from)
 *   for CE, the CW margin and the TRADES KL objective, through a convolution (inference
 *   mode) and through batch norm on batch statistics (training mode, where the examples
 *   of a batch are coupled), and through the full fmnist-cnn on a sampled subset;
 * - FGSM and FGSM-RS outputs equal P(start + step * sign(g)) with g from central
 *   differences of a cross-entropy computed here in double from the logits (independent
 *   of the loss module and of the backward pass). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "gradcheck.h"
#include "regmix/attack.h"

enum { K = 4 };

typedef struct {
    rm_attacker *a;
    rm_mode mode;
    rm_attack_loss loss;
    int B;
    const float *x;
    float *delta;
    const int32_t *y;
    const float *zc;
    float *scratch;
} obj_ctx;

/* The objective value at x + delta, through the same entry point the attacks use. */
static double objective(void *p) {
    obj_ctx *c = p;
    double v = 0;
    assert_int_equal(rm_attack_gradient(c->a, c->mode, c->loss, c->x, c->delta, c->y, c->zc, c->B,
                                        &v, c->scratch),
                     RM_OK);
    return v;
}

/* Arg max over j != y and the gap to the runner-up: the CW margin is smooth only where
 * that arg max is unique by more than a finite-difference step can move the logits. */
static double cw_gap(const float *z, int y) {
    float best = -INFINITY, second = -INFINITY;
    for (int j = 0; j < K; j++) {
        if (j == y) continue;
        if (z[j] > best) {
            second = best;
            best = z[j];
        } else if (z[j] > second) {
            second = z[j];
        }
    }
    return (double)best - second;
}

static int check_objectives(const char *model, int C, rm_mode mode, int B, size_t stride) {
    printf("%s, %s mode, batch %d\n", model, mode == RM_MODE_TRAIN ? "train" : "eval", B);
    rm_net *net;
    assert_int_equal(rm_net_create(model, C, 6, 6, K, &net), RM_OK);
    rm_net_init(net, 5);
    rm_attacker *a;
    assert_int_equal(rm_attacker_create(net, B, &a), RM_OK);
    rm_tape *tape;
    assert_int_equal(rm_tape_create(net, &tape), RM_OK);
    const size_t n = (size_t)B * rm_net_input_size(net);
    float *x = rm_alloc(n * 4), *delta = rm_alloc(n * 4), *grad = rm_alloc(n * 4),
          *scratch = rm_alloc(n * 4), *zc = rm_alloc((size_t)B * K * 4);
    int32_t y[8];
    rm_rng r;
    rm_rng_seed(&r, 21);
    for (size_t i = 0; i < n; i++) {
        x[i] = rm_rng_uniform(&r);
        delta[i] = rm_rng_uniform_range(&r, -0.1f, 0.1f);
    }
    /* clean logits (the TRADES target) from a forward pass of our own */
    assert_int_equal(rm_net_forward(net, tape, mode, x, B, zc), RM_OK);
    /* labels: the class whose CW arg max is the clearest at x + delta */
    float *zadv = rm_alloc((size_t)B * K * 4);
    for (size_t i = 0; i < n; i++) scratch[i] = x[i] + delta[i];
    assert_int_equal(rm_net_forward(net, tape, mode, scratch, B, zadv), RM_OK);
    for (int b = 0; b < B; b++) {
        int best = 0;
        for (int c = 1; c < K; c++)
            if (cw_gap(zadv + b * K, c) > cw_gap(zadv + b * K, best)) best = c;
        y[b] = best;
        printf("  example %d: label %d, CW arg max clear by %.3g\n", b, best, cw_gap(zadv + b * K, best));
        assert_true(cw_gap(zadv + b * K, best) > 2e-3);
    }
    static const rm_attack_loss losses[3] = {RM_ATTACK_LOSS_CE, RM_ATTACK_LOSS_CW, RM_ATTACK_LOSS_KL};
    static const char *names[3] = {"d CE / d x", "d CW margin / d x", "d KL(p_c||p_adv) / d x"};
    int ok = 1;
    for (int l = 0; l < 3; l++) {
        obj_ctx c = {.a = a, .mode = mode, .loss = losses[l], .B = B, .x = x, .delta = delta,
                     .y = y, .zc = zc, .scratch = scratch};
        double v;
        assert_int_equal(rm_attack_gradient(a, mode, losses[l], x, delta, y, zc, B, &v, grad), RM_OK);
        double gmax = 0;
        for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(grad[i]));
        printf("  objective %d value %.6f, max |gradient| %.3e\n", l, v, gmax);
        assert_true(gmax > 0);
        /* The tolerance scales with the gradient so that a small objective (KL near its
         * minimum) is checked as strictly as a large one; float32 network, steps of 1e-2
         * (1e-3 of the gradient scale is ~100x the rounding noise seen). */
        ok &= rm_check_gradient(names[l], objective, &c, delta, n, grad, 1e-2, 1e-3 * gmax, 2e-2,
                                stride);
    }
    rm_free(x); rm_free(delta); rm_free(grad); rm_free(scratch); rm_free(zc); rm_free(zadv);
    rm_tape_destroy(tape);
    rm_attacker_destroy(a);
    rm_net_destroy(net);
    return ok;
}

static void test_gradient_conv_eval(void **s) {
    (void)s;
    assert_true(check_objectives("tiny:conv", 3, RM_MODE_EVAL, 3, 1));
}
static void test_gradient_bn_train(void **s) {
    (void)s;
    assert_true(check_objectives("tiny:bn", 16, RM_MODE_TRAIN, 3, 1));
}
static void test_gradient_linear_train(void **s) {
    (void)s;
    assert_true(check_objectives("tiny:linear", 3, RM_MODE_TRAIN, 2, 1));
}

/* ---- FGSM against finite differences of an independent cross-entropy ---- */

typedef struct {
    rm_net *net;
    rm_tape *tape;
    int B;
    float *img; /* x + start, perturbed in place by the checker */
    const int32_t *y;
    float *z;
} ce_ctx;

/* mean_b ( log sum_k exp z_bk - z_b,y ), in double from the logits */
static double ce_here(ce_ctx *c) {
    assert_int_equal(rm_net_forward(c->net, c->tape, RM_MODE_EVAL, c->img, c->B, c->z), RM_OK);
    double total = 0;
    for (int b = 0; b < c->B; b++) {
        const float *zb = c->z + b * K;
        double m = zb[0];
        for (int k = 1; k < K; k++) m = fmax(m, zb[k]);
        double s = 0;
        for (int k = 0; k < K; k++) s += exp((double)zb[k] - m);
        total += m + log(s) - zb[c->y[b]];
    }
    return total / c->B;
}

static float clampf(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

static void fgsm_case(int random_start) {
    enum { B = 2 };
    rm_net *net;
    assert_int_equal(rm_net_create("tiny:conv", 3, 6, 6, K, &net), RM_OK); /* conv + linear: smooth */
    rm_net_init(net, 17);
    rm_attacker *a;
    assert_int_equal(rm_attacker_create(net, B, &a), RM_OK);
    ce_ctx c = {.net = net, .B = B};
    assert_int_equal(rm_tape_create(net, &c.tape), RM_OK);
    const size_t n = (size_t)B * rm_net_input_size(net);
    float *x = rm_alloc(n * 4), *start = rm_alloc(n * 4), *delta = rm_alloc(n * 4);
    c.img = rm_alloc(n * 4);
    c.z = rm_alloc(B * K * 4);
    const int32_t y[B] = {1, 3};
    c.y = y;
    rm_rng r;
    rm_rng_seed(&r, 8);
    for (size_t i = 0; i < n; i++) { /* a quarter of the pixels on the box edges */
        x[i] = rm_rng_uniform(&r);
        if (i % 8 == 0) x[i] = 0.0f;
        if (i % 8 == 1) x[i] = 1.0f;
        if (i % 8 == 2) x[i] = 0.01f;
        if (i % 8 == 3) x[i] = 0.99f;
    }
    const float eps = 0.05f, step = random_start ? 1.25f * eps : eps;
    /* the start by hand: U(-eps, eps) in element order, clamped to the ball and the box */
    rm_rng rs, lib;
    rm_rng_seed(&rs, 123);
    rm_rng_seed(&lib, 123);
    for (size_t i = 0; i < n; i++) {
        start[i] = random_start ? rm_rng_uniform_range(&rs, -eps, eps) : 0.0f;
        start[i] = clampf(clampf(start[i], -eps, eps), -x[i], 1.0f - x[i]);
        c.img[i] = x[i] + start[i];
    }
    /* numeric input gradient of CE at x + start */
    int skipped = 0, checked = 0;
    assert_int_equal(rm_fgsm(a, RM_MODE_EVAL, x, y, B, eps, step, random_start, &lib, delta), RM_OK);
    for (size_t i = 0; i < n; i++) {
        const float saved = c.img[i];
        const double h = 1e-2;
        c.img[i] = (float)(saved + h);
        const double up_h = (double)c.img[i] - saved, up = ce_here(&c);
        c.img[i] = (float)(saved - h);
        const double dn_h = (double)saved - c.img[i], dn = ce_here(&c);
        c.img[i] = saved;
        const double g = (up - dn) / (up_h + dn_h);
        assert_true(delta[i] <= eps && delta[i] >= -eps);
        assert_true(x[i] + delta[i] >= 0.0f && x[i] + delta[i] <= 1.0f);
        if (fabs(g) < 1e-4) { /* sign not resolved by the difference: only the ball checked */
            skipped++;
            continue;
        }
        const float sg = g > 0 ? 1.0f : -1.0f;
        const float want = clampf(clampf(start[i] + step * sg, -eps, eps), -x[i], 1.0f - x[i]);
        if (fabsf(delta[i] - want) > 1e-7f) {
            printf("  element %zu: x %.4f start %+.5f numeric g %+.3e: delta %+.6f, want %+.6f\n", i,
                   (double)x[i], (double)start[i], g, (double)delta[i], (double)want);
            fail();
        }
        checked++;
    }
    printf("  FGSM%s: %d elements match P(start + step sign(g_fd)), %d with |g_fd| < 1e-4 skipped\n",
           random_start ? "-RS" : "", checked, skipped);
    assert_true(skipped < (int)n / 10);
    /* the random start drew exactly n uniforms; plain FGSM drew none */
    assert_true(rm_rng_u64(&lib) == rm_rng_u64(&rs));
    rm_free(x); rm_free(start); rm_free(delta); rm_free(c.img); rm_free(c.z);
    rm_tape_destroy(c.tape);
    rm_attacker_destroy(a);
    rm_net_destroy(net);
}

static void test_fgsm_sign_of_numeric_gradient(void **s) { (void)s; fgsm_case(0); }
static void test_fgsm_rs_sign_of_numeric_gradient(void **s) { (void)s; fgsm_case(1); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_conv_eval),
        cmocka_unit_test(test_gradient_bn_train),
        cmocka_unit_test(test_gradient_linear_train),
        cmocka_unit_test(test_fgsm_sign_of_numeric_gradient),
        cmocka_unit_test(test_fgsm_rs_sign_of_numeric_gradient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
