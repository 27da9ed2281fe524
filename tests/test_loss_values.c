/* Loss values against hand-computed cases and independent formulas; the accumulate
 * contract; numerical stability; argument errors; the divergence check.
 *
 * Hand-computed cases use z = (0, ln 3), whose softmax is p = (1/4, 3/4), and z = (0, 0),
 * whose softmax is q = (1/2, 1/2). ln 3 is rounded to float (error 3e-8), so values built
 * on it are compared to 1e-7. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "regmix/loss.h"

#define LN2 0.69314718055994531
#define LN3 1.09861228866810969

static void near(const char *what, double got, double want, double tol) {
    if (!(fabs(got - want) <= tol)) {
        printf("  %s NOT OK: got %.12g want %.12g (|diff| %.3g > %.3g)\n", what, got, want,
               fabs(got - want), tol);
        fail();
    }
}

static void near_array(const char *what, const float *got, const double *want, int n,
                       double tol) {
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s[%d]", what, i);
        near(name, got[i], want[i], tol);
    }
}

/* ---------------------------------------------------------------- hand-computed cases */

static void test_ce_hand(void **state) {
    (void)state;
    /* p = softmax(0, ln 3) = (1/4, 3/4), in both rows.
     * row 0, y = 1: CE = -ln(3/4) = ln(4/3) = 0.28768207245, dz = p - e_1 = (0.25, -0.25)
     * row 1, y = 0: CE = -ln(1/4) = ln 4    = 1.38629436112, dz = p - e_0 = (-0.75, 0.75)
     * batch mean: (0.28768207245 + 1.38629436112) / 2 = 0.83698821679; dz halved. */
    const float z[4] = {0.0f, (float)LN3, 0.0f, (float)LN3};
    const int32_t y[2] = {1, 0};
    double v = 0.0;
    float dz[4] = {0};
    assert_int_equal(rm_ce_ls(z, y, 2, 2, 1.0, &v, dz), RM_OK);
    near("ce s=1 value", v, 0.83698821679, 1e-7);
    near_array("ce s=1 dz", dz, (const double[]){0.125, -0.125, -0.375, 0.375}, 4, 1e-7);

    /* s = 0.6, K = 2, y = 1: t = (0.4, 0.6)
     * CE = -(0.4 ln(1/4) + 0.6 ln(3/4)) = 0.4 * 1.38629436112 + 0.6 * 0.28768207245
     *    = 0.55451774445 + 0.17260924347 = 0.72712698792;  dz = p - t = (-0.15, 0.15). */
    memset(dz, 0, sizeof dz);
    assert_int_equal(rm_ce_ls(z, y, 1, 2, 0.6, &v, dz), RM_OK);
    near("ce s=0.6 value", v, 0.72712698792, 1e-7);
    near_array("ce s=0.6 dz", dz, (const double[]){-0.15, 0.15}, 2, 1e-7);

    /* K = 3, z = 0: p = 1/3 each, so CE = -sum_k t_k ln(1/3) = ln 3 for every s;
     * s = 0.6, y = 0: t = (0.6, 0.2, 0.2), dz = (1/3 - 0.6, 1/3 - 0.2, 1/3 - 0.2). */
    const float z3[3] = {0.0f, 0.0f, 0.0f};
    const int32_t y0 = 0;
    float dz3[3] = {0};
    assert_int_equal(rm_ce_ls(z3, &y0, 1, 3, 0.6, &v, dz3), RM_OK);
    near("ce K=3 value", v, LN3, 1e-12);
    near_array("ce K=3 dz", dz3,
               (const double[]){1.0 / 3 - 0.6, 1.0 / 3 - 0.2, 1.0 / 3 - 0.2}, 3, 1e-7);
}

static void test_kl_hand(void **state) {
    (void)state;
    /* a = (0, ln 3): p = (1/4, 3/4);  b = (0, 0): q = (1/2, 1/2).
     * KL(p||q) = 1/4 ln(1/2) + 3/4 ln(3/2) = -0.17328679514 + 0.30409883108 = 0.13081203594
     * d/da_j = p_j (ln p_j - ln q_j - KL):
     *   j=0: 0.25 (-ln 2 - 0.13081203594)        = 0.25 * -0.82395921650 = -0.20598980413
     *   j=1: 0.75 (ln 1.5 - 0.13081203594)       = 0.75 *  0.27465307217 =  0.20598980413
     * d/db = q - p = (0.25, -0.25).  With w = 2 everything doubles. */
    const float a[2] = {0.0f, (float)LN3}, b[2] = {0.0f, 0.0f};
    double v = 0.0;
    float da[2] = {0}, db[2] = {0};
    assert_int_equal(rm_kl(a, b, 1, 2, 2.0, &v, da, db), RM_OK);
    near("kl value", v, 2 * 0.13081203594, 2e-7);
    near_array("kl da", da, (const double[]){2 * -0.20598980413, 2 * 0.20598980413}, 2, 2e-7);
    near_array("kl db", db, (const double[]){0.5, -0.5}, 2, 2e-7);

    /* KL(q||p) = 1/2 ln(2) + 1/2 ln(2/3) = 1/2 ln(4/3) = 0.14384103623. */
    assert_int_equal(rm_kl(b, a, 1, 2, 1.0, &v, NULL, NULL), RM_OK);
    near("kl reverse value", v, 0.14384103623, 1e-7);
}

static void test_amr_agr_regmix_hand(void **state) {
    (void)state;
    const float p34[2] = {0.0f, (float)LN3}, half[2] = {0.0f, 0.0f};
    double v = 0.0;
    /* AMR(z_f = (0, ln 3), z_i = (0, 0)), alpha = 1, beta = 0.5:
     *   1 * KL(p||q) + 0.5 * KL(q||p) = 0.13081203594 + 0.07192051811 = 0.20273255405. */
    rm_amr_config amr = {.alpha = 1.0, .beta = 0.5};
    assert_int_equal(rm_amr(p34, half, 1, 2, &amr, &v, NULL, NULL), RM_OK);
    near("amr value", v, 0.20273255405, 1e-7);

    /* AGR(z_c = (0, ln 3), z_f = (0, 0)), gamma = 2:
     *   c||f: 2 KL(p||q) = 0.26162407188
     *   f||c: 2 KL(q||p) = ln(4/3) = 0.28768207245
     *   both: 2 sum_k (p_k - q_k)(ln p_k - ln q_k) = 2 (1/4 ln 2 + 1/4 ln 3/2) = 1/2 ln 3
     *         = 0.54930614433 */
    rm_agr_config agr = {.gamma = 2.0, .dir = RM_AGR_C_F};
    assert_int_equal(rm_agr(p34, half, 1, 2, &agr, &v, NULL, NULL), RM_OK);
    near("agr c||f value", v, 0.26162407188, 2e-7);
    agr.dir = RM_AGR_F_C;
    assert_int_equal(rm_agr(p34, half, 1, 2, &agr, &v, NULL, NULL), RM_OK);
    near("agr f||c value", v, 0.28768207245, 2e-7);
    agr.dir = RM_AGR_BOTH;
    assert_int_equal(rm_agr(p34, half, 1, 2, &agr, &v, NULL, NULL), RM_OK);
    near("agr both value", v, 0.5 * LN3, 2e-7);

    /* RegMix with z_f = (0, 0), z_i = z_c = (0, ln 3), alpha 1, beta 0.5, gamma 2, c||f:
     *   AMR = KL(q||p) + 0.5 KL(p||q) = 0.14384103623 + 0.06540601797 = 0.20924705420
     *   AGR = 2 KL(p||q)                                            = 0.26162407188
     *   sum                                                          = 0.47087112608 */
    agr.dir = RM_AGR_C_F;
    assert_int_equal(rm_regmix(half, p34, p34, 1, 2, &amr, &agr, &v, NULL, NULL, NULL), RM_OK);
    near("regmix value", v, 0.47087112608, 2e-7);
}

static void test_mse_hand(void **state) {
    (void)state;
    /* B = 2, K = 3; z_f - z_i = (0, 2, 0, -1, -1, -1); sum of squares = 4 + 3 = 7;
     * lambda = 10: value = 10 * 7 / 6 = 11.6666666667;
     * dz_f = 2 * 10 * diff / 6 = (0, 6.6667, 0, -3.3333, -3.3333, -3.3333), dz_i = -dz_f. */
    const float zf[6] = {1, 2, 3, 0, 0, 0}, zi[6] = {1, 0, 3, 1, 1, 1};
    double v = 0.0;
    float dzf[6] = {0}, dzi[6] = {0};
    assert_int_equal(rm_mse_logits(zf, zi, 2, 3, 10.0, &v, dzf, dzi), RM_OK);
    near("mse value", v, 70.0 / 6.0, 1e-12);
    const double g[6] = {0, 20.0 / 3, 0, -10.0 / 3, -10.0 / 3, -10.0 / 3};
    const double mg[6] = {0, -20.0 / 3, 0, 10.0 / 3, 10.0 / 3, 10.0 / 3};
    near_array("mse dzf", dzf, g, 6, 1e-6);
    near_array("mse dzi", dzi, mg, 6, 1e-6);
}

static void test_cw_hand(void **state) {
    (void)state;
    /* row 0: z = (1, 5, 3, 5), y = 0: max over j != 0 is 5, tied at j = 1 and 3 -> j* = 1
     *        (lowest); margin 5 - 1 = 4; dz: +1/3 at 1, -1/3 at 0.
     * row 1: same z, y = 1: max over {1, 3, 5} = 5 at j = 3; margin 5 - 5 = 0;
     *        dz: +1/3 at 3, -1/3 at 1.
     * row 2: z = (7, 2, 2, -1), y = 0: j* = 1 (tie with 2, lowest); margin 2 - 7 = -5;
     *        dz: +1/3 at 1, -1/3 at 0.
     * mean = (4 + 0 - 5) / 3 = -1/3. */
    const float z[12] = {1, 5, 3, 5, 1, 5, 3, 5, 7, 2, 2, -1};
    const int32_t y[3] = {0, 1, 0};
    double v = 0.0;
    float dz[12] = {0};
    assert_int_equal(rm_cw_margin(z, y, 3, 4, &v, dz), RM_OK);
    near("cw value", v, -1.0 / 3.0, 1e-12);
    const double t = 1.0 / 3.0;
    near_array("cw dz", dz, (const double[]){-t, t, 0, 0, 0, -t, 0, t, -t, t, 0, 0}, 12, 1e-7);
}

/* ------------------------------------------------------ independent formulas, properties */

static void random_logits(float *z, int n, double scale, uint64_t seed) {
    rm_rng r;
    rm_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) z[i] = (float)(scale * rm_rng_normal(&r));
}

/* Plain softmax without max subtraction (fine at moderate scale): an independent route. */
static double naive_log_softmax(const float *z, int K, int k) {
    double sum = 0.0;
    for (int j = 0; j < K; j++) sum += exp((double)z[j]);
    return log(exp((double)z[k]) / sum);
}

static void test_ce_matches_naive(void **state) {
    (void)state;
    enum { B = 4, K = 10 };
    float z[B * K];
    random_logits(z, B * K, 3.0, 7);
    const int32_t y[B] = {0, 9, 4, 4};
    double plain = 0.0, smooth = 0.0;
    for (int b = 0; b < B; b++) {
        plain += -naive_log_softmax(z + b * K, K, y[b]) / B;
        for (int k = 0; k < K; k++) {
            const double t = k == y[b] ? 0.6 : 0.4 / 9.0;
            smooth += -t * naive_log_softmax(z + b * K, K, k) / B;
        }
    }
    double v = 0.0;
    assert_int_equal(rm_ce_ls(z, y, B, K, 1.0, &v, NULL), RM_OK);
    near("ce s=1 vs -log softmax", v, plain, 1e-12 * fabs(plain));
    assert_int_equal(rm_ce_ls(z, y, B, K, 0.6, &v, NULL), RM_OK);
    near("ce s=0.6 vs formula", v, smooth, 1e-12 * fabs(smooth));
}

static void test_kl_properties(void **state) {
    (void)state;
    enum { B = 50, K = 10 };
    static float a[B * K], b[B * K], da[B * K], db[B * K];
    random_logits(a, B * K, 3.0, 101);
    random_logits(b, B * K, 3.0, 202);

    /* KL(p || p) = 0 exactly, and so are both gradients. */
    double v = -1.0;
    assert_int_equal(rm_kl(a, a, B, K, 1.0, &v, da, db), RM_OK);
    assert_true(v == 0.0);
    for (int i = 0; i < B * K; i++) assert_true(da[i] == 0.0f && db[i] == 0.0f);

    /* Softmax ignores a constant shift: KL(softmax(a) || softmax(a + 0.5)) = 0. */
    static float shifted[B * K];
    for (int i = 0; i < B * K; i++) shifted[i] = a[i] + 0.5f;
    assert_int_equal(rm_kl(a, shifted, B, K, 1.0, &v, NULL, NULL), RM_OK);
    near("kl shift", v, 0.0, 1e-6);

    /* KL >= 0 on every row, and > 0 where the distributions differ. */
    for (int r = 0; r < B; r++) {
        assert_int_equal(rm_kl(a + r * K, b + r * K, 1, K, 1.0, &v, NULL, NULL), RM_OK);
        assert_true(v > 0.0);
    }
}

static void test_large_logits_are_stable(void **state) {
    (void)state;
    /* Exactly representable values, so z - 1000 is exact in float. CE and KL are
     * shift-invariant; naive exp(1000) would overflow to inf. */
    const float big[3] = {1000.0f, 998.5f, 1001.25f}, small[3] = {0.0f, -1.5f, 1.25f};
    const float neg[3] = {-1000.0f, -1001.5f, -998.75f}; /* small - 1000 */
    const int32_t y = 1;
    double v_big = 0.0, v_small = 0.0;
    assert_int_equal(rm_ce_ls(big, &y, 1, 3, 0.6, &v_big, NULL), RM_OK);
    assert_int_equal(rm_ce_ls(small, &y, 1, 3, 0.6, &v_small, NULL), RM_OK);
    near("ce shifted by 1000", v_big, v_small, 1e-12);
    assert_int_equal(rm_kl(big, neg, 1, 3, 1.0, &v_big, NULL, NULL), RM_OK);
    near("kl shifted by +-1000", v_big, 0.0, 1e-12);

    /* p = softmax(0, -800) = (1, e^-800): p_1 underflows to 0 in double.
     * KL(p||q), q = (1/2, 1/2): 1 * (0 - ln 1/2) + 0 = ln 2 (not 0 * -inf = NaN).
     * KL(q||p) = 1/2 (ln 1/2 - 0) + 1/2 (ln 1/2 + 800) = 400 - ln 2 = 399.30685281944. */
    const float a[2] = {0.0f, -800.0f}, b[2] = {0.0f, 0.0f};
    float da[2] = {0}, db[2] = {0};
    double v = 0.0;
    assert_int_equal(rm_kl(a, b, 1, 2, 1.0, &v, da, db), RM_OK);
    near("kl with underflowed p", v, LN2, 1e-12);
    assert_int_equal(rm_kl(b, a, 1, 2, 1.0, &v, da, db), RM_OK);
    near("kl against underflowed q", v, 400.0 - LN2, 1e-9);
    for (int i = 0; i < 2; i++) assert_true(isfinite(da[i]) && isfinite(db[i]));
}

/* ------------------------------------------------------------------ accumulate contract */

static void test_gradients_accumulate(void **state) {
    (void)state;
    enum { B = 3, K = 10, N = B * K };
    float zf[N], zi[N], zc[N];
    random_logits(zf, N, 3.0, 1);
    random_logits(zi, N, 3.0, 2);
    random_logits(zc, N, 3.0, 3);
    const int32_t y[B] = {2, 5, 8};
    rm_amr_config amr = {.alpha = 1.0, .beta = 0.3};
    rm_agr_config agr = {.gamma = 0.7, .dir = RM_AGR_BOTH};

    /* Each term alone, into zeroed buffers. */
    float ce_f[N] = {0}, rm_f[N] = {0}, rm_i[N] = {0}, rm_c[N] = {0};
    assert_int_equal(rm_ce_ls(zf, y, B, K, 0.6, NULL, ce_f), RM_OK);
    assert_int_equal(rm_regmix(zf, zi, zc, B, K, &amr, &agr, NULL, rm_f, rm_i, rm_c), RM_OK);

    /* Both into buffers that already hold something: every buffer gains the term's share. */
    float f[N], i_[N], c[N];
    for (int k = 0; k < N; k++) f[k] = i_[k] = c[k] = 0.25f * (float)(k % 7) - 0.5f;
    assert_int_equal(rm_ce_ls(zf, y, B, K, 0.6, NULL, f), RM_OK);
    assert_int_equal(rm_regmix(zf, zi, zc, B, K, &amr, &agr, NULL, f, i_, c), RM_OK);
    for (int k = 0; k < N; k++) {
        const double pre = 0.25 * (k % 7) - 0.5;
        near("accumulated dzf", f[k] - pre, (double)ce_f[k] + rm_f[k], 1e-6);
        near("accumulated dzi", i_[k] - pre, rm_i[k], 1e-6);
        near("accumulated dzc", c[k] - pre, rm_c[k], 1e-6);
    }
}

/* ----------------------------------------------------------------- errors and parsing */

static void expect_arg_error(rm_status s, const char *needle) {
    assert_int_equal(s, RM_ERR_ARG);
    if (!strstr(rm_error_message(), needle)) {
        printf("  message '%s' lacks '%s'\n", rm_error_message(), needle);
        fail();
    }
    rm_error_clear();
}

static void test_argument_errors(void **state) {
    (void)state;
    const float z[4] = {0, 1, 2, 3};
    float dz[4] = {0};
    double v = 0.0;
    rm_error_clear();
    expect_arg_error(rm_ce_ls(z, (const int32_t[]){0, 2}, 2, 2, 1.0, &v, dz), "y[1] = 2");
    expect_arg_error(rm_ce_ls(z, (const int32_t[]){-1}, 1, 2, 1.0, &v, dz), "y[0] = -1");
    expect_arg_error(rm_ce_ls(z, (const int32_t[]){0}, 1, 2, 1.5, &v, dz), "s = 1.5");
    expect_arg_error(rm_cw_margin(z, (const int32_t[]){4}, 1, 4, &v, dz), "y[0] = 4");
    expect_arg_error(rm_kl(z, z, 0, 4, 1.0, &v, NULL, NULL), "B=0");
    expect_arg_error(rm_kl(z, z, 4, 1, 1.0, &v, NULL, NULL), "K=1");
    expect_arg_error(rm_kl(z, z, 1, 4, NAN, &v, NULL, NULL), "w = nan");
    expect_arg_error(rm_mse_logits(z, NULL, 1, 4, 10.0, &v, NULL, NULL), "NULL");
    expect_arg_error(rm_amr(z, z, 1, 4, NULL, &v, NULL, NULL), "config");
    rm_agr_config bad = {.gamma = 1.0, .dir = (rm_agr_direction)7};
    expect_arg_error(rm_agr(z, z, 1, 4, &bad, &v, NULL, NULL), "direction 7");
    /* RegMix checks the AGR settings before AMR adds anything. */
    rm_amr_config amr = {.alpha = 1.0, .beta = 0.3};
    expect_arg_error(rm_regmix(z, z + 2, z, 1, 2, &amr, &bad, &v, dz, dz + 2, NULL),
                     "direction 7");
    expect_arg_error(rm_regmix(z, z + 2, NULL, 1, 2, &amr, &bad, &v, dz, dz + 2, NULL),
                     "NULL");
    /* A failed call leaves the gradient buffers untouched. */
    for (int i = 0; i < 4; i++) assert_true(dz[i] == 0.0f);
}

static void test_direction_names(void **state) {
    (void)state;
    const char *names[] = {"c||f", "f||c", "both"};
    const rm_agr_direction dirs[] = {RM_AGR_C_F, RM_AGR_F_C, RM_AGR_BOTH};
    for (int i = 0; i < 3; i++) {
        rm_agr_direction d = (rm_agr_direction)99;
        assert_int_equal(rm_agr_direction_parse(names[i], &d), RM_OK);
        assert_int_equal(d, dirs[i]);
        assert_string_equal(rm_agr_direction_name(dirs[i]), names[i]);
    }
    rm_agr_direction d;
    rm_error_clear();
    expect_arg_error(rm_agr_direction_parse("c|f", &d), "'c|f'");
    expect_arg_error(rm_agr_direction_parse(NULL, &d), "(null)");
    assert_string_equal(rm_agr_direction_name((rm_agr_direction)5), "unknown");
}

static void test_check_finite(void **state) {
    (void)state;
    rm_error_clear();
    assert_int_equal(rm_loss_check_finite("loss", 1.5), RM_OK);
    const double bad[3] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rm_loss_check_finite("loss at epoch 3 step 17", bad[i]),
                         RM_ERR_DIVERGED);
        assert_non_null(strstr(rm_error_message(), "loss at epoch 3 step 17"));
        rm_error_clear();
    }
    /* A NaN logit reaches the value, and the check turns it into "diverged". */
    const float z[3] = {0.0f, NAN, 1.0f};
    const int32_t y = 0;
    double v = 0.0;
    assert_int_equal(rm_ce_ls(z, &y, 1, 3, 0.6, &v, NULL), RM_OK);
    assert_int_equal(rm_loss_check_finite("ce", v), RM_ERR_DIVERGED);
    rm_error_clear();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ce_hand),
        cmocka_unit_test(test_kl_hand),
        cmocka_unit_test(test_amr_agr_regmix_hand),
        cmocka_unit_test(test_mse_hand),
        cmocka_unit_test(test_cw_hand),
        cmocka_unit_test(test_ce_matches_naive),
        cmocka_unit_test(test_kl_properties),
        cmocka_unit_test(test_large_logits_are_stable),
        cmocka_unit_test(test_gradients_accumulate),
        cmocka_unit_test(test_argument_errors),
        cmocka_unit_test(test_direction_names),
        cmocka_unit_test(test_check_finite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
