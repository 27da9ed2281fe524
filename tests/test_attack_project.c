/* The projection P and the prior-guided FGSM buffers (no network involved):
 * - rm_project on hand-computed cases (ball first, then box; x at 0, near 0, near 1, 1);
 * - the PGI buffers D and M follow their samples through shuffled batches, through an
 *   image change between epochs (augmentation) and through a reset: every value is
 *   compared with a shadow copy computed here from the formulas of sweeps/METHOD.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "regmix/attack.h"

/* ---- rm_project ---- */

static void test_project_hand_cases(void **state) {
    (void)state;
    const float eps = 0.1f;
    float x[9] = {0.0f, 0.05f, 0.5f, 0.95f, 1.0f, 0.5f, 0.3f, 0.0f, 0.97f};
    float d[9] = {-0.2f, -0.2f, 0.2f, 0.2f, 0.05f, -0.05f, 0.0f, 0.3f, -0.5f};
    /* by hand: clamp to [-0.1, 0.1], then to [-x, 1-x] */
    const float want[9] = {0.0f,  -0.05f, 0.1f,  1.0f - 0.95f, 0.0f,
                           -0.05f, 0.0f,  0.1f, -0.1f};
    rm_project(d, x, 9, eps);
    for (int i = 0; i < 9; i++) {
        printf("  x %.2f -> delta %+.6f (want %+.6f)\n", (double)x[i], (double)d[i], (double)want[i]);
        assert_true(fabsf(d[i] - want[i]) <= 1e-7f);
    }
    /* eps = 0 sends everything to 0 */
    float z[3] = {0.3f, -0.7f, 1e-9f}, zx[3] = {0.5f, 0.5f, 0.5f};
    rm_project(z, zx, 3, 0.0f);
    for (int i = 0; i < 3; i++) assert_true(z[i] == 0.0f);
}

/* The box must hold for the float image x + delta itself, at every x in [0,1]. */
static void test_project_box_in_float(void **state) {
    (void)state;
    enum { N = 20000 };
    static float x[N], d[N];
    rm_rng r;
    rm_rng_seed(&r, 11);
    for (int i = 0; i < N; i++) {
        x[i] = i % 4 == 0 ? rm_rng_uniform(&r) * 1e-3f
             : i % 4 == 1 ? 1.0f - rm_rng_uniform(&r) * 1e-3f
                          : rm_rng_uniform(&r);
        if (i % 97 == 0) x[i] = (i % 2) ? 1.0f : 0.0f;
        d[i] = rm_rng_uniform_range(&r, -2.0f, 2.0f);
    }
    const float eps = 8.0f / 255.0f;
    rm_project(d, x, N, eps);
    for (int i = 0; i < N; i++) {
        const float img = x[i] + d[i];
        assert_true(d[i] <= eps && d[i] >= -eps);
        assert_true(img >= 0.0f && img <= 1.0f);
    }
}

/* ---- PGI buffers: a shadow implementation of sweeps/METHOD.md ---- */

enum { NS = 6, DS = 4 };
static const float EPS = 0.3f, STEP = 0.2f, MU = 0.5f;

typedef struct {
    float D[NS][DS], M[NS][DS];
    int fresh[NS];
} shadow;

static float sgn(float v) { return v > 0 ? 1.0f : v < 0 ? -1.0f : 0.0f; }
static float proj1(float v, float x) {
    v = fminf(fmaxf(v, -EPS), EPS);
    return fminf(fmaxf(v, -x), 1.0f - x);
}

/* One PGI batch through the library and through the shadow; compares e, delta and the
 * whole of D and M (samples outside the batch must not move). */
static void run_batch(rm_pgi_state *s, shadow *sh, rm_rng *lib_rng, rm_rng *ref_rng,
                      const int64_t *ids, int B, const float (*ximg)[DS], const float (*gin)[DS]) {
    float x[NS * DS], g[NS * DS], e[NS * DS], delta[NS * DS];
    for (int b = 0; b < B; b++)
        for (int j = 0; j < DS; j++) {
            x[b * DS + j] = ximg[ids[b]][j];
            g[b * DS + j] = gin[ids[b]][j];
        }
    assert_int_equal(rm_pgi_begin(s, x, ids, B, lib_rng, e), RM_OK);
    /* step 1 by hand: fresh -> D = P(a sign(U(-eps, eps))), M = 0; e = P(D) */
    float e_want[NS][DS];
    for (int b = 0; b < B; b++) {
        int i = (int)ids[b];
        if (sh->fresh[i]) {
            for (int j = 0; j < DS; j++)
                sh->D[i][j] = proj1(STEP * sgn(rm_rng_uniform_range(ref_rng, -EPS, EPS)), ximg[i][j]);
            memset(sh->M[i], 0, sizeof sh->M[i]);
            sh->fresh[i] = 0;
        }
        for (int j = 0; j < DS; j++) {
            e_want[b][j] = proj1(sh->D[i][j], ximg[i][j]);
            assert_true(e[b * DS + j] == e_want[b][j]);
        }
    }
    assert_int_equal(rm_pgi_update(s, x, ids, B, e, g, delta), RM_OK);
    /* steps 3-4 by hand, with the L1 norm over the whole batch */
    double l1 = 0;
    for (int k = 0; k < B * DS; k++) l1 += fabs(g[k]);
    for (int b = 0; b < B; b++) {
        int i = (int)ids[b];
        for (int j = 0; j < DS; j++) {
            float gn = l1 > 0 ? (float)(g[b * DS + j] / l1) : 0.0f;
            sh->M[i][j] = gn + MU * sh->M[i][j];
            float d_want = proj1(e_want[b][j] + STEP * sgn(g[b * DS + j]), ximg[i][j]);
            sh->D[i][j] = proj1(e_want[b][j] + STEP * sgn(sh->M[i][j]), ximg[i][j]);
            assert_true(fabsf(delta[b * DS + j] - d_want) <= 1e-7f);
        }
    }
    for (int i = 0; i < NS; i++)
        for (int j = 0; j < DS; j++) {
            if (fabsf(s->D[i * DS + j] - sh->D[i][j]) > 1e-7f ||
                fabsf(s->M[i * DS + j] - sh->M[i][j]) > 1e-7f) {
                printf("  sample %d elem %d: D %g (want %g) M %g (want %g)\n", i, j,
                       (double)s->D[i * DS + j], (double)sh->D[i][j], (double)s->M[i * DS + j],
                       (double)sh->M[i][j]);
                fail();
            }
        }
}

static void test_pgi_follows_samples(void **state) {
    (void)state;
    /* images per sample for two "augmentations": values at 0, near 0, near 1 and 1 so that
     * the box cuts into the eps-ball; the second epoch moves some pixels */
    static const float x1[NS][DS] = {{0.0f, 0.5f, 1.0f, 0.1f},  {0.9f, 0.2f, 0.05f, 0.6f},
                                     {0.4f, 0.95f, 0.0f, 0.3f}, {1.0f, 1.0f, 0.7f, 0.25f},
                                     {0.15f, 0.8f, 0.5f, 0.02f}, {0.33f, 0.0f, 0.99f, 0.5f}};
    static const float x2[NS][DS] = {{0.5f, 0.0f, 0.1f, 1.0f},  {0.9f, 0.2f, 0.05f, 0.6f},
                                     {0.95f, 0.4f, 0.3f, 0.0f}, {0.25f, 0.7f, 1.0f, 1.0f},
                                     {0.02f, 0.5f, 0.8f, 0.15f}, {0.98f, 0.01f, 0.5f, 0.33f}};
    /* hand-made input gradients per sample, with zeros (sign 0) in them */
    static const float g1[NS][DS] = {{0.5f, -1.0f, 0.25f, 0.0f}, {-0.125f, 0.75f, -0.5f, 2.0f},
                                     {1.5f, 0.0f, -0.25f, -1.0f}, {-2.0f, 1.0f, 0.5f, -0.75f},
                                     {0.0f, -0.5f, 1.25f, 0.5f}, {0.25f, 0.25f, -1.5f, 1.0f}};
    static const float g2[NS][DS] = {{-0.5f, 0.5f, -0.25f, 1.0f}, {0.25f, -0.75f, 0.5f, -0.5f},
                                     {-1.5f, 1.0f, 0.25f, 0.5f},  {1.0f, -0.25f, -0.5f, 0.75f},
                                     {0.5f, 0.5f, -1.25f, -0.5f}, {-0.25f, 0.75f, 1.5f, -1.0f}};
    static const float gz[NS][DS] = {{0}};
    rm_pgi_state s;
    assert_int_equal(rm_pgi_init(&s, NS, DS, EPS, STEP, MU), RM_OK);
    shadow sh;
    memset(&sh, 0, sizeof sh);
    for (int i = 0; i < NS; i++) sh.fresh[i] = 1;
    rm_rng lib, ref;
    rm_rng_seed(&lib, 99);
    rm_rng_seed(&ref, 99);

    rm_pgi_reset(&s); /* epoch 0 */
    const int64_t e0a[3] = {3, 0, 5}, e0b[3] = {1, 4, 2};
    run_batch(&s, &sh, &lib, &ref, e0a, 3, x1, g1);
    run_batch(&s, &sh, &lib, &ref, e0b, 3, x1, g1);
    /* epoch 1: another permutation, other batch sizes, other images */
    const int64_t e1a[4] = {2, 5, 1, 0}, e1b[2] = {4, 3};
    run_batch(&s, &sh, &lib, &ref, e1a, 4, x2, g2);
    run_batch(&s, &sh, &lib, &ref, e1b, 2, x2, gz); /* zero gradient: M only decays */
    /* epoch 2: a third order */
    const int64_t e2[6] = {4, 1, 3, 5, 0, 2};
    run_batch(&s, &sh, &lib, &ref, e2, 6, x1, g2);
    /* reset epoch: fresh draws again, momentum cleared */
    rm_pgi_reset(&s);
    for (int i = 0; i < NS; i++) sh.fresh[i] = 1;
    const int64_t e3a[3] = {5, 2, 0}, e3b[3] = {3, 1, 4};
    run_batch(&s, &sh, &lib, &ref, e3a, 3, x2, g1);
    run_batch(&s, &sh, &lib, &ref, e3b, 3, x1, g2);
    /* both streams consumed the same number of draws */
    assert_true(rm_rng_u64(&lib) == rm_rng_u64(&ref));
    rm_pgi_free(&s);
}

/* One hand-computed update, numbers worked out on paper:
 * eps = step = 0.3, mu = 0.5, one sample of 2 pixels x = (0.5, 0.9), B = 1.
 * After begin, D is step*sign(u) = +-0.3 projected; set it by hand to (0.3, -0.3) with M = 0.1.
 * g = (1, -3): ||g||_1 = 4, M = (0.25 + 0.05, -0.75 + 0.05) = (0.3, -0.7);
 * delta = P(e + 0.3 sign g) = P(0.6, -0.6) = (0.3, -0.3);
 * D = P(e + 0.3 sign M) = P(0.6, -0.6) = (0.3, -0.3). Second update with g = (0, 0):
 * M = (0.15, -0.35), delta = P(e) = (0.3, -0.3). */
static void test_pgi_hand_numbers(void **state) {
    (void)state;
    rm_pgi_state s;
    assert_int_equal(rm_pgi_init(&s, 1, 2, 0.3f, 0.3f, 0.5f), RM_OK);
    rm_rng r;
    rm_rng_seed(&r, 1);
    const float x[2] = {0.5f, 0.9f};
    const int64_t id = 0;
    float e[2], delta[2];
    assert_int_equal(rm_pgi_begin(&s, x, &id, 1, &r, e), RM_OK);
    /* the fresh prior is +-step, cut to 1 - 0.9 = 0.1 above */
    for (int j = 0; j < 2; j++) {
        assert_true(fabsf(fabsf(s.D[j]) - 0.3f) < 1e-7f || fabsf(s.D[j] - (1.0f - x[j])) < 1e-7f);
        assert_true(s.M[j] == 0.0f);
    }
    s.D[0] = 0.3f;
    s.D[1] = -0.3f;
    s.M[0] = s.M[1] = 0.1f;
    assert_int_equal(rm_pgi_begin(&s, x, &id, 1, &r, e), RM_OK); /* not fresh: e = P(D) */
    assert_true(e[0] == 0.3f && e[1] == -0.3f);
    const float g[2] = {1.0f, -3.0f};
    assert_int_equal(rm_pgi_update(&s, x, &id, 1, e, g, delta), RM_OK);
    assert_true(fabsf(s.M[0] - 0.3f) < 1e-7f && fabsf(s.M[1] + 0.7f) < 1e-7f);
    assert_true(fabsf(delta[0] - 0.3f) < 1e-7f && fabsf(delta[1] + 0.3f) < 1e-7f);
    assert_true(fabsf(s.D[0] - 0.3f) < 1e-7f && fabsf(s.D[1] + 0.3f) < 1e-7f);
    const float g0[2] = {0.0f, 0.0f};
    assert_int_equal(rm_pgi_update(&s, x, &id, 1, e, g0, delta), RM_OK);
    assert_true(fabsf(s.M[0] - 0.15f) < 1e-7f && fabsf(s.M[1] + 0.35f) < 1e-7f);
    assert_true(fabsf(delta[0] - 0.3f) < 1e-7f && fabsf(delta[1] + 0.3f) < 1e-7f);
    rm_pgi_free(&s);
}

/* The two halves FGSM-PGK uses, by hand: d from sign(g) alone, then the momentum with
 * the weight w = 2 - r on the new gradient, and the prior from sign(M). */
static void test_pgk_halves_hand_numbers(void **state) {
    (void)state;
    rm_pgi_state s;
    assert_int_equal(rm_pgi_init(&s, 1, 2, 0.3f, 0.3f, 0.5f), RM_OK);
    const float x[2] = {0.5f, 0.9f}, e[2] = {0.3f, -0.3f}, g[2] = {1.0f, -3.0f};
    const int64_t id = 0;
    s.fresh[0] = 0;
    s.D[0] = 0.3f, s.D[1] = -0.3f;
    s.M[0] = -2.0f, s.M[1] = 0.1f;
    float delta[2];
    assert_int_equal(rm_pgi_final(&s, x, 1, e, g, delta), RM_OK);
    /* P(e + 0.3 sign(g)) = P(0.6, -0.6) = (0.3, -0.3); the state is untouched */
    assert_true(fabsf(delta[0] - 0.3f) < 1e-7f && fabsf(delta[1] + 0.3f) < 1e-7f);
    assert_true(s.M[0] == -2.0f && s.M[1] == 0.1f && s.D[0] == 0.3f);
    /* w = 1.5 (r = 0.5), ||g||_1 = 4: M = 1.5 (0.25, -0.75) + 0.5 (-2, 0.1) = (-0.625, -1.075);
     * D = P(e + 0.3 sign(M)) = (0, -0.3): the momentum, not g, turns the first element */
    assert_int_equal(rm_pgi_update_prior(&s, x, &id, 1, e, g, 1.5), RM_OK);
    assert_true(fabsf(s.M[0] + 0.625f) < 1e-7f && fabsf(s.M[1] + 1.075f) < 1e-7f);
    assert_true(fabsf(s.D[0]) < 1e-7f && fabsf(s.D[1] + 0.3f) < 1e-7f);
    /* w = 0 (r = 2, the final pass as good as the initial one could be): M = mu M */
    assert_int_equal(rm_pgi_update_prior(&s, x, &id, 1, e, g, 0.0), RM_OK);
    assert_true(fabsf(s.M[0] + 0.3125f) < 1e-7f && fabsf(s.M[1] + 0.5375f) < 1e-7f);
    assert_int_equal(rm_pgi_update_prior(&s, x, &id, 1, e, g, NAN), RM_ERR_ARG);
    rm_error_clear();
    assert_true(fabsf(s.M[0] + 0.3125f) < 1e-7f); /* a refused call changes nothing */
    rm_pgi_free(&s);
}

static void test_pgi_argument_errors(void **state) {
    (void)state;
    rm_pgi_state s;
    assert_int_equal(rm_pgi_init(&s, 0, 4, 0.1f, 0.1f, 0.3f), RM_ERR_ARG);
    assert_int_equal(rm_pgi_init(&s, 4, 0, 0.1f, 0.1f, 0.3f), RM_ERR_ARG);
    assert_int_equal(rm_pgi_init(&s, 4, 4, -0.1f, 0.1f, 0.3f), RM_ERR_ARG);
    assert_int_equal(rm_pgi_init(&s, 4, 4, 0.1f, NAN, 0.3f), RM_ERR_ARG);
    assert_int_equal(rm_pgi_init(&s, 4, 4, 0.1f, 0.1f, INFINITY), RM_ERR_ARG);
    rm_error_clear();
    assert_int_equal(rm_pgi_init(&s, 3, 2, 0.1f, 0.1f, 0.3f), RM_OK);
    rm_rng r;
    rm_rng_seed(&r, 3);
    float x[4] = {0.5f, 0.5f, 0.5f, 0.5f}, e[4], g[4] = {1, 1, 1, 1}, d[4];
    const int64_t bad[2] = {0, 3}, neg[2] = {-1, 0};
    assert_int_equal(rm_pgi_begin(&s, x, bad, 2, &r, e), RM_ERR_ARG);
    printf("  %s\n", rm_error_message());
    assert_non_null(strstr(rm_error_message(), "ids[1] = 3"));
    rm_error_clear();
    assert_int_equal(rm_pgi_update(&s, x, neg, 2, e, g, d), RM_ERR_ARG);
    rm_error_clear();
    /* a rejected call draws nothing and initialises nothing */
    for (int i = 0; i < 3; i++) assert_int_equal(s.fresh[i], 1);
    const int64_t ok[2] = {0, 1};
    assert_int_equal(rm_pgi_begin(&s, x, ok, 2, &r, e), RM_OK);
    g[2] = NAN;
    assert_int_equal(rm_pgi_update(&s, x, ok, 2, e, g, d), RM_ERR_DIVERGED);
    rm_error_clear();
    rm_pgi_free(&s);
    assert_null(s.D);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_project_hand_cases),  cmocka_unit_test(test_project_box_in_float),
        cmocka_unit_test(test_pgi_follows_samples), cmocka_unit_test(test_pgi_hand_numbers),
        cmocka_unit_test(test_pgk_halves_hand_numbers),
        cmocka_unit_test(test_pgi_argument_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
