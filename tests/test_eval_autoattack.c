/* AutoAttack in the evaluation: what a run records and how the warnings decide.
 * - the extra metric columns of an evaluation list (components, zero-gradient shares,
 *   warnings), exactly, and none for lists without AutoAttack or comparable attacks (so
 *   existing configurations keep their columns);
 * - the three gradient-masking warnings on hand-made results, one case per rule and its
 *   threshold, and NaN when the list has nothing to check;
 * - end to end: `regmix train` with aa-fast in eval_attacks writes the component columns
 *   (the last component equals the final accuracy, each is at most the one before, all
 *   at most the clean accuracy), and `regmix eval --first N` takes the first N images of
 *   the test file (all 10 000 give the same clean accuracy as the whole test set) and
 *   refuses bad values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proc.h"

#include "regmix/runfile.h"
#include "regmix/train.h"

static rm_config config_with(const char *attacks) {
    rm_config c;
    rm_config_defaults(&c); /* eps 0.1 */
    assert_int_equal(rm_config_set(&c, "eval_attacks", attacks, NULL), RM_OK);
    return c;
}

static void test_extra_columns(void **state) {
    (void)state;
    rm_metric_def defs[64];
    rm_config c = config_with("clean,aa,aa-fast@0.2,apgd-t,pgd20");
    static const char *const want[] = {
        "test_aa.apgd-ce", "test_aa.apgd-t", "test_aa.fab-t", "test_aa.square", "test_aa-fast_eps0.2.apgd-ce",
        "test_aa-fast_eps0.2.apgd-t", "zero_grad_aa", "zero_grad_aa-fast_eps0.2", "zero_grad_apgd-t", "gm_square",
        "gm_zero_grad"};
    const int n = rm_eval_extra_metrics(&c, defs, 64);
    assert_int_equal(n, (int)(sizeof want / sizeof *want));
    for (int i = 0; i < n; i++) assert_string_equal(defs[i].name, want[i]);
    assert_string_equal(defs[0].units, "%");
    assert_string_equal(defs[n - 1].units, "1");
    /* nothing to add: the default list and the lists of the committed sweeps without pairs */
    static const char *const plain[] = {"clean,fgsm,pgd20,cw20", "clean,fgsm,pgd10,cw10", "clean,pgd20,cw20@0.2"};
    for (size_t k = 0; k < 3; k++) {
        rm_config p = config_with(plain[k]);
        assert_int_equal(rm_eval_extra_metrics(&p, defs, 64), 0);
    }
    /* more steps of one family: the monotonicity column only */
    rm_config m = config_with("clean,pgd10,pgd20,cw20");
    assert_int_equal(rm_eval_extra_metrics(&m, defs, 64), 1);
    assert_string_equal(defs[0].name, "gm_monotone");
    /* a standalone square next to a white-box attack at its budget */
    rm_config q = config_with("pgd20,square,square@0.3");
    assert_int_equal(rm_eval_extra_metrics(&q, defs, 64), 2);
    assert_string_equal(defs[0].name, "gm_square");
    assert_string_equal(defs[1].name, "gm_monotone"); /* square and square@0.3 */
}

/* clean, fgsm, pgd20, pgd50, pgd20@0.2, aa, square, aa-fast at eps 0.1 */
enum { A_CLEAN, A_FGSM, A_PGD20, A_PGD50, A_PGD20_02, A_AA, A_SQUARE, A_FAST, N_A };

static void fine_results(rm_eval_result *r) {
    memset(r, 0, N_A * sizeof *r);
    const double acc[N_A] = {80, 60, 50, 49.5, 30, 46.9, 60, 47};
    for (int i = 0; i < N_A; i++) {
        r[i].accuracy = acc[i];
        r[i].zero_grad = NAN;
    }
    r[A_AA].n_parts = 4;
    const double aa[4] = {48, 47, 47, 46.9}; /* Square takes 0.1 points: below the 0.2 threshold */
    for (int k = 0; k < 4; k++) {
        r[A_AA].part[k] = 1u << k;
        r[A_AA].part_accuracy[k] = aa[k];
    }
    r[A_AA].zero_grad = 0.0;
    r[A_FAST].n_parts = 2;
    r[A_FAST].part[0] = RM_AA_APGD_CE;
    r[A_FAST].part[1] = RM_AA_APGD_T;
    r[A_FAST].part_accuracy[0] = 48;
    r[A_FAST].part_accuracy[1] = 47;
    r[A_FAST].zero_grad = 1.0; /* exactly the threshold: not above it */
}

static int same(double a, double b) { return (isnan(a) && isnan(b)) || a == b; }

static void expect_flags(const rm_config *c, const rm_eval_result *r, double square, double zero, double mono) {
    rm_gm_flags g;
    rm_gm_check(c, r, &g);
    if (!same(g.square, square) || !same(g.zero_grad, zero) || !same(g.monotone, mono)) {
        printf("  flags square %g zero_grad %g monotone %g, expected %g %g %g\n", g.square, g.zero_grad, g.monotone,
               square, zero, mono);
        fail();
    }
}

static void test_warnings(void **state) {
    (void)state;
    rm_config c = config_with("clean,fgsm,pgd20,pgd50,pgd20@0.2,aa,square,aa-fast");
    rm_eval_result r[N_A];
    char text[1024];
    fine_results(r);
    expect_flags(&c, r, 0, 0, 0);
    rm_gm_explain(&c, r, text, sizeof text);
    assert_string_equal(text, "");
    /* more steps, higher accuracy: 49.5 -> 51.5 is a rise of 1.5 > 1 point */
    fine_results(r);
    r[A_PGD50].accuracy = 51.5;
    expect_flags(&c, r, 0, 0, 1);
    rm_gm_explain(&c, r, text, sizeof text);
    assert_non_null(strstr(text, "rose from 50.00 % (pgd20) to 51.50 % (pgd50"));
    fine_results(r);
    r[A_PGD50].accuracy = 51.0; /* a rise of exactly 1 point: not above the threshold */
    expect_flags(&c, r, 0, 0, 0);
    /* a bigger budget, higher accuracy: pgd20@0.2 at 52 over pgd20 at 50 */
    fine_results(r);
    r[A_PGD20_02].accuracy = 52;
    expect_flags(&c, r, 0, 0, 1);
    rm_gm_explain(&c, r, text, sizeof text);
    assert_non_null(strstr(text, "(pgd20_eps0.2, the stronger attack"));
    /* Square inside aa takes 0.5 points after FAB-T */
    fine_results(r);
    r[A_AA].part_accuracy[3] = r[A_AA].accuracy = 46.5;
    expect_flags(&c, r, 1, 0, 0);
    rm_gm_explain(&c, r, text, sizeof text);
    assert_non_null(strstr(text, "aa: the black-box Square attack got 0.50 points below"));
    /* a standalone square 0.3 below the lowest white-box accuracy at its budget (aa before
     * its Square: 47) */
    fine_results(r);
    r[A_SQUARE].accuracy = 46.7;
    expect_flags(&c, r, 1, 0, 0);
    r[A_SQUARE].accuracy = 46.85; /* 0.15: within the threshold */
    expect_flags(&c, r, 0, 0, 0);
    /* zero gradients: 1.5 % of aa-fast's APGD runs */
    fine_results(r);
    r[A_FAST].zero_grad = 1.5;
    expect_flags(&c, r, 0, 1, 0);
    rm_gm_explain(&c, r, text, sizeof text);
    assert_non_null(strstr(text, "aa-fast: 1.50 % of the APGD runs"));
    /* nothing to check */
    rm_config p = config_with("clean,fgsm,pgd20,cw20");
    expect_flags(&p, r, NAN, NAN, NAN);
    /* the values follow the columns */
    fine_results(r);
    r[A_FAST].zero_grad = 1.5;
    rm_metric_def defs[64];
    double v[64];
    const int n = rm_eval_extra_metrics(&c, defs, 64);
    rm_eval_extra_values(&c, r, v);
    for (int i = 0; i < n; i++) {
        double want = NAN;
        if (!strcmp(defs[i].name, "test_aa.fab-t")) want = 47;
        if (!strcmp(defs[i].name, "test_aa-fast.apgd-ce")) want = 48;
        if (!strcmp(defs[i].name, "zero_grad_aa-fast")) want = 1.5;
        if (!strcmp(defs[i].name, "gm_zero_grad")) want = 1;
        if (!strcmp(defs[i].name, "gm_monotone")) want = 0;
        if (!isnan(want)) assert_true(v[i] == want);
    }
}

/* ---- end to end through the binary ---- */

static int run_capture(const char *cmd, char *out, size_t size) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    out[0] = '\0';
    size_t n = 0;
    char line[8192];
    while (fgets(line, sizeof line, p)) { /* keep everything that fits */
        size_t l = strlen(line);
        if (n + l < size) {
            memcpy(out + n, line, l + 1);
            n += l;
        }
    }
    return pclose(p);
}

static double json_value(const char *out, const char *key) {
    char k[128];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(out, k);
    assert_non_null(p);
    return strtod(p + strlen(k), NULL);
}

static double column_last(const rm_run_summary *s, const char *name) {
    int c = rm_run_summary_find(s, name);
    if (c < 0) fail_msg("the run file has no column %s", name);
    return s->columns[c].values[s->rows - 1];
}

static void test_train_and_eval(void **state) {
    (void)state;
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", &sb) != 0) {
        printf("SKIPPED: needs Fashion-MNIST\n");
        return;
    }
    char dir[] = "/tmp/regmix-evalaa-XXXXXX";
    assert_non_null(mkdtemp(dir));
    static char cmd[2048], out[65536];
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 %s train train_subset=1024 test_subset=24 epochs=1 threads=1 "
             "eval_attacks=clean,aa-fast,pgd5,pgd10 run_id=r outdir=%s --quiet 2>&1",
             REGMIX_BINARY, dir);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/r.h5", dir);
    rm_run_summary s;
    assert_int_equal(rm_runfile_read(path, &s), RM_OK);
    assert_int_equal(s.rows, 1);
    const double clean = column_last(&s, "test_clean"), fast = column_last(&s, "test_aa-fast");
    const double ce = column_last(&s, "test_aa-fast.apgd-ce"), t = column_last(&s, "test_aa-fast.apgd-t");
    const double zero = column_last(&s, "zero_grad_aa-fast"), gz = column_last(&s, "gm_zero_grad");
    const double gm = column_last(&s, "gm_monotone");
    printf("  1 epoch on 1024 images, 24 test images: clean %.2f, after APGD-CE %.2f, after APGD-T %.2f = aa-fast "
           "%.2f; zero gradients %.2f %%; warnings zero_grad %g monotone %g\n",
           clean, ce, t, fast, zero, gz, gm);
    assert_true(t == fast && t <= ce && ce <= clean);
    assert_true(zero >= 0 && zero <= 100 && (gz == 0 || gz == 1) && (gm == 0 || gm == 1));
    assert_true(gz == (zero > RM_GM_ZERO_GRAD_SHARE));
    assert_int_equal(rm_run_summary_find(&s, "gm_square"), -1); /* no Square in the list */
    rm_run_summary_free(&s);

    /* --first: all 10 000 images of the test file = the whole test set */
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s eval %s --attacks clean --first 10000 2>&1", REGMIX_BINARY, path);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    const double first_all = json_value(out, "test_clean");
    assert_true(json_value(out, "test_images") == 10000);
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s eval %s --attacks clean --test-subset 0 2>&1", REGMIX_BINARY,
             path);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    assert_true(json_value(out, "test_clean") == first_all);
    /* --first 30 with aa-fast: 30 images, the component keys in the JSON line */
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s eval %s --attacks clean,aa-fast --first 30 2>&1", REGMIX_BINARY,
             path);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    assert_true(json_value(out, "test_images") == 30);
    assert_true(json_value(out, "test_aa-fast.apgd-t") == json_value(out, "test_aa-fast"));
    assert_non_null(strstr(out, "  after apgd-ce"));
    /* bad values */
    static const struct { const char *args, *msg; int status; } bad[] = {
        {"--first 0", "--first: expected a positive number of images, got '0'", 2},
        {"--first 12x", "--first: expected a positive number of images, got '12x'", 2},
        {"--first 10001", "--first 10001: the fashion-mnist test set has only 10000 images", 1},
        {"--first 10 --test-subset 5", "--test-subset and --first exclude each other", 2},
        {"--attacks aa20", "eval_attacks: 'aa20': expected clean", 2},
        /* 14 fixed + 8 accuracies + 8 x 5 (components, zero share) + 3 warnings = 65 columns */
        {"--attacks aa,aa@0.11,aa@0.12,aa@0.13,aa@0.14,aa@0.15,aa@0.16,aa@0.17",
         "these 8 attacks need 65 metric columns, more than the 64 a run records", 1},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s eval %s %s 2>&1", REGMIX_BINARY, path, bad[k].args);
        const int st = run_capture(cmd, out, sizeof out);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != bad[k].status || !strstr(out, bad[k].msg))
            fail_msg("regmix eval %s: exit %d, output '%s'; expected exit %d and '%s'", bad[k].args,
                     WIFEXITED(st) ? WEXITSTATUS(st) : -1, out, bad[k].status, bad[k].msg);
    }
    rm_test_remove_tree(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extra_columns),
        cmocka_unit_test(test_warnings),
        cmocka_unit_test(test_train_and_eval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
