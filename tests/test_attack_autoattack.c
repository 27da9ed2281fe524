/* AutoAttack on networks:
 * - every component's output (APGD-CE, APGD-T, FAB-T, Square, and the whole evaluation)
 *   lies in the eps-ball and keeps x + delta in [0,1], element by element, with pixels
 *   at 0 and at 1; every "fooled" verdict is a real misclassification of x + delta;
 * - the worst case over the components is the per-example AND: an example is robust
 *   under "aa" exactly when it survives each component run on its own (each example is
 *   evaluated alone, so that nothing but its own streams can differ);
 * - a linear classifier, whose worst L-inf perturbation inside the box is analytic
 *   (computed here independently, by bisection on the reachable margin), is evaluated
 *   to exactly its robust accuracy, example by example; each component alone can only
 *   report more robust examples than the truth, never fewer;
 * - same seed, same bits; argument errors.
 * The non-linear model is "tiny:conv" trained for a few SGD steps on a synthetic 5-class
 * task (tests/support/tiny_task.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "regmix/attack.h"
#include "tiny_task.h"

enum { K = 5, NB = 48 };

typedef struct {
    rm_net *net;
    rm_attacker *a;
    size_t d;
    tiny_task task;
    float *x;
    int32_t y[NB];
} fixture;

static int setup(void **state) {
    fixture *f = rm_alloc(sizeof *f);
    assert_int_equal(rm_net_create("tiny:conv", 3, 6, 6, K, &f->net), RM_OK);
    rm_net_init(f->net, 7);
    f->d = rm_net_input_size(f->net);
    assert_int_equal(rm_attacker_create(f->net, NB, &f->a), RM_OK);
    f->x = rm_alloc(NB * f->d * sizeof(float));
    tiny_task_init(&f->task, K, f->d, 99);
    double loss = tiny_task_train(&f->task, f->net, 200, 32, 0.05);
    tiny_task_batch(&f->task, NB, f->x, f->y);
    int correct;
    assert_int_equal(rm_count_correct(f->a, RM_MODE_EVAL, f->x, NULL, f->y, NB, &correct), RM_OK);
    printf("trained tiny:conv (%d classes): last training CE %.4f, clean accuracy %d/%d\n", K, loss,
           correct, NB);
    assert_true(correct >= NB / 2);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    rm_attacker_destroy(f->a);
    rm_net_destroy(f->net);
    tiny_task_free(&f->task);
    rm_free(f->x);
    rm_free(f);
    return 0;
}

static int count(const unsigned char *v, int n) {
    int c = 0;
    for (int i = 0; i < n; i++) c += v[i] != 0;
    return c;
}

static void check_inside(const char *what, const float *x, const float *delta, size_t n, float eps) {
    for (size_t i = 0; i < n; i++) {
        const float img = x[i] + delta[i];
        if (!(delta[i] >= -eps && delta[i] <= eps && img >= 0.0f && img <= 1.0f)) {
            printf("  %s: element %zu x %.9g delta %.9g (eps %.9g) leaves the ball or the box\n", what, i,
                   (double)x[i], (double)delta[i], (double)eps);
            fail();
        }
    }
}

/* robust[b] = 0 must mean x + delta[b] is misclassified (checked with a fresh count). */
static void check_verdicts(fixture *f, const char *what, const float *delta, const unsigned char *robust,
                           int B) {
    for (int b = 0; b < B; b++) {
        if (robust[b]) continue;
        int correct;
        assert_int_equal(rm_count_correct(f->a, RM_MODE_EVAL, f->x + b * f->d, delta + b * f->d, &f->y[b], 1,
                                          &correct), RM_OK);
        if (correct) {
            printf("  %s: example %d reported fooled but x + delta is classified correctly\n", what, b);
            fail();
        }
    }
}

/* The clean class ranked 2nd (the target APGD-T and FAB-T try first). */
static void second_class(fixture *f, int32_t *t) {
    float z[NB * K];
    rm_tape *tape;
    assert_int_equal(rm_tape_create(f->net, &tape), RM_OK);
    assert_int_equal(rm_net_forward(f->net, tape, RM_MODE_EVAL, f->x, NB, z), RM_OK);
    rm_tape_destroy(tape);
    for (int b = 0; b < NB; b++) {
        int best = -1;
        for (int k = 0; k < K; k++)
            if (k != f->y[b] && (best < 0 || z[b * K + k] > z[b * K + best])) best = k;
        t[b] = best;
    }
}

static void test_outputs_inside_ball_and_box(void **state) {
    fixture *f = *state;
    const size_t n = NB * f->d;
    float *delta = rm_alloc(n * sizeof(float));
    unsigned char rob[NB];
    int32_t t[NB];
    second_class(f, t);
    rm_rng streams[NB], r;
    rm_aa_params p;
    rm_aa_params_default(&p);
    p.square_queries = 300;
    static const float budgets[2] = {8.0f / 255.0f, 0.25f};
    for (int k = 0; k < 2; k++) {
        const float eps = budgets[k];
        for (int b = 0; b < NB; b++) rm_rng_seed(&streams[b], 100 + (uint64_t)b);
        assert_int_equal(rm_apgd(f->a, RM_MODE_EVAL, f->x, f->y, NULL, NB, eps, 30, streams, delta, rob, NULL),
                         RM_OK);
        check_inside("APGD-CE", f->x, delta, n, eps);
        check_verdicts(f, "APGD-CE", delta, rob, NB);
        assert_int_equal(rm_apgd(f->a, RM_MODE_EVAL, f->x, f->y, t, NB, eps, 30, streams, delta, rob, NULL), RM_OK);
        check_inside("APGD-T", f->x, delta, n, eps);
        check_verdicts(f, "APGD-T", delta, rob, NB);
        assert_int_equal(rm_fab_t(f->a, RM_MODE_EVAL, f->x, f->y, t, NB, eps, 30, delta, rob), RM_OK);
        check_inside("FAB-T", f->x, delta, n, eps);
        check_verdicts(f, "FAB-T", delta, rob, NB);
        assert_int_equal(rm_square(f->a, RM_MODE_EVAL, f->x, f->y, NB, eps, 300, 0.8f, streams, delta, rob), RM_OK);
        check_inside("Square", f->x, delta, n, eps);
        check_verdicts(f, "Square", delta, rob, NB);
        rm_rng_seed(&r, 5);
        rm_aa_stats st;
        assert_int_equal(rm_autoattack(f->a, RM_MODE_EVAL, f->x, f->y, NB, eps, RM_AA_STANDARD, &p, &r, delta,
                                       rob, &st), RM_OK);
        check_inside("AutoAttack", f->x, delta, n, eps);
        check_verdicts(f, "AutoAttack", delta, rob, NB);
        printf("  eps %.4f: clean %d, after APGD-CE %d, APGD-T %d, FAB-T %d, Square %d\n", (double)eps,
               st.clean_correct, st.robust_after[0], st.robust_after[1], st.robust_after[2], st.robust_after[3]);
        assert_int_equal(st.n_parts, 4);
        assert_int_equal(st.robust_after[3], count(rob, NB));
        for (int i = 0; i < 4; i++) assert_true(st.robust_after[i] <= (i ? st.robust_after[i - 1] : st.clean_correct));
    }
    rm_free(delta);
}

/* Each example alone (B = 1), with the same seed: "aa" vs each component on its own.
 * The components of "aa" derive their streams from the example's seed and their own
 * name, so each sees exactly what it sees alone; the worst case must then be the AND. */
static void test_worst_case_is_per_example_and(void **state) {
    fixture *f = *state;
    rm_aa_params p;
    rm_aa_params_default(&p);
    p.apgd_iters = 1; /* weak components disagree more: a sharper test of the AND */
    p.fab_iters = 1;
    p.n_targets = 2;
    p.square_queries = 60;
    const float eps = 0.09f;
    static const unsigned parts[4] = {RM_AA_APGD_CE, RM_AA_APGD_T, RM_AA_FAB_T, RM_AA_SQUARE};
    float *delta = rm_alloc(f->d * sizeof(float));
    int robust_aa = 0, fooled_by[4] = {0}, only_by[4] = {0}, robust_fast = 0;
    for (int b = 0; b < NB; b++) {
        const float *x = f->x + b * f->d;
        unsigned char all, fast, alone[4];
        rm_rng r;
        rm_rng_seed(&r, 1000 + (uint64_t)b);
        assert_int_equal(rm_autoattack(f->a, RM_MODE_EVAL, x, &f->y[b], 1, eps, RM_AA_STANDARD, &p, &r, delta,
                                       &all, NULL), RM_OK);
        rm_rng_seed(&r, 1000 + (uint64_t)b);
        assert_int_equal(rm_autoattack(f->a, RM_MODE_EVAL, x, &f->y[b], 1, eps, RM_AA_FAST, &p, &r, delta, &fast,
                                       NULL), RM_OK);
        int and_all = 1, n_fooling = 0;
        for (int i = 0; i < 4; i++) {
            rm_rng_seed(&r, 1000 + (uint64_t)b);
            assert_int_equal(rm_autoattack(f->a, RM_MODE_EVAL, x, &f->y[b], 1, eps, parts[i], &p, &r, delta,
                                           &alone[i], NULL), RM_OK);
            and_all &= alone[i];
            fooled_by[i] += !alone[i];
            n_fooling += !alone[i];
        }
        for (int i = 0; i < 4; i++) only_by[i] += !alone[i] && n_fooling == 1;
        if (all != and_all || fast != (alone[0] && alone[1])) {
            printf("  example %d: aa %d, aa-fast %d, components alone %d %d %d %d\n", b, all, fast, alone[0],
                   alone[1], alone[2], alone[3]);
            fail();
        }
        robust_aa += all;
        robust_fast += fast;
    }
    printf("  %d examples: robust under aa %d, aa-fast %d; fooled by APGD-CE %d, APGD-T %d, FAB-T %d, Square %d; "
           "by that one alone %d %d %d %d\n", NB, robust_aa, robust_fast, fooled_by[0], fooled_by[1], fooled_by[2],
           fooled_by[3], only_by[0], only_by[1], only_by[2], only_by[3]);
    /* the comparison decided something: some examples fall to one component only, and
     * FAB-T and Square take some that APGD-CE and APGD-T leave (aa below aa-fast) */
    assert_true(robust_aa > 0 && robust_aa < robust_fast);
    assert_true(only_by[0] + only_by[1] + only_by[2] + only_by[3] >= 2);
    rm_free(delta);
}

/* ---- a linear classifier: z = A x + c with tiny:linear (two linear layers, no
 * non-linearity), A = W_head W_fc, c = W_head b_fc + b_head, in double. ---- */

enum { LK = 10, LB = 64 };

/* Smallest max |d_i| that brings the margin m = (a_y - a_j).x + (c_y - c_j) to 0 inside
 * the box: the margin falls by sum_i |w_i| min(lam, room_i), room_i = x_i where w_i > 0
 * (pixel moves down), 1 - x_i where w_i < 0. Bisection; +inf when unreachable. */
static double needed(const double *w, const float *x, size_t d, double m) {
    double full = 0;
    for (size_t i = 0; i < d; i++) full += fabs(w[i]) * (w[i] > 0 ? x[i] : 1.0 - x[i]);
    if (m <= 0) return 0;
    if (full < m) return INFINITY;
    double lo = 0, hi = 1;
    for (int k = 0; k < 80; k++) {
        const double mid = 0.5 * (lo + hi);
        double g = 0;
        for (size_t i = 0; i < d; i++) {
            const double room = w[i] > 0 ? x[i] : 1.0 - x[i];
            g += fabs(w[i]) * (mid < room ? mid : room);
        }
        if (g >= m) hi = mid;
        else lo = mid;
    }
    return hi;
}

static void test_linear_model_exact(void **state) {
    (void)state;
    rm_net *net;
    assert_int_equal(rm_net_create("tiny:linear", 3, 6, 6, LK, &net), RM_OK);
    rm_net_init(net, 21);
    const size_t d = rm_net_input_size(net);
    rm_param *fc_w = rm_net_find_param(net, "fc.weight"), *fc_b = rm_net_find_param(net, "fc.bias");
    rm_param *hd_w = rm_net_find_param(net, "head.weight"), *hd_b = rm_net_find_param(net, "head.bias");
    assert_true(fc_w && fc_b && hd_w && hd_b);
    const int H = (int)fc_w->dims[0];
    double *A = rm_alloc(LK * d * sizeof(double)), c[LK];
    for (int k = 0; k < LK; k++) {
        c[k] = hd_b->data[k];
        for (int h = 0; h < H; h++) c[k] += (double)hd_w->data[k * H + h] * fc_b->data[h];
        for (size_t i = 0; i < d; i++) {
            double s = 0;
            for (int h = 0; h < H; h++) s += (double)hd_w->data[k * H + h] * fc_w->data[h * d + i];
            A[k * d + i] = s;
        }
    }
    /* eps from the data: the median of the smallest needed perturbation over a pool of
     * candidates; then only examples whose need is clearly below or above it (20 % either
     * side), so that float rounding in the network cannot decide a verdict. Every 8th
     * candidate gets the second-best class as its label: misclassified before any attack. */
    enum { POOL = 4 * LB };
    rm_rng r;
    rm_rng_seed(&r, 8);
    float *pool = rm_alloc(POOL * d * sizeof(float)), *x = rm_alloc(LB * d * sizeof(float));
    float *delta = rm_alloc(LB * d * sizeof(float));
    int32_t pool_y[POOL], y[LB];
    double pool_need[POOL], sorted[POOL], need[LB], *w = rm_alloc(d * sizeof(double));
    for (int q = 0; q < POOL; q++) {
        float *xb = pool + q * d;
        double z[LK];
        int top, second;
        do { /* a clear clean decision (the top two logits apart) */
            for (size_t i = 0; i < d; i++) {
                const float u = rm_rng_uniform(&r);
                xb[i] = u < 0.2f ? 0.0f : u < 0.3f ? 1.0f : rm_rng_uniform(&r);
            }
            top = 0;
            second = -1;
            for (int k = 0; k < LK; k++) {
                z[k] = c[k];
                for (size_t i = 0; i < d; i++) z[k] += A[k * d + i] * xb[i];
                if (z[k] > z[top]) top = k;
            }
            for (int k = 0; k < LK; k++)
                if (k != top && (second < 0 || z[k] > z[second])) second = k;
        } while (z[top] - z[second] < 1e-3);
        pool_y[q] = q % 8 == 7 ? second : top;
        double m = INFINITY;
        for (int j = 0; j < LK; j++) {
            if (j == pool_y[q]) continue;
            for (size_t i = 0; i < d; i++) w[i] = A[pool_y[q] * d + i] - A[j * d + i];
            const double v = needed(w, xb, d, z[pool_y[q]] - z[j]);
            if (v < m) m = v;
        }
        pool_need[q] = sorted[q] = m;
    }
    for (int i = 1; i < POOL; i++) /* insertion sort: the median need */
        for (int j = i; j > 0 && sorted[j] < sorted[j - 1]; j--) {
            double tmp = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = tmp;
        }
    const float eps = (float)sorted[POOL / 2 + POOL / 16]; /* the clean-misclassified sit at 0 */
    int n = 0, robust_truth = 0;
    unsigned char truth[LB];
    for (int q = 0; q < POOL && n < LB; q++) {
        if (pool_need[q] > 0 && fabs(pool_need[q] - eps) < 0.2 * eps) continue; /* too close to call */
        memcpy(x + n * d, pool + q * d, d * sizeof(float));
        y[n] = pool_y[q];
        need[n] = pool_need[q];
        truth[n] = need[n] > eps;
        robust_truth += truth[n];
        n++;
    }
    assert_int_equal(n, LB);
    int clean_wrong = 0;
    for (int b = 0; b < LB; b++) clean_wrong += need[b] == 0;
    printf("  linear model, %d classes, eps %.4f: %d of %d examples robust (analytic), %d misclassified clean\n",
           LK, (double)eps, robust_truth, LB, clean_wrong);
    assert_true(robust_truth > LB / 5 && robust_truth < LB - LB / 5 && clean_wrong > 0);
    rm_attacker *a;
    assert_int_equal(rm_attacker_create(net, LB, &a), RM_OK);
    rm_aa_params p;
    rm_aa_params_default(&p);
    unsigned char rob[LB];
    rm_aa_stats st;
    rm_rng_seed(&r, 3);
    assert_int_equal(rm_autoattack(a, RM_MODE_EVAL, x, y, LB, eps, RM_AA_STANDARD, &p, &r, delta, rob, &st), RM_OK);
    printf("  aa: clean %d, after APGD-CE %d, APGD-T %d, FAB-T %d, Square %d (truth %d)\n", st.clean_correct,
           st.robust_after[0], st.robust_after[1], st.robust_after[2], st.robust_after[3], robust_truth);
    for (int b = 0; b < LB; b++)
        if (rob[b] != truth[b]) {
            printf("  example %d: aa says %s, analytic %s (needs max|d| = %.5f, eps %.3f)\n", b,
                   rob[b] ? "robust" : "fooled", truth[b] ? "robust" : "not robust", need[b], (double)eps);
            fail();
        }
    assert_int_equal(st.clean_correct, LB - clean_wrong);
    /* each component alone: sound (never below the truth); FAB-T is exact on a linear model */
    static const unsigned parts[4] = {RM_AA_APGD_CE, RM_AA_APGD_T, RM_AA_FAB_T, RM_AA_SQUARE};
    for (int i = 0; i < 4; i++) {
        rm_rng_seed(&r, 3);
        assert_int_equal(rm_autoattack(a, RM_MODE_EVAL, x, y, LB, eps, parts[i], &p, &r, delta, rob, NULL), RM_OK);
        check_inside(rm_aa_part_name(parts[i]), x, delta, LB * d, eps);
        printf("  %-8s alone: %d robust\n", rm_aa_part_name(parts[i]), count(rob, LB));
        for (int b = 0; b < LB; b++) assert_true(rob[b] >= truth[b]);
        if (parts[i] == RM_AA_FAB_T) assert_int_equal(count(rob, LB), robust_truth);
    }
    rm_attacker_destroy(a);
    rm_net_destroy(net);
    rm_free(A);
    rm_free(w);
    rm_free(pool);
    rm_free(x);
    rm_free(delta);
}

static void test_same_seed_same_bits(void **state) {
    fixture *f = *state;
    rm_aa_params p;
    rm_aa_params_default(&p);
    p.apgd_iters = 10;
    p.fab_iters = 10;
    p.square_queries = 100;
    float *d1 = rm_alloc(NB * f->d * sizeof(float)), *d2 = rm_alloc(NB * f->d * sizeof(float));
    unsigned char r1[NB], r2[NB];
    rm_rng r;
    rm_rng_seed(&r, 11);
    assert_int_equal(rm_autoattack(f->a, RM_MODE_EVAL, f->x, f->y, NB, 0.1f, RM_AA_STANDARD, &p, &r, d1, r1, NULL),
                     RM_OK);
    rm_rng_seed(&r, 11);
    assert_int_equal(rm_autoattack(f->a, RM_MODE_EVAL, f->x, f->y, NB, 0.1f, RM_AA_STANDARD, &p, &r, d2, r2, NULL),
                     RM_OK);
    assert_memory_equal(d1, d2, NB * f->d * sizeof(float));
    assert_memory_equal(r1, r2, NB);
    rm_rng_seed(&r, 12); /* another seed: other random starts */
    assert_int_equal(rm_autoattack(f->a, RM_MODE_EVAL, f->x, f->y, NB, 0.1f, RM_AA_STANDARD, &p, &r, d2, r2, NULL),
                     RM_OK);
    assert_true(memcmp(d1, d2, NB * f->d * sizeof(float)) != 0);
    rm_free(d1);
    rm_free(d2);
}

static void test_argument_errors(void **state) {
    fixture *f = *state;
    rm_aa_params p;
    rm_aa_params_default(&p);
    float *delta = rm_alloc(NB * f->d * sizeof(float));
    unsigned char rob[NB];
    rm_rng r;
    rm_rng_seed(&r, 1);
    assert_int_equal(rm_autoattack(f->a, RM_MODE_EVAL, f->x, f->y, NB, 0.1f, 0, &p, &r, delta, rob, NULL), RM_ERR_ARG);
    assert_int_equal(rm_autoattack(f->a, RM_MODE_EVAL, f->x, f->y, NB, 0.1f, 16, &p, &r, delta, rob, NULL), RM_ERR_ARG);
    assert_int_equal(rm_autoattack(f->a, RM_MODE_EVAL, f->x, f->y, NB + 1, 0.1f, 1, &p, &r, delta, rob, NULL),
                     RM_ERR_ARG);
    int32_t t[NB];
    memcpy(t, f->y, sizeof t); /* target = label */
    rm_rng s[NB];
    assert_int_equal(rm_apgd(f->a, RM_MODE_EVAL, f->x, f->y, t, NB, 0.1f, 5, s, delta, rob, NULL), RM_ERR_ARG);
    assert_int_equal(rm_fab_t(f->a, RM_MODE_EVAL, f->x, f->y, t, NB, 0.1f, 5, delta, rob), RM_ERR_ARG);
    assert_int_equal(rm_square(f->a, RM_MODE_EVAL, f->x, f->y, NB, 0.1f, 5, 0.0f, s, delta, rob), RM_ERR_ARG);
    /* APGD-T needs 4 classes */
    rm_net *net3;
    rm_attacker *a3;
    assert_int_equal(rm_net_create("tiny:conv", 3, 6, 6, 3, &net3), RM_OK);
    assert_int_equal(rm_attacker_create(net3, 2, &a3), RM_OK);
    int32_t y3[2] = {0, 1};
    assert_int_equal(rm_autoattack(a3, RM_MODE_EVAL, f->x, y3, 2, 0.1f, RM_AA_APGD_T, &p, &r, delta, rob, NULL),
                     RM_ERR_ARG);
    rm_attacker_destroy(a3);
    rm_net_destroy(net3);
    rm_free(delta);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outputs_inside_ball_and_box),
        cmocka_unit_test(test_worst_case_is_per_example_and),
        cmocka_unit_test(test_linear_model_exact),
        cmocka_unit_test(test_same_seed_same_bits),
        cmocka_unit_test(test_argument_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
