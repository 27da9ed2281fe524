/* The final evaluation (final_eval_attacks, final_test_subset, final_aa_images):
 * - the settings: defaults that keep every run's identity, errors that name the setting,
 *   refusal of the two size settings where they would do nothing, the YAML list form;
 * - a run without a final list has exactly the columns runs had before;
 * - a 2-epoch Fashion-MNIST run with final_eval_attacks=clean,pgd5,aa-fast,
 *   final_test_subset=200, final_aa_images=20: final_* NaN on epoch 1 and present on
 *   epoch 2; final_clean equals rm_trainer_evaluate of the same weights on the
 *   test_subset=200 images, pgd5 and aa-fast equal the "final" streams on their images
 *   (aa-fast on the test_subset=20 images, which are among the 200); the per-epoch
 *   numbers are bit for bit those of the same run without a final list;
 * - too many final columns is an error naming final_eval_attacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "regmix/train.h"

static void expect_error(rm_status st, const char *msg) {
    if (st == RM_OK) fail_msg("expected an error containing '%s'", msg);
    if (!strstr(rm_error_message(), msg)) fail_msg("error '%s' lacks '%s'", rm_error_message(), msg);
    rm_error_clear(); /* the first failure's message wins: clear it for the next check */
}

static void test_settings(void **state) {
    (void)state;
    rm_config c, d;
    rm_config_defaults(&d);
    assert_int_equal(d.n_final_eval, 0);
    assert_true(d.final_test_subset == -1 && d.final_aa_images == 0);
    char h0[17], h[17];
    rm_config_hash(&d, h0);
    /* the defaults written out keep the identity; a final list changes it */
    c = d;
    assert_int_equal(rm_config_set(&c, "final_eval_attacks", " ", NULL), RM_OK);
    assert_int_equal(rm_config_set(&c, "final_test_subset", "-1", NULL), RM_OK);
    rm_config_hash(&c, h);
    assert_string_equal(h, h0);
    assert_int_equal(rm_config_set(&c, "final_eval_attacks", "clean,pgd20@0.2,aa-fast", NULL), RM_OK);
    assert_int_equal(c.n_final_eval, 3);
    assert_string_equal(c.final_eval[1].name, "pgd20_eps0.2");
    assert_int_equal(rm_config_set(&c, "final_test_subset", "0", NULL), RM_OK);
    assert_int_equal(rm_config_set(&c, "final_aa_images", "1000", NULL), RM_OK);
    assert_int_equal(rm_config_validate(&c), RM_OK);
    rm_config_hash(&c, h);
    assert_string_not_equal(h, h0);
    char text[RM_CFG_YAML_MAX];
    assert_true(rm_config_hash_text(&c, text, sizeof text) > 0);
    assert_non_null(strstr(text, "\nfinal_eval_attacks: [clean, pgd20@0.2, aa-fast]\n"));
    /* the YAML list form reads back to the same list */
    rm_config y;
    rm_config_defaults(&y);
    assert_int_equal(rm_config_load_yaml_text(&y, "final_eval_attacks: [clean, aa-fast]\nfinal_aa_images: 7\n", "t"),
                     RM_OK);
    assert_int_equal(y.n_final_eval, 2);
    assert_true(y.final_eval[1].kind == RM_EVAL_AUTO && y.final_aa_images == 7);

    /* bad values name the setting and leave the config as it was */
    c = d;
    expect_error(rm_config_set(&c, "final_test_subset", "-2", "cli"), "cli: final_test_subset: -2 is out of range");
    expect_error(rm_config_set(&c, "final_aa_images", "-1", NULL), "final_aa_images: -1 is out of range");
    expect_error(rm_config_set(&c, "final_eval_attacks", "pgd5,pgd5", NULL),
                 "final_eval_attacks: 'pgd5' duplicates attack 1");
    expect_error(rm_config_set(&c, "final_eval_attacks", "clean,aa20", NULL), "final_eval_attacks: 'aa20'");
    expect_error(rm_config_set(&c, "eval_attacks", "", NULL), "eval_attacks: empty list"); /* still needs one */
    assert_int_equal(c.n_final_eval, 0);
    /* settings that would do nothing are refused */
    assert_int_equal(rm_config_set(&c, "final_test_subset", "500", NULL), RM_OK);
    expect_error(rm_config_validate(&c), "final_test_subset: 500 applies to the final_eval_attacks");
    c = d;
    assert_int_equal(rm_config_set(&c, "final_eval_attacks", "clean,pgd5", NULL), RM_OK);
    assert_int_equal(rm_config_set(&c, "final_aa_images", "10", NULL), RM_OK);
    expect_error(rm_config_validate(&c), "final_aa_images: 10 applies to AutoAttack entries");
}

static int have_data(void) {
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", &sb) == 0) return 1;
    printf("SKIPPED: needs Fashion-MNIST\n");
    return 0;
}

static rm_config small_run(void) {
    rm_config c;
    rm_config_defaults(&c); /* pgi + regmix: no EMA */
    const char *kv[][2] = {{"train_subset", "256"}, {"batch", "64"}, {"epochs", "2"}, {"threads", "1"},
                           {"test_subset", "100"}, {"eval_attacks", "clean,pgd5"}};
    for (size_t k = 0; k < sizeof kv / sizeof *kv; k++) assert_int_equal(rm_config_set(&c, kv[k][0], kv[k][1], NULL), RM_OK);
    return c;
}

static void test_columns(void **state) {
    (void)state;
    if (!have_data()) return;
    rm_config c;
    rm_config_defaults(&c);
    assert_int_equal(rm_config_set(&c, "train_subset", "256", NULL), RM_OK);
    rm_trainer *t;
    assert_int_equal(rm_trainer_create(&c, &t), RM_OK);
    /* the columns of a default run before the final evaluation existed */
    static const char *const before[] = {"epoch", "lr", "loss", "loss_ce", "loss_mse", "loss_amr", "loss_agr",
                                         "loss_trades", "train_acc", "test_clean", "test_fgsm", "test_pgd20",
                                         "test_cw20", "co_flag", "train_seconds", "eval_seconds", "epoch_seconds",
                                         "images_per_s"};
    const int n = (int)(sizeof before / sizeof *before);
    assert_int_equal(rm_trainer_metric_count(t), n);
    for (int i = 0; i < n; i++) assert_string_equal(rm_trainer_metric(t, i)->name, before[i]);
    rm_trainer_destroy(t);

    /* a final list appends its columns after them, extras with the final_ prefix */
    assert_int_equal(rm_config_set(&c, "final_eval_attacks", "clean,aa-fast", NULL), RM_OK);
    assert_int_equal(rm_trainer_create(&c, &t), RM_OK);
    static const char *const added[] = {"final_clean", "final_aa-fast", "final_aa-fast.apgd-ce",
                                        "final_aa-fast.apgd-t", "final_zero_grad_aa-fast", "final_gm_zero_grad"};
    assert_int_equal(rm_trainer_metric_count(t), n + 6);
    for (int i = 0; i < n; i++) assert_string_equal(rm_trainer_metric(t, i)->name, before[i]);
    for (int i = 0; i < 6; i++) assert_string_equal(rm_trainer_metric(t, n + i)->name, added[i]);
    rm_trainer_destroy(t);

    /* 18 + 8 accuracies + 8 x 5 extras + 1 warning > 64 */
    assert_int_equal(rm_config_set(&c, "final_eval_attacks", "aa,aa@0.11,aa@0.12,aa@0.13,aa@0.14,aa@0.15,aa@0.16,aa@0.17",
                                   NULL), RM_OK);
    expect_error(rm_trainer_create(&c, &t), "final_eval_attacks: these 8 attacks need");
    assert_null(t);
}

/* The test images test_subset=n selects (a trainer's test set). */
static rm_trainer *selection(int64_t n) {
    rm_config c = small_run();
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)n);
    assert_int_equal(rm_config_set(&c, "test_subset", v, NULL), RM_OK);
    rm_trainer *t;
    assert_int_equal(rm_trainer_create(&c, &t), RM_OK);
    return t;
}

static void run(rm_trainer *t, double rows[2][64]) {
    for (int e = 0; e < 2; e++) assert_int_equal(rm_trainer_run_epoch(t, rows[e], NULL, NULL), RM_OK);
}

static double col(const rm_trainer *t, const double *row, const char *name) {
    const int i = rm_trainer_metric_index(t, name);
    if (i < 0) fail_msg("no column %s", name);
    return row[i];
}

static void test_final_values(void **state) {
    (void)state;
    if (!have_data()) return;
    rm_config c = small_run();
    assert_int_equal(rm_config_set(&c, "final_eval_attacks", "clean,pgd5,aa-fast", NULL), RM_OK);
    assert_int_equal(rm_config_set(&c, "final_test_subset", "200", NULL), RM_OK);
    assert_int_equal(rm_config_set(&c, "final_aa_images", "20", NULL), RM_OK);
    assert_int_equal(rm_config_validate(&c), RM_OK);
    rm_trainer *t, *plain;
    assert_int_equal(rm_trainer_create(&c, &t), RM_OK);
    double rows[2][64], plain_rows[2][64];
    run(t, rows);

    static const char *const finals[] = {"final_clean", "final_pgd5", "final_aa-fast", "final_aa-fast.apgd-ce",
                                         "final_aa-fast.apgd-t", "final_zero_grad_aa-fast"};
    for (size_t k = 0; k < sizeof finals / sizeof *finals; k++) {
        assert_true(isnan(col(t, rows[0], finals[k])));
        assert_false(isnan(col(t, rows[1], finals[k])));
    }
    /* the final images: test_subset=200's; AutoAttack's: test_subset=20's, among them */
    rm_trainer *s200 = selection(200), *s20 = selection(20);
    const rm_dataset *d200 = rm_trainer_test_set(s200), *d20 = rm_trainer_test_set(s20);
    assert_true(d200->n == 200 && d20->n == 20);
    for (int i = 0, j = 0; i < 20; i++) { /* both in file order */
        while (j < 200 && d200->source_index[j] != d20->source_index[i]) j++;
        assert_true(j < 200);
    }

    rm_eval_attack clean, pgd5, fast;
    assert_int_equal(rm_eval_attack_parse("clean", &clean), RM_OK);
    assert_int_equal(rm_eval_attack_parse("pgd5", &pgd5), RM_OK);
    assert_int_equal(rm_eval_attack_parse("aa-fast", &fast), RM_OK);
    double acc;
    assert_int_equal(rm_trainer_evaluate(t, d200, &clean, &acc), RM_OK);
    printf("  final_clean %.2f (200 images) = rm_trainer_evaluate %.2f; final_pgd5 %.2f; final_aa-fast %.2f "
           "(20 images)\n", col(t, rows[1], "final_clean"), acc, col(t, rows[1], "final_pgd5"),
           col(t, rows[1], "final_aa-fast"));
    assert_true(acc == col(t, rows[1], "final_clean"));
    rm_eval_result r;
    assert_int_equal(rm_trainer_evaluate_as(t, d200, &pgd5, "final", &r), RM_OK);
    assert_true(r.accuracy == col(t, rows[1], "final_pgd5"));
    assert_int_equal(rm_trainer_evaluate_as(t, d20, &fast, "final", &r), RM_OK);
    assert_true(r.accuracy == col(t, rows[1], "final_aa-fast"));
    assert_true(r.n_parts == 2 && r.part_accuracy[0] == col(t, rows[1], "final_aa-fast.apgd-ce"));
    /* 20 images: every accuracy is a multiple of 5 % */
    const double count = col(t, rows[1], "final_aa-fast") * 20 / 100;
    assert_true(fabs(count - round(count)) < 1e-9);
    rm_trainer_destroy(s200);
    rm_trainer_destroy(s20);

    /* the same run without a final list: the same numbers in every other column */
    c = small_run();
    assert_int_equal(rm_trainer_create(&c, &plain), RM_OK);
    run(plain, plain_rows);
    for (int i = 0; i < rm_trainer_metric_count(plain); i++) {
        const char *name = rm_trainer_metric(plain, i)->name;
        if (strstr(name, "seconds") || !strcmp(name, "images_per_s")) continue;
        for (int e = 0; e < 2; e++) {
            const double a = plain_rows[e][i], b = col(t, rows[e], name);
            if (!(a == b || (isnan(a) && isnan(b)))) fail_msg("%s epoch %d: %.17g without, %.17g with", name, e + 1, a, b);
        }
    }
    rm_trainer_destroy(plain);
    rm_trainer_destroy(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_columns),
        cmocka_unit_test(test_final_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
