/* Two FGSM-PGK training steps with the EMA model (method "pgk", ema on) against PyTorch,
 * with the `mse` and the `regmix` regulariser on the same weights and batch:
 * tests/data/pgk_step_{mse,regmix}.rmfx, written in float64 by
 * tests/pytorch/gen_pgk_step_fixtures.py (fmnist-cnn, formula weights, B = 8, prior e
 * and M = 0 set in the PGI buffers; the second step reuses the batch, the prior and the
 * momentum the first left). Each step is composed as the trainer does it: the method's
 * gradients, one SGD step, then the EMA update (rm_ema_after_step). Checked per step,
 * printing the max difference per tensor:
 *   the counts n_i, n_f: equal; r = n_f / (n_i + 1) and the EMA decay k: rel <= 1e-7
 *     (float32 records of float64 values);
 *   loss terms and every weight gradient: rel <= 1e-3;
 *   d and the next prior D: equal to 1e-6 (P(e + a sign(.)) of the same float32 values);
 *   the next momentum M = (2 - r) g / ||g||_1 + mu M: rel <= 1e-3 and its sign element
 *     by element;
 *   BN running statistics, the weights after the SGD step, the EMA shadow of every
 *   parameter and BN statistic, and the passes' logits (a separate net with the same
 *   weights): rel <= 1e-4. */
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
#include "regmix/optim.h"
#include "regmix/train.h"

enum { B = 8, K = 10, STEPS = 2 };
#define GRAD_TOL 1e-3   /* loss terms, weight gradients, momentum (as the PGI step test) */
#define STATE_TOL 1e-4  /* logits, running statistics, weights, EMA: forward-only float32 error */
#define DELTA_TOL 1e-6  /* d and D: exact in principle */
#define EXACT_TOL 1e-7  /* r and k: doubles, stored as float32 in the fixture */
#define LR 0.1

static void set(rm_config *c, const char *key, const char *value) {
    if (rm_config_set(c, key, value, "test") != RM_OK) fail_msg("%s", rm_error_message());
}

/* The settings of the generator, every one written out (not the defaults). */
static void make_config(rm_config *c, const char *reg) {
    rm_config_defaults(c);
    const char *kv[][2] = {
        {"model", "fmnist-cnn"}, {"method", "pgk"}, {"reg", reg}, {"eps", "0.1"},
        {"step", "0.1"}, {"label_smoothing", "0.5"}, {"pgi_momentum", "0.3"},
        {"lambda", "5.6"}, {"alpha", "1"}, {"beta", "0.5"}, {"gamma", "1"},
        {"agr_dir", "c||f"}, {"agr_detach", "0"}, {"amr_stop_f", "0"}, {"amr_stop_i", "0"},
        {"ema", "on"}, {"ema_value", "0.82"}, {"ema_decay", "0.999"}, {"ema_gate", "0"},
        {"momentum", "0.9"}, {"weight_decay", "5e-4"}, {"batch", "8"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++) set(c, kv[i][0], kv[i][1]);
    assert_int_equal(rm_config_validate(c), RM_OK);
}

static fixture_record *find(fixture_file *fx, int step, const char *name) {
    char full[128];
    snprintf(full, sizeof full, "%d/%s", step, name);
    return fixture_find(fx, full);
}

/* Every parameter's tensor against "<step>/<kind>:<name>": kind grad (trained
 * parameters' gradients), running (BN statistics), weight (trained parameters), ema
 * (the shadow of every tensor). */
static int compare_params(fixture_file *fx, int step, rm_net *net, rm_ema *ema, const char *kind, double tol) {
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    int ok = 1;
    for (size_t i = 0; i < np; i++) {
        const float *ours = NULL;
        if (!strcmp(kind, "grad")) ours = p[i].grad;
        else if (!strcmp(kind, "running")) ours = p[i].is_buffer ? p[i].data : NULL;
        else if (!strcmp(kind, "weight")) ours = p[i].is_buffer ? NULL : p[i].data;
        else ours = rm_ema_shadow(ema, i);
        if (!ours) continue;
        char name[128];
        snprintf(name, sizeof name, "%d/%s:%s", step, kind, p[i].name);
        ok &= fixture_compare(name, ours, p[i].numel, fixture_find(fx, name), tol);
    }
    return ok;
}

/* One step as the trainer composes it; compares everything the fixture holds for it. */
static int check_one_step(fixture_file *fx, int s, const rm_config *cfg, rm_method *m, rm_net *net,
                          rm_sgd *opt, rm_ema *ema, const float *x, const int32_t *y, const int64_t *ids) {
    rm_pgi_state *pgi = rm_method_pgi(m);
    size_t n = (size_t)B * 784;
    float e[B * 784]; /* this step's start: P(D[id]), D already projected for these images */
    memcpy(e, pgi->D, sizeof e);
    rm_rng rng;
    rm_rng_seed(&rng, 1);
    rm_step_terms t;
    if (rm_method_gradients(m, x, y, ids, B, &rng, &t) != RM_OK) fail_msg("%s", rm_error_message());
    printf(" step %d\n", s);
    int ok = 1;
    ok &= step_check_count("count_i (n_i)", t.correct_initial, find(fx, s, "count_i"));
    ok &= step_check_count("count_f (n_f)", t.correct, find(fx, s, "count_f"));
    ok &= step_check_scalar("r = n_f / (n_i + 1)", t.r, find(fx, s, "r"), EXACT_TOL);
    ok &= step_check_scalar("loss", t.loss, find(fx, s, "loss"), GRAD_TOL);
    ok &= step_check_scalar("ce", t.ce, find(fx, s, "ce"), GRAD_TOL);
    const char *names[] = {"mse", "amr", "agr"};
    const double vals[] = {t.mse, t.amr, t.agr};
    for (int i = 0; i < 3; i++) {
        fixture_record *r = find(fx, s, names[i]);
        if (r) {
            ok &= step_check_scalar(names[i], vals[i], r, GRAD_TOL);
        } else if (vals[i] != 0.0) { /* a term the method lacks must be 0 */
            printf("  %-44s %.9g where the method has no such term  NOT OK\n", names[i], vals[i]);
            ok = 0;
        }
    }
    ok &= step_check_momentum("momentum_next ((2 - r) g / ||g||_1 + mu M)", pgi->M, n, find(fx, s, "momentum_next"),
                              GRAD_TOL);
    ok &= step_check_exact("delta (d)", rm_method_delta(m), n, find(fx, s, "delta"), DELTA_TOL);
    ok &= step_check_exact("prior_next (D)", pgi->D, n, find(fx, s, "prior_next"), DELTA_TOL);
    ok &= compare_params(fx, s, net, ema, "grad", GRAD_TOL);
    char prefix[8];
    snprintf(prefix, sizeof prefix, "%d/", s);
    ok &= step_check_pass_logits(fx, prefix, net, x, e, rm_method_delta(m), B, STATE_TOL);
    /* the trainer's order: optimiser step, then the EMA of the new weights and statistics */
    rm_sgd_step(opt, LR);
    rm_net_params_changed(net);
    double k = NAN;
    int updated = rm_ema_after_step(ema, cfg, &t, &k);
    ok &= updated == 1;
    ok &= step_check_scalar("EMA decay k = min(c, (t + 1) / (t + 10))", k, find(fx, s, "ema_k"), EXACT_TOL);
    ok &= compare_params(fx, s, net, ema, "running", STATE_TOL);
    ok &= compare_params(fx, s, net, ema, "weight", STATE_TOL);
    ok &= compare_params(fx, s, net, ema, "ema", STATE_TOL);
    return ok;
}

static void check_sequence(const char *reg) {
    char path[512];
    snprintf(path, sizeof path, "%s/pgk_step_%s.rmfx", REGMIX_TEST_DATA_DIR, reg);
    fixture_file *fx;
    if (fixture_load(path, &fx) != RM_OK) fail_msg("%s", rm_error_message());
    printf("pgk steps + EMA, reg %s, vs %s\n", reg, path);

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
    size_t np;
    rm_param *params = rm_net_params(net, &np);
    rm_sgd *opt;
    assert_int_equal(rm_sgd_create(params, np, (rm_sgd_config){cfg.momentum, cfg.weight_decay}, &opt), RM_OK);
    rm_ema *ema;
    assert_int_equal(rm_ema_create(net, &ema), RM_OK); /* shadow = the initial weights, t = 0 */

    /* the prior: D[id] = e, M[id] = 0, not fresh (no random draw) */
    rm_pgi_state *pgi = rm_method_pgi(m);
    assert_non_null(pgi);
    assert_int_equal(pgi->d, 784);
    memcpy(pgi->D, re->data, (size_t)B * 784 * sizeof(float));
    memset(pgi->M, 0, (size_t)B * 784 * sizeof(float));
    memset(pgi->fresh, 0, B);

    int ok = 1;
    for (int s = 1; s <= STEPS; s++) ok &= check_one_step(fx, s, &cfg, m, net, opt, ema, rx->data, y, ids);
    assert_int_equal(rm_ema_updates(ema), STEPS);
    size_t unused = fixture_report_unused(fx);
    printf("pgk steps + EMA, reg %s: %s\n", reg, ok && unused == 0 ? "OK (PyTorch agrees)" : "NOT OK");
    fflush(stdout);

    rm_ema_destroy(ema);
    rm_sgd_destroy(opt);
    rm_method_destroy(m);
    rm_net_destroy(net);
    fixture_free(fx);
    assert_true(ok);
    assert_int_equal(unused, 0);
}

static void test_pgk_steps_mse(void **state) {
    (void)state;
    check_sequence("mse");
}

static void test_pgk_steps_regmix(void **state) {
    (void)state;
    check_sequence("regmix");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pgk_steps_mse),
        cmocka_unit_test(test_pgk_steps_regmix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
