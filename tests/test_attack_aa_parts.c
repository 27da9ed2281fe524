/* The pieces of AutoAttack that need no network, against hand-worked values:
 * - APGD's step-size schedule (rm_apgd_sched) on loss sequences worked out by hand:
 *   where the checkpoints fall, condition (1) (at most 75 % rising iterations, boundary
 *   included), condition (2) (no new best since the last checkpoint, not halved there);
 * - Square's schedule of the square size p (rm_square_p);
 * - FAB's L-inf projection (rm_fab_project_linf): feasible (w.d = r, inside the box),
 *   minimal (no smaller max |d_i| can reach r: the bound computed here by bisection),
 *   the box corner when r is out of reach, zero weights never moved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "regmix/attack.h"

/* Runs the schedule over losses[0..n) (loss0 = the start's) and returns the step size
 * after each iteration in steps[0..n). */
static void run_sched(int iters, double loss0, const double *losses, int n, float *steps,
                      unsigned *events) {
    rm_apgd_sched s;
    rm_apgd_sched_init(&s, iters, 2.0f, loss0);
    for (int i = 0; i < n; i++) {
        unsigned ev = rm_apgd_sched_update(&s, losses[i]);
        if (events) events[i] = ev;
        steps[i] = s.step;
    }
}

/* Expected step after 1-based iteration i, given the 1-based iterations at which it
 * halves (hand-worked lists below), starting from 2. */
static float expected_step(int i, const int *halvings, int nh) {
    float s = 2.0f;
    for (int k = 0; k < nh; k++)
        if (halvings[k] <= i) s *= 0.5f;
    return s;
}

static void assert_steps(const char *what, const float *steps, int n, const int *halvings, int nh) {
    for (int i = 1; i <= n; i++) {
        const float want = expected_step(i, halvings, nh);
        if (steps[i - 1] != want) {
            printf("  %s: after iteration %d the step is %g, expected %g\n", what, i,
                   (double)steps[i - 1], (double)want);
            fail();
        }
    }
    printf("  %s: %d halvings as worked out by hand\n", what, nh);
}

/* A flat loss never rises: condition (1) holds at every checkpoint. N = 100: periods
 * 22, 19, 16, 13, 10, 7, 6, 6 (22 - 3k down to 6), checkpoints after iterations
 * 22, 41, 57, 70, 80, 87, 93, 99; the step halves at each: 2 -> 2/256. */
static void test_sched_flat_loss(void **state) {
    (void)state;
    double loss[100];
    float steps[100];
    for (int i = 0; i < 100; i++) loss[i] = 1.0;
    run_sched(100, 1.0, loss, 100, steps, NULL);
    static const int h[] = {22, 41, 57, 70, 80, 87, 93, 99};
    assert_steps("flat loss, N=100", steps, 100, h, 8);
    assert_true(steps[99] == 2.0f / 256.0f);
}

/* N = 10: first period max(int(2.2), 1) = 2, then 2 - 1 = 1 and never below
 * max(int(0.6), 1) = 1: checkpoints after 2, 3, 4, ..., 10. */
static void test_sched_small_n(void **state) {
    (void)state;
    double loss[10];
    float steps[10];
    for (int i = 0; i < 10; i++) loss[i] = -3.0;
    run_sched(10, -3.0, loss, 10, steps, NULL);
    static const int h[] = {2, 3, 4, 5, 6, 7, 8, 9, 10};
    assert_steps("flat loss, N=10", steps, 10, h, 9);
}

/* A loss that rises at every iteration: 22/22, 19/19, ... rising, best always new:
 * never halved. */
static void test_sched_rising_loss(void **state) {
    (void)state;
    double loss[100];
    float steps[100];
    unsigned ev[100];
    for (int i = 0; i < 100; i++) loss[i] = 0.01 * (i + 1);
    run_sched(100, 0.0, loss, 100, steps, ev);
    assert_steps("rising loss", steps, 100, NULL, 0);
    for (int i = 0; i < 100; i++) assert_int_equal(ev[i], RM_APGD_IMPROVED);
}

/* Hand-worked mixed sequence (iterations 1-based, start loss 0):
 *   1..22   rises 17 times: up by 1 at 1..17 (loss 17), then 18..22 flat at 17.
 *           Checkpoint 22: 17 rises > 0.75 * 22 = 16.5 -> (1) fails; (2) cannot hold at
 *           the first checkpoint -> NOT halved. Best 17.
 *   23..41  (period 19): drop to 5 at 23, then +0.5 at each of 24..41 (18 rises, top
 *           5 + 9 = 14 < 17). 18 > 14.25 -> (1) fails; (2): not halved at 22 and the
 *           best (17) did not rise since -> HALVED at 41.
 *   42..57  (period 16): exactly 12 rises: up by 1 at 42..53 from 14 (42: 15 ...
 *           53: 26, new bests), flat at 54..57. 12 <= 0.75 * 16 = 12 -> (1) holds ->
 *           HALVED at 57 (the boundary counts as oscillating).
 *   58..70  (period 13): rises at each of 58..70 (+1 from 26: 27..39): 13 > 9.75, and
 *           (2) does not apply (halved at 57) -> not halved.
 *   71..80  (period 10): 8 rises then 2 falls, new bests: 71..78 up by 1 (40..47), 79
 *           and 80 at 46 and 45. 8 > 7.5 -> (1) fails; (2) fails (best rose: 47 > 39)
 *           -> not halved.
 *   81..87  (period 7): flat at 45 -> 0 rises -> HALVED at 87.
 *   88..93  (period 6): 5 rises to a new best (46..50), then 50 at 93: 5 > 4.5,
 *           best rose -> not halved.
 *   94..99  (period 6): 4 rises (51..54 at 94..97), 54 at 98 and 99: 4 <= 4.5 ->
 *           HALVED at 99. Iteration 100: no checkpoint. */
static void test_sched_hand_worked(void **state) {
    (void)state;
    double loss[100];
    int i = 0;
    double v = 0;
    for (int k = 1; k <= 22; k++) loss[i++] = v = k <= 17 ? v + 1 : v;
    loss[i++] = v = 5;
    for (int k = 24; k <= 41; k++) loss[i++] = v = v + 0.5;
    for (int k = 42; k <= 57; k++) loss[i++] = v = k <= 53 ? v + 1 : v;
    for (int k = 58; k <= 70; k++) loss[i++] = v = v + 1;
    for (int k = 71; k <= 80; k++) loss[i++] = v = k <= 78 ? v + 1 : v - 1;
    for (int k = 81; k <= 87; k++) loss[i++] = v;
    for (int k = 88; k <= 93; k++) loss[i++] = v = k <= 92 ? v + 1 : v;
    for (int k = 94; k <= 100; k++) loss[i++] = v = k <= 97 ? v + 1 : v;
    assert_int_equal(i, 100);
    assert_true(loss[40] == 14.0 && loss[52] == 26.0 && loss[69] == 39.0 && loss[77] == 47.0);
    float steps[100];
    unsigned ev[100];
    run_sched(100, 0.0, loss, 100, steps, ev);
    static const int h[] = {41, 57, 87, 99};
    assert_steps("hand-worked sequence", steps, 100, h, 4);
    assert_true(ev[40] == RM_APGD_HALVED && ev[56] == RM_APGD_HALVED); /* no new best there */
    assert_true(ev[21] == 0 && ev[16] == RM_APGD_IMPROVED && ev[22] == 0);
}

/* p_init, halved after queries 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000. */
static void test_square_p(void **state) {
    (void)state;
    const float p = 0.8f;
    static const struct { int i; float want; } cases[] = {
        {0, 0.8f},           {10, 0.8f},          {11, 0.4f},          {50, 0.4f},
        {51, 0.2f},          {200, 0.2f},         {201, 0.1f},         {500, 0.1f},
        {501, 0.05f},        {1001, 0.025f},      {2001, 0.0125f},     {4000, 0.0125f},
        {4001, 0.00625f},    {6001, 0.003125f},   {8000, 0.003125f},   {8001, 0.0015625f},
        {20000, 0.0015625f},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const float got = rm_square_p(p, cases[k].i);
        if (fabsf(got - cases[k].want) > 1e-7f) {
            printf("  p at query %d: %g, expected %g\n", cases[k].i, (double)got, (double)cases[k].want);
            fail();
        }
    }
}

/* ---- FAB's projection ---- */

enum { PN = 784 }; /* the largest size tried: a Fashion-MNIST image */

/* Largest |w.d| reachable with max |d_i| <= lam inside the box, towards the sign of r. */
static double reach(const float *u, const float *w, int n, double r, double lam) {
    double g = 0;
    for (int i = 0; i < n; i++) {
        const int up = (w[i] > 0) == (r > 0); /* moving up helps */
        double room = up ? 1.0 - u[i] : u[i];
        g += fabs((double)w[i]) * (lam < room ? lam : room);
    }
    return g;
}

static void test_fab_projection(void **state) {
    (void)state;
    rm_rng rng;
    rm_rng_seed(&rng, 404);
    int reachable = 0, corner = 0;
    static float u[PN], w[PN], d[PN];
    for (int t = 0; t < 300; t++) {
        const int n = t % 3 == 0 ? PN : 24; /* small, and large enough for deep partitions */
        for (int i = 0; i < n; i++) {
            const float c = rm_rng_uniform(&rng);
            u[i] = c < 0.15f ? 0.0f : c < 0.3f ? 1.0f : rm_rng_uniform(&rng); /* pixels on the box */
            w[i] = rm_rng_uniform(&rng) < 0.2f ? 0.0f : rm_rng_normal(&rng);
        }
        const double sign = rm_rng_uniform(&rng) < 0.5f ? -1.0 : 1.0;
        const double full = reach(u, w, n, sign, 2.0); /* every coordinate at the box */
        const double r = sign * full * (0.05 + 1.2 * rm_rng_uniform(&rng));
        double lam;
        assert_int_equal(rm_fab_project_linf(u, w, n, r, d, &lam), RM_OK);
        double wd = 0, m = 0;
        for (int i = 0; i < n; i++) {
            wd += (double)w[i] * d[i];
            if (fabsf(d[i]) > m) m = fabsf(d[i]);
            const float img = u[i] + d[i];
            assert_true(img >= -1e-7f && img <= 1.0f + 1e-7f);
            if (w[i] == 0.0f) assert_true(d[i] == 0.0f);
        }
        assert_true(fabs(m - lam) <= 1e-6);
        if (fabs(r) < full) { /* reachable: exact, and no smaller lambda reaches r */
            reachable++;
            assert_true(fabs(wd - r) <= 1e-5 * (1.0 + fabs(r)));
            double lo = 0, hi = 1; /* bisection for the smallest lambda with reach >= |r| */
            for (int k = 0; k < 60; k++) {
                const double mid = 0.5 * (lo + hi);
                if (reach(u, w, n, r, mid) >= fabs(r)) hi = mid;
                else lo = mid;
            }
            if (fabs(lam - hi) > 1e-5) {
                printf("  projection %d: lambda %.9g, bisection %.9g\n", t, lam, hi);
                fail();
            }
        } else { /* out of reach: the corner, every moving coordinate at its box bound */
            corner++;
            for (int i = 0; i < n; i++) {
                if (w[i] == 0.0f) continue;
                const int up = (w[i] > 0) == (r > 0);
                assert_true(fabsf(u[i] + d[i] - (up ? 1.0f : 0.0f)) <= 1e-6f);
            }
        }
    }
    printf("  %d reachable projections minimal and exact, %d out of reach at the corner\n",
           reachable, corner);
    assert_true(reachable > 100 && corner > 20);
    u[0] = u[1] = 0.5f;
    w[0] = w[1] = 1.0f;
    double lam;
    assert_int_equal(rm_fab_project_linf(u, w, 2, 0.0, d, &lam), RM_OK);
    assert_true(lam == 0.0 && d[0] == 0.0f && d[1] == 0.0f);
    assert_int_equal(rm_fab_project_linf(u, w, 2, 0.4, d, &lam), RM_OK); /* by hand: 0.2 each */
    assert_true(fabs(lam - 0.2) < 1e-7 && fabsf(d[0] - 0.2f) < 1e-7f && fabsf(d[1] - 0.2f) < 1e-7f);
    assert_int_equal(rm_fab_project_linf(u, w, 2, NAN, d, &lam), RM_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sched_flat_loss),   cmocka_unit_test(test_sched_small_n),
        cmocka_unit_test(test_sched_rising_loss), cmocka_unit_test(test_sched_hand_worked),
        cmocka_unit_test(test_square_p),          cmocka_unit_test(test_fab_projection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
