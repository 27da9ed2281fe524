/* Run settings without files: defaults (against the documented values), number,
 * integer and boolean parsing, every setting type, unknown names with suggestions,
 * enum and range errors (exact message fragments), cross-field validation, evaluation
 * attack specs and the catastrophic-overfitting flag. (YAML files: test_config_yaml.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "regmix/attack.h"
#include "regmix/config.h"

/* The status must be `want` and the recorded message must contain `frag`. */
#define EXPECT_ERR(call, want, frag) expect_err_at((call), (want), (frag), #call, __LINE__)
static void expect_err_at(rm_status got, rm_status want, const char *frag, const char *what, int line) {
    char msg[1100];
    snprintf(msg, sizeof msg, "%s", rm_error_message());
    rm_error_clear(); /* a failure here must not leak into the next test */
    if (got != want)
        fail_msg("line %d: %s returned %s, expected %s (message: %s)", line, what, rm_status_name(got),
                 rm_status_name(want), msg);
    if (!strstr(msg, frag)) fail_msg("line %d: %s: message \"%s\" lacks \"%s\"", line, what, msg, frag);
}

#define EXPECT_OK(call)                                                                          \
    do {                                                                                         \
        rm_status s_ = (call);                                                                   \
        if (s_ != RM_OK) fail_msg("%s failed: %s", #call, rm_error_message());                   \
    } while (0)

static void test_defaults(void **state) {
    (void)state;
    rm_config c;
    rm_config_defaults(&c);
    assert_string_equal(c.model, "fmnist-cnn");
    assert_string_equal(c.dataset, "fashion-mnist");
    assert_string_equal(c.data_dir, "");
    assert_true(c.train_subset == 0 && c.val_size == 0 && c.test_subset == 1000);
    assert_int_equal(c.augment, -1);
    assert_string_equal(c.method, "pgi");
    assert_string_equal(c.reg, "regmix");
    assert_true(c.alpha == 1.0 && c.beta == 0.5 && c.gamma == 1.0 && c.lambda == 10.0);
    assert_true(c.trades_beta == 6.0);
    assert_int_equal(c.amr_stop_f, 0);
    assert_int_equal(c.amr_stop_i, 0);
    assert_string_equal(c.agr_dir, "c||f");
    assert_int_equal(c.agr_detach, 0);
    assert_true(c.label_smoothing == 0.6);
    assert_true(c.eps == 0.1 && c.step == 0.1);
    assert_int_equal(c.reset_every, 40);
    assert_true(c.pgi_momentum == 0.3);
    assert_int_equal(c.train_attack_steps, 10);
    assert_int_equal(c.epochs, 8);
    assert_int_equal(c.batch, 128);
    assert_true(c.lr == 0.1 && c.momentum == 0.9 && c.weight_decay == 5e-4);
    assert_string_equal(c.lr_schedule, "multistep");
    assert_true(c.seed == 0);
    assert_int_equal(c.threads, 0);
    assert_int_equal(c.n_eval, 4);
    const char *names[] = {"clean", "fgsm", "pgd20", "cw20"};
    const rm_eval_kind kinds[] = {RM_EVAL_CLEAN, RM_EVAL_FGSM, RM_EVAL_PGD, RM_EVAL_CW};
    const int steps[] = {0, 1, 20, 20};
    for (int k = 0; k < 4; k++) {
        assert_string_equal(c.eval[k].name, names[k]);
        assert_int_equal(c.eval[k].kind, kinds[k]);
        assert_int_equal(c.eval[k].steps, steps[k]);
        assert_int_equal(c.eval[k].restarts, 1);
        assert_true(c.eval[k].eps == 0.0);
    }
    assert_int_equal(c.eval_every, 1);
    assert_true(c.co_threshold == 0.5);
    assert_string_equal(c.outdir, "results/runs");
    assert_string_equal(c.run_id, "");
    assert_int_equal(c.checkpoint_every, 1);
    EXPECT_OK(rm_config_validate(&c));
}

/* The public names, in table (and YAML) order: a stable interface. */
static void test_setting_table(void **state) {
    (void)state;
    static const char *const names[] = {
        "model", "dataset", "data_dir", "train_subset", "val_size", "test_subset", "augment",
        "method", "reg", "alpha", "beta", "trades_beta", "gamma", "lambda", "amr_stop_f", "amr_stop_i", "agr_dir",
        "agr_detach", "label_smoothing", "eps", "step", "reset_every", "pgi_momentum",
        "train_attack_steps", "ema", "ema_value", "ema_decay", "ema_gate", "epochs", "batch", "lr", "lr_schedule", "momentum", "weight_decay",
        "seed", "threads", "precision", "eval_attacks", "eval_every", "eval_model", "co_threshold", "final_eval_attacks",
        "final_test_subset", "final_aa_images", "outdir", "run_id",
        "checkpoint_every"};
    int n = (int)(sizeof names / sizeof names[0]);
    assert_int_equal(rm_config_setting_count(), n);
    for (int i = 0; i < n; i++) {
        assert_string_equal(rm_config_setting_name(i), names[i]);
        assert_int_equal(rm_config_setting_find(names[i]), i);
        assert_true(strlen(rm_config_setting_help(i)) > 5);
        assert_non_null(rm_config_setting_default(i));
    }
    assert_null(rm_config_setting_name(n));
    assert_int_equal(rm_config_setting_find("lamda"), -1);

    int i_eps = rm_config_setting_find("eps"), i_model = rm_config_setting_find("model");
    int i_epochs = rm_config_setting_find("epochs"), i_eval = rm_config_setting_find("eval_attacks");
    int i_flag = rm_config_setting_find("agr_detach"), i_seed = rm_config_setting_find("seed");
    assert_int_equal(rm_config_setting_type(i_eps), RM_SETTING_FLOAT);
    assert_int_equal(rm_config_setting_type(i_model), RM_SETTING_STRING);
    assert_int_equal(rm_config_setting_type(i_epochs), RM_SETTING_INT);
    assert_int_equal(rm_config_setting_type(i_eval), RM_SETTING_STRING);
    assert_int_equal(rm_config_setting_type(i_flag), RM_SETTING_INT);
    assert_int_equal(rm_config_setting_type(i_seed), RM_SETTING_INT);

    rm_config c;
    rm_config_defaults(&c);
    double num = -1;
    char text[128] = "x";
    rm_config_setting_value(&c, i_eps, &num, text, sizeof text);
    assert_true(num == 0.1);
    assert_string_equal(text, "");
    rm_config_setting_value(&c, i_epochs, &num, text, sizeof text);
    assert_true(num == 8.0);
    rm_config_setting_value(&c, i_model, &num, text, sizeof text);
    assert_true(isnan(num));
    assert_string_equal(text, "fmnist-cnn");
    rm_config_setting_value(&c, i_eval, &num, text, sizeof text);
    assert_string_equal(text, "clean,fgsm,pgd20,cw20");
    assert_int_equal(rm_config_setting_text(&c, i_flag, text, sizeof text), 5);
    assert_string_equal(text, "false");
    assert_int_equal(rm_config_setting_text(&c, i_eval, text, 5), -1); /* does not fit */

    rm_config_setting_range(i_eps, text, sizeof text);
    assert_string_equal(text, "number in [0, 1]");
    rm_config_setting_range(rm_config_setting_find("step"), text, sizeof text);
    assert_string_equal(text, "number in (0, 1]");
    rm_config_setting_range(i_epochs, text, sizeof text);
    assert_string_equal(text, "integer >= 1");
    rm_config_setting_range(i_model, text, sizeof text);
    assert_string_equal(text, "fmnist-cnn | preact-resnet18 | resnet18 | wrn-D-W (D = 6n+4 >= 10, W = 1..32)");
}

static void test_parse_number_good(void **state) {
    (void)state;
    struct {
        const char *text;
        double want;
    } cases[] = {
        {"0.1", 0.1}, {"1e-3", 0.001}, {"8/255", 8.0 / 255.0}, {"-2", -2.0}, {"  0.5\t", 0.5},
        {"\n12/255 ", 12.0 / 255.0}, {".5", 0.5}, {"3.", 3.0}, {"+4", 4.0}, {"1.5e2/3", 50.0},
        {"2E+1", 20.0}, {"0", 0.0}, {"-8/255", -8.0 / 255.0}, {"1/3", 1.0 / 3.0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        double v = -12345;
        if (rm_parse_number(cases[k].text, &v) != RM_OK)
            fail_msg("'%s' rejected: %s", cases[k].text, rm_error_message());
        if (v != cases[k].want) fail_msg("'%s' -> %.17g, want %.17g", cases[k].text, v, cases[k].want);
    }
}

static void test_parse_number_bad(void **state) {
    (void)state;
    const char *bad[] = {"", "   ", "abc", "1/0", "8/", "0.1x", "nan", "NaN", "inf", "-inf",
                         "infinity", "0x10", "1e", "1e999", "/2", "1//2", "1 / 2", "8/-255",
                         "1e308/1e-308", ".", "-", "1,5", "0.1 0.2"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        double v = 7.0;
        rm_error_clear();
        if (rm_parse_number(bad[k], &v) != RM_ERR_ARG) fail_msg("'%s' accepted as %.17g", bad[k], v);
        assert_true(v == 7.0); /* untouched */
        char want[64];
        snprintf(want, sizeof want, "'%s' is not a valid number", bad[k]);
        EXPECT_ERR(RM_ERR_ARG, RM_ERR_ARG, want);
    }
    assert_string_equal(rm_number_error("1/0", NULL), "division by zero");
    assert_string_equal(rm_number_error("8/", NULL), "fraction without a denominator");
    assert_string_equal(rm_number_error("1e999", NULL), "out of range");
    assert_null(rm_number_error("8/255", NULL));
}

static void test_format_number(void **state) {
    (void)state;
    char buf[40];
    rm_format_number(0.1, buf, sizeof buf);
    assert_string_equal(buf, "0.1");
    rm_format_number(5e-4, buf, sizeof buf);
    assert_string_equal(buf, "0.0005");
    rm_format_number(10.0, buf, sizeof buf);
    assert_string_equal(buf, "10");
    /* exponent forms carry a '.', as YAML 1.1 floats must */
    rm_format_number(1e22, buf, sizeof buf);
    assert_string_equal(buf, "1.0e+22");
    rm_format_number(1e-5, buf, sizeof buf);
    assert_string_equal(buf, "1.0e-05");
    rm_format_number(-2.5e-7, buf, sizeof buf);
    assert_string_equal(buf, "-2.5e-07");
    /* 0.1 + 0.2 is 0.30000000000000004441: 15 and 16 digits read back as other doubles */
    rm_format_number(0.1 + 0.2, buf, sizeof buf);
    assert_string_equal(buf, "0.30000000000000004");
    const double vals[] = {8.0 / 255.0, 1.0 / 3.0, 2.0 / 3.0, 1e-300, 123456789.123456789, -0.0};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
        double back;
        rm_format_number(vals[k], buf, sizeof buf);
        EXPECT_OK(rm_parse_number(buf, &back));
        if (memcmp(&back, &vals[k], sizeof back) != 0) fail_msg("%.17g printed %s", vals[k], buf);
    }
}

static void test_set_each_type(void **state) {
    (void)state;
    rm_config c;
    rm_config_defaults(&c);
    /* int: integral values only, any number syntax */
    EXPECT_OK(rm_config_set(&c, "epochs", "12", "command line"));
    assert_int_equal(c.epochs, 12);
    EXPECT_OK(rm_config_set(&c, "epochs", "3.0", "command line"));
    assert_int_equal(c.epochs, 3);
    EXPECT_OK(rm_config_set(&c, "batch", "256/2", "command line"));
    assert_int_equal(c.batch, 128);
    EXPECT_OK(rm_config_set(&c, "augment", " -1 ", NULL));
    assert_int_equal(c.augment, -1);
    EXPECT_ERR(rm_config_set(&c, "epochs", "3.5", "command line"), RM_ERR_ARG,
               "command line: epochs: expected an integer, got '3.5'");
    EXPECT_ERR(rm_config_set(&c, "epochs", "99999999999", "command line"), RM_ERR_ARG,
               "epochs: 99999999999 does not fit in an int");
    assert_int_equal(c.epochs, 3);
    /* int64 */
    EXPECT_OK(rm_config_set(&c, "train_subset", "60000", NULL));
    assert_true(c.train_subset == 60000);
    EXPECT_OK(rm_config_set(&c, "test_subset", "5000000000", NULL));
    assert_true(c.test_subset == INT64_C(5000000000));
    /* uint64: all 64 bits exact */
    EXPECT_OK(rm_config_set(&c, "seed", "18446744073709551615", NULL));
    assert_true(c.seed == UINT64_MAX);
    EXPECT_OK(rm_config_set(&c, "seed", "1e3", NULL));
    assert_true(c.seed == 1000);
    EXPECT_ERR(rm_config_set(&c, "seed", "-1", "x"), RM_ERR_ARG, "x: seed: -1 is out of range");
    EXPECT_ERR(rm_config_set(&c, "seed", "18446744073709551616", "x"), RM_ERR_ARG, "seed: 18446744073709551616 is out of range");
    assert_true(c.seed == 1000);
    /* booleans */
    const char *yes[] = {"1", "true", "yes", "on", "TRUE", " On "};
    const char *no[] = {"0", "false", "no", "off", "No"};
    for (int k = 0; k < 6; k++) {
        EXPECT_OK(rm_config_set(&c, "amr_stop_f", no[k % 5], NULL));
        assert_int_equal(c.amr_stop_f, 0);
        EXPECT_OK(rm_config_set(&c, "amr_stop_f", yes[k], NULL));
        assert_int_equal(c.amr_stop_f, 1);
    }
    EXPECT_ERR(rm_config_set(&c, "agr_detach", "maybe", "command line"), RM_ERR_ARG,
               "command line: agr_detach: expected a boolean (0/1, true/false, yes/no, on/off), got 'maybe'");
    EXPECT_ERR(rm_config_set(&c, "agr_detach", "2", "command line"), RM_ERR_ARG, "agr_detach: expected a boolean");
    /* floats */
    EXPECT_OK(rm_config_set(&c, "eps", "8/255", NULL));
    assert_true(c.eps == 8.0 / 255.0);
    EXPECT_OK(rm_config_set(&c, "weight_decay", "1e-3", NULL));
    assert_true(c.weight_decay == 0.001);
    EXPECT_ERR(rm_config_set(&c, "eps", "big", "run.yaml:7"), RM_ERR_ARG,
               "run.yaml:7: eps: expected a number, got 'big'");
    EXPECT_ERR(rm_config_set(&c, "lr", "1/0", "command line"), RM_ERR_ARG,
               "command line: lr: expected a number, got '1/0' (division by zero)");
    /* free text is verbatim */
    EXPECT_OK(rm_config_set(&c, "data_dir", " /tmp/x y ", NULL));
    assert_string_equal(c.data_dir, " /tmp/x y ");
    /* enums are trimmed */
    EXPECT_OK(rm_config_set(&c, "model", " preact-resnet18", NULL));
    assert_string_equal(c.model, "preact-resnet18");
    EXPECT_OK(rm_config_set(&c, "agr_dir", "both", NULL));
    assert_string_equal(c.agr_dir, "both");
    /* eval list */
    EXPECT_OK(rm_config_set(&c, "eval_attacks", "clean, pgd50x5 ,cw10", NULL));
    assert_int_equal(c.n_eval, 3);
    assert_string_equal(c.eval[1].name, "pgd50x5");
    assert_string_equal(c.eval[2].name, "cw10");
    /* key=value in one string */
    EXPECT_OK(rm_config_set(&c, "lr=0.05", NULL, "command line"));
    assert_true(c.lr == 0.05);
    EXPECT_OK(rm_config_set(&c, " momentum = 0.5", NULL, "command line"));
    assert_true(c.momentum == 0.5);
    EXPECT_OK(rm_config_set(&c, "run_id=", NULL, "command line"));
    assert_string_equal(c.run_id, "");
    EXPECT_ERR(rm_config_set(&c, "eps", NULL, "command line"), RM_ERR_ARG,
               "command line: expected key=value, got 'eps'");
    EXPECT_ERR(rm_config_set(&c, "=3", NULL, "command line"), RM_ERR_ARG, "command line: empty setting name");
}

static void test_failed_set_changes_nothing(void **state) {
    (void)state;
    rm_config c, before;
    rm_config_defaults(&c);
    EXPECT_OK(rm_config_set(&c, "eval_attacks", "clean,pgd10", NULL));
    memcpy(&before, &c, sizeof c);
    EXPECT_ERR(rm_config_set(&c, "eps", "2", NULL), RM_ERR_ARG, "eps: 2 is out of range");
    EXPECT_ERR(rm_config_set(&c, "eval_attacks", "fgsm,pgd10,pgd10", NULL), RM_ERR_ARG, "duplicates");
    EXPECT_ERR(rm_config_set(&c, "model", "resnet", NULL), RM_ERR_ARG, "unknown value");
    EXPECT_ERR(rm_config_set(&c, "data_dir", "a\nb", NULL), RM_ERR_ARG, "control character");
    assert_memory_equal(&c, &before, sizeof c);
}

static void test_unknown_key_suggestion(void **state) {
    (void)state;
    rm_config c;
    rm_config_defaults(&c);
    EXPECT_ERR(rm_config_set(&c, "lamda", "1", "command line"), RM_ERR_ARG,
               "command line: unknown setting 'lamda' (did you mean 'lambda'?)");
    EXPECT_ERR(rm_config_set(&c, "EPS", "1", "command line"), RM_ERR_ARG,
               "unknown setting 'EPS' (did you mean 'eps'?)");
    EXPECT_ERR(rm_config_set(&c, "eval_attack", "clean", "command line"), RM_ERR_ARG,
               "(did you mean 'eval_attacks'?)");
    EXPECT_ERR(rm_config_set(&c, "learning_rate", "1", "command line"), RM_ERR_ARG,
               "command line: unknown setting 'learning_rate'");
    assert_null(strstr(rm_error_message(), "did you mean")); /* cleared by EXPECT_ERR: re-run */
    rm_config_set(&c, "zzzzqqqq", "1", "command line");
    assert_null(strstr(rm_error_message(), "did you mean"));
    rm_error_clear();
}

static void test_enum_and_range_errors(void **state) {
    (void)state;
    rm_config c;
    rm_config_defaults(&c);
    struct {
        const char *key, *value, *frag;
    } cases[] = {
        {"model", "resnet", "cl: model: unknown value 'resnet' (expected fmnist-cnn | preact-resnet18 | resnet18 | wrn-D-W (D = 6n+4 >= 10, W = 1..32)); did you mean 'resnet18'?"},
        {"model", "wrn-33-10", "cl: model: 'wrn-33-10': depth 33 is not 6n+4 with n >= 1 (10, 16, 22, 28, 34, 40, ...)"},
        {"model", "wrn-4-1", "model: 'wrn-4-1': depth 4 is not 6n+4 with n >= 1"},
        {"model", "wrn-148-1", "model: 'wrn-148-1': depth 148 is larger than 142, the deepest the engine holds"},
        {"model", "wrn-34-0", "model: 'wrn-34-0': widen factor 0 is not in 1..32"},
        {"model", "wrn-34-33", "model: 'wrn-34-33': widen factor 33 is not in 1..32"},
        {"model", "wrn-34", "model: 'wrn-34': expected wrn-D-W with a depth D and a widen factor W"},
        {"model", "wrn-034-10", "model: 'wrn-034-10': expected wrn-D-W"},
        {"model", "wrn-34-10x", "model: 'wrn-34-10x': expected wrn-D-W"},
        {"model", "wrn-34-+10", "model: 'wrn-34-+10': expected wrn-D-W"},
        {"dataset", "cifar", "dataset: unknown value 'cifar' (expected fashion-mnist | mnist | cifar10 | cifar100)"},
        {"method", "pgdat", "method: unknown value 'pgdat' (expected pgi | fgsm-rs | pgd-at | trades | pgk); did you mean 'pgd-at'?"},
        {"reg", "mixup", "reg: unknown value 'mixup' (expected none | mse | amr | agr | regmix)"},
        {"lr_schedule", "step", "lr_schedule: unknown value 'step' (expected multistep | cyclic | cosine | constant)"},
        {"agr_dir", "c|f", "agr_dir: unknown value 'c|f' (expected c||f | f||c | both); did you mean 'c||f'?"},
        {"agr_dir", "c||f||c||f", "agr_dir: unknown value 'c||f||c||f'"},
        {"eps", "2", "cl: eps: 2 is out of range (number in [0, 1])"},
        /* 1/255 = 0.0039215686274509803...: 15 significant digits already read back */
        {"eps", "-1/255", "eps: -0.00392156862745098 is out of range"},
        {"step", "0", "step: 0 is out of range (number in (0, 1])"},
        {"epochs", "0", "epochs: 0 is out of range (integer >= 1)"},
        {"batch", "-3", "batch: -3 is out of range (integer >= 1)"},
        {"label_smoothing", "0", "label_smoothing: 0 is out of range (number in (0, 1])"},
        {"label_smoothing", "1.5", "label_smoothing: 1.5 is out of range"},
        {"lr", "0", "lr: 0 is out of range (number > 0)"},
        {"reset_every", "0", "reset_every: 0 is out of range (integer >= 1)"},
        {"threads", "-1", "threads: -1 is out of range (integer >= 0)"},
        {"augment", "2", "augment: 2 is out of range (integer in [-1, 1])"},
        {"momentum", "1", "momentum: 1 is out of range (number in [0, 1))"},
        {"alpha", "-0.5", "alpha: -0.5 is out of range (number >= 0)"},
        {"run_id", "../escape", "run_id: '../escape' is not a valid run id"},
        {"run_id", "a b", "is not a valid run id"},
        {"data_dir", "bad\xff", "data_dir: 'bad\xff' is not valid UTF-8"},
        {"data_dir", "\xc0\xaf", "is not valid UTF-8"}, /* overlong '/' */
        {"outdir", "tab\there", "outdir: 'tab\there' contains a control character"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        EXPECT_ERR(rm_config_set(&c, cases[k].key, cases[k].value, "cl"), RM_ERR_ARG, cases[k].frag);

    /* boundaries that are inside */
    EXPECT_OK(rm_config_set(&c, "label_smoothing", "1", NULL));
    EXPECT_OK(rm_config_set(&c, "eps", "0", NULL));
    EXPECT_OK(rm_config_set(&c, "eps", "1", NULL));
    EXPECT_OK(rm_config_set(&c, "threads", "0", NULL));
    EXPECT_OK(rm_config_set(&c, "data_dir", "/données/ü", NULL)); /* valid UTF-8 */
    EXPECT_OK(rm_config_set(&c, "run_id", "pgi_eps8+reg=amr-1.5", NULL));

    char longtext[400];
    memset(longtext, 'a', sizeof longtext - 1);
    longtext[sizeof longtext - 1] = '\0';
    EXPECT_ERR(rm_config_set(&c, "outdir", longtext, "cl"), RM_ERR_ARG,
               "cl: outdir: value of 399 bytes is too long (at most 255)");
    longtext[256] = '\0';
    EXPECT_ERR(rm_config_set(&c, "outdir", longtext, "cl"), RM_ERR_ARG, "256 bytes is too long");
    longtext[255] = '\0'; /* 255 bytes + NUL fill the 256-byte field exactly */
    EXPECT_OK(rm_config_set(&c, "outdir", longtext, "cl"));
    assert_int_equal(strlen(c.outdir), 255);
}

static void test_validate_cross_field(void **state) {
    (void)state;
    rm_config c;
    rm_config_defaults(&c);
    /* every model takes every dataset's image shape */
    static const char *const models[] = {"fmnist-cnn", "preact-resnet18", "resnet18", "wrn-34-10", "wrn-10-1",
                                         "wrn-142-32"};
    static const char *const datasets[] = {"fashion-mnist", "mnist", "cifar10", "cifar100"};
    for (size_t m = 0; m < sizeof models / sizeof *models; m++)
        for (size_t d = 0; d < sizeof datasets / sizeof *datasets; d++) {
            EXPECT_OK(rm_config_set(&c, "model", models[m], NULL));
            EXPECT_OK(rm_config_set(&c, "dataset", datasets[d], NULL));
            EXPECT_OK(rm_config_validate(&c));
        }
    EXPECT_OK(rm_config_set(&c, "model", "fmnist-cnn", NULL));
    EXPECT_OK(rm_config_set(&c, "dataset", "mnist", NULL));
    /* a hand-filled struct is checked again */
    snprintf(c.model, sizeof c.model, "wrn-33-10");
    EXPECT_ERR(rm_config_validate(&c), RM_ERR_ARG, "model: 'wrn-33-10': depth 33 is not 6n+4");
    snprintf(c.model, sizeof c.model, "fmnist-cnn");
    EXPECT_OK(rm_config_validate(&c));

    /* regularisers belong to pgi / fgsm-rs */
    EXPECT_OK(rm_config_set(&c, "method", "pgd-at", NULL));
    EXPECT_ERR(rm_config_validate(&c), RM_ERR_ARG, "reg: 'regmix' applies to methods pgi, pgk and fgsm-rs only; method pgd-at needs reg: none");
    EXPECT_OK(rm_config_set(&c, "method", "trades", NULL));
    EXPECT_ERR(rm_config_validate(&c), RM_ERR_ARG, "method trades needs reg: none");
    EXPECT_OK(rm_config_set(&c, "reg", "none", NULL));
    EXPECT_OK(rm_config_validate(&c));
    EXPECT_OK(rm_config_set(&c, "method", "fgsm-rs", NULL));
    EXPECT_OK(rm_config_set(&c, "reg", "mse", NULL));
    EXPECT_OK(rm_config_validate(&c));

    /* the EMA gate reads pgk's r: refused elsewhere, and with the EMA off */
    EXPECT_OK(rm_config_set(&c, "ema_gate", "true", NULL));
    EXPECT_ERR(rm_config_validate(&c), RM_ERR_ARG, "ema_gate: applies to method pgk with its EMA model on; method fgsm-rs, ema auto");
    EXPECT_OK(rm_config_set(&c, "method", "pgk", NULL));
    EXPECT_OK(rm_config_validate(&c));
    assert_true(rm_config_ema_enabled(&c));
    EXPECT_OK(rm_config_set(&c, "ema", "off", NULL));
    assert_false(rm_config_ema_enabled(&c));
    EXPECT_ERR(rm_config_validate(&c), RM_ERR_ARG, "method pgk, ema off");
    EXPECT_OK(rm_config_set(&c, "ema_gate", "false", NULL));
    EXPECT_OK(rm_config_validate(&c));
    EXPECT_OK(rm_config_set(&c, "method", "fgsm-rs", NULL));
    assert_false(rm_config_ema_enabled(&c));
    EXPECT_OK(rm_config_set(&c, "ema", "on", NULL));
    assert_true(rm_config_ema_enabled(&c)); /* any method may keep an EMA */
    EXPECT_OK(rm_config_validate(&c));
    EXPECT_OK(rm_config_set(&c, "ema", "auto", NULL));

    EXPECT_OK(rm_config_set(&c, "train_subset", "1000", NULL));
    EXPECT_OK(rm_config_set(&c, "val_size", "1000", NULL));
    EXPECT_ERR(rm_config_validate(&c), RM_ERR_ARG, "val_size 1000 leaves no training samples out of train_subset 1000");
    EXPECT_OK(rm_config_set(&c, "val_size", "999", NULL));
    EXPECT_ERR(rm_config_validate(&c), RM_ERR_ARG,
               "batch 128 is larger than the 1 training samples (train_subset 1000 - val_size 999)");
    EXPECT_OK(rm_config_set(&c, "val_size", "872", NULL)); /* 128 left: one full batch */
    EXPECT_OK(rm_config_validate(&c));

    /* a struct filled by code is checked again */
    rm_config d = c;
    d.eps = NAN;
    EXPECT_ERR(rm_config_validate(&d), RM_ERR_ARG, "eps: nan is not a finite number");
    d = c;
    d.step = 0.0;
    EXPECT_ERR(rm_config_validate(&d), RM_ERR_ARG, "step: 0 is out of range");
    d = c;
    strcpy(d.method, "fgsm");
    EXPECT_ERR(rm_config_validate(&d), RM_ERR_ARG, "method: unknown value 'fgsm'");
    d = c;
    d.agr_detach = 2;
    EXPECT_ERR(rm_config_validate(&d), RM_ERR_ARG, "agr_detach: 2 is not a boolean");
    d = c;
    d.n_eval = 0;
    EXPECT_ERR(rm_config_validate(&d), RM_ERR_ARG, "eval_attacks: 0 attacks (expected 1 to 12)");
    d = c;
    d.eval[2].steps = 50; /* name still says pgd20 */
    EXPECT_ERR(rm_config_validate(&d), RM_ERR_ARG, "eval_attacks: attack 3");
    d = c;
    d.eval[3] = d.eval[2];
    EXPECT_ERR(rm_config_validate(&d), RM_ERR_ARG, "eval_attacks: attacks 3 and 4 are both named pgd20");
}

static void test_eval_attack_specs(void **state) {
    (void)state;
    struct {
        const char *spec;
        rm_eval_kind kind;
        int steps, restarts;
        double eps;
        const char *name;
    } good[] = {
        {"clean", RM_EVAL_CLEAN, 0, 1, 0.0, "clean"},
        {"fgsm", RM_EVAL_FGSM, 1, 1, 0.0, "fgsm"},
        {" pgd20 ", RM_EVAL_PGD, 20, 1, 0.0, "pgd20"},
        {"pgd50x5", RM_EVAL_PGD, 50, 5, 0.0, "pgd50x5"},
        {"pgd20x1", RM_EVAL_PGD, 20, 1, 0.0, "pgd20"},
        {"pgd010", RM_EVAL_PGD, 10, 1, 0.0, "pgd10"},
        {"cw20", RM_EVAL_CW, 20, 1, 0.0, "cw20"},
        {"cw30x2", RM_EVAL_CW, 30, 2, 0.0, "cw30x2"},
        /* 12/255 = 0.0470588..., 4 significant digits: 0.04706 */
        {"pgd20@12/255", RM_EVAL_PGD, 20, 1, 12.0 / 255.0, "pgd20_eps0.04706"},
        /* 8/255 = 0.0313725... -> 0.03137; 16/255 = 0.0627450... -> 0.06275 */
        {"fgsm@8/255", RM_EVAL_FGSM, 1, 1, 8.0 / 255.0, "fgsm_eps0.03137"},
        {"pgd50x5@16/255", RM_EVAL_PGD, 50, 5, 16.0 / 255.0, "pgd50x5_eps0.06275"},
        {"cw20@0.5", RM_EVAL_CW, 20, 1, 0.5, "cw20_eps0.5"},
        {"pgd10000x100@1", RM_EVAL_PGD, 10000, 100, 1.0, "pgd10000x100_eps1"},
        /* AutoAttack and its components: whole names, steps 0 */
        {"aa", RM_EVAL_AUTO, 0, 1, 0.0, "aa"},
        {" aa-fast", RM_EVAL_AUTO, 0, 1, 0.0, "aa-fast"},
        {"apgd-ce", RM_EVAL_AUTO, 0, 1, 0.0, "apgd-ce"},
        {"apgd-t", RM_EVAL_AUTO, 0, 1, 0.0, "apgd-t"},
        {"fab-t", RM_EVAL_AUTO, 0, 1, 0.0, "fab-t"},
        {"square", RM_EVAL_AUTO, 0, 1, 0.0, "square"},
        {"aa@12/255", RM_EVAL_AUTO, 0, 1, 12.0 / 255.0, "aa_eps0.04706"},
        {"aa-fast@0.2", RM_EVAL_AUTO, 0, 1, 0.2, "aa-fast_eps0.2"},
    };
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        rm_eval_attack a;
        if (rm_eval_attack_parse(good[k].spec, &a) != RM_OK)
            fail_msg("'%s' rejected: %s", good[k].spec, rm_error_message());
        assert_int_equal(a.kind, good[k].kind);
        assert_int_equal(a.steps, good[k].steps);
        assert_int_equal(a.restarts, good[k].restarts);
        assert_true(a.eps == good[k].eps);
        assert_string_equal(a.name, good[k].name);
        static const struct { const char *name; unsigned parts; } parts[] = {
            {"aa", RM_AA_STANDARD}, {"aa-fast", RM_AA_APGD_CE | RM_AA_APGD_T}, {"apgd-ce", RM_AA_APGD_CE},
            {"apgd-t", RM_AA_APGD_T}, {"fab-t", RM_AA_FAB_T}, {"square", RM_AA_SQUARE}};
        unsigned want_parts = 0;
        for (size_t q = 0; q < sizeof parts / sizeof *parts; q++)
            if (a.kind == RM_EVAL_AUTO && strncmp(a.name, parts[q].name, strlen(parts[q].name)) == 0 &&
                (a.name[strlen(parts[q].name)] == '\0' || a.name[strlen(parts[q].name)] == '_'))
                want_parts = parts[q].parts;
        assert_int_equal(a.aa_parts, want_parts);
        /* the spec reads back as the very same attack */
        char spec[96];
        rm_eval_attack b;
        assert_true(rm_eval_attack_spec(&a, spec, sizeof spec) > 0);
        EXPECT_OK(rm_eval_attack_parse(spec, &b));
        assert_true(b.kind == a.kind && b.steps == a.steps && b.restarts == a.restarts && b.eps == a.eps &&
                    b.aa_parts == a.aa_parts);
        assert_string_equal(b.name, a.name);
    }
    char spec[96];
    rm_eval_attack a;
    EXPECT_OK(rm_eval_attack_parse("pgd50x5@0.25", &a));
    rm_eval_attack_spec(&a, spec, sizeof spec);
    assert_string_equal(spec, "pgd50x5@0.25");

    struct {
        const char *spec, *frag;
    } bad[] = {
        {"", "empty attack spec"},
        {"pgd", "steps K must be an integer from 1 to 10000"},
        {"pgd0", "steps K must be an integer from 1 to 10000"},
        {"pgd10001", "steps K must be an integer from 1 to 10000"},
        {"pgdx5", "steps K"},
        {"pgd20x0", "restarts R must be an integer from 1 to 100"},
        {"pgd20x101", "restarts R"},
        {"pgd20x", "restarts R"},
        {"pgd20@", "budget is not a number"},
        {"pgd20@abc", "budget is not a number"},
        {"pgd20@1/0", "budget is not a number"},
        {"pgd20@12", "budget must be in (0, 1]"},
        {"pgd20@0", "budget must be in (0, 1]"},
        {"clean@0.1", "clean takes no budget"},
        {"fgsmx2", "expected clean, fgsm, pgdK, pgdKxR, cwK or cwKxR"},
        {"PGD20", "expected clean"},
        {"autoattack", "expected clean"},
        {"pgd20y", "expected clean"},
        {"pgd 20", "steps K"},
        {"aa20", "expected clean"},
        {"aa-", "expected clean"},
        {"AA", "expected clean"},
        {"apgd", "expected clean"},
        {"aa@0", "budget must be in (0, 1]"},
        {"square@", "budget is not a number"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char want[160];
        snprintf(want, sizeof want, "eval attack '%s': %s", bad[k].spec, bad[k].frag);
        EXPECT_ERR(rm_eval_attack_parse(bad[k].spec, &a), RM_ERR_ARG, want);
    }
}

static void test_eval_attack_lists(void **state) {
    (void)state;
    rm_eval_attack list[RM_CFG_MAX_EVAL];
    int n = -1;
    EXPECT_OK(rm_eval_attacks_parse("clean,fgsm,pgd20,pgd20@12/255,pgd50x5,cw20", list, &n, NULL));
    assert_int_equal(n, 6);
    assert_string_equal(list[3].name, "pgd20_eps0.04706");
    EXPECT_ERR(rm_eval_attacks_parse("clean,fgsm,pgd20,pgd20", list, &n, "cl"), RM_ERR_ARG,
               "cl: eval_attacks: 'pgd20' duplicates attack 3 (both are named pgd20)");
    EXPECT_ERR(rm_eval_attacks_parse("pgd20,pgd20x1", list, &n, "cl"), RM_ERR_ARG,
               "'pgd20x1' duplicates attack 1");
    /* different budgets that print the same: same metric name, refused */
    EXPECT_ERR(rm_eval_attacks_parse("pgd20@12/255,pgd20@0.047059", list, &n, "cl"), RM_ERR_ARG,
               "both are named pgd20_eps0.04706");
    EXPECT_ERR(rm_eval_attacks_parse("clean,fgsm,pgd10,pgd20,pgd50,cw10,cw20,cw50,pgd100,aa,aa-fast,square,fab-t",
                                     list, &n, "cl"),
               RM_ERR_ARG, "cl: eval_attacks: at most 12 attacks");
    EXPECT_ERR(rm_eval_attacks_parse("", list, &n, "cl"), RM_ERR_ARG, "cl: eval_attacks: empty list");
    EXPECT_ERR(rm_eval_attacks_parse("clean,", list, &n, "cl"), RM_ERR_ARG, "eval_attacks: '': empty attack spec");
    EXPECT_ERR(rm_eval_attacks_parse("clean,pgd", list, &n, "cl"), RM_ERR_ARG,
               "cl: eval_attacks: 'pgd': steps K must be");
    assert_int_equal(n, 6); /* failures leave the list alone */
    EXPECT_OK(rm_eval_attacks_parse("clean,fgsm,pgd10,pgd20,pgd50,cw10,cw20,cw50,aa,aa@12/255,aa-fast,square", list,
                                    &n, NULL));
    assert_int_equal(n, 12);
    assert_string_equal(list[9].name, "aa_eps0.04706");
}

static void test_co_flag(void **state) {
    (void)state;
    rm_config c;
    rm_config_defaults(&c); /* co_threshold 0.5 */
    int f = -2, p = -2;
    assert_int_equal(rm_config_co_attacks(&c, &f, &p), 1);
    assert_int_equal(f, 1);
    assert_int_equal(p, 2);
    assert_int_equal(rm_config_co_flag(&c, 0.80, 0.39), 1);  /* 0.39 < 0.40 */
    assert_int_equal(rm_config_co_flag(&c, 0.80, 0.41), 0);
    assert_int_equal(rm_config_co_flag(&c, 0.30, 0.00), 0);  /* FGSM not above 0.3 */
    assert_int_equal(rm_config_co_flag(&c, 0.31, 0.00), 1);
    EXPECT_OK(rm_config_set(&c, "co_threshold", "0.25", NULL));
    assert_int_equal(rm_config_co_flag(&c, 0.80, 0.19), 1);
    assert_int_equal(rm_config_co_flag(&c, 0.80, 0.21), 0);

    EXPECT_OK(rm_config_set(&c, "eval_attacks", "pgd10@0.2,clean,pgd20,fgsm,pgd50", NULL));
    assert_int_equal(rm_config_co_attacks(&c, &f, &p), 1);
    assert_int_equal(f, 3);
    assert_int_equal(p, 2); /* first pgd at the run's budget */
    EXPECT_OK(rm_config_set(&c, "eval_attacks", "clean,fgsm@12/255,pgd20", NULL));
    assert_int_equal(rm_config_co_attacks(&c, &f, &p), 0);
    assert_int_equal(f, -1);
    assert_int_equal(p, -1);
    EXPECT_OK(rm_config_set(&c, "eval_attacks", "clean,fgsm,cw20", NULL));
    assert_int_equal(rm_config_co_attacks(&c, &f, &p), 0);
}

/* Bad input of issue 9 item 4, each refused with a message naming the setting. */
static void test_input_checks(void **state) {
    (void)state;
    rm_config c;
    rm_config_defaults(&c);
    /* eps: negative, NaN, infinite; a NaN filled in by code */
    EXPECT_ERR(rm_config_set(&c, "eps", "-0.1", "cl"), RM_ERR_ARG, "cl: eps: -0.1 is out of range (number in [0, 1])");
    EXPECT_ERR(rm_config_set(&c, "eps", "nan", "cl"), RM_ERR_ARG, "cl: eps: expected a number, got 'nan'");
    EXPECT_ERR(rm_config_set(&c, "eps", "inf", "cl"), RM_ERR_ARG, "cl: eps: expected a number, got 'inf'");
    EXPECT_ERR(rm_config_set(&c, "step", "NaN", "cl"), RM_ERR_ARG, "cl: step: expected a number, got 'NaN'");
    EXPECT_ERR(rm_config_set(&c, "eps", "1/0", "cl"), RM_ERR_ARG, "eps: expected a number, got '1/0' (division by zero)");
    rm_config d = c;
    d.step = NAN;
    EXPECT_ERR(rm_config_validate(&d), RM_ERR_ARG, "step: nan is not a finite number");

    /* step against eps: up to 2 eps is a real choice (FGSM-RS takes 1.25 eps), beyond it
     * the projection makes it the same attack as 2 eps */
    EXPECT_OK(rm_config_set(&c, "eps", "0.1", NULL));
    EXPECT_OK(rm_config_set(&c, "step", "0.2", NULL));
    EXPECT_OK(rm_config_validate(&c));
    EXPECT_OK(rm_config_set(&c, "step", "0.21", NULL));
    EXPECT_ERR(rm_config_validate(&c), RM_ERR_ARG,
               "step: 0.21 is more than 2 x eps (eps 0.1): every sign step that large lands on the eps-ball's "
               "boundary, exactly as step 0.2 does; use step <= 0.2");
    EXPECT_OK(rm_config_set(&c, "method", "fgsm-rs", NULL));
    EXPECT_OK(rm_config_set(&c, "eps", "8/255", NULL));
    EXPECT_OK(rm_config_set(&c, "step", "10/255", NULL)); /* 1.25 eps */
    EXPECT_OK(rm_config_validate(&c));
    EXPECT_OK(rm_config_set(&c, "step", "16/255", NULL)); /* exactly 2 eps */
    EXPECT_OK(rm_config_validate(&c));
    EXPECT_OK(rm_config_set(&c, "step", "17/255", NULL));
    EXPECT_ERR(rm_config_validate(&c), RM_ERR_ARG, "step: 0.06666666666666667 is more than 2 x eps");
    EXPECT_OK(rm_config_set(&c, "eps", "0", NULL)); /* no perturbation: any step */
    EXPECT_OK(rm_config_validate(&c));
    rm_config_defaults(&c);
    EXPECT_OK(rm_config_set(&c, "eps", "8/255", NULL)); /* the default step 0.1 is 3.2 eps */
    EXPECT_ERR(rm_config_validate(&c), RM_ERR_ARG, "step: 0.1 is more than 2 x eps (eps 0.03137254901960784)");

    /* TRADES' weight is trades_beta; a beta given with trades (its 0.1 meaning) is refused */
    rm_config_defaults(&c);
    EXPECT_OK(rm_config_set(&c, "method", "trades", NULL));
    EXPECT_OK(rm_config_set(&c, "reg", "none", NULL));
    EXPECT_OK(rm_config_validate(&c));
    EXPECT_OK(rm_config_set(&c, "beta", "6", NULL));
    EXPECT_ERR(rm_config_validate(&c), RM_ERR_ARG,
               "beta: 6 is the AMR weight (reg amr and regmix) and does nothing with method trades; TRADES' weight "
               "is trades_beta (regmix 0.1 used beta for it: write trades_beta=6)");
    EXPECT_OK(rm_config_set(&c, "beta", "0.5", NULL));
    EXPECT_OK(rm_config_set(&c, "trades_beta", "3", NULL));
    EXPECT_OK(rm_config_validate(&c));
    EXPECT_ERR(rm_config_set(&c, "trades_beta", "-1", "cl"), RM_ERR_ARG, "cl: trades_beta: -1 is out of range (number >= 0)");

    /* unknown model and dataset, with a suggestion */
    EXPECT_ERR(rm_config_set(&c, "model", "fmnist_cnn", "cl"), RM_ERR_ARG,
               "cl: model: unknown value 'fmnist_cnn' (expected fmnist-cnn | preact-resnet18 | resnet18 | wrn-D-W (D = 6n+4 >= 10, W = 1..32)); did you mean 'fmnist-cnn'?");
    EXPECT_ERR(rm_config_set(&c, "model", "preact-resnet", "cl"), RM_ERR_ARG, "did you mean 'preact-resnet18'?");
    EXPECT_ERR(rm_config_set(&c, "dataset", "cifar-10", "cl"), RM_ERR_ARG,
               "cl: dataset: unknown value 'cifar-10' (expected fashion-mnist | mnist | cifar10 | cifar100); did you mean 'cifar10'?");
    EXPECT_ERR(rm_config_set(&c, "dataset", "fashion_mnist", "cl"), RM_ERR_ARG, "did you mean 'fashion-mnist'?");

    /* run ids that would leave the output directory */
    static const char *const escapes[] = {"..", "../x", "/etc/passwd", "a/b", ".hidden", "-x", "a\\b", "a b"};
    for (size_t k = 0; k < sizeof escapes / sizeof escapes[0]; k++) {
        char frag[160];
        snprintf(frag, sizeof frag, "cl: run_id: '%s' is not a valid run id", escapes[k]);
        EXPECT_ERR(rm_config_set(&c, "run_id", escapes[k], "cl"), RM_ERR_ARG, frag);
    }
    EXPECT_OK(rm_config_set(&c, "run_id", "a..b", NULL)); /* dots inside a name stay in the folder */
}

/* The checks that need the machine and the data (rm_config_check_run). */
static void test_check_run(void **state) {
    (void)state;
    rm_config c;
    rm_config_defaults(&c);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_true(cpus >= 1);
    char v[32], frag[160];
    snprintf(v, sizeof v, "%ld", cpus);
    EXPECT_OK(rm_config_set(&c, "threads", v, NULL));
    EXPECT_OK(rm_config_check_run(&c, 60000));
    snprintf(v, sizeof v, "%ld", cpus + 1);
    EXPECT_OK(rm_config_set(&c, "threads", v, NULL));
    EXPECT_OK(rm_config_validate(&c)); /* a run file from a bigger node still loads */
    snprintf(frag, sizeof frag, "threads: %ld is more than the %ld CPUs online on this machine", cpus + 1, cpus);
    EXPECT_ERR(rm_config_check_run(&c, 60000), RM_ERR_ARG, frag);

    rm_config_defaults(&c);
    EXPECT_OK(rm_config_check_run(&c, 128));
    EXPECT_ERR(rm_config_check_run(&c, 127), RM_ERR_ARG,
               "batch 128 is larger than the 127 training samples of fashion-mnist (after train_subset 0 and val_size 0)");
    EXPECT_OK(rm_config_check_run(&c, -1)); /* no count: no data check */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_setting_table),
        cmocka_unit_test(test_parse_number_good),
        cmocka_unit_test(test_parse_number_bad),
        cmocka_unit_test(test_format_number),
        cmocka_unit_test(test_set_each_type),
        cmocka_unit_test(test_failed_set_changes_nothing),
        cmocka_unit_test(test_unknown_key_suggestion),
        cmocka_unit_test(test_enum_and_range_errors),
        cmocka_unit_test(test_validate_cross_field),
        cmocka_unit_test(test_eval_attack_specs),
        cmocka_unit_test(test_eval_attack_lists),
        cmocka_unit_test(test_co_flag),
        cmocka_unit_test(test_input_checks),
        cmocka_unit_test(test_check_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
