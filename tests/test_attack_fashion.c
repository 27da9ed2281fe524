/* The evaluation attacks on real data (skipped when Fashion-MNIST is not installed):
 * fmnist-cnn trained for a few dozen SGD steps on 2048 test-split images, then evaluated
 * on 256 others as the protocol does (inference mode): clean, FGSM-RS, PGD-10 and CW-10
 * with step eps/4. Expectations of any working attack on an undefended model, with
 * wide margins: clean accuracy is well above chance, PGD removes most of it, PGD is at
 * least as strong as FGSM-RS, and the robust flags agree with a recount on the
 * returned perturbations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "regmix/attack.h"
#include "regmix/data.h"
#include "regmix/loss.h"
#include "regmix/optim.h"

enum { K = 10, TB = 64, STEPS = 32, EB = 128, NEVAL = 256 };

static void test_fashion_attacks(void **state) {
    (void)state;
    rm_dataset ds;
    if (rm_dataset_load("fashion-mnist", NULL, 0, &ds) != RM_OK) {
        printf("Fashion-MNIST not found (%s): skipped\n", rm_error_message());
        rm_error_clear();
        skip();
    }
    assert_true(ds.n >= TB * STEPS + NEVAL);
    double t0 = rm_now_seconds();
    rm_net *net;
    assert_int_equal(rm_net_create("fmnist-cnn", 1, 28, 28, K, &net), RM_OK);
    rm_net_init(net, 12);
    const size_t d = rm_net_input_size(net);
    rm_tape *tape;
    assert_int_equal(rm_tape_create(net, &tape), RM_OK);
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    rm_sgd *opt;
    assert_int_equal(rm_sgd_create(p, np, (rm_sgd_config){.momentum = 0.9, .weight_decay = 5e-4}, &opt),
                     RM_OK);
    float z[TB * K], dz[TB * K];
    double loss = 0;
    for (int it = 0; it < STEPS; it++) {
        const float *xb = ds.images + (size_t)it * TB * d;
        const int32_t *yb = ds.labels + (size_t)it * TB;
        assert_int_equal(rm_net_forward(net, tape, RM_MODE_TRAIN, xb, TB, z), RM_OK);
        memset(dz, 0, sizeof dz);
        assert_int_equal(rm_ce_ls(z, yb, TB, K, 1.0, &loss, dz), RM_OK);
        rm_net_zero_grad(net);
        assert_int_equal(rm_net_backward(net, tape, dz, NULL, RM_GRAD_WEIGHTS), RM_OK);
        rm_sgd_step(opt, 0.05);
        rm_net_params_changed(net);
    }
    printf("trained fmnist-cnn for %d steps of %d: last CE %.3f (%.1f s)\n", STEPS, TB, loss,
           rm_now_seconds() - t0);

    rm_attacker *a;
    assert_int_equal(rm_attacker_create(net, EB, &a), RM_OK);
    float *delta = rm_alloc(EB * d * sizeof(float));
    unsigned char rob[EB];
    rm_rng r;
    rm_rng_seed(&r, 3);
    const float eps = 0.15f;
    int clean = 0, fgsm = 0, pgd = 0, cw = 0;
    for (int s = 0; s < NEVAL / EB; s++) {
        const size_t first = (size_t)ds.n - NEVAL + (size_t)s * EB;
        const float *x = ds.images + first * d;
        const int32_t *y = ds.labels + first;
        int c;
        assert_int_equal(rm_count_correct(a, RM_MODE_EVAL, x, NULL, y, EB, &c), RM_OK);
        clean += c;
        assert_int_equal(rm_fgsm(a, RM_MODE_EVAL, x, y, EB, eps, 1.25f * eps, 1, &r, delta), RM_OK);
        assert_int_equal(rm_count_correct(a, RM_MODE_EVAL, x, delta, y, EB, &c), RM_OK);
        fgsm += c;
        for (int l = 0; l < 2; l++) {
            assert_int_equal(rm_pgd(a, RM_MODE_EVAL, x, y, EB, eps, eps / 4, 10, 1,
                                    l ? RM_ATTACK_LOSS_CW : RM_ATTACK_LOSS_CE, &r, delta, rob),
                             RM_OK);
            int flags = 0;
            for (int b = 0; b < EB; b++) flags += rob[b];
            assert_int_equal(rm_count_correct(a, RM_MODE_EVAL, x, delta, y, EB, &c), RM_OK);
            assert_int_equal(c, flags);
            *(l ? &cw : &pgd) += c;
        }
    }
    printf("eps %.2f on %d images: clean %d, FGSM-RS %d, PGD-10 %d, CW-10 %d (%.1f s in all)\n",
           (double)eps, NEVAL, clean, fgsm, pgd, cw, rm_now_seconds() - t0);
    assert_true(clean > NEVAL * 6 / 10);
    assert_true(pgd < clean / 2 && cw < clean / 2);
    assert_true(pgd <= fgsm);
    rm_free(delta);
    rm_attacker_destroy(a);
    rm_sgd_destroy(opt);
    rm_tape_destroy(tape);
    rm_net_destroy(net);
    rm_dataset_free(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_fashion_attacks)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
