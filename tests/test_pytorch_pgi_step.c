/* One prior-guided FGSM step (rm_method, method "pgi") against PyTorch, with the `mse`
 * and the `regmix` regulariser on the same weights and batch:
 * tests/data/pgi_step_{mse,regmix}.rmfx, written in float64 by
 * tests/pytorch/gen_pgi_step_fixtures.py (fmnist-cnn, formula weights, B = 8, prior e set
 * in the PGI buffers, M = 0). Checked, printing the max difference per tensor:
 *   loss terms (rm_step_terms) and every weight gradient: rel <= 1e-3;
 *   d (rm_method_delta) and the next prior D: equal to 1e-6 (both are P(e + a sign(.))
 *     of the same float32 values, so they agree exactly once sign(g) agrees);
 *   the next momentum M = g / ||g||_1: rel <= 1e-3, and its sign element by element;
 *   BN running statistics after the step (three train-mode passes for regmix, two for
 *   mse) and the passes' logits (a separate net, same weights): rel <= 1e-4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "step_check.h"
#include "regmix/method.h"

enum { B = 8, K = 10 };
#define GRAD_TOL 1e-3   /* loss terms, weight gradients, momentum (the task's bound) */
#define STATE_TOL 1e-4  /* logits, running statistics: forward-only float32 error */
#define DELTA_TOL 1e-6  /* d and D: exact in principle */

static void set(rm_config *c, const char *key, const char *value) {
    if (rm_config_set(c, key, value, "test") != RM_OK) fail_msg("%s", rm_error_message());
}

/* The settings of the generator, every one written out (not the defaults). */
static void make_config(rm_config *c, const char *reg) {
    rm_config_defaults(c);
    const char *kv[][2] = {
        {"model", "fmnist-cnn"}, {"method", "pgi"}, {"reg", reg}, {"eps", "0.1"},
        {"step", "0.1"}, {"label_smoothing", "0.6"}, {"pgi_momentum", "0.3"},
        {"lambda", "10"}, {"alpha", "1"}, {"beta", "0.5"}, {"gamma", "1"},
        {"agr_dir", "c||f"}, {"agr_detach", "0"}, {"amr_stop_f", "0"}, {"amr_stop_i", "0"},
        {"batch", "8"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++) set(c, kv[i][0], kv[i][1]);
    assert_int_equal(rm_config_validate(c), RM_OK);
}

static void check_step(const char *reg) {
    char path[512];
    snprintf(path, sizeof path, "%s/pgi_step_%s.rmfx", REGMIX_TEST_DATA_DIR, reg);
    fixture_file *fx;
    if (fixture_load(path, &fx) != RM_OK) fail_msg("%s", rm_error_message());
    printf("pgi step, reg %s, vs %s\n", reg, path);

    fixture_record *rx = fixture_find(fx, "input"), *ry = fixture_find(fx, "labels"),
                   *re = fixture_find(fx, "prior");
    assert_non_null(rx);
    assert_non_null(ry);
    assert_non_null(re);
    assert_int_equal(rx->numel, (size_t)B * 784);
    assert_int_equal(rx->stride, 1);
    assert_int_equal(re->stride, 1);
    assert_int_equal(ry->count, B);
    int32_t y[B];
    int64_t ids[B];
    for (int b = 0; b < B; b++) {
        y[b] = (int32_t)ry->data[b];
        ids[b] = b;
    }

    rm_net *net;
    assert_int_equal(rm_net_create("fmnist-cnn", K, &net), RM_OK);
    fixture_fill_params(net);
    rm_config cfg;
    make_config(&cfg, reg);
    rm_method *m;
    if (rm_method_create(&cfg, net, B, B, &m) != RM_OK) fail_msg("%s", rm_error_message());

    /* the prior: D[id] = e, M[id] = 0, not fresh (no random draw) */
    rm_pgi_state *pgi = rm_method_pgi(m);
    assert_non_null(pgi);
    assert_int_equal(pgi->d, 784);
    memcpy(pgi->D, re->data, (size_t)B * 784 * sizeof(float));
    memset(pgi->M, 0, (size_t)B * 784 * sizeof(float));
    memset(pgi->fresh, 0, B);
    rm_rng rng;
    rm_rng_seed(&rng, 1);
    rm_step_terms t;
    if (rm_method_gradients(m, rx->data, y, ids, B, &rng, &t) != RM_OK)
        fail_msg("%s", rm_error_message());

    int ok = 1;
    ok &= step_check_scalar("loss", t.loss, fixture_find(fx, "loss"), GRAD_TOL);
    ok &= step_check_scalar("ce", t.ce, fixture_find(fx, "ce"), GRAD_TOL);
    const char *names[] = {"mse", "amr", "agr"};
    const double vals[] = {t.mse, t.amr, t.agr};
    for (int i = 0; i < 3; i++) {
        fixture_record *r = fixture_find(fx, names[i]);
        if (r) {
            ok &= step_check_scalar(names[i], vals[i], r, GRAD_TOL);
        } else if (vals[i] != 0.0) { /* a term the method lacks must be 0 */
            printf("  %-44s %.9g where the method has no such term  NOT OK\n", names[i], vals[i]);
            ok = 0;
        }
    }
    assert_true(t.trades == 0.0);
    ok &= step_check_count("correct", t.correct, fixture_find(fx, "correct"));

    size_t n = (size_t)B * 784;
    ok &= step_check_momentum("momentum_next (g / ||g||_1)", pgi->M, n, fixture_find(fx, "momentum_next"), GRAD_TOL);
    ok &= step_check_exact("delta (d)", rm_method_delta(m), n, fixture_find(fx, "delta"), DELTA_TOL);
    ok &= step_check_exact("prior_next (D)", pgi->D, n, fixture_find(fx, "prior_next"), DELTA_TOL);

    size_t np;
    rm_param *params = rm_net_params(net, &np);
    for (size_t k = 0; k < np; k++) {
        char name[96];
        if (params[k].grad) {
            snprintf(name, sizeof name, "grad:%s", params[k].name);
            ok &= fixture_compare(name, params[k].grad, params[k].numel, fixture_find(fx, name), GRAD_TOL);
        } else {
            snprintf(name, sizeof name, "running:%s", params[k].name);
            ok &= fixture_compare(name, params[k].data, params[k].numel, fixture_find(fx, name), STATE_TOL);
        }
    }
    ok &= step_check_pass_logits(fx, "", net, rx->data, re->data, rm_method_delta(m), B, STATE_TOL);
    size_t unused = fixture_report_unused(fx);
    printf("pgi step, reg %s: %s\n", reg, ok && unused == 0 ? "OK (PyTorch agrees)" : "NOT OK");
    fflush(stdout);

    rm_method_destroy(m);
    rm_net_destroy(net);
    fixture_free(fx);
    assert_true(ok);
    assert_int_equal(unused, 0);
}

static void test_pgi_step_mse(void **state) {
    (void)state;
    check_step("mse");
}

static void test_pgi_step_regmix(void **state) {
    (void)state;
    check_step("regmix");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pgi_step_mse),
        cmocka_unit_test(test_pgi_step_regmix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
