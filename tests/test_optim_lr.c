/* Learning-rate schedules on hand-computed cases: defaults and names, the exact
 * multistep switch iterations, the triangular cyclic schedule, cosine, clamping and
 * validation. (Comparison with PyTorch over whole runs: test_optim_pytorch.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "regmix/optim.h"

#define TOL 1e-12

static void assert_lr(const rm_lr_schedule *s, long it, long total, double want) {
    double got = rm_lr_at(s, it, total);
    if (!(fabs(got - want) <= TOL))
        fail_msg("%s lr at it %ld of %ld: got %.15g, hand-computed %.15g",
                 rm_lr_kind_name(s->kind), it, total, got, want);
}

static void test_names_and_defaults(void **state) {
    (void)state;
    const char *names[] = {"constant", "multistep", "cyclic", "cosine"};
    const rm_lr_kind kinds[] = {RM_LR_CONSTANT, RM_LR_MULTISTEP, RM_LR_CYCLIC, RM_LR_COSINE};
    for (int i = 0; i < 4; i++) {
        rm_lr_schedule s;
        assert_int_equal(rm_lr_schedule_init(&s, names[i], 0.1), RM_OK);
        assert_int_equal(s.kind, kinds[i]);
        assert_string_equal(rm_lr_kind_name(s.kind), names[i]);
        assert_true(s.lr == 0.1);
        assert_int_equal(s.n_milestones, 2);
        assert_true(s.milestones[0] == 100.0 / 110.0 && s.milestones[1] == 105.0 / 110.0);
        assert_true(s.gamma == 0.1 && s.peak == 0.4);
    }
    rm_lr_schedule s;
    rm_error_clear();
    assert_int_equal(rm_lr_schedule_init(&s, "step", 0.1), RM_ERR_ARG);
    assert_non_null(strstr(rm_error_message(), "\"step\""));
    rm_error_clear();
    assert_int_equal(rm_lr_schedule_init(&s, "cosine", -1.0), RM_ERR_ARG);
    assert_non_null(strstr(rm_error_message(), "lr -1"));
    rm_error_clear();
}

static void test_constant(void **state) {
    (void)state;
    rm_lr_schedule s;
    assert_int_equal(rm_lr_schedule_init(&s, "constant", 0.05), RM_OK);
    assert_lr(&s, 0, 10, 0.05);
    assert_lr(&s, 9, 10, 0.05);
}

/* Switch iteration = floor(m * total), with exact integers kept exact. */
static void test_milestone_iterations(void **state) {
    (void)state;
    assert_int_equal(rm_lr_milestone_iteration(100.0 / 110.0, 110), 100);
    assert_int_equal(rm_lr_milestone_iteration(105.0 / 110.0, 110), 105);
    /* reference CIFAR-10 run: 110 epochs x 391 batches; epochs 100 and 105 start there */
    assert_int_equal(rm_lr_milestone_iteration(100.0 / 110.0, 43010), 39100);
    assert_int_equal(rm_lr_milestone_iteration(105.0 / 110.0, 43010), 41055);
    /* 100/110 * 100 = 90.9..., 105/110 * 100 = 95.45... */
    assert_int_equal(rm_lr_milestone_iteration(100.0 / 110.0, 100), 90);
    assert_int_equal(rm_lr_milestone_iteration(105.0 / 110.0, 100), 95);
    /* 0.57 * 100 is 56.999999999999993 in double; a naive floor would say 56 */
    assert_int_equal(rm_lr_milestone_iteration(0.57, 100), 57);
    assert_int_equal(rm_lr_milestone_iteration(0.5, 7), 3);
    assert_int_equal(rm_lr_milestone_iteration(0.5, 8), 4);
    assert_int_equal(rm_lr_milestone_iteration(1.0, 8), 8);
}

static void test_multistep(void **state) {
    (void)state;
    rm_lr_schedule s;
    assert_int_equal(rm_lr_schedule_init(&s, "multistep", 0.1), RM_OK);
    assert_lr(&s, 0, 110, 0.1);
    assert_lr(&s, 99, 110, 0.1);
    assert_lr(&s, 100, 110, 0.01);
    assert_lr(&s, 104, 110, 0.01);
    assert_lr(&s, 105, 110, 0.001);
    assert_lr(&s, 109, 110, 0.001);
    assert_lr(&s, 39099, 43010, 0.1);
    assert_lr(&s, 39100, 43010, 0.01);
    assert_lr(&s, 41054, 43010, 0.01);
    assert_lr(&s, 41055, 43010, 0.001);
    /* one milestone at 1/2, gamma 0.5, T = 7: switch at floor(3.5) = 3 */
    s.n_milestones = 1;
    s.milestones[0] = 0.5;
    s.gamma = 0.5;
    assert_int_equal(rm_lr_schedule_check(&s), RM_OK);
    assert_lr(&s, 2, 7, 0.1);
    assert_lr(&s, 3, 7, 0.05);
    assert_lr(&s, 6, 7, 0.05);
}

/* T = 10, peak 0.4 (at it = 4), lr 0.2: up by 0.05 per iteration, down by 0.2/6. */
static void test_cyclic(void **state) {
    (void)state;
    rm_lr_schedule s;
    assert_int_equal(rm_lr_schedule_init(&s, "cyclic", 0.2), RM_OK);
    assert_lr(&s, 0, 10, 0.0);
    assert_lr(&s, 1, 10, 0.05);
    assert_lr(&s, 2, 10, 0.1);
    assert_lr(&s, 4, 10, 0.2);
    assert_lr(&s, 5, 10, 0.2 - 0.2 / 6.0);
    assert_lr(&s, 7, 10, 0.1);
    assert_lr(&s, 10, 10, 0.0);
    /* peak 0.25 of T = 6 falls between iterations (1.5): it 1 -> 0.2/1.5, it 2 -> 0.2 *
     * (1 - 0.5/4.5) */
    s.peak = 0.25;
    assert_lr(&s, 1, 6, 0.2 / 1.5);
    assert_lr(&s, 2, 6, 0.2 * (1.0 - 0.5 / 4.5));
}

/* T = 4, lr 0.2: 0.2, 0.1 (1 + sqrt(2)/2), 0.1, 0.1 (1 - sqrt(2)/2), 0. */
static void test_cosine(void **state) {
    (void)state;
    rm_lr_schedule s;
    assert_int_equal(rm_lr_schedule_init(&s, "cosine", 0.2), RM_OK);
    const double h = sqrt(2.0) / 2.0;
    assert_lr(&s, 0, 4, 0.2);
    assert_lr(&s, 1, 4, 0.1 * (1.0 + h));
    assert_lr(&s, 2, 4, 0.1);
    assert_lr(&s, 3, 4, 0.1 * (1.0 - h));
    assert_lr(&s, 4, 4, 0.0);
}

static void test_clamping(void **state) {
    (void)state;
    rm_lr_schedule s;
    assert_int_equal(rm_lr_schedule_init(&s, "cosine", 0.2), RM_OK);
    assert_lr(&s, -3, 4, 0.2);
    assert_lr(&s, 9, 4, 0.0); /* not back up the cosine */
    assert_lr(&s, 0, 0, 0.2);
}

static void test_check_refuses(void **state) {
    (void)state;
    rm_lr_schedule s;
    assert_int_equal(rm_lr_schedule_init(&s, "multistep", 0.1), RM_OK);
    s.milestones[1] = s.milestones[0];
    rm_error_clear();
    assert_int_equal(rm_lr_schedule_check(&s), RM_ERR_ARG);
    assert_non_null(strstr(rm_error_message(), "milestone[1]"));
    s.milestones[1] = 1.5;
    assert_int_equal(rm_lr_schedule_check(&s), RM_ERR_ARG);
    s.milestones[1] = 105.0 / 110.0;
    s.n_milestones = RM_LR_MAX_MILESTONES + 1;
    assert_int_equal(rm_lr_schedule_check(&s), RM_ERR_ARG);
    s.n_milestones = 2;
    s.milestones[0] = 0.0;
    assert_int_equal(rm_lr_schedule_check(&s), RM_ERR_ARG);
    s.milestones[0] = 0.5;
    assert_int_equal(rm_lr_schedule_check(&s), RM_OK);

    assert_int_equal(rm_lr_schedule_init(&s, "cyclic", 0.1), RM_OK);
    s.peak = 1.0;
    rm_error_clear();
    assert_int_equal(rm_lr_schedule_check(&s), RM_ERR_ARG);
    assert_non_null(strstr(rm_error_message(), "peak 1"));
    rm_error_clear();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_defaults),
        cmocka_unit_test(test_constant),
        cmocka_unit_test(test_milestone_iterations),
        cmocka_unit_test(test_multistep),
        cmocka_unit_test(test_cyclic),
        cmocka_unit_test(test_cosine),
        cmocka_unit_test(test_clamping),
        cmocka_unit_test(test_check_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
