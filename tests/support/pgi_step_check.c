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

enum { B = 8, K = 10 };
#define GRAD_TOL 1e-3   /* loss terms, weight gradients, momentum (the task's bound) */
#define STATE_TOL 1e-4  /* logits, running statistics: forward-only float32 error */
#define DELTA_TOL 1e-6  /* d and D: exact in principle */

/* A scalar loss term against its [1] record; prints the line fixture_compare would. */
static int compare_term(const char *label, double ours, fixture_record *ref) {
    if (!ref || ref->count != 1) {
        printf("  %-44s NOT OK: no scalar fixture record\n", label);
        return 0;
    }
    double r = ref->data[0], diff = fabs(ours - r), rel = diff / fmax(fabs(r), 1e-30);
    int ok = isfinite(ours) && rel <= GRAD_TOL;
    printf("  %-44s ours %.9g  torch %.9g  rel %.3e  %s\n", label, ours, r, rel, ok ? "OK" : "NOT OK");
    return ok;
}

/* A perturbation (d or D) against its record: elements further apart than DELTA_TOL. */
static int compare_delta(const char *label, const float *ours, fixture_record *ref) {
    if (!ref || ref->numel != (size_t)B * 784 || ref->stride != 1) {
        printf("  %-44s NOT OK: bad fixture record\n", label);
        return 0;
    }
    size_t off = 0;
    double max_diff = 0;
    for (size_t i = 0; i < ref->count; i++) {
        double diff = fabs((double)ours[i] - ref->data[i]);
        if (!(diff <= DELTA_TOL)) off++;
        if (diff > max_diff || isnan(diff)) max_diff = diff;
    }
    printf("  %-44s max|diff| %.3e  elements off by > %.0e: %zu of %zu  %s\n", label, max_diff,
           DELTA_TOL, off, ref->count, off ? "NOT OK" : "OK");
    return off == 0;
}

/* M = g / ||g||_1: the C engine's error of the input gradient against the margin the
 * generator kept (min |g| >= 5e-4 rms), and the elements whose sign differs. */
static int compare_momentum(const float *M, fixture_record *ref) {
    int ok = fixture_compare("momentum_next (g / ||g||_1)", M, (size_t)B * 784, ref, GRAD_TOL);
    if (!ref || ref->stride != 1) return 0;
    double ms = 0, least = INFINITY, err = 0;
    size_t flips = 0;
    for (size_t i = 0; i < ref->count; i++) {
        double r = ref->data[i];
        ms += r * r;
        least = fmin(least, fabs(r));
        err = fmax(err, fabs(M[i] - r));
        flips += ((M[i] > 0) != (r > 0)) || ((M[i] < 0) != (r < 0));
    }
    double rms = sqrt(ms / (double)ref->count);
    printf("  %-44s min|g|/rms %.3e  C error/rms %.3e  (margin x%.0f)  sign(g) differs at %zu  %s\n",
           "sign(g)", least / rms, err / rms, err > 0 ? least / err : INFINITY, flips,
           flips ? "NOT OK" : "OK");
    return ok && flips == 0;
}

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

/* The logits of the three passes from a separate net with the same weights (train mode:
 * batch statistics, so its running statistics do not matter): says whether a gradient
 * mismatch comes from the forward passes or from the step's composition. */
static int compare_pass_logits(fixture_file *fx, const float *x, const float *e, const float *d) {
    rm_net *net;
    rm_tape *tape;
    assert_int_equal(rm_net_create("fmnist-cnn", 1, 28, 28, K, &net), RM_OK);
    assert_int_equal(rm_tape_create(net, &tape), RM_OK);
    fixture_fill_params(net);
    float xin[B * 784], z[B * K];
    const struct {
        const char *name;
        const float *delta;
    } passes[] = {{"logits_i", e}, {"logits_f", d}, {"logits_c", NULL}};
    int ok = 1;
    for (size_t p = 0; p < 3; p++) {
        fixture_record *ref = fixture_find(fx, passes[p].name);
        if (!ref && !passes[p].delta) continue; /* mse has no clean pass */
        for (size_t i = 0; i < (size_t)B * 784; i++) xin[i] = x[i] + (passes[p].delta ? passes[p].delta[i] : 0.0f);
        assert_int_equal(rm_net_forward(net, tape, RM_MODE_TRAIN, xin, B, z), RM_OK);
        char label[64];
        snprintf(label, sizeof label, "%s (separate forward)", passes[p].name);
        ok &= fixture_compare(label, z, (size_t)B * K, ref, STATE_TOL);
    }
    rm_tape_destroy(tape);
    rm_net_destroy(net);
    return ok;
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
    fails += !compare_term("loss", t.loss, fixture_find(fx, "loss"));
    fails += !compare_term("ce", t.ce, fixture_find(fx, "ce"));
    const char *names[] = {"mse", "amr", "agr"};
    const double vals[] = {t.mse, t.amr, t.agr};
    for (int i = 0; i < 3; i++) {
        fixture_record *r = fixture_find(fx, names[i]);
        if (r) {
            fails += !compare_term(names[i], vals[i], r);
        } else if (vals[i] != 0.0) { /* a term the method lacks must be 0 */
            printf("  %-44s %.9g where the method has no such term  NOT OK\n", names[i], vals[i]);
            fails++;
        }
    }
    assert_true(t.trades == 0.0);
    fixture_record *rc = fixture_find(fx, "correct");
    int correct_ok = rc && t.correct == (int)rc->data[0];
    printf("  %-44s ours %d  torch %d  %s\n", "correct", t.correct, rc ? (int)rc->data[0] : -1,
           correct_ok ? "OK" : "NOT OK");
    fails += !correct_ok;

    fails += !compare_momentum(pgi->M, fixture_find(fx, "momentum_next"));
    fails += !compare_delta("delta (d)", rm_method_delta(m), fixture_find(fx, "delta"));
    fails += !compare_delta("prior_next (D)", pgi->D, fixture_find(fx, "prior_next"));

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
    fails += !compare_pass_logits(fx, rx->data, re->data, rm_method_delta(m));
    size_t unused = fixture_report_unused(fx);
    fails += (int)unused;
    printf("pgi step, reg %s: %s\n", reg, fails == 0 ? "OK (PyTorch agrees)" : "NOT OK");
    fflush(stdout);

    rm_method_destroy(m);
    rm_net_destroy(net);
    fixture_free(fx);
    return fails;
}

