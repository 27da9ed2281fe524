/* The EMA model (FGSM-PGK's prior-guided ensemble, include/regmix/train.h) against
 * numbers worked out by hand:
 * - the decay k = min(c, (t + 1) / (t + 10)) over t, and where the cap takes over;
 * - the cap c from r: ema_decay below ema_value, min(1, 0.99999 r / ema_value) from it,
 *   ema_decay for methods without r (NaN);
 * - a sequence of updates of every tensor of a network (weights and BN statistics);
 * - ema_gate: steps with r < ema_value leave the shadow and t alone;
 * - the swap of the shadow into the network is exact both ways. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "regmix/train.h"

static void pgk_config(rm_config *c) {
    rm_config_defaults(c);
    assert_int_equal(rm_config_set(c, "method", "pgk", "test"), RM_OK);
    assert_int_equal(rm_config_set(c, "ema_value", "0.82", "test"), RM_OK);
    assert_int_equal(rm_config_set(c, "ema_decay", "0.999", "test"), RM_OK);
}

static void test_decay_schedule(void **state) {
    (void)state;
    /* (t + 1) / (t + 10) while it is below the cap: 1/10, 2/11, 3/12, 9/18 */
    assert_true(rm_ema_decay(0.999, 0) == 0.1);
    assert_true(rm_ema_decay(0.999, 1) == 2.0 / 11.0);
    assert_true(rm_ema_decay(0.999, 2) == 0.25);
    assert_true(rm_ema_decay(0.999, 8) == 0.5);
    /* (t + 1) / (t + 10) = 1 - 9 / (t + 10) passes 0.999 at t + 10 = 9000: t = 8990 gives
     * 8991/9000 = 0.999 (the cap, either way), t = 8989 stays below it, t = 8991 above */
    assert_true(fabs(rm_ema_decay(0.999, 8990) - 0.999) < 1e-15);
    assert_true(rm_ema_decay(0.999, 8989) == 8990.0 / 8999.0 && 8990.0 / 8999.0 < 0.999);
    assert_true(rm_ema_decay(0.999, 8991) == 0.999);
    assert_true(rm_ema_decay(0.999, 1000000) == 0.999);
    /* a cap of 1 (c at r >= ema_value / 0.99999) never binds: k -> 1 */
    assert_true(rm_ema_decay(1.0, 999990) == 999991.0 / 1000000.0);
    /* a cap below 0.1 binds from the first update */
    assert_true(rm_ema_decay(0.05, 0) == 0.05);
}

static void test_cap_from_r(void **state) {
    (void)state;
    rm_config c;
    pgk_config(&c);
    assert_true(rm_ema_cap(&c, NAN) == 0.999);  /* no r: the fixed cap */
    assert_true(rm_ema_cap(&c, 0.0) == 0.999);
    assert_true(rm_ema_cap(&c, 0.5) == 0.999);
    assert_true(rm_ema_cap(&c, 0.8199) == 0.999);
    assert_true(fabs(rm_ema_cap(&c, 0.82) - 0.99999) < 1e-15);          /* r = ema_value: 0.99999 */
    assert_true(fabs(rm_ema_cap(&c, 0.82 * 1.000005) - 0.99999 * 1.000005) < 1e-15); /* 0.99999500 */
    assert_true(rm_ema_cap(&c, 0.8201) == 1.0);                          /* 0.99999 * 1.000122 > 1 */
    assert_true(rm_ema_cap(&c, 7.0 / 8.0) == 1.0);
    /* another ema_value and ema_decay (PGK's CIFAR-100 value 0.9) */
    assert_int_equal(rm_config_set(&c, "ema_value", "0.9", "test"), RM_OK);
    assert_int_equal(rm_config_set(&c, "ema_decay", "0.99", "test"), RM_OK);
    assert_true(rm_ema_cap(&c, 0.85) == 0.99);
    assert_true(fabs(rm_ema_cap(&c, 0.9) - 0.99999) < 1e-15);
}

/* Every tensor of the net (weights and BN statistics) set to v. */
static void fill_net(rm_net *net, float v) {
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    for (size_t i = 0; i < np; i++)
        for (size_t j = 0; j < p[i].numel; j++) p[i].data[j] = v;
    rm_net_params_changed(net);
}

/* Every element of every shadow tensor equals `want` within rel 5e-7: the shadow is
 * float32, and each of the up to 8 chained updates below rounds once (6e-8). */
static void assert_shadow(rm_ema *e, rm_net *net, double want) {
    size_t np, buffers = 0;
    rm_param *p = rm_net_params(net, &np);
    for (size_t i = 0; i < np; i++) {
        const float *s = rm_ema_shadow(e, i);
        assert_non_null(s);
        buffers += p[i].is_buffer;
        for (size_t j = 0; j < p[i].numel; j++)
            if (!(fabs(s[j] - want) <= 5e-7 * fabs(want)))
                fail_msg("%s[%zu]: shadow %.9g, expected %.9g", p[i].name, j, (double)s[j], want);
    }
    assert_true(buffers >= 4); /* fmnist-cnn: running mean and var of bn1 and bn2 */
    assert_null(rm_ema_shadow(e, np));
}

static void test_update_sequence(void **state) {
    (void)state;
    rm_config c;
    pgk_config(&c);
    rm_net *net;
    assert_int_equal(rm_net_create("fmnist-cnn", 1, 28, 28, 10, &net), RM_OK);
    fill_net(net, 1.0f);
    rm_ema *e;
    assert_int_equal(rm_ema_create(net, &e), RM_OK);
    assert_shadow(e, net, 1.0); /* the initial weights */
    assert_int_equal(rm_ema_updates(e), 0);
    /* by hand: s1 = 0.1 * 1 + 0.9 * 2 = 1.9;  s2 = (2/11) 1.9 + (9/11) 0 = 3.8/11;
     * s3 = 0.25 (3.8/11) + 0.75 * 4 = 0.95/11 + 3 */
    rm_step_terms t = {.r = 0.5};
    const float w[3] = {2.0f, 0.0f, 4.0f};
    const double k_want[3] = {0.1, 2.0 / 11.0, 0.25}, s_want[3] = {1.9, 3.8 / 11.0, 0.95 / 11.0 + 3.0};
    for (int i = 0; i < 3; i++) {
        fill_net(net, w[i]);
        double k = -1;
        assert_int_equal(rm_ema_after_step(e, &c, &t, &k), 1);
        assert_true(fabs(k - k_want[i]) < 1e-15);
        assert_shadow(e, net, s_want[i]);
        assert_int_equal(rm_ema_updates(e), i + 1);
    }
    printf("  shadow after 3 updates: %.9g (hand: %.9g)\n", (double)rm_ema_shadow(e, 0)[0], s_want[2]);
    /* late in training the cap binds: t = 10^6, r below ema_value: k = 0.999;
     * s = 0.999 s + 0.001 * 0 */
    rm_ema_set_updates(e, 1000000);
    fill_net(net, 0.0f);
    double k = 0, s = s_want[2];
    assert_int_equal(rm_ema_after_step(e, &c, &t, &k), 1);
    assert_true(k == 0.999);
    assert_shadow(e, net, 0.999 * s);
    s *= 0.999;
    /* r = ema_value: c = 0.99999 < (t + 1) / (t + 10) = 0.999991 */
    t.r = 0.82;
    assert_int_equal(rm_ema_after_step(e, &c, &t, &k), 1);
    assert_true(fabs(k - 0.99999) < 1e-15);
    assert_shadow(e, net, 0.99999 * s);
    s *= 0.99999;
    /* r well above: c = 1, k = (t + 1) / (t + 10) with t = 1000002 */
    t.r = 0.9;
    assert_int_equal(rm_ema_after_step(e, &c, &t, &k), 1);
    assert_true(k == 1000003.0 / 1000012.0);
    assert_shadow(e, net, k * s);
    s *= k;
    /* a method without r (NaN): the fixed cap ema_decay */
    t.r = NAN;
    assert_int_equal(rm_ema_after_step(e, &c, &t, &k), 1);
    assert_true(k == 0.999);
    assert_shadow(e, net, 0.999 * s);
    rm_ema_destroy(e);
    rm_net_destroy(net);
}

static void test_gate_skips_low_r(void **state) {
    (void)state;
    rm_config c;
    pgk_config(&c);
    assert_int_equal(rm_config_set(&c, "ema_gate", "true", "test"), RM_OK);
    rm_net *net;
    assert_int_equal(rm_net_create("fmnist-cnn", 1, 28, 28, 10, &net), RM_OK);
    fill_net(net, 1.0f);
    rm_ema *e;
    assert_int_equal(rm_ema_create(net, &e), RM_OK);
    fill_net(net, 2.0f);
    rm_step_terms t = {.r = 0.5};
    double k = -1;
    assert_int_equal(rm_ema_after_step(e, &c, &t, &k), 0); /* r < ema_value: skipped */
    assert_true(k == -1);
    assert_int_equal(rm_ema_updates(e), 0);
    assert_shadow(e, net, 1.0);
    t.r = 0.82; /* r >= ema_value: the first update, k = min(0.99999, 1/10) */
    assert_int_equal(rm_ema_after_step(e, &c, &t, &k), 1);
    assert_true(k == 0.1);
    assert_shadow(e, net, 1.9);
    assert_int_equal(rm_ema_updates(e), 1);
    rm_ema_destroy(e);
    rm_net_destroy(net);
}

static void test_swap_is_exact(void **state) {
    (void)state;
    rm_net *net;
    assert_int_equal(rm_net_create("fmnist-cnn", 1, 28, 28, 10, &net), RM_OK);
    rm_net_init(net, 5);
    size_t np, total = 0;
    rm_param *p = rm_net_params(net, &np);
    for (size_t i = 0; i < np; i++) total += p[i].numel;
    rm_ema *e;
    assert_int_equal(rm_ema_create(net, &e), RM_OK);
    rm_net_init(net, 6); /* the student moves away from the shadow */
    float *student = rm_alloc(total * sizeof(float)), *shadow = rm_alloc(total * sizeof(float));
    size_t at = 0, differ = 0;
    for (size_t i = 0; i < np; i++) {
        memcpy(student + at, p[i].data, p[i].numel * sizeof(float));
        memcpy(shadow + at, rm_ema_shadow(e, i), p[i].numel * sizeof(float));
        at += p[i].numel;
    }
    for (size_t j = 0; j < total; j++) differ += student[j] != shadow[j];
    assert_true(differ > total / 2); /* BN statistics (0 and 1 after init) are equal */
    rm_ema_swap(e);
    at = 0;
    for (size_t i = 0; i < np; i++) { /* the net holds the EMA, the shadow the student */
        assert_memory_equal(p[i].data, shadow + at, p[i].numel * sizeof(float));
        assert_memory_equal(rm_ema_shadow(e, i), student + at, p[i].numel * sizeof(float));
        at += p[i].numel;
    }
    rm_ema_swap(e);
    at = 0;
    for (size_t i = 0; i < np; i++) {
        assert_memory_equal(p[i].data, student + at, p[i].numel * sizeof(float));
        assert_memory_equal(rm_ema_shadow(e, i), shadow + at, p[i].numel * sizeof(float));
        at += p[i].numel;
    }
    printf("  swap: %zu of %zu values differ between the models; two swaps restore both bit for bit\n", differ,
           total);
    rm_free(student);
    rm_free(shadow);
    rm_ema_destroy(e);
    rm_net_destroy(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decay_schedule),
        cmocka_unit_test(test_cap_from_r),
        cmocka_unit_test(test_update_sequence),
        cmocka_unit_test(test_gate_skips_low_r),
        cmocka_unit_test(test_swap_is_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
