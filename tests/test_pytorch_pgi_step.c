/* One prior-guided FGSM step (rm_method, method "pgi") against PyTorch, with the `mse`
 * and the `regmix` regulariser on the same weights and batch: the float64 fixtures
 * tests/data/pgi_step_{mse,regmix}.rmfx written by tests/pytorch/gen_pgi_step_fixtures.py,
 * compared tensor by tensor as tests/support/pgi_step_check.h describes (loss terms and
 * weight gradients rel <= 1e-3, d and D exact, running statistics and logits rel <= 1e-4).
 * test_dp_mpi runs the same check on a data-parallel group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "pgi_step_check.h"

static void test_pgi_step_mse(void **state) {
    (void)state;
    assert_int_equal(pgi_step_check("mse", NULL, NULL, NULL), 0);
}

static void test_pgi_step_regmix(void **state) {
    (void)state;
    assert_int_equal(pgi_step_check("regmix", NULL, NULL, NULL), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pgi_step_mse),
        cmocka_unit_test(test_pgi_step_regmix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
