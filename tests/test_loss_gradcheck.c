/* Every gradient of every loss term against central finite differences.
 *
 * Each term is evaluated at B = 1 and B = 3, K = 10, on random logits of moderate scale
 * (3 * N(0,1)) from rm_rng. The functions compute their value in double from the float
 * logits, and rm_check_gradient measures the step actually taken in float, so with
 * h = 1e-3 the central difference is accurate to its O(h^2) truncation error
 * (~1e-7 here); the analytic gradient is stored in float (relative 6e-8). Hence
 * atol = 1e-6, rtol = 1e-4: far below the size of any real mistake (a wrong sign, a
 * missing 1/B or factor 2, a missing "- KL" term, swapped weights).
 *
 * A stopped / detached side must receive exactly zero gradient: the finite difference is
 * not zero there (the value depends on it), so that side is asserted to be untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gradcheck.h"
#include "regmix/loss.h"

enum { K = 10, MAXB = 3, MAXN = MAXB * K };
#define H 1e-3
#define ATOL 1e-6
#define RTOL 1e-4

typedef enum { T_CE, T_MSE, T_KL, T_AMR, T_AGR, T_REGMIX, T_CW, T_DLR, T_DLR_T } term;

/* Everything needed to re-evaluate one term's value (no gradients) from the logits. */
typedef struct {
    term t;
    int B;
    float z1[MAXN], z2[MAXN], z3[MAXN]; /* meaning depends on the term, see eval() */
    int32_t y[MAXB], target[MAXB]; /* labels; DLR targets */
    double s, weight;
    rm_amr_config amr;
    rm_agr_config agr;
} ctx;

static rm_status run(ctx *c, double *v, float *g1, float *g2, float *g3) {
    switch (c->t) {
    case T_CE: return rm_ce_ls(c->z1, c->y, c->B, K, c->s, v, g1);
    case T_MSE: return rm_mse_logits(c->z1, c->z2, c->B, K, c->weight, v, g1, g2);
    case T_KL: return rm_kl(c->z1, c->z2, c->B, K, c->weight, v, g1, g2);
    case T_AMR: return rm_amr(c->z1, c->z2, c->B, K, &c->amr, v, g1, g2);
    case T_AGR: return rm_agr(c->z1, c->z2, c->B, K, &c->agr, v, g1, g2);
    case T_REGMIX:
        return rm_regmix(c->z1, c->z2, c->z3, c->B, K, &c->amr, &c->agr, v, g1, g2, g3);
    case T_CW: return rm_cw_margin(c->z1, c->y, c->B, K, v, g1);
    case T_DLR: return rm_dlr(c->z1, c->y, NULL, c->B, K, v, NULL, g1);
    case T_DLR_T: return rm_dlr(c->z1, c->y, c->target, c->B, K, v, NULL, g1);
    }
    return RM_ERR_ARG;
}

static double eval(void *vctx) {
    double v = 0.0;
    assert_int_equal(run(vctx, &v, NULL, NULL, NULL), RM_OK);
    return v;
}

static void fill(ctx *c, term t, int B, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->t = t;
    c->B = B;
    rm_rng r;
    rm_rng_seed(&r, seed);
    for (int i = 0; i < MAXN; i++) {
        c->z1[i] = 3.0f * rm_rng_normal(&r);
        c->z2[i] = 3.0f * rm_rng_normal(&r);
        c->z3[i] = 3.0f * rm_rng_normal(&r);
    }
    for (int b = 0; b < MAXB; b++) c->y[b] = (int32_t)rm_rng_below(&r, K);
}

static void assert_all_zero(const char *name, const float *g, int n) {
    for (int i = 0; i < n; i++) {
        if (g[i] != 0.0f) {
            printf("  %-28s NOT OK: stopped side has gradient %g at [%d]\n", name, g[i], i);
            fail();
        }
    }
    printf("  %-28s OK  exactly zero (stopped)\n", name);
}

/* Computes all gradients into zeroed buffers, then checks each input array: by finite
 * differences, or for zero_mask bit i set, that gradient i is exactly zero. */
static void check_term(const char *label, ctx *c, int n_inputs, unsigned zero_mask) {
    float g[3][MAXN];
    memset(g, 0, sizeof g);
    double v = 0.0;
    assert_int_equal(run(c, &v, g[0], n_inputs > 1 ? g[1] : NULL, n_inputs > 2 ? g[2] : NULL),
                     RM_OK);
    /* The value with gradients requested equals the value without (eval). */
    assert_true(v == eval(c));
    float *z[3] = {c->z1, c->z2, c->z3};
    const int n = c->B * K;
    for (int i = 0; i < n_inputs; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s B=%d d/z%d", label, c->B, i + 1);
        if (zero_mask & (1u << i)) {
            assert_all_zero(name, g[i], n);
        } else {
            assert_true(rm_check_gradient(name, eval, c, z[i], (size_t)n, g[i], H, ATOL, RTOL, 1));
        }
    }
}

static void test_ce_ls(void **state) {
    (void)state;
    const double smooth[] = {1.0, 0.6, 0.0};
    for (int B = 1; B <= MAXB; B += 2)
        for (int i = 0; i < 3; i++) {
            ctx c;
            fill(&c, T_CE, B, 11 + B);
            c.s = smooth[i];
            char label[64];
            snprintf(label, sizeof label, "ce_ls s=%.1f", smooth[i]);
            check_term(label, &c, 1, 0);
        }
}

static void test_mse(void **state) {
    (void)state;
    for (int B = 1; B <= MAXB; B += 2) {
        ctx c;
        fill(&c, T_MSE, B, 21 + B);
        c.weight = 10.0;
        check_term("mse lambda=10", &c, 2, 0);
    }
}

static void test_kl(void **state) {
    (void)state;
    for (int B = 1; B <= MAXB; B += 2) {
        ctx c;
        fill(&c, T_KL, B, 31 + B);
        c.weight = 1.7;
        check_term("kl w=1.7", &c, 2, 0);
        /* TRADES' attack: only d/d z_adv is requested, and it equals the full one. */
        float g[MAXN] = {0}, g_full[MAXN] = {0}, g_a[MAXN] = {0};
        assert_int_equal(rm_kl(c.z1, c.z2, B, K, 1.7, NULL, NULL, g), RM_OK);
        assert_int_equal(rm_kl(c.z1, c.z2, B, K, 1.7, NULL, g_a, g_full), RM_OK);
        assert_memory_equal(g, g_full, sizeof g);
    }
}

static void test_amr(void **state) {
    (void)state;
    for (int B = 1; B <= MAXB; B += 2)
        for (int stop_f = 0; stop_f <= 1; stop_f++)
            for (int stop_i = 0; stop_i <= 1; stop_i++) {
                ctx c;
                fill(&c, T_AMR, B, 41 + B);
                c.amr = (rm_amr_config){.alpha = 1.0, .beta = 0.3, .stop_f = stop_f,
                                        .stop_i = stop_i};
                char label[64];
                snprintf(label, sizeof label, "amr stop_f=%d stop_i=%d", stop_f, stop_i);
                check_term(label, &c, 2, (stop_f ? 1u : 0u) | (stop_i ? 2u : 0u));
            }
}

static void test_agr(void **state) {
    (void)state;
    const rm_agr_direction dirs[] = {RM_AGR_C_F, RM_AGR_F_C, RM_AGR_BOTH};
    for (int B = 1; B <= MAXB; B += 2)
        for (int d = 0; d < 3; d++)
            for (int detach = 0; detach <= 1; detach++) {
                ctx c;
                fill(&c, T_AGR, B, 51 + B);
                c.agr = (rm_agr_config){.gamma = 0.7, .dir = dirs[d], .detach_clean = detach};
                char label[64];
                snprintf(label, sizeof label, "agr %s detach=%d", rm_agr_direction_name(dirs[d]),
                         detach);
                check_term(label, &c, 2, detach ? 1u : 0u); /* z1 = clean side */
            }
}

static void test_regmix(void **state) {
    (void)state;
    for (int B = 1; B <= MAXB; B += 2)
        for (int variant = 0; variant < 3; variant++) {
            ctx c;
            fill(&c, T_REGMIX, B, 61 + B);
            c.amr = (rm_amr_config){.alpha = 1.0, .beta = 0.3};
            c.agr = (rm_agr_config){.gamma = 0.7, .dir = RM_AGR_C_F};
            unsigned zero = 0;
            if (variant == 1) {
                c.agr.dir = RM_AGR_BOTH;
                c.agr.detach_clean = 1;
                zero = 4u; /* z3 = z_c */
            } else if (variant == 2) {
                c.amr.stop_i = 1;
                c.agr.dir = RM_AGR_F_C;
                zero = 2u; /* z2 = z_i */
            }
            char label[64];
            snprintf(label, sizeof label, "regmix variant %d", variant);
            check_term(label, &c, 3, zero);
        }
}

static void test_cw_margin(void **state) {
    (void)state;
    for (int B = 1; B <= MAXB; B += 2) {
        ctx c;
        fill(&c, T_CW, B, 71 + B);
        /* The margin is differentiable only away from ties: the top two logits other than
         * the label must differ by far more than the step h, or FD crosses a kink. */
        for (int b = 0; b < B; b++) {
            float top = -1e30f, second = -1e30f;
            for (int j = 0; j < K; j++) {
                if (j == c.y[b]) continue;
                float v = c.z1[b * K + j];
                if (v > top) {
                    second = top;
                    top = v;
                } else if (v > second) {
                    second = v;
                }
            }
            assert_true(top - second > 100 * H);
        }
        check_term("cw_margin", &c, 1, 0);
    }
}

/* DLR is differentiable away from ties in the ranking, so the logits are well apart:
 * z = 0.8 * (a random permutation of 0..K-1) + U(-0.2, 0.2), every gap >= 0.4 = 400 h.
 * The label (and the target) is put at chosen ranks, so that every branch is met: y on
 * top (the subtracted logit is pi2), y second or lower (it is pi1), y or t among the
 * ranks pi3/pi4 of the denominator (contributions to one logit from N and from D). */
static void dlr_case(ctx *c, term t, int y_rank, int t_rank, uint64_t seed) {
    fill(c, t, MAXB, seed);
    rm_rng r;
    rm_rng_seed(&r, seed);
    for (int b = 0; b < MAXB; b++) {
        int perm[K];
        for (int k = 0; k < K; k++) perm[k] = k;
        for (int k = K - 1; k > 0; k--) {
            int j = (int)rm_rng_below(&r, (uint32_t)k + 1), tmp = perm[k];
            perm[k] = perm[j];
            perm[j] = tmp;
        }
        /* class perm[k] gets rank k (largest first) */
        for (int k = 0; k < K; k++)
            c->z1[b * K + perm[k]] = 0.8f * (float)(K - 1 - k) + rm_rng_uniform_range(&r, -0.2f, 0.2f);
        c->y[b] = perm[(y_rank + b) % K];
        c->target[b] = perm[(t_rank + b) % K];
    }
}

static void test_dlr(void **state) {
    (void)state;
    const int y_ranks[] = {0, 1, 2, 5};
    for (int i = 0; i < 4; i++) {
        ctx c;
        dlr_case(&c, T_DLR, y_ranks[i], 0, 81 + (uint64_t)i);
        char label[64];
        snprintf(label, sizeof label, "dlr y rank %d..%d", y_ranks[i], y_ranks[i] + MAXB - 1);
        check_term(label, &c, 1, 0);
    }
    const int pairs[][2] = {{0, 1}, {0, 3}, {1, 0}, {2, 3}, {3, 2}, {5, 0}, {0, 7}};
    for (int i = 0; i < 7; i++) {
        ctx c;
        dlr_case(&c, T_DLR_T, pairs[i][0], pairs[i][1], 91 + (uint64_t)i);
        char label[64];
        snprintf(label, sizeof label, "dlr-t y rank %d t rank %d (+b)", pairs[i][0], pairs[i][1]);
        check_term(label, &c, 1, 0);
    }
}

/* Values by hand: z = (4, 1, 3, 0, 2), y = 0 (on top): N = 4 - 3 = 1, D = 4 - 2 = 2,
 * DLR = -0.5; y = 3: N = 0 - 4 = -4, DLR = 2; targeted y = 0, t = 4: N = 4 - 2 = 2,
 * D = 4 - (2 + 1)/2 = 2.5, DLR = -0.8. Shifting and scaling the logits changes nothing.
 * Bad shapes, labels and targets are refused. */
static void test_dlr_values(void **state) {
    (void)state;
    float z[10] = {4, 1, 3, 0, 2, 4 * 3 + 7, 1 * 3 + 7, 3 * 3 + 7, 0 * 3 + 7, 2 * 3 + 7};
    int32_t y[2] = {0, 3}, t[2] = {4, 4};
    double v, l[2];
    assert_int_equal(rm_dlr(z, y, NULL, 2, 5, &v, l, NULL), RM_OK);
    assert_true(fabs(l[0] - -0.5) < 1e-9 && fabs(l[1] - 2.0) < 1e-9 && fabs(v - 0.75) < 1e-9);
    y[1] = 0;
    assert_int_equal(rm_dlr(z, y, t, 2, 5, &v, l, NULL), RM_OK);
    assert_true(fabs(l[0] - -0.8) < 1e-9 && fabs(l[1] - -0.8) < 1e-9);
    assert_int_equal(rm_dlr(z, y, NULL, 1, 2, &v, NULL, NULL), RM_ERR_ARG);
    assert_int_equal(rm_dlr(z, y, t, 1, 3, &v, NULL, NULL), RM_ERR_ARG);
    t[0] = 0;
    assert_int_equal(rm_dlr(z, y, t, 1, 5, &v, NULL, NULL), RM_ERR_ARG);
    y[0] = 5;
    assert_int_equal(rm_dlr(z, y, NULL, 1, 5, &v, NULL, NULL), RM_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ce_ls),   cmocka_unit_test(test_mse),
        cmocka_unit_test(test_kl),      cmocka_unit_test(test_amr),
        cmocka_unit_test(test_agr),     cmocka_unit_test(test_regmix),
        cmocka_unit_test(test_cw_margin), cmocka_unit_test(test_dlr),
        cmocka_unit_test(test_dlr_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
