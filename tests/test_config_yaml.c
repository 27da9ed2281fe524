/* Run files: YAML loading (scalars, sequences, comments), errors with the right line
 * numbers, the canonical YAML text, the load(to_yaml(c)) == c round trip, and the run
 * hash (FNV-1a 64, recomputed here from the published test vectors). Files are written
 * into a mkdtemp directory that is removed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regmix/config.h"

static char tmpdir[64];
static char path[128];

static int make_dir(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/regmix-config-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(path, sizeof path, "%s/run.yaml", tmpdir);
    return 0;
}

static int remove_dir(void **state) {
    (void)state;
    unlink(path);
    return rmdir(tmpdir);
}

static const char *write_file(const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("fopen(%s) failed", path);
    if (fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f) != 0) fail_msg("write %s failed", path);
    return path;
}

#define EXPECT_ERR(call, want, frag) expect_err_at((call), (want), (frag), #call, __LINE__)
static void expect_err_at(rm_status got, rm_status want, const char *frag, const char *what, int line) {
    char msg[1100];
    snprintf(msg, sizeof msg, "%s", rm_error_message());
    rm_error_clear();
    if (got != want)
        fail_msg("line %d: %s returned %s, expected %s (message: %s)", line, what, rm_status_name(got),
                 rm_status_name(want), msg);
    if (!strstr(msg, frag)) fail_msg("line %d: %s: message \"%s\" lacks \"%s\"", line, what, msg, frag);
}

#define EXPECT_OK(call)                                                                          \
    do {                                                                                         \
        rm_status s_ = (call);                                                                   \
        if (s_ != RM_OK) {                                                                       \
            char m_[1100];                                                                       \
            snprintf(m_, sizeof m_, "%s", rm_error_message());                                   \
            rm_error_clear();                                                                    \
            fail_msg("%s failed: %s", #call, m_);                                                \
        }                                                                                        \
    } while (0)

/* Loads `text` as a run file into defaults; expects an error naming "run.yaml:<frag>". */
static void expect_file_err(const char *text, rm_status want, const char *frag, int line) {
    rm_config c, before;
    rm_config_defaults(&c);
    before = c;
    rm_status st = rm_config_load_yaml(&c, write_file(text));
    expect_err_at(st, want, frag, text, line);
    if (memcmp(&c, &before, sizeof c) != 0) fail_msg("line %d: a failed load changed the config", line);
}
#define EXPECT_FILE_ERR(text, want, frag) expect_file_err((text), (want), (frag), __LINE__)

static void test_load_settings(void **state) {
    (void)state;
    const char *text =
        "# a run file\n"
        "model: preact-resnet18\n"
        "dataset: cifar10   # trailing comment\n"
        "eps: 8/255\n"
        "step: \"2/255\"\n"
        "epochs: 3\n"
        "eval_attacks:\n"
        "  - clean\n"
        "  # a comment inside the list\n"
        "  - pgd50x5\n"
        "  - pgd20@12/255\n"
        "agr_dir: f||c\n"
        "amr_stop_f: yes\n"
        "data_dir: \"/data/my cifar: v2 # not a comment\"\n"
        "seed: 18446744073709551615\n"
        "outdir: 'quoted/single'\n";
    rm_config c;
    rm_config_defaults(&c);
    EXPECT_OK(rm_config_load_yaml(&c, write_file(text)));
    assert_string_equal(c.model, "preact-resnet18");
    assert_string_equal(c.dataset, "cifar10");
    assert_true(c.eps == 8.0 / 255.0);
    assert_true(c.step == 2.0 / 255.0);
    assert_int_equal(c.epochs, 3);
    assert_int_equal(c.n_eval, 3);
    assert_string_equal(c.eval[0].name, "clean");
    assert_string_equal(c.eval[1].name, "pgd50x5");
    assert_int_equal(c.eval[1].restarts, 5);
    assert_string_equal(c.eval[2].name, "pgd20_eps0.04706");
    assert_true(c.eval[2].eps == 12.0 / 255.0);
    assert_string_equal(c.agr_dir, "f||c");
    assert_int_equal(c.amr_stop_f, 1);
    assert_string_equal(c.data_dir, "/data/my cifar: v2 # not a comment");
    assert_true(c.seed == UINT64_MAX);
    assert_string_equal(c.outdir, "quoted/single");
    /* untouched settings keep their values */
    assert_int_equal(c.batch, 128);
    assert_string_equal(c.method, "pgi");
    EXPECT_OK(rm_config_validate(&c));

    /* eval_attacks as a flow sequence and as a comma-separated scalar */
    EXPECT_OK(rm_config_load_yaml(&c, write_file("eval_attacks: [fgsm, cw20x3]\n")));
    assert_int_equal(c.n_eval, 2);
    assert_string_equal(c.eval[1].name, "cw20x3");
    EXPECT_OK(rm_config_load_yaml(&c, write_file("eval_attacks: clean, pgd10, fgsm@16/255\n")));
    assert_int_equal(c.n_eval, 3);
    assert_string_equal(c.eval[2].name, "fgsm_eps0.06275"); /* 16/255 = 0.0627450... */

    /* empty files and comment-only files set nothing */
    rm_config before = c;
    EXPECT_OK(rm_config_load_yaml(&c, write_file("")));
    EXPECT_OK(rm_config_load_yaml(&c, write_file("# nothing here\n\n")));
    EXPECT_OK(rm_config_load_yaml(&c, write_file("---\n")));
    assert_memory_equal(&c, &before, sizeof c);
}

static void test_load_errors_with_lines(void **state) {
    (void)state;
    /* a bad value on line 7 */
    EXPECT_FILE_ERR("model: fmnist-cnn\n"
                    "dataset: mnist\n"
                    "\n"
                    "# budget\n"
                    "epochs: 2\n"
                    "batch: 64\n"
                    "eps: big\n",
                    RM_ERR_ARG, "run.yaml:7: eps: expected a number, got 'big'");
    EXPECT_FILE_ERR("epochs: 2\n"
                    "# weights\n"
                    "lamda: 3\n",
                    RM_ERR_ARG, "run.yaml:3: unknown setting 'lamda' (did you mean 'lambda'?)");
    EXPECT_FILE_ERR("epochs: 2\nmodel: resnet\n", RM_ERR_ARG,
                    "run.yaml:2: model: unknown value 'resnet' (expected fmnist-cnn | preact-resnet18 | resnet18 | wrn-D-W (D = 6n+4 >= 10, W = 1..32)); did you mean 'resnet18'?");
    EXPECT_FILE_ERR("epochs: 2\nmodel: wrn-33-10\n", RM_ERR_ARG,
                    "run.yaml:2: model: 'wrn-33-10': depth 33 is not 6n+4 with n >= 1 (10, 16, 22, 28, 34, 40, ...)");
    EXPECT_FILE_ERR("epochs: 2\neps: 2\n", RM_ERR_ARG, "run.yaml:2: eps: 2 is out of range (number in [0, 1])");
    EXPECT_FILE_ERR("epochs: 3.5\n", RM_ERR_ARG, "run.yaml:1: epochs: expected an integer, got '3.5'");
    EXPECT_FILE_ERR("eps: 0.1\n"
                    "step: 0.1\n"
                    "\n"
                    "eps: 0.2\n",
                    RM_ERR_FORMAT, "run.yaml:4: duplicate setting 'eps' (first given on line 1)");
    /* a bad item of a block sequence: its own line */
    EXPECT_FILE_ERR("epochs: 2\n"
                    "eval_attacks:\n"
                    "  - clean\n"
                    "  - pgd\n",
                    RM_ERR_ARG, "run.yaml:4: eval_attacks: 'pgd': steps K must be an integer");
    EXPECT_FILE_ERR("eval_attacks:\n"
                    "  - pgd20\n"
                    "  - pgd20x1\n",
                    RM_ERR_ARG, "eval_attacks: 'pgd20x1' duplicates attack 1");
    EXPECT_FILE_ERR("eval_attacks:\n  - clean\n  - [fgsm]\n", RM_ERR_FORMAT,
                    "run.yaml:3: eval_attacks: expected a list of attack names, got a sequence inside it");
    EXPECT_FILE_ERR("eval_attacks: [clean, fgsm, pgd10, pgd20, pgd50, cw10, cw20, cw50, pgd100, aa, fab-t, square, "
                    "apgd-t]\n",
                    RM_ERR_ARG, "run.yaml:1: eval_attacks: at most 12 attacks");
    EXPECT_FILE_ERR("epochs: 2\neps: [0.1, 0.2]\n", RM_ERR_FORMAT,
                    "run.yaml:2: eps: expected a single value, got a sequence");
    /* nested mapping: the inner mapping starts on line 3 */
    EXPECT_FILE_ERR("epochs: 2\n"
                    "model:\n"
                    "  name: fmnist-cnn\n",
                    RM_ERR_FORMAT, "run.yaml:3: model: expected a value, got a mapping (settings are not nested)");
    EXPECT_FILE_ERR("epochs: 2\n? [a, b]\n: 3\n", RM_ERR_FORMAT, "run.yaml:2: expected a setting name, got a sequence");
    EXPECT_FILE_ERR("eps: &e 0.1\nstep: *e\n", RM_ERR_FORMAT, "run.yaml:2: step: expected a value, got an alias");
    /* top level */
    EXPECT_FILE_ERR("- eps: 0.1\n- step: 0.1\n", RM_ERR_FORMAT,
                    "run.yaml:1: the top level must be a mapping of settings (key: value), got a sequence");
    EXPECT_FILE_ERR("# header\nhello\n", RM_ERR_FORMAT, "run.yaml:2: the top level must be a mapping");
    EXPECT_FILE_ERR("eps: 0.1\n---\neps: 0.2\n", RM_ERR_FORMAT, "run.yaml:2: more than one YAML document");
    /* syntax errors carry libyaml's line (a sequence entry where a key belongs; a tab
     * in the indentation) */
    EXPECT_FILE_ERR("epochs: 2\n"
                    "batch: 3\n"
                    "- x\n",
                    RM_ERR_FORMAT, "run.yaml:3: YAML syntax error: did not find expected key");
    EXPECT_FILE_ERR("epochs: 2\n"
                    "batch: 3\n"
                    "\tlr: 1\n",
                    RM_ERR_FORMAT, "run.yaml:3: YAML syntax error: found a tab character");
    /* events arrive as they are parsed: a bad value before a syntax error is reported
     * first, which is still an error naming its line */
    EXPECT_FILE_ERR("model: fmnist-cnn\n"
                    "eps: 0.1\n"
                    "  step: 0.2\n",
                    RM_ERR_ARG, "run.yaml:2: eps: expected a number, got '0.1 step'");
    EXPECT_FILE_ERR("epochs: 2\nmodel: \"fmnist\n", RM_ERR_FORMAT,
                    "run.yaml:3: YAML syntax error: found unexpected end of stream while scanning a quoted scalar");
    EXPECT_FILE_ERR("data_dir: \"a\\0b\"\n", RM_ERR_FORMAT, "run.yaml:1: a scalar contains a NUL character");
}

static void test_missing_file(void **state) {
    (void)state;
    rm_config c;
    rm_config_defaults(&c);
    char missing[200];
    snprintf(missing, sizeof missing, "%s/no-such-run.yaml", tmpdir);
    rm_status st = rm_config_load_yaml(&c, missing);
    char want[240];
    snprintf(want, sizeof want, "fopen(%s): No such file or directory", missing);
    expect_err_at(st, RM_ERR_IO, want, "load missing", __LINE__);
}

/* The exact text of the defaults, written by hand from the documented defaults and the
 * printing rules (shortest round-trip numbers, true/false, quotes only where needed). */
static const char *const default_yaml =
    "model: fmnist-cnn\n"
    "dataset: fashion-mnist\n"
    "data_dir: \"\"\n"
    "train_subset: 0\n"
    "val_size: 0\n"
    "test_subset: 1000\n"
    "augment: -1\n"
    "method: pgi\n"
    "reg: regmix\n"
    "alpha: 1\n"
    "beta: 0.5\n"
    "trades_beta: 6\n"
    "gamma: 1\n"
    "lambda: 10\n"
    "amr_stop_f: false\n"
    "amr_stop_i: false\n"
    "agr_dir: \"c||f\"\n"
    "agr_detach: false\n"
    "label_smoothing: 0.6\n"
    "eps: 0.1\n"
    "step: 0.1\n"
    "reset_every: 40\n"
    "pgi_momentum: 0.3\n"
    "train_attack_steps: 10\n"
    "ema: auto\n"
    "ema_value: 0.82\n"
    "ema_decay: 0.999\n"
    "ema_gate: false\n"
    "epochs: 8\n"
    "batch: 128\n"
    "lr: 0.1\n"
    "lr_schedule: multistep\n"
    "momentum: 0.9\n"
    "weight_decay: 0.0005\n"
    "seed: 0\n"
    "threads: 0\n"
    "precision: f32\n"
    "eval_attacks: [clean, fgsm, pgd20, cw20]\n"
    "eval_every: 1\n"
    "eval_model: ema\n"
    "co_threshold: 0.5\n"
    "final_eval_attacks: []\n"
    "final_test_subset: -1\n"
    "final_aa_images: 0\n"
    "outdir: results/runs\n"
    "run_id: \"\"\n"
    "checkpoint_every: 1\n";

static void test_default_yaml_text(void **state) {
    (void)state;
    rm_config c;
    rm_config_defaults(&c);
    char buf[RM_CFG_YAML_MAX];
    int n = rm_config_to_yaml(&c, buf, sizeof buf);
    assert_int_equal(n, (int)strlen(default_yaml));
    assert_string_equal(buf, default_yaml);
    assert_int_equal(rm_config_to_yaml(&c, buf, 100), -1); /* too small */
    assert_int_equal(rm_config_to_yaml(&c, buf, strlen(default_yaml)), -1); /* no room for the NUL */
    assert_int_equal(rm_config_to_yaml(&c, buf, strlen(default_yaml) + 1), n);
}

/* Compares every setting: numbers bit for bit, text exactly, and the eval structs. */
static void assert_same_config(const rm_config *a, const rm_config *b) {
    for (int i = 0; i < rm_config_setting_count(); i++) {
        char ta[600], tb[600];
        double na, nb;
        rm_config_setting_value(a, i, &na, ta, sizeof ta);
        rm_config_setting_value(b, i, &nb, tb, sizeof tb);
        if (rm_config_setting_type(i) != RM_SETTING_STRING && memcmp(&na, &nb, sizeof na) != 0)
            fail_msg("%s: %.17g != %.17g", rm_config_setting_name(i), na, nb);
        if (strcmp(ta, tb) != 0) fail_msg("%s: '%s' != '%s'", rm_config_setting_name(i), ta, tb);
    }
    assert_true(a->seed == b->seed); /* all 64 bits, not through a double */
    assert_true(a->train_subset == b->train_subset && a->test_subset == b->test_subset);
    assert_int_equal(a->n_eval, b->n_eval);
    for (int k = 0; k < a->n_eval; k++) {
        assert_int_equal(a->eval[k].kind, b->eval[k].kind);
        assert_int_equal(a->eval[k].steps, b->eval[k].steps);
        assert_int_equal(a->eval[k].restarts, b->eval[k].restarts);
        assert_memory_equal(&a->eval[k].eps, &b->eval[k].eps, sizeof(double));
        assert_string_equal(a->eval[k].name, b->eval[k].name);
    }
}

static void set_all(rm_config *c) {
    /* every setting away from its default, with values that are hard to print */
    static const char *const kv[][2] = {
        {"model", "preact-resnet18"},
        {"dataset", "cifar100"},
        {"data_dir", "  lead: \"quoted\" # \\back|slash {x} [y], & * ! % @ ` é"},
        {"train_subset", "50000"},
        {"val_size", "5000"},
        {"test_subset", "9999999999"},
        {"augment", "0"},
        {"method", "pgk"},
        {"reg", "amr"},
        {"alpha", "1/3"},
        {"beta", "1e-300"},
        {"trades_beta", "2.5"},
        {"gamma", "0.30000000000000004"},
        {"lambda", "1e22"},
        {"amr_stop_f", "on"},
        {"amr_stop_i", "yes"},
        {"agr_dir", "both"},
        {"agr_detach", "true"},
        {"label_smoothing", "2/3"},
        {"eps", "8/255"},
        {"step", "2/255"},
        {"reset_every", "10"},
        {"pgi_momentum", "0.123456789012345678"},
        {"train_attack_steps", "7"},
        {"ema", "on"},
        {"ema_value", "0.9"},
        {"ema_decay", "0.99"},
        {"ema_gate", "true"},
        {"epochs", "110"},
        {"batch", "512"},
        {"lr", "0.2"},
        {"lr_schedule", "cyclic"},
        {"momentum", "0"},
        {"weight_decay", "2e-4"},
        {"seed", "18446744073709551615"},
        {"threads", "16"},
        {"precision", "bf16"},
        {"eval_attacks", "fgsm,pgd50x5@12/255,cw20,clean,pgd10@1/3"},
        {"eval_every", "5"},
        {"eval_model", "student"},
        {"co_threshold", "0.1"},
        {"final_eval_attacks", "clean , pgd20@12/255,cw20x2,aa-fast"},
        {"final_test_subset", "0"},
        {"final_aa_images", "1000"},
        {"outdir", "out dir/with:colon"},
        {"run_id", "007"},
        {"checkpoint_every", "0"},
    };
    assert_int_equal(sizeof kv / sizeof kv[0], rm_config_setting_count());
    rm_config_defaults(c);
    for (size_t k = 0; k < sizeof kv / sizeof kv[0]; k++) {
        if (rm_config_set(c, kv[k][0], kv[k][1], "test") != RM_OK)
            fail_msg("set %s=%s: %s", kv[k][0], kv[k][1], rm_error_message());
        /* every one differs from its default (else the round trip would prove less) */
        char d[600], v[600];
        rm_config def;
        rm_config_defaults(&def);
        int i = rm_config_setting_find(kv[k][0]);
        rm_config_setting_text(&def, i, d, sizeof d);
        rm_config_setting_text(c, i, v, sizeof v);
        if (strcmp(d, v) == 0) fail_msg("%s still has its default", kv[k][0]);
    }
}

static void test_round_trip(void **state) {
    (void)state;
    rm_config c, back;
    set_all(&c);
    assert_int_equal(rm_config_validate(&c), RM_OK);
    char text[RM_CFG_YAML_MAX], text2[RM_CFG_YAML_MAX];
    int n = rm_config_to_yaml(&c, text, sizeof text);
    assert_true(n > 0);
    /* a few lines, by hand: quoting of strange strings and of a numeric-looking id */
    assert_non_null(strstr(text, "\ndata_dir: \"  lead: \\\"quoted\\\" # \\\\back|slash {x} [y], & * ! % @ ` é\"\n"));
    assert_non_null(strstr(text, "\nrun_id: \"007\"\n"));
    assert_non_null(strstr(text, "\noutdir: \"out dir/with:colon\"\n"));
    assert_non_null(strstr(text, "\nseed: 18446744073709551615\n"));
    assert_non_null(strstr(text, "\ngamma: 0.30000000000000004\n"));
    assert_non_null(strstr(text, "\namr_stop_f: true\n"));

    rm_config_defaults(&back);
    EXPECT_OK(rm_config_load_yaml(&back, write_file(text)));
    assert_same_config(&c, &back);
    assert_int_equal(rm_config_to_yaml(&back, text2, sizeof text2), n);
    assert_string_equal(text, text2);

    /* the defaults round-trip too, into a config that starts elsewhere */
    rm_config d;
    rm_config_defaults(&d);
    n = rm_config_to_yaml(&d, text, sizeof text);
    EXPECT_OK(rm_config_load_yaml(&back, write_file(text))); /* back holds set_all's values */
    assert_same_config(&d, &back);
}

/* FNV-1a 64, written from the definition (offset basis 14695981039346656037,
 * prime 1099511628211) and checked on the published vectors below. */
static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t k = 0; k < n; k++) {
        h ^= (unsigned char)s[k];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/* to_yaml's text without the outdir, run_id and checkpoint_every lines, with the
 * data_dir line at its default value (where the data lives is not the run's identity)
 * and without trades_beta (only a trades run's hash has its value, on the beta line). */
static void science_lines(const char *yaml, char *out) {
    out[0] = '\0';
    for (const char *p = yaml; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (!strncmp(p, "data_dir:", 9)) strcat(out, "data_dir: \"\"\n");
        else if (strncmp(p, "outdir:", 7) && strncmp(p, "run_id:", 7) && strncmp(p, "checkpoint_every:", 17) &&
                 strncmp(p, "trades_beta:", 12))
            strncat(out, p, len);
        p += len;
    }
}

static void test_hash(void **state) {
    (void)state;
    assert_true(fnv1a("", 0) == UINT64_C(0xcbf29ce484222325));
    assert_true(fnv1a("a", 1) == UINT64_C(0xaf63dc4c8601ec8c));
    assert_true(fnv1a("foobar", 6) == UINT64_C(0x85944171f73967e8));

    rm_config c;
    set_all(&c);
    char yaml[RM_CFG_YAML_MAX], want_text[RM_CFG_YAML_MAX], text[RM_CFG_YAML_MAX];
    rm_config_to_yaml(&c, yaml, sizeof yaml);
    science_lines(yaml, want_text);
    int n = rm_config_hash_text(&c, text, sizeof text);
    assert_int_equal(n, (int)strlen(want_text));
    assert_string_equal(text, want_text);
    assert_non_null(strstr(text, "\nthreads: 16\n"));
    assert_non_null(strstr(text, "\neval_every: 5\n"));
    assert_null(strstr(text, "outdir"));
    assert_non_null(strstr(yaml, "\ndata_dir: \"  lead:")); /* set_all moved the data */
    assert_non_null(strstr(text, "\ndata_dir: \"\"\n"));

    char h[17], want[17];
    rm_config_hash(&c, h);
    snprintf(want, sizeof want, "%016" PRIx64, fnv1a(want_text, strlen(want_text)));
    assert_string_equal(h, want);
    assert_int_equal(strspn(h, "0123456789abcdef"), 16);

    /* stable across a round trip through a file */
    rm_config back;
    rm_config_defaults(&back);
    EXPECT_OK(rm_config_load_yaml(&back, write_file(yaml)));
    char h2[17];
    rm_config_hash(&back, h2);
    assert_string_equal(h, h2);

    /* where the run is written, how often it checkpoints and where its data lives: same run */
    rm_config d = c;
    EXPECT_OK(rm_config_set(&d, "outdir", "/elsewhere", NULL));
    EXPECT_OK(rm_config_set(&d, "run_id", "renamed", NULL));
    EXPECT_OK(rm_config_set(&d, "checkpoint_every", "3", NULL));
    EXPECT_OK(rm_config_set(&d, "data_dir", "/moved/data", NULL));
    rm_config_hash(&d, h2);
    assert_string_equal(h, h2);
    EXPECT_OK(rm_config_set(&d, "data_dir", "", NULL));
    rm_config_hash(&d, h2);
    assert_string_equal(h, h2);

    /* science settings: another run */
    static const char *const changes[][2] = {
        {"eps", "8/255 "},   /* same value, different spelling: same hash */
        {"eps", "7/255"}, {"threads", "4"}, {"eval_every", "1"}, {"seed", "1"},
        {"eval_attacks", "fgsm,pgd50x5@12/255,cw20,clean"}, {"agr_detach", "0"},
    };
    for (size_t k = 0; k < sizeof changes / sizeof changes[0]; k++) {
        d = c;
        EXPECT_OK(rm_config_set(&d, changes[k][0], changes[k][1], NULL));
        rm_config_hash(&d, h2);
        if (k == 0) assert_string_equal(h, h2);
        else if (strcmp(h, h2) == 0) fail_msg("%s=%s did not change the hash", changes[k][0], changes[k][1]);
    }
}

/* Run identities written by regmix 0.1.0 (commit 2cbfded, the first release): the hash
 * of the default configuration and of a TRADES configuration. Settings added later enter
 * the hash only when they differ from their default, so these must never change: run
 * files and auto-named runs (<model>_<method>_<reg>_seed<N>_<hash8>) written by 0.1.0
 * keep resuming. */
static void test_hash_stable_across_versions(void **state) {
    (void)state;
    rm_config c;
    rm_config_defaults(&c);
    char h[17];
    rm_config_hash(&c, h);
    assert_string_equal(h, "eb2f08e24389cc67");
    /* 0.1.0's TRADES run had beta=6; today that weight is trades_beta (default 6) */
    EXPECT_OK(rm_config_set(&c, "method", "trades", NULL));
    EXPECT_OK(rm_config_set(&c, "reg", "none", NULL));
    rm_config_hash(&c, h);
    assert_string_equal(h, "93794e2700b2313d");
    EXPECT_OK(rm_config_set(&c, "trades_beta", "6", NULL));
    rm_config_hash(&c, h);
    assert_string_equal(h, "93794e2700b2313d");
    /* data_dir left the identity after 0.1.0 (a run's data may move): any value hashes
     * as the default "" did, so (a) default runs keep their 0.1.0 hash and id and (b)
     * runs differing only in data_dir are one run. (c) A file written by 0.1.0 with a
     * non-empty data_dir stored the hash of the old rule; resume and sweeps compare the
     * hash of the file's /config yaml under today's rules (test_runfile_resume). */
    EXPECT_OK(rm_config_set(&c, "data_dir", "/data/fashion", NULL));
    rm_config_hash(&c, h);
    assert_string_equal(h, "93794e2700b2313d");
    rm_config_defaults(&c);
    EXPECT_OK(rm_config_set(&c, "data_dir", "/somewhere/else", NULL));
    rm_config_hash(&c, h);
    assert_string_equal(h, "eb2f08e24389cc67");
    assert_true(rm_config_setting_hashed_as_default(rm_config_setting_find("data_dir")));
    assert_false(rm_config_setting_hashed_as_default(rm_config_setting_find("lr")));
    /* every setting is in the hash text or deliberately out of it */
    char text[RM_CFG_YAML_MAX];
    rm_config_defaults(&c);
    assert_true(rm_config_hash_text(&c, text, sizeof text) > 0);
    for (int i = 0; i < rm_config_setting_count(); i++) {
        char key[80];
        snprintf(key, sizeof key, "%s%s:", i ? "\n" : "", rm_config_setting_name(i));
        int in_text = i == 0 ? strncmp(text, key, strlen(key)) == 0 : strstr(text, key) != NULL;
        assert_int_equal(in_text, rm_config_setting_hashed(&c, i));
    }
}

/* The /config yaml a TRADES run file of regmix 0.1.0 holds (written by 0.1.0's
 * rm_config_to_yaml, commit 99b8138, for method=trades reg=none beta=3): no trades_beta,
 * the TRADES weight in beta. */
static const char legacy_trades_yaml[] =
    "model: fmnist-cnn\ndataset: fashion-mnist\ndata_dir: \"\"\ntrain_subset: 0\nval_size: 0\n"
    "test_subset: 1000\naugment: -1\nmethod: trades\nreg: none\nalpha: 1\nbeta: 3\ngamma: 1\nlambda: 10\n"
    "amr_stop_f: false\namr_stop_i: false\nagr_dir: \"c||f\"\nagr_detach: false\nlabel_smoothing: 0.6\n"
    "eps: 0.1\nstep: 0.1\nreset_every: 40\npgi_momentum: 0.3\ntrain_attack_steps: 10\nepochs: 8\nbatch: 128\n"
    "lr: 0.1\nlr_schedule: multistep\nmomentum: 0.9\nweight_decay: 0.0005\nseed: 0\nthreads: 0\n"
    "eval_attacks: [clean, fgsm, pgd20, cw20]\neval_every: 1\nco_threshold: 0.5\noutdir: results/runs\n"
    "run_id: \"\"\ncheckpoint_every: 1\n";

/* TRADES' own weight: the identities of 0.1.0's TRADES runs (hashes computed by 0.1.0's
 * code for beta 6, 3 and 0.5) are those of the same weights in trades_beta; an old run
 * file reads back with its weight; trades_beta does not touch other methods' identity. */
static void test_trades_weight(void **state) {
    (void)state;
    static const struct {
        const char *weight, *hash010;
    } pinned[] = {{"6", "93794e2700b2313d"}, {"3", "1f83cbc40d35835c"}, {"1/2", "2da79a12dd0bfa7c"}};
    rm_config c;
    char h[17];
    for (size_t k = 0; k < sizeof pinned / sizeof pinned[0]; k++) {
        rm_config_defaults(&c);
        EXPECT_OK(rm_config_set(&c, "method", "trades", NULL));
        EXPECT_OK(rm_config_set(&c, "reg", "none", NULL));
        EXPECT_OK(rm_config_set(&c, "trades_beta", pinned[k].weight, NULL));
        EXPECT_OK(rm_config_validate(&c));
        rm_config_hash(&c, h);
        assert_string_equal(h, pinned[k].hash010);
    }
    /* beta itself is not what a TRADES hash holds (and validation refuses it) */
    EXPECT_OK(rm_config_set(&c, "beta", "3", NULL));
    rm_config_hash(&c, h);
    assert_string_equal(h, "2da79a12dd0bfa7c");

    /* an old run file: beta 3 was the TRADES weight */
    rm_config old;
    rm_config_defaults(&old);
    EXPECT_OK(rm_config_load_yaml_text(&old, legacy_trades_yaml, "old.h5"));
    assert_true(old.trades_beta == 3.0 && old.beta == 0.5);
    EXPECT_OK(rm_config_validate(&old));
    rm_config_hash(&old, h);
    assert_string_equal(h, "1f83cbc40d35835c");
    /* written again today, it keeps trades_beta and reads back unchanged */
    char yaml[RM_CFG_YAML_MAX];
    assert_true(rm_config_to_yaml(&old, yaml, sizeof yaml) > 0);
    assert_non_null(strstr(yaml, "\nbeta: 0.5\ntrades_beta: 3\n"));
    rm_config back;
    rm_config_defaults(&back);
    EXPECT_OK(rm_config_load_yaml_text(&back, yaml, "new.h5"));
    assert_true(back.trades_beta == 3.0 && back.beta == 0.5);
    /* the legacy reading is for run files only: a user's file with beta for trades is
     * read as written, and refused by validation with the new name */
    rm_config user;
    rm_config_defaults(&user);
    EXPECT_OK(rm_config_load_yaml(&user, write_file("method: trades\nreg: none\nbeta: 3\n")));
    assert_true(user.beta == 3.0 && user.trades_beta == 6.0);
    EXPECT_ERR(rm_config_validate(&user), RM_ERR_ARG, "write trades_beta=3");
    /* an old non-TRADES run file is read as it is */
    char pgi_yaml[sizeof legacy_trades_yaml];
    snprintf(pgi_yaml, sizeof pgi_yaml, "%s", legacy_trades_yaml);
    memcpy(strstr(pgi_yaml, "method: trades\nreg: none"), "method: pgi   \nreg: amr ", 24);
    rm_config_defaults(&old);
    EXPECT_OK(rm_config_load_yaml_text(&old, pgi_yaml, "old.h5"));
    assert_true(old.beta == 3.0 && old.trades_beta == 6.0);

    /* other methods: trades_beta does nothing and is not hashed */
    rm_config a, b;
    rm_config_defaults(&a);
    b = a;
    EXPECT_OK(rm_config_set(&b, "trades_beta", "3", NULL));
    char ha[17], hb[17];
    rm_config_hash(&a, ha);
    rm_config_hash(&b, hb);
    assert_string_equal(ha, hb);
    assert_string_equal(ha, "eb2f08e24389cc67");
}

/* A file far larger than any run file is refused before it is parsed. */
static void test_huge_file(void **state) {
    (void)state;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    static char line[1024];
    memset(line, '#', sizeof line - 1);
    line[sizeof line - 2] = '\n';
    for (int k = 0; k < 1100; k++) assert_true(fputs(line, f) >= 0); /* 1100 KiB of comments */
    assert_int_equal(fclose(f), 0);
    rm_config c;
    rm_config_defaults(&c);
    EXPECT_ERR(rm_config_load_yaml(&c, path), RM_ERR_FORMAT, "run.yaml: larger than 1048576 bytes; not a run file");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_stable_across_versions),
        cmocka_unit_test(test_load_settings),
        cmocka_unit_test(test_load_errors_with_lines),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_default_yaml_text),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_trades_weight),
        cmocka_unit_test(test_huge_file),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
