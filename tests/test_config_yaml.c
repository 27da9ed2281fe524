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
    EXPECT_FILE_ERR("eval_attacks: [clean, fgsm, pgd10, pgd20, pgd50, cw10, cw20, cw50, pgd100]\n",
                    RM_ERR_ARG, "run.yaml:1: eval_attacks: at most 8 attacks");
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
    "epochs: 8\n"
    "batch: 128\n"
    "lr: 0.1\n"
    "lr_schedule: multistep\n"
    "momentum: 0.9\n"
    "weight_decay: 0.0005\n"
    "seed: 0\n"
    "threads: 0\n"
    "eval_attacks: [clean, fgsm, pgd20, cw20]\n"
    "eval_every: 1\n"
    "co_threshold: 0.5\n"
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
        {"method", "fgsm-rs"},
        {"reg", "amr"},
        {"alpha", "1/3"},
        {"beta", "1e-300"},
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
        {"epochs", "110"},
        {"batch", "512"},
        {"lr", "0.2"},
        {"lr_schedule", "cyclic"},
        {"momentum", "0"},
        {"weight_decay", "2e-4"},
        {"seed", "18446744073709551615"},
        {"threads", "16"},
        {"eval_attacks", "fgsm,pgd50x5@12/255,cw20,clean,pgd10@1/3"},
        {"eval_every", "5"},
        {"co_threshold", "0.1"},
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

/* to_yaml's text without the outdir, run_id and checkpoint_every lines. */
static void science_lines(const char *yaml, char *out) {
    out[0] = '\0';
    for (const char *p = yaml; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (strncmp(p, "outdir:", 7) && strncmp(p, "run_id:", 7) && strncmp(p, "checkpoint_every:", 17))
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

    /* where the run is written and how often it checkpoints: same run */
    rm_config d = c;
    EXPECT_OK(rm_config_set(&d, "outdir", "/elsewhere", NULL));
    EXPECT_OK(rm_config_set(&d, "run_id", "renamed", NULL));
    EXPECT_OK(rm_config_set(&d, "checkpoint_every", "3", NULL));
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
    EXPECT_OK(rm_config_set(&c, "method", "trades", NULL));
    EXPECT_OK(rm_config_set(&c, "reg", "none", NULL));
    EXPECT_OK(rm_config_set(&c, "beta", "6", NULL));
    rm_config_hash(&c, h);
    assert_string_equal(h, "93794e2700b2313d");
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_stable_across_versions),
        cmocka_unit_test(test_load_settings),
        cmocka_unit_test(test_load_errors_with_lines),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_default_yaml_text),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
