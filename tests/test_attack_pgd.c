/* Properties of the attacks on networks:
 * - every attack's output lies in the eps-ball and keeps x + delta in [0,1], element by
 *   element, with pixels at 0, near 0, near 1 and at 1;
 * - PGD restarts: the worst case per example is exactly the AND over the restarts run
 *   one at a time, so more restarts never raise robust accuracy (subset, per example);
 * - sanity of the ascent: PGD raises CE over its random start, the CW attack raises the
 *   margin max_{j!=y} z_j - z_y over the clean point, TRADES raises its KL over its start;
 * - argument errors.
 * The model is "tiny:maxpool" trained here for a few SGD steps on a synthetic 3-class task
 * (tests/support/tiny_task.h), so that the attacks meet a model with real margins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "regmix/attack.h"
#include "regmix/loss.h"
#include "regmix/optim.h"
#include "tiny_task.h"

#ifndef MODEL
#define MODEL "tiny:maxpool"
#endif
enum { K = 3, NB = 128 };

typedef struct {
    rm_net *net;
    rm_attacker *a;
    size_t d;
    tiny_task task;
    float *x;      /* (NB, d) held-out examples */
    int32_t y[NB];
} fixture;

static int setup(void **state) {
    fixture *f = rm_alloc(sizeof *f);
    assert_int_equal(rm_net_create(MODEL, 16, 6, 6, K, &f->net), RM_OK);
    rm_net_init(f->net, 1);
    f->d = rm_net_input_size(f->net);
    assert_int_equal(rm_attacker_create(f->net, NB, &f->a), RM_OK);
    f->x = rm_alloc(NB * f->d * sizeof(float));
    tiny_task_init(&f->task, K, f->d, 2024);
    /* 150 SGD steps on batches of 32: CE, backward into the weights, momentum 0.9 */
    double loss = tiny_task_train(&f->task, f->net, 150, 32, 0.05);
    tiny_task_batch(&f->task, NB, f->x, f->y);
    int correct;
    assert_int_equal(rm_count_correct(f->a, RM_MODE_EVAL, f->x, NULL, f->y, NB, &correct), RM_OK);
    printf("trained %s: last training CE %.4f, clean accuracy %d/%d\n", MODEL, loss, correct, NB);
    assert_true(correct >= NB * 3 / 4);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    rm_attacker_destroy(f->a);
    rm_net_destroy(f->net);
    tiny_task_free(&f->task);
    rm_free(f->x);
    rm_free(f);
    return 0;
}

static int count(const unsigned char *v, int n) {
    int c = 0;
    for (int i = 0; i < n; i++) c += v[i] != 0;
    return c;
}

/* ---- restarts: the worst case per example ----
 * PGD is not monotone in its steps (the last iterate of a longer run can land back on the
 * right side of the boundary), so "more steps never report higher robust accuracy" is an
 * expectation, not a property. Restarts are a property by construction: a call with R
 * restarts reports an example robust only if it survives every restart, and restart r
 * is exactly a one-restart call made with the rng where r earlier starts left it (the
 * header promises restarts * B*C*H*W draws). So we assert, per example:
 *   robust_R3 == robust_1 AND robust_2 AND robust_3   (hence robust_R3 is a subset of robust_1),
 *   delta_R3 == delta of the first single restart that fooled it, else of the third. */
static void test_restarts_are_worst_case(void **state) {
    fixture *f = *state;
    const size_t n = NB * f->d;
    const float eps = 0.06f;
    for (int l = 0; l < 2; l++) {
        rm_attack_loss loss = l ? RM_ATTACK_LOSS_CW : RM_ATTACK_LOSS_CE;
        float *single[3], *multi = rm_alloc(n * 4);
        unsigned char rob[3][NB], rob_m[NB];
        rm_rng r;
        rm_rng_seed(&r, 77);
        for (int k = 0; k < 3; k++) { /* three one-restart calls, rng carried over */
            single[k] = rm_alloc(n * 4);
            assert_int_equal(rm_pgd(f->a, RM_MODE_EVAL, f->x, f->y, NB, eps, eps / 4, 5, 1, loss,
                                    &r, single[k], rob[k]),
                             RM_OK);
        }
        rm_rng_seed(&r, 77);
        assert_int_equal(rm_pgd(f->a, RM_MODE_EVAL, f->x, f->y, NB, eps, eps / 4, 5, 3, loss, &r,
                                multi, rob_m),
                         RM_OK);
        int differ = 0;
        for (int b = 0; b < NB; b++) {
            const int want = rob[0][b] && rob[1][b] && rob[2][b];
            assert_int_equal(rob_m[b], want);
            assert_true(!rob_m[b] || rob[0][b]); /* subset of the one-restart robust set */
            int k = 0;
            while (k < 2 && rob[k][b]) k++;
            assert_memory_equal(multi + b * f->d, single[k] + b * f->d, f->d * sizeof(float));
            differ += rob[0][b] != rob[1][b] || rob[1][b] != rob[2][b];
        }
        /* the reported delta really is adversarial where it claims to be */
        int correct;
        assert_int_equal(rm_count_correct(f->a, RM_MODE_EVAL, f->x, multi, f->y, NB, &correct), RM_OK);
        printf("  %s PGD-5: robust %d, %d, %d with single restarts; %d with 3 restarts "
               "(%d examples decided differently by the restarts); recount %d\n",
               l ? "CW" : "CE", count(rob[0], NB), count(rob[1], NB), count(rob[2], NB),
               count(rob_m, NB), differ, correct);
        assert_int_equal(correct, count(rob_m, NB));
        assert_true(differ > 0); /* otherwise the test above decided nothing */
        for (int k = 0; k < 3; k++) rm_free(single[k]);
        rm_free(multi);
    }
}

/* More steps: an empirical check (see the comment above), with the same seed so that
 * both runs start from the same point. PGD-5 with step eps/4 cannot even cross the
 * ball; PGD-20 can, so on this model it finds clearly more adversarial examples. */
static void test_more_steps_find_more(void **state) {
    fixture *f = *state;
    const float eps = 0.06f;
    float *delta = rm_alloc(NB * f->d * 4);
    unsigned char rob5[NB], rob20[NB];
    rm_rng r;
    rm_rng_seed(&r, 5);
    assert_int_equal(rm_pgd(f->a, RM_MODE_EVAL, f->x, f->y, NB, eps, eps / 4, 5, 1,
                            RM_ATTACK_LOSS_CE, &r, delta, rob5), RM_OK);
    rm_rng_seed(&r, 5);
    assert_int_equal(rm_pgd(f->a, RM_MODE_EVAL, f->x, f->y, NB, eps, eps / 4, 20, 1,
                            RM_ATTACK_LOSS_CE, &r, delta, rob20), RM_OK);
    printf("  robust with PGD-5: %d/%d, with PGD-20: %d/%d\n", count(rob5, NB), NB,
           count(rob20, NB), NB);
    assert_true(count(rob20, NB) <= count(rob5, NB));
    rm_free(delta);
}


/* ---- every output in the eps-ball and the [0,1] box, element by element ---- */

static void check_inside(const char *what, const float *x, const float *delta, size_t n, float eps) {
    for (size_t i = 0; i < n; i++) {
        const float img = x[i] + delta[i];
        if (!(delta[i] >= -eps && delta[i] <= eps && img >= 0.0f && img <= 1.0f)) {
            printf("  %s: element %zu x %.9g delta %.9g (eps %.9g) leaves the ball or the box\n",
                   what, i, (double)x[i], (double)delta[i], (double)eps);
            fail();
        }
    }
}

static void test_outputs_inside_ball_and_box(void **state) {
    (void)state;
    enum { B = 4 };
    rm_net *net;
    assert_int_equal(rm_net_create("fmnist-cnn", 1, 28, 28, 10, &net), RM_OK);
    rm_net_init(net, 3);
    rm_attacker *a;
    assert_int_equal(rm_attacker_create(net, B, &a), RM_OK);
    const size_t d = rm_net_input_size(net), n = B * d;
    float *x = rm_alloc(n * 4), *delta = rm_alloc(n * 4), *e = rm_alloc(n * 4), *g = rm_alloc(n * 4);
    int32_t y[B] = {0, 3, 7, 9};
    int64_t ids[B] = {2, 0, 3, 1};
    rm_rng r;
    rm_rng_seed(&r, 31);
    for (size_t i = 0; i < n; i++) { /* like Fashion-MNIST: many exact 0s, some 1s */
        const float u = rm_rng_uniform(&r);
        x[i] = u < 0.3f ? 0.0f : u < 0.4f ? 1.0f : u < 0.5f ? 1e-3f * u : u < 0.6f ? 1.0f - 1e-3f * u
                                                                                   : rm_rng_uniform(&r);
    }
    static const float budgets[2] = {8.0f / 255.0f, 0.3f};
    for (int m = 0; m < 2; m++) {
        const rm_mode mode = m ? RM_MODE_TRAIN : RM_MODE_EVAL;
        for (int k = 0; k < 2; k++) {
            const float eps = budgets[k];
            assert_int_equal(rm_fgsm(a, mode, x, y, B, eps, eps, 0, NULL, delta), RM_OK);
            check_inside("FGSM", x, delta, n, eps);
            assert_int_equal(rm_fgsm(a, mode, x, y, B, eps, 1.25f * eps, 1, &r, delta), RM_OK);
            check_inside("FGSM-RS", x, delta, n, eps);
            assert_int_equal(rm_pgd(a, mode, x, y, B, eps, eps / 4, 3, 2, RM_ATTACK_LOSS_CE, &r,
                                    delta, NULL), RM_OK);
            check_inside("PGD", x, delta, n, eps);
            assert_int_equal(rm_pgd(a, mode, x, y, B, eps, eps / 4, 3, 2, RM_ATTACK_LOSS_CW, &r,
                                    delta, NULL), RM_OK);
            check_inside("CW", x, delta, n, eps);
            assert_int_equal(rm_trades_attack(a, mode, x, B, eps, eps / 4, 3, &r, delta), RM_OK);
            check_inside("TRADES", x, delta, n, eps);
            /* prior-guided FGSM, two epochs: the second reuses the stored priors */
            rm_pgi_state s;
            assert_int_equal(rm_pgi_init(&s, B, d, eps, eps, 0.3f), RM_OK);
            for (int epoch = 0; epoch < 2; epoch++) {
                assert_int_equal(rm_pgi_begin(&s, x, ids, B, &r, e), RM_OK);
                check_inside("PGI e", x, e, n, eps);
                assert_int_equal(rm_attack_gradient(a, mode, RM_ATTACK_LOSS_CE, x, e, y, NULL, B,
                                                    NULL, g), RM_OK);
                assert_int_equal(rm_pgi_update(&s, x, ids, B, e, g, delta), RM_OK);
                check_inside("PGI delta", x, delta, n, eps);
                for (int b = 0; b < B; b++)
                    check_inside("PGI prior D", x + b * d, s.D + ids[b] * d, d, eps);
            }
            rm_pgi_free(&s);
        }
    }
    rm_free(x); rm_free(delta); rm_free(e); rm_free(g);
    rm_attacker_destroy(a);
    rm_net_destroy(net);
}

/* ---- the ascent goes up ---- */

static double objective_at(fixture *f, rm_attack_loss loss, const float *delta, const float *zc) {
    float *g = rm_alloc(NB * f->d * 4);
    double v;
    assert_int_equal(rm_attack_gradient(f->a, RM_MODE_EVAL, loss, f->x, delta, f->y, zc, NB, &v, g),
                     RM_OK);
    rm_free(g);
    return v;
}

static void test_ascent_sanity(void **state) {
    fixture *f = *state;
    const size_t n = NB * f->d;
    const float eps = 0.06f;
    float *delta = rm_alloc(n * 4), *start = rm_alloc(n * 4);
    rm_rng r, copy;
    /* PGD-10 on CE beats its own random start (rebuilt here: U(-eps,eps), clamped) */
    rm_rng_seed(&r, 40);
    copy = r;
    for (size_t i = 0; i < n; i++) {
        float v = rm_rng_uniform_range(&copy, -eps, eps);
        v = fminf(fmaxf(v, -eps), eps);
        start[i] = fminf(fmaxf(v, -f->x[i]), 1.0f - f->x[i]);
    }
    assert_int_equal(rm_pgd(f->a, RM_MODE_EVAL, f->x, f->y, NB, eps, eps / 4, 10, 1,
                            RM_ATTACK_LOSS_CE, &r, delta, NULL), RM_OK);
    const double ce0 = objective_at(f, RM_ATTACK_LOSS_CE, start, NULL);
    const double ce1 = objective_at(f, RM_ATTACK_LOSS_CE, delta, NULL);
    printf("  CE at the random start %.4f, after PGD-10 %.4f\n", ce0, ce1);
    assert_true(ce1 > ce0 + 0.1);
    /* the CW attack raises max_{j != y} z_j - z_y over the clean point, example by example */
    assert_int_equal(rm_pgd(f->a, RM_MODE_EVAL, f->x, f->y, NB, eps, eps / 4, 20, 1,
                            RM_ATTACK_LOSS_CW, &r, delta, NULL), RM_OK);
    float zc[NB * K], za[NB * K];
    rm_tape *tape;
    assert_int_equal(rm_tape_create(f->net, &tape), RM_OK);
    assert_int_equal(rm_net_forward(f->net, tape, RM_MODE_EVAL, f->x, NB, zc), RM_OK);
    for (size_t i = 0; i < n; i++) start[i] = f->x[i] + delta[i];
    assert_int_equal(rm_net_forward(f->net, tape, RM_MODE_EVAL, start, NB, za), RM_OK);
    int up = 0;
    double m0 = 0, m1 = 0;
    for (int b = 0; b < NB; b++) {
        double c0 = -INFINITY, c1 = -INFINITY;
        for (int j = 0; j < K; j++) {
            if (j == f->y[b]) continue;
            c0 = fmax(c0, zc[b * K + j]);
            c1 = fmax(c1, za[b * K + j]);
        }
        c0 -= zc[b * K + f->y[b]];
        c1 -= za[b * K + f->y[b]];
        m0 += c0 / NB;
        m1 += c1 / NB;
        up += c1 > c0;
    }
    printf("  CW margin: clean %.4f, after CW PGD-20 %.4f; raised for %d/%d examples\n", m0, m1, up,
           NB);
    assert_true(m1 > m0);
    assert_int_equal(up, NB);
    /* TRADES: KL(p_c || p_adv) after 10 steps well above its value at the start
     * x + P(0.001 N(0,1)) (rebuilt here) */
    rm_rng_seed(&r, 41);
    copy = r;
    for (size_t i = 0; i < n; i++) {
        float v = 0.001f * rm_rng_normal(&copy);
        v = fminf(fmaxf(v, -eps), eps);
        start[i] = fminf(fmaxf(v, -f->x[i]), 1.0f - f->x[i]);
    }
    assert_int_equal(rm_trades_attack(f->a, RM_MODE_EVAL, f->x, NB, eps, eps / 4, 10, &r, delta),
                     RM_OK);
    const double kl0 = objective_at(f, RM_ATTACK_LOSS_KL, start, zc);
    const double kl1 = objective_at(f, RM_ATTACK_LOSS_KL, delta, zc);
    printf("  TRADES KL(p_c || p_adv): at the start %.3e, after 10 steps %.3e\n", kl0, kl1);
    assert_true(kl1 > 100 * kl0 && kl1 > 1e-2);
    rm_tape_destroy(tape);
    rm_free(delta);
    rm_free(start);
}

/* ---- argument errors: refused with RM_ERR_ARG and a message ---- */

static void expect_arg(rm_status st) {
    assert_int_equal(st, RM_ERR_ARG);
    printf("  refused: %s\n", rm_error_message());
    rm_error_clear();
}

static void test_argument_errors(void **state) {
    fixture *f = *state;
    float *delta = rm_alloc((NB + 1) * f->d * 4);
    float *x = rm_alloc((NB + 1) * f->d * 4);
    int32_t y[NB + 1] = {0};
    unsigned char rob[NB + 1];
    rm_rng r;
    rm_rng_seed(&r, 1);
    const rm_attack_loss CE = RM_ATTACK_LOSS_CE;
    expect_arg(rm_pgd(f->a, RM_MODE_EVAL, x, y, NB + 1, 0.1f, 0.1f, 1, 1, CE, &r, delta, rob));
    expect_arg(rm_pgd(f->a, RM_MODE_EVAL, x, y, 0, 0.1f, 0.1f, 1, 1, CE, &r, delta, rob));
    expect_arg(rm_pgd(f->a, RM_MODE_EVAL, x, y, 2, -0.1f, 0.1f, 1, 1, CE, &r, delta, rob));
    expect_arg(rm_pgd(f->a, RM_MODE_EVAL, x, y, 2, 0.1f, NAN, 1, 1, CE, &r, delta, rob));
    expect_arg(rm_pgd(f->a, RM_MODE_EVAL, x, y, 2, 0.1f, 0.1f, -1, 1, CE, &r, delta, rob));
    expect_arg(rm_pgd(f->a, RM_MODE_EVAL, x, y, 2, 0.1f, 0.1f, 1, 0, CE, &r, delta, rob));
    expect_arg(rm_pgd(f->a, RM_MODE_EVAL, x, y, 2, 0.1f, 0.1f, 1, 1, RM_ATTACK_LOSS_KL, &r, delta, rob));
    expect_arg(rm_pgd(f->a, RM_MODE_EVAL, x, y, 2, 0.1f, 0.1f, 1, 1, CE, NULL, delta, rob));
    y[1] = K;
    rm_rng before = r; /* a refused call draws nothing */
    expect_arg(rm_pgd(f->a, RM_MODE_EVAL, x, y, 2, 0.1f, 0.1f, 1, 1, CE, &r, delta, rob));
    expect_arg(rm_fgsm(f->a, RM_MODE_EVAL, x, y, 2, 0.1f, 0.1f, 1, &r, delta));
    assert_memory_equal(&before, &r, sizeof r);
    expect_arg(rm_count_correct(f->a, RM_MODE_EVAL, x, NULL, y, 2, &(int){0}));
    y[1] = 0;
    expect_arg(rm_fgsm(f->a, RM_MODE_EVAL, x, y, 2, 0.1f, 0.1f, 1, NULL, delta));
    expect_arg(rm_trades_attack(f->a, RM_MODE_EVAL, x, 2, INFINITY, 0.1f, 1, &r, delta));
    expect_arg(rm_attack_gradient(f->a, RM_MODE_EVAL, RM_ATTACK_LOSS_KL, x, NULL, y, NULL, 2, NULL, delta));
    rm_attacker *a2;
    expect_arg(rm_attacker_create(f->net, 0, &a2));
    assert_null(a2);
    /* plain FGSM needs no rng */
    for (size_t i = 0; i < 2 * f->d; i++) x[i] = 0.5f;
    assert_int_equal(rm_fgsm(f->a, RM_MODE_EVAL, x, y, 2, 0.1f, 0.1f, 0, NULL, delta), RM_OK);
    rm_free(delta);
    rm_free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outputs_inside_ball_and_box),
        cmocka_unit_test(test_restarts_are_worst_case),
        cmocka_unit_test(test_more_steps_find_more),
        cmocka_unit_test(test_ascent_sanity),
        cmocka_unit_test(test_argument_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
