/* rm_sgd on hand-computed cases: the first step sets buf = d, momentum carries over,
 * weight decay 0 / momentum 0 reduce to plain SGD, buffers and gradient-less parameters
 * are skipped, a restored momentum buffer continues the run, bad settings are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "regmix/optim.h"

#define TOL 1e-6

static rm_param make_param(const char *name, float *data, float *grad, size_t n, int buffer) {
    rm_param p;
    memset(&p, 0, sizeof p);
    strncpy(p.name, name, sizeof p.name - 1);
    p.ndim = 1;
    p.dims[0] = (int64_t)n;
    p.numel = n;
    p.data = data;
    p.grad = grad;
    p.is_buffer = buffer;
    return p;
}

static void assert_close(double got, double want, const char *what) {
    if (!(fabs(got - want) <= TOL))
        fail_msg("%s: got %.9g, hand-computed %.9g (|diff| %.3g > %.1g)", what, got, want,
                 fabs(got - want), TOL);
}

/* w = 1, g = 0.5, wd = 0.1, momentum 0.9, lr 0.1:
 *   step 1: d = 0.5 + 0.1*1 = 0.6;      buf = d = 0.6;                 w = 1 - 0.06 = 0.94
 *   step 2: d = 0.5 + 0.1*0.94 = 0.594; buf = 0.9*0.6 + 0.594 = 1.134; w = 0.94 - 0.1134 = 0.8266 */
static void test_first_step_buf_is_d_then_momentum(void **state) {
    (void)state;
    float w = 1.0f, g = 0.5f;
    rm_param p = make_param("w", &w, &g, 1, 0);
    rm_sgd *opt = NULL;
    assert_int_equal(rm_sgd_create(&p, 1, (rm_sgd_config){.momentum = 0.9, .weight_decay = 0.1},
                                   &opt),
                     RM_OK);
    assert_int_equal(rm_sgd_steps_taken(opt), 0);
    rm_sgd_step(opt, 0.1);
    assert_close(rm_sgd_momentum(opt, 0)[0], 0.6, "buf after step 1");
    assert_close(w, 0.94, "w after step 1");
    rm_sgd_step(opt, 0.1);
    assert_close(rm_sgd_momentum(opt, 0)[0], 1.134, "buf after step 2");
    assert_close(w, 0.8266, "w after step 2");
    assert_int_equal(rm_sgd_steps_taken(opt), 2);
    rm_sgd_destroy(opt);
}

/* weight decay 0 and momentum 0: w -= lr * g, lr 0.2.
 *   w = [1, -2], g = [0.5, 0.25] -> [0.9, -2.05];  g = [-1, 0] -> [1.1, -2.05] */
static void test_plain_sgd(void **state) {
    (void)state;
    float w[2] = {1.0f, -2.0f}, g[2] = {0.5f, 0.25f};
    rm_param p = make_param("w", w, g, 2, 0);
    rm_sgd *opt = NULL;
    assert_int_equal(rm_sgd_create(&p, 1, (rm_sgd_config){0}, &opt), RM_OK);
    rm_sgd_step(opt, 0.2);
    assert_close(w[0], 0.9, "w[0] step 1");
    assert_close(w[1], -2.05, "w[1] step 1");
    g[0] = -1.0f;
    g[1] = 0.0f;
    rm_sgd_step(opt, 0.2);
    assert_close(w[0], 1.1, "w[0] step 2");
    assert_close(w[1], -2.05, "w[1] step 2");
    rm_sgd_destroy(opt);
}

/* momentum 0, weight decay 0.1, lr 0.2: w = 1, g = 0.5: d = 0.6, w = 1 - 0.12 = 0.88;
 * again: d = 0.5 + 0.088 = 0.588, w = 0.88 - 0.1176 = 0.7624 (no momentum carried) */
static void test_weight_decay_without_momentum(void **state) {
    (void)state;
    float w = 1.0f, g = 0.5f;
    rm_param p = make_param("w", &w, &g, 1, 0);
    rm_sgd *opt = NULL;
    assert_int_equal(rm_sgd_create(&p, 1, (rm_sgd_config){.momentum = 0.0, .weight_decay = 0.1},
                                   &opt),
                     RM_OK);
    rm_sgd_step(opt, 0.2);
    assert_close(w, 0.88, "w step 1");
    rm_sgd_step(opt, 0.2);
    assert_close(w, 0.7624, "w step 2");
    rm_sgd_destroy(opt);
}

/* momentum 0.5 without weight decay, lr 0.1, w = 1:
 *   g = 1: buf = 1,   w = 0.9;   g = 1: buf = 1.5, w = 0.75;   g = 0: buf = 0.75, w = 0.675 */
static void test_momentum_without_weight_decay(void **state) {
    (void)state;
    float w = 1.0f, g = 1.0f;
    rm_param p = make_param("w", &w, &g, 1, 0);
    rm_sgd *opt = NULL;
    assert_int_equal(rm_sgd_create(&p, 1, (rm_sgd_config){.momentum = 0.5}, &opt), RM_OK);
    rm_sgd_step(opt, 0.1);
    assert_close(w, 0.9, "w step 1");
    rm_sgd_step(opt, 0.1);
    assert_close(w, 0.75, "w step 2");
    g = 0.0f;
    rm_sgd_step(opt, 0.1);
    assert_close(rm_sgd_momentum(opt, 0)[0], 0.75, "buf step 3");
    assert_close(w, 0.675, "w step 3");
    rm_sgd_destroy(opt);
}

/* A buffer (even with a gradient array) and a parameter with grad == NULL do not move;
 * the parameter that later gets a gradient starts from buf = d like PyTorch's lazily
 * created buffer: w = 2, g = 1, wd 0.5, lr 0.1, momentum 0.9 -> d = 2, w = 1.8. */
static void test_buffers_and_missing_grads_skipped(void **state) {
    (void)state;
    float mean[2] = {0.25f, -0.5f}, mean_g[2] = {100.0f, 100.0f};
    float a = 2.0f, a_g = 1.0f;
    float t = 1.0f, t_g = 1.0f;
    rm_param ps[3] = {make_param("bn.running_mean", mean, mean_g, 2, 1),
                      make_param("late", &a, NULL, 1, 0), make_param("t", &t, &t_g, 1, 0)};
    rm_sgd *opt = NULL;
    assert_int_equal(rm_sgd_create(ps, 3, (rm_sgd_config){.momentum = 0.9, .weight_decay = 0.5},
                                   &opt),
                     RM_OK);
    assert_null(rm_sgd_momentum(opt, 0));
    assert_non_null(rm_sgd_momentum(opt, 1));
    assert_null(rm_sgd_momentum(opt, 3)); /* out of range */
    rm_sgd_step(opt, 0.1);
    assert_true(mean[0] == 0.25f && mean[1] == -0.5f);
    assert_true(a == 2.0f);
    assert_close(t, 1.0 - 0.1 * 1.5, "t step 1");

    ps[1].grad = &a_g;
    rm_sgd_step(opt, 0.1);
    assert_close(rm_sgd_momentum(opt, 1)[0], 2.0, "late buf");
    assert_close(a, 1.8, "late w");
    assert_true(mean[0] == 0.25f && mean[1] == -0.5f);
    rm_sgd_destroy(opt);
}

/* Restoring a checkpoint taken after step 1 of test_first_step_buf_is_d_then_momentum
 * (w = 0.94, buf = 0.6, one step taken) gives its step 2: w = 0.8266, buf = 1.134. */
static void test_restore_continues(void **state) {
    (void)state;
    float w = 0.94f, g = 0.5f;
    rm_param p = make_param("w", &w, &g, 1, 0);
    rm_sgd *opt = NULL;
    assert_int_equal(rm_sgd_create(&p, 1, (rm_sgd_config){.momentum = 0.9, .weight_decay = 0.1},
                                   &opt),
                     RM_OK);
    rm_sgd_momentum(opt, 0)[0] = 0.6f;
    rm_sgd_set_steps_taken(opt, 1);
    assert_int_equal(rm_sgd_steps_taken(opt), 1);
    rm_sgd_step(opt, 0.1);
    assert_close(rm_sgd_momentum(opt, 0)[0], 1.134, "restored buf");
    assert_close(w, 0.8266, "restored w");
    rm_sgd_destroy(opt);
}

static void test_bad_settings_refused(void **state) {
    (void)state;
    float w = 1.0f, g = 1.0f;
    rm_param p = make_param("w", &w, &g, 1, 0);
    rm_sgd *opt = (rm_sgd *)&w; /* must be reset to NULL on failure */

    rm_error_clear();
    assert_int_equal(rm_sgd_create(&p, 1, (rm_sgd_config){.momentum = -0.1}, &opt), RM_ERR_ARG);
    assert_null(opt);
    assert_non_null(strstr(rm_error_message(), "momentum -0.1"));

    rm_error_clear();
    assert_int_equal(rm_sgd_create(&p, 1, (rm_sgd_config){.weight_decay = NAN}, &opt),
                     RM_ERR_ARG);
    assert_non_null(strstr(rm_error_message(), "weight_decay"));

    rm_error_clear();
    assert_int_equal(rm_sgd_create(NULL, 2, (rm_sgd_config){0}, &opt), RM_ERR_ARG);
    rm_error_clear();
    p.data = NULL;
    assert_int_equal(rm_sgd_create(&p, 1, (rm_sgd_config){0}, &opt), RM_ERR_ARG);
    assert_non_null(strstr(rm_error_message(), "(w)"));
    rm_error_clear();

    /* no parameters at all is fine: a step does nothing but count */
    assert_int_equal(rm_sgd_create(NULL, 0, (rm_sgd_config){.momentum = 0.9}, &opt), RM_OK);
    rm_sgd_step(opt, 0.1);
    assert_int_equal(rm_sgd_steps_taken(opt), 1);
    rm_sgd_destroy(opt);
    rm_sgd_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_step_buf_is_d_then_momentum),
        cmocka_unit_test(test_plain_sgd),
        cmocka_unit_test(test_weight_decay_without_momentum),
        cmocka_unit_test(test_momentum_without_weight_decay),
        cmocka_unit_test(test_buffers_and_missing_grads_skipped),
        cmocka_unit_test(test_restore_continues),
        cmocka_unit_test(test_bad_settings_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
