/* Determinism: the same seed and thread count give bit-identical weights after three
 * SGD steps (fresh network, fresh tapes, plans rebuilt from scratch each time), and a
 * different seed gives different weights (so the comparison is not vacuous). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "regmix/loss.h"
#include "regmix/nn.h"
#include "regmix/optim.h"

enum { B = 8, K = 10, STEPS = 3 };

/* Trains STEPS steps of plain CE from seed `seed`; returns a copy of every tensor. */
static float *train_copy(const char *model, int C, int H, uint64_t seed, size_t *total) {
    rm_net *net;
    assert_int_equal(rm_net_create(model, C, H, H, K, &net), RM_OK);
    rm_net_init(net, seed);
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    rm_sgd *opt;
    assert_int_equal(rm_sgd_create(p, np, (rm_sgd_config){0.9, 5e-4}, &opt), RM_OK);
    rm_tape *tape;
    assert_int_equal(rm_tape_create(net, &tape), RM_OK);
    size_t nx = (size_t)B * rm_net_input_size(net);
    float *x = rm_alloc(nx * sizeof(float)), logits[B * K], dz[B * K];
    int32_t y[B];
    rm_rng r;
    rm_rng_seed(&r, 99); /* the data is the same for every seed */
    for (int s = 0; s < STEPS; s++) {
        for (size_t i = 0; i < nx; i++) x[i] = rm_rng_uniform(&r);
        for (int b = 0; b < B; b++) y[b] = (int32_t)rm_rng_below(&r, K);
        assert_int_equal(rm_net_forward(net, tape, RM_MODE_TRAIN, x, B, logits), RM_OK);
        memset(dz, 0, sizeof dz);
        assert_int_equal(rm_ce_ls(logits, y, B, K, 1.0, NULL, dz), RM_OK);
        rm_net_zero_grad(net);
        assert_int_equal(rm_net_backward(net, tape, dz, NULL, RM_GRAD_WEIGHTS), RM_OK);
        rm_sgd_step(opt, 0.1);
        rm_net_params_changed(net);
    }
    *total = 0;
    for (size_t i = 0; i < np; i++) *total += p[i].numel;
    float *copy = rm_alloc(*total * sizeof(float)), *dst = copy;
    for (size_t i = 0; i < np; i++) {
        memcpy(dst, p[i].data, p[i].numel * sizeof(float));
        dst += p[i].numel;
    }
    rm_free(x);
    rm_tape_destroy(tape);
    rm_sgd_destroy(opt);
    rm_net_destroy(net);
    return copy;
}

static void check_model(const char *model, int C, int H) {
    size_t n1, n2, n3;
    float *a = train_copy(model, C, H, 11, &n1), *b = train_copy(model, C, H, 11, &n2),
          *c = train_copy(model, C, H, 12, &n3);
    assert_int_equal(n1, n2);
    size_t differ_same = 0, differ_other = 0;
    for (size_t i = 0; i < n1; i++) {
        differ_same += memcmp(&a[i], &b[i], sizeof(float)) != 0;
        differ_other += a[i] != c[i];
    }
    printf("%s: %zu values; seed 11 vs 11: %zu differ (want 0); seed 11 vs 12: %zu differ\n", model, n1,
           differ_same, differ_other);
    assert_int_equal(differ_same, 0);
    assert_true(differ_other > n1 / 2);
    rm_free(a);
    rm_free(b);
    rm_free(c);
}

static void test_fmnist_cnn_bit_identical(void **s) { (void)s; check_model("fmnist-cnn", 1, 28); }
static void test_preact_resnet18_bit_identical(void **s) { (void)s; check_model("preact-resnet18", 3, 32); }
/* normal (TRADES) initialisation, on a Fashion-MNIST-shaped input */
static void test_wrn_bit_identical(void **s) { (void)s; check_model("wrn-10-2", 1, 28); }

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmnist_cnn_bit_identical),
        cmocka_unit_test(test_preact_resnet18_bit_identical),
        cmocka_unit_test(test_wrn_bit_identical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
