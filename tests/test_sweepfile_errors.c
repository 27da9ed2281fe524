/* Sweep files that must be refused: each case asserts the status, the "file:line: " of
 * the offending line (counted by hand in the text) and the words of the message, and
 * that a failed load leaves the sweep empty. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regmix/sweep.h"

static char tmpdir[64];
static char path[128];

static int make_dir(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/regmix-sweeperr-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(path, sizeof path, "%s/sweep.yaml", tmpdir);
    return 0;
}

static int remove_dir(void **state) {
    (void)state;
    unlink(path);
    return rmdir(tmpdir);
}

static void write_file(const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("fopen(%s) failed", path);
    if (fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f) != 0) fail_msg("write %s failed", path);
}

/* Loads text; expects status `want`, "sweep.yaml:<line>: " and each of up to three
 * fragments in the message. */
static void expect_err(const char *text, rm_status want, int line, const char *f1, const char *f2, const char *f3,
                       int src_line) {
    write_file(text);
    rm_sweep s;
    memset(&s, 0xab, sizeof s); /* must come back empty */
    rm_error_clear();
    rm_status got = rm_sweep_load(path, &s);
    char msg[1100];
    snprintf(msg, sizeof msg, "%s", rm_error_message());
    rm_error_clear();
    if (got != want)
        fail_msg("test line %d: got %s, expected %s (message: %s)", src_line, rm_status_name(got),
                 rm_status_name(want), msg);
    char where[64];
    snprintf(where, sizeof where, "sweep.yaml:%d: ", line);
    if (!strstr(msg, where)) fail_msg("test line %d: message \"%s\" lacks \"%s\"", src_line, msg, where);
    const char *frags[3] = {f1, f2, f3};
    for (int k = 0; k < 3; k++)
        if (frags[k] && !strstr(msg, frags[k]))
            fail_msg("test line %d: message \"%s\" lacks \"%s\"", src_line, msg, frags[k]);
    if (s.runs || s.text || s.n_runs || s.n_axes || s.name[0])
        fail_msg("test line %d: a failed load left data in the sweep", src_line);
    rm_sweep_free(&s);
}
#define ERR1(text, want, line, f1) expect_err((text), (want), (line), (f1), NULL, NULL, __LINE__)
#define ERR2(text, want, line, f1, f2) expect_err((text), (want), (line), (f1), (f2), NULL, __LINE__)
#define ERR3(text, want, line, f1, f2, f3) expect_err((text), (want), (line), (f1), (f2), (f3), __LINE__)

static void test_structure_errors(void **state) {
    (void)state;
    ERR2("name: a\ngird:\n  reg: [mse]\n", RM_ERR_FORMAT, 2, "unknown top-level key 'gird'", "expected name");
    ERR2("name: a\nepochs: 3\n", RM_ERR_FORMAT, 2, "unknown top-level key 'epochs'", "under base");
    ERR1("grid:\n  reg: [mse]\n", RM_ERR_FORMAT, 1, "name: missing");
    ERR1("name: \"-bad\"\n", RM_ERR_ARG, 1, "not a valid sweep name");
    ERR1("name: a/b\n", RM_ERR_ARG, 1, "not a valid sweep name");
    ERR1("name: [a]\n", RM_ERR_FORMAT, 1, "name: expected a single value, got a list");
    ERR2("name: a\nbase:\n  epochs: 2\nname: b\n", RM_ERR_FORMAT, 4, "duplicate key 'name'", "first on line 1");
    ERR1("- name: a\n", RM_ERR_FORMAT, 1, "the top level must be a mapping");
    ERR1("# nothing\n", RM_ERR_FORMAT, 1, "empty sweep file");
    ERR1("name: a\n---\nname: b\n", RM_ERR_FORMAT, 3, "more than one YAML document");
    ERR1("name: a\ngrid:\n  reg: [mse\n", RM_ERR_FORMAT, 4, "YAML syntax error");
    /* wrong types */
    ERR1("name: a\nbase: 3\n", RM_ERR_FORMAT, 2, "base: expected a mapping of settings");
    ERR1("name: a\nbase:\n  - epochs: 3\n", RM_ERR_FORMAT, 3, "base: expected a mapping");
    ERR1("name: a\nbase:\n  epochs:\n    value: 3\n", RM_ERR_FORMAT, 4, "epochs: expected a single value, got a mapping");
    ERR1("name: a\nbase:\n  epochs: [3, 4]\n", RM_ERR_FORMAT, 3, "epochs: expected a single value, got a list");
    ERR1("name: a\ngrid:\n  - reg: [mse]\n", RM_ERR_FORMAT, 3, "grid: expected a mapping of axes");
    ERR2("name: a\ngrid:\n  reg: mse\n", RM_ERR_FORMAT, 3, "axis 'reg'", "expected a list of values");
    ERR2("name: a\ngrid:\n  reg: {mse: 1}\n", RM_ERR_FORMAT, 3, "axis 'reg'", "got a mapping");
    ERR1("name: a\ngrid:\n  reg: [mse, [amr]]\n", RM_ERR_FORMAT, 3, "reg: expected a single value, got a list");
    ERR2("name: a\nzip:\n  eps: [0.1]\n", RM_ERR_FORMAT, 3, "zip: expected a list of groups", "got a mapping");
    ERR1("name: a\nzip:\n  - 3\n", RM_ERR_FORMAT, 3, "zip: a group must be a mapping");
    ERR1("name: a\nzip:\n  - {}\n", RM_ERR_FORMAT, 3, "an empty mapping");
    ERR1("name: a\ngrid:\n  seed: [0]\nexclude: {seed: 0}\n", RM_ERR_FORMAT, 4, "exclude: expected a list");
    ERR1("name: a\ngrid:\n  seed: [0, 1]\nexclude:\n  - 0\n", RM_ERR_FORMAT, 5, "an entry must be a mapping");
    /* a missing file */
    unlink(path);
    rm_sweep s;
    assert_int_equal(rm_sweep_load(path, &s), RM_ERR_IO);
    assert_non_null(strstr(rm_error_message(), "fopen("));
    assert_non_null(strstr(rm_error_message(), "sweep.yaml"));
    rm_error_clear();
    assert_null(s.runs);
    /* a directory: fopen may succeed, the read fails */
    assert_int_equal(rm_sweep_load(tmpdir, &s), RM_ERR_IO);
    assert_non_null(strstr(rm_error_message(), tmpdir));
    rm_error_clear();
}

static void test_axis_errors(void **state) {
    (void)state;
    /* empty axes */
    ERR1("name: a\ngrid:\n  reg: []\n", RM_ERR_FORMAT, 3, "axis 'reg' is empty");
    ERR1("name: a\ngrid:\n  seed: [0]\n  reg:\n", RM_ERR_FORMAT, 4, "axis 'reg' is empty");
    /* zip lists of unequal length: named with both lengths */
    ERR3("name: a\nzip:\n  - eps: [0.1, 0.2]\n    step: [0.1, 0.2, 0.3]\n", RM_ERR_FORMAT, 4,
         "'step' has 3 values", "'eps' (line 3) has 2", "equal lengths");
    /* the same axis twice: duplicate key, grid and zip, two zip groups, base and grid */
    ERR2("name: a\ngrid:\n  seed: [0]\n  reg: [mse]\n  seed: [1]\n", RM_ERR_FORMAT, 5, "duplicate key 'seed'",
         "first on line 3");
    ERR2("name: a\ngrid:\n  eps: [0.1]\nzip:\n  - eps: [0.2]\n    step: [0.2]\n", RM_ERR_FORMAT, 5,
         "axis 'eps' is given twice", "first on line 3");
    ERR2("name: a\nzip:\n  - eps: [0.1]\n  - step: [0.1]\n    eps: [0.2]\n", RM_ERR_FORMAT, 5,
         "axis 'eps' is given twice", "first on line 3");
    ERR2("name: a\nbase:\n  seed: 3\ngrid:\n  seed: [0, 1]\n", RM_ERR_FORMAT, 5, "'seed' is set in base (line 3)",
         "also an axis");
    /* unknown settings: the configuration's message, with its suggestion */
    ERR2("name: a\nbase:\n  epochs: 2\n  lamda: 3\n", RM_ERR_ARG, 4, "unknown setting 'lamda'",
         "did you mean 'lambda'?");
    ERR2("name: a\ngrid:\n  sed: [0, 1]\n", RM_ERR_ARG, 3, "unknown setting 'sed'", "did you mean 'seed'?");
    ERR1("name: a\nbase:\n  run_id: x\n", RM_ERR_ARG, 3, "run_id is set by the sweep");
    ERR1("name: a\ngrid:\n  run_id: [x, y]\n", RM_ERR_ARG, 3, "run_id is set by the sweep");
    /* bad values, at the line of the value */
    ERR2("name: a\nbase:\n  epochs:\n    -1\n", RM_ERR_ARG, 4, "epochs", "out of range");
    ERR2("name: a\ngrid:\n  alpha:\n    - 1\n    - big\n", RM_ERR_ARG, 5, "alpha: expected a number", "'big'");
    ERR2("name: a\ngrid:\n  reg: [mse, regmx]\n", RM_ERR_ARG, 3, "unknown value 'regmx'", "did you mean 'regmix'?");
    ERR2("name: a\ngrid:\n  eval_attacks:\n    - [clean,\n       pgd0]\n", RM_ERR_ARG, 5, "eval_attacks: 'pgd0'",
         NULL);
    ERR1("name: a\ngrid:\n  data_dir: [/data/a-very-long-path-name-that-does-not-fit-into-a-run-id-at-all-x]\n",
         RM_ERR_ARG, 3, "too long for a run id");
}

static void test_expansion_errors(void **state) {
    (void)state;
    /* a run that fails rm_config_validate: named by id and axis values; the count */
    ERR3("name: a\nbase:\n  reg: mse\ngrid:\n  method: [pgi, pgd-at, trades]\n  seed: [0]\n", RM_ERR_ARG, 6,
         "run 'method-pgd-at_seed-0' (method=pgd-at, seed=0) is invalid",
         "reg: 'mse' applies to methods pgi, pgk and fgsm-rs only", "(2 of 3 runs are invalid)");
    ERR2("name: a\nbase:\n  train_subset: 100\n  val_size: 100\n", RM_ERR_ARG, 2, "run 'a' (no axes) is invalid",
         "val_size 100 leaves no training samples out of train_subset 100");
    /* duplicate configurations: one value written twice; an axis that does not change the run */
    ERR3("name: a\ngrid:\n  alpha:\n    - 0.1\n    - 1/10\n", RM_ERR_ARG, 5,
         "runs 'alpha-0.1' and 'alpha-1over10' are the same configuration", "alpha 0.1 (line 4) / 1/10 (line 5)",
         NULL);
    ERR2("name: a\ngrid:\n  seed: [0, 1]\n  checkpoint_every: [1, 2]\n", RM_ERR_ARG, 4,
         "runs 'seed-0_checkpoint_every-1' and 'seed-0_checkpoint_every-2' are the same configuration",
         "checkpoint_every");
    /* where the data lives is not part of a run's identity: a data_dir axis repeats one run
     * (this was the example of ids colliding once made filename-safe; every setting that
     * could make such a pair is now outside the identity, so the duplicate is found first) */
    ERR3("name: a\ngrid:\n  data_dir: [d_x, d-x]\n", RM_ERR_ARG, 3,
         "runs 'data_dir-d-x' and 'data_dir-d-x' are the same configuration", "data_dir d_x (line 3) / d-x (line 3)",
         "(outdir, checkpoint_every, data_dir)");
    /* exclude */
    ERR2("name: a\ngrid:\n  seed: [0, 1]\nexclude:\n  - {lr: 0.1}\n", RM_ERR_FORMAT, 5,
         "'lr' is not an axis of this sweep", "(axes: seed)");
    ERR1("name: a\ngrid:\n  seed: [0, 1]\nexclude:\n  - {seed: 2}\n", RM_ERR_ARG, 5,
         "seed '2' is not a value of axis 'seed' (line 3)");
    ERR1("name: a\ngrid:\n  seed: [0, 1]\nexclude:\n  - {seed: x}\n", RM_ERR_ARG, 5, "seed: expected an integer");
    ERR1("name: a\nzip:\n  - eps: [0.1, 0.2]\n    step: [0.1, 0.2]\nexclude:\n  - {seed: 0}\n  - {eps: 0.1, step: 0.2}\n",
         RM_ERR_FORMAT, 6, "'seed' is not an axis");
    ERR1("name: a\nzip:\n  - eps: [0.1, 0.2]\n    step: [0.1, 0.2]\nexclude:\n  - {eps: 0.1, step: 0.2}\n",
         RM_ERR_FORMAT, 6, "this entry matches no run");
    ERR1("name: a\ngrid:\n  seed: [0, 1]\nexclude:\n  - {seed: [0, 1]}\n", RM_ERR_FORMAT, 5,
         "exclude removes all 2 combinations");
    ERR1("name: a\ngrid:\n  seed: [0, 1]\nexclude:\n  - {}\n", RM_ERR_FORMAT, 5, "an empty mapping");
}

/* Hostile or absurd sweeps: names that would leave results/, grids too large to run,
 * and aliases. */
static void test_limits_and_escapes(void **state) {
    (void)state;
    /* a sweep name is a folder under results/: no way out of it */
    static const char *const names[] = {"..", "../x", "/etc", "a/b", ".hidden", "-x", "a\\\\b"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char text[128], frag[128];
        snprintf(text, sizeof text, "name: \"%s\"\n", names[k]);
        snprintf(frag, sizeof frag, "name: '%s' is not a valid sweep name", names[k]);
        for (char *p = frag; *p; p++) /* the YAML escape \\ is one backslash in the name */
            if (p[0] == '\\' && p[1] == '\\') memmove(p, p + 1, strlen(p));
        ERR1(text, RM_ERR_ARG, 1, frag);
    }
    /* 10 x 10 x 10 x 11 = 11000 runs: over the default limit */
    const char *big = "name: a\n"
                      "grid:\n"
                      "  seed: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
                      "  epochs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
                      "  eval_every: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
                      "  train_attack_steps: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\n";
    ERR3(big, RM_ERR_FORMAT, 3, "11000 runs, more than the 10000 a sweep may have unless it sets max_runs",
         "'max_runs: N'", "(at most 100000)");
    /* far beyond: refused while multiplying the axis lengths, before any run is made */
    ERR1("name: a\ngrid:\n  seed: [0,1,2,3,4,5,6,7,8,9]\n  epochs: [1,2,3,4,5,6,7,8,9,10]\n"
         "  eval_every: [1,2,3,4,5,6,7,8,9,10]\n  train_attack_steps: [1,2,3,4,5,6,7,8,9,10]\n"
         "  reset_every: [1,2,3,4,5,6,7,8,9,10]\n  batch: [1,2,3,4,5,6,7,8,9,10]\n"
         "  checkpoint_every: [1,2,3,4,5,6,7,8,9,10]\n",
         RM_ERR_FORMAT, 3, "the axes give more than 1000000 combinations; split the sweep");
    /* max_runs: a lower cap, and its range */
    ERR2("name: a\nmax_runs: 4\ngrid:\n  seed: [0, 1, 2]\n  lr: [0.1, 0.2]\n", RM_ERR_FORMAT, 2,
         "6 runs, more than max_runs 4", "raise max_runs (at most 100000)");
    ERR1("name: a\nmax_runs: 100001\n", RM_ERR_ARG, 2, "max_runs: '100001' is not an integer from 1 to 100000");
    ERR1("name: a\nmax_runs: 0\n", RM_ERR_ARG, 2, "max_runs: '0' is not an integer from 1 to 100000");
    ERR1("name: a\nmax_runs: lots\n", RM_ERR_ARG, 2, "max_runs: 'lots'");
    ERR1("name: a\nmax_runs: [5]\n", RM_ERR_FORMAT, 2, "max_runs: expected a single value, got a list");
    write_file("name: a\nmax_runs: 6\ngrid:\n  seed: [0, 1, 2]\n  lr: [0.1, 0.2]\n");
    rm_sweep s;
    assert_int_equal(rm_sweep_load(path, &s), RM_OK);
    assert_int_equal(s.n_runs, 6);
    rm_sweep_free(&s);
    /* aliases are refused at the first one, with its line */
    ERR2("name: a\ngrid:\n  seed: &s [0, 1]\n  lr: [0.1]\nzip:\n  - reset_every: *s\n", RM_ERR_FORMAT, 6,
         "alias '*s'", "sweep files take no aliases");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_axis_errors),
        cmocka_unit_test(test_expansion_errors),
        cmocka_unit_test(test_limits_and_escapes),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
