/* One PGI step against its PyTorch float64 fixture: see pgi_step_check.h. */
#include "pgi_step_check.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "fixture.h"
#include "step_check.h"

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

int pgi_step_check(const char *reg, rm_dp *dp, pgi_step_hook hook, void *ctx) {
    char path[512];
    snprintf(path, sizeof path, "%s/pgi_step_%s.rmfx", REGMIX_TEST_DATA_DIR, reg);
    fixture_file *fx;
    if (fixture_load(path, &fx) != RM_OK) fail_msg("%s", rm_error_message());
    printf("pgi step, reg %s, %d rank(s) (this is rank %d), vs %s\n", reg, rm_dp_size(dp), rm_dp_rank(dp),
           path);

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
    assert_int_equal(rm_net_create("fmnist-cnn", 1, 28, 28, K, &net), RM_OK);
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
    if (dp && rm_method_set_dp(m, dp) != RM_OK) fail_msg("%s", rm_error_message());
    if (hook) hook(net, m, ctx);
    rm_rng rng;
    rm_rng_seed(&rng, 1);
    rm_step_terms t;
    if (rm_method_gradients(m, rx->data, y, ids, B, &rng, &t) != RM_OK)
        fail_msg("%s", rm_error_message());

    int fails = 0;
    fails += !step_check_scalar("loss", t.loss, fixture_find(fx, "loss"), GRAD_TOL);
    fails += !step_check_scalar("ce", t.ce, fixture_find(fx, "ce"), GRAD_TOL);
    const char *names[] = {"mse", "amr", "agr"};
    const double vals[] = {t.mse, t.amr, t.agr};
    for (int i = 0; i < 3; i++) {
        fixture_record *r = fixture_find(fx, names[i]);
        if (r) {
            fails += !step_check_scalar(names[i], vals[i], r, GRAD_TOL);
        } else if (vals[i] != 0.0) { /* a term the method lacks must be 0 */
            printf("  %-44s %.9g where the method has no such term  NOT OK\n", names[i], vals[i]);
            fails++;
        }
    }
    assert_true(t.trades == 0.0);
    fails += !step_check_count("correct", t.correct, fixture_find(fx, "correct"));

    fails += !step_check_momentum("momentum_next (g / ||g||_1)", pgi->M, (size_t)B * 784, fixture_find(fx, "momentum_next"), GRAD_TOL);
    fails += !step_check_exact("delta (d)", rm_method_delta(m), (size_t)B * 784, fixture_find(fx, "delta"), DELTA_TOL);
    fails += !step_check_exact("prior_next (D)", pgi->D, (size_t)B * 784, fixture_find(fx, "prior_next"), DELTA_TOL);

    size_t np;
    rm_param *params = rm_net_params(net, &np);
    for (size_t k = 0; k < np; k++) {
        char name[96];
        if (params[k].grad) {
            snprintf(name, sizeof name, "grad:%s", params[k].name);
            fails += !fixture_compare(name, params[k].grad, params[k].numel, fixture_find(fx, name), GRAD_TOL);
        } else {
            snprintf(name, sizeof name, "running:%s", params[k].name);
            fails += !fixture_compare(name, params[k].data, params[k].numel, fixture_find(fx, name), STATE_TOL);
        }
    }
    fails += !step_check_pass_logits(fx, "", net, rx->data, re->data, rm_method_delta(m), B, STATE_TOL);
    size_t unused = fixture_report_unused(fx);
    fails += (int)unused;
    printf("pgi step, reg %s: %s\n", reg, fails == 0 ? "OK (PyTorch agrees)" : "NOT OK");
    fflush(stdout);

    rm_method_destroy(m);
    rm_net_destroy(net);
    fixture_free(fx);
    return fails;
}

