/* Sweep files: expansion (grid x zip counts and order, base + axis values in each run),
 * run ids (hand-written expectations, stability when axes get more values), exclude,
 * eval_attacks as an axis, the cost estimate (hand-computed), and the three shipped
 * sweep files. Error cases are in test_sweepfile_errors.c. Files are written into a
 * mkdtemp directory that is removed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "regmix/sweep.h"

static char tmpdir[64];
static char path[128];

static int make_dir(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/regmix-sweep-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(path, sizeof path, "%s/sweep.yaml", tmpdir);
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

static void load_ok(const char *text, rm_sweep *s, int line) {
    rm_status st = rm_sweep_load(write_file(text), s);
    if (st != RM_OK) {
        char m[1100];
        snprintf(m, sizeof m, "%s", rm_error_message());
        rm_error_clear();
        fail_msg("line %d: rm_sweep_load failed: %s", line, m);
    }
}
#define LOAD_OK(text, s) load_ok((text), (s), __LINE__)

static const rm_sweep_run *run_named(const rm_sweep *s, const char *id) {
    int k = rm_sweep_find(s, id);
    if (k < 0) fail_msg("no run '%s' among the %d runs", id, s->n_runs);
    return &s->runs[k];
}

static void test_grid_and_zip(void **state) {
    (void)state;
    /* zip written before grid: the axis order is grid, then zip, all the same */
    const char *text =
        "# a comment\n"
        "name: demo.1\n"
        "description: \"two regularisers\"\n"
        "zip:\n"
        "  - eps: [8/255, 16/255]\n"
        "    step: [8/255, 16/255]\n"
        "base:\n"
        "  model: fmnist-cnn\n"
        "  epochs: 2\n"
        "  train_subset: 6000\n"
        "grid:\n"
        "  reg: [mse, regmix]\n"
        "  alpha: [1.0, 0.5]\n"
        "  seed:\n"
        "    - 0\n"
        "    - 1\n";
    rm_sweep s;
    LOAD_OK(text, &s);
    assert_string_equal(s.name, "demo.1");
    assert_string_equal(s.description, "two regularisers");
    assert_string_equal(s.path, path);
    assert_string_equal(s.text, text);
    assert_int_equal(s.n_axes, 5);
    const char *axes[5] = {"reg", "alpha", "seed", "eps", "step"};
    for (int a = 0; a < 5; a++) assert_string_equal(s.axes[a], axes[a]);
    assert_int_equal(s.n_runs, 2 * 2 * 2 * 2); /* 3 grid axes x 1 zip group of 2 */
    assert_int_equal(s.n_excluded, 0);

    /* nested loops, first axis outermost, the zip group innermost */
    assert_string_equal(s.runs[0].id, "reg-mse_alpha-1.0_seed-0_eps-8over255_step-8over255");
    assert_string_equal(s.runs[1].id, "reg-mse_alpha-1.0_seed-0_eps-16over255_step-16over255");
    assert_string_equal(s.runs[2].id, "reg-mse_alpha-1.0_seed-1_eps-8over255_step-8over255");
    assert_string_equal(s.runs[15].id, "reg-regmix_alpha-0.5_seed-1_eps-16over255_step-16over255");

    const rm_sweep_run *r = &s.runs[11]; /* reg regmix (8), alpha 1.0 (+0), seed 1 (+2), eps 16 (+1) */
    assert_string_equal(r->id, "reg-regmix_alpha-1.0_seed-1_eps-16over255_step-16over255");
    assert_string_equal(r->cfg.run_id, r->id);
    assert_string_equal(r->cfg.reg, "regmix");
    assert_true(r->cfg.alpha == 1.0);
    assert_true(r->cfg.seed == 1);
    assert_true(r->cfg.eps == 16.0 / 255.0);
    assert_true(r->cfg.step == 16.0 / 255.0);
    /* base, and defaults for the rest */
    assert_string_equal(r->cfg.model, "fmnist-cnn");
    assert_int_equal(r->cfg.epochs, 2);
    assert_int_equal(r->cfg.train_subset, 6000);
    assert_int_equal(r->cfg.batch, 128);
    assert_true(r->cfg.beta == 0.5);
    assert_string_equal(r->cfg.outdir, "results/demo.1");
    /* axis names, values as written, and the lines they are on */
    assert_int_equal(r->n_axes, 5);
    assert_string_equal(r->axis_name[1], "alpha");
    assert_string_equal(r->axis_value[1], "1.0");
    assert_int_equal(r->axis_line[1], 13);
    assert_string_equal(r->axis_value[2], "1");
    assert_int_equal(r->axis_line[2], 16);
    assert_string_equal(r->axis_value[3], "16/255");
    assert_int_equal(r->axis_line[3], 5);
    assert_int_equal(r->axis_line[4], 6);

    /* each run is valid; ids and hashes distinct */
    for (int k = 0; k < s.n_runs; k++) {
        assert_int_equal(rm_config_validate(&s.runs[k].cfg), RM_OK);
        char h[17];
        rm_config_hash(&s.runs[k].cfg, h);
        assert_string_equal(h, s.runs[k].hash);
        for (int j = 0; j < k; j++) {
            assert_string_not_equal(s.runs[j].id, s.runs[k].id);
            assert_string_not_equal(s.runs[j].hash, s.runs[k].hash);
        }
    }
    assert_int_equal(rm_sweep_find(&s, "reg-mse"), -1);
    rm_sweep_free(&s);
    assert_null(s.runs);
    rm_sweep_free(&s); /* harmless twice */
}

/* Extending axes and a zip group keeps the id and the configuration of every existing
 * combination. */
static void test_ids_stable_when_extended(void **state) {
    (void)state;
    const char *before =
        "name: ext\n"
        "grid:\n"
        "  reg: [mse, regmix]\n"
        "  seed: [0]\n"
        "zip:\n"
        "  - eps: [0.1]\n"
        "    step: [0.1]\n";
    const char *after =
        "name: ext\n"
        "grid:\n"
        "  reg: [none, mse, amr, regmix]\n"
        "  seed: [0, 1, 2]\n"
        "zip:\n"
        "  - eps: [0.05, 0.1]\n"
        "    step: [0.05, 0.1]\n";
    rm_sweep a, b;
    LOAD_OK(before, &a);
    assert_int_equal(a.n_runs, 2);
    assert_string_equal(a.runs[0].id, "reg-mse_seed-0_eps-0.1_step-0.1");
    assert_string_equal(a.runs[1].id, "reg-regmix_seed-0_eps-0.1_step-0.1");
    LOAD_OK(after, &b);
    assert_int_equal(b.n_runs, 4 * 3 * 2);
    for (int k = 0; k < a.n_runs; k++) {
        const rm_sweep_run *old = &a.runs[k], *now = run_named(&b, old->id);
        assert_string_equal(now->hash, old->hash);
        assert_memory_equal(&now->cfg, &old->cfg, sizeof old->cfg);
    }
    rm_sweep_free(&a);
    rm_sweep_free(&b);
}

static void test_id_part(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"8/255", "8over255"},     {"pgd20@12/255", "pgd20-12over255"},
        {"c||f", "c--f"},          {"  a_b ", "a-b"},
        {"1e-3", "1e-3"},          {"+0.5", "+0.5"},
        {"/5", "-5"},              {"5/", "5-"},
        {"x/y", "x-y"},            {"1/2/3", "1over2over3"},
        {"clean,pgd20", "clean-pgd20"}, {"", ""},
    };
    char buf[64];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int n = rm_sweep_id_part(cases[k][0], buf, sizeof buf);
        assert_string_equal(buf, cases[k][1]);
        assert_int_equal(n, (int)strlen(cases[k][1]));
    }
    assert_int_equal(rm_sweep_id_part("8/255", buf, 8), -1);  /* "8over255" needs 9 bytes */
    assert_int_equal(rm_sweep_id_part("8/255", buf, 9), 8);
}

static void test_no_axes_and_outdir(void **state) {
    (void)state;
    rm_sweep s;
    LOAD_OK("name: single\nbase:\n  epochs: 1\n  outdir: elsewhere/x\n", &s);
    assert_int_equal(s.n_runs, 1);
    assert_int_equal(s.n_axes, 0);
    assert_string_equal(s.runs[0].id, "single");
    assert_string_equal(s.runs[0].cfg.run_id, "single");
    assert_string_equal(s.runs[0].cfg.outdir, "elsewhere/x");
    assert_int_equal(s.runs[0].cfg.epochs, 1);
    rm_sweep_free(&s);

    /* empty sections are allowed; description is optional */
    LOAD_OK("name: empty-sections\nbase:\ngrid:\nzip: ~\nexclude: []\n", &s);
    assert_int_equal(s.n_runs, 1);
    assert_string_equal(s.description, "");
    assert_string_equal(s.runs[0].cfg.outdir, "results/empty-sections");
    /* an untouched run is the defaults plus run_id and outdir */
    rm_config want;
    rm_config_defaults(&want);
    assert_int_equal(rm_config_set(&want, "run_id", "empty-sections", NULL), RM_OK);
    assert_int_equal(rm_config_set(&want, "outdir", "results/empty-sections", NULL), RM_OK);
    assert_memory_equal(&s.runs[0].cfg, &want, sizeof want);
    rm_sweep_free(&s);
}

static void test_exclude(void **state) {
    (void)state;
    const char *text =
        "name: ex\n"
        "grid:\n"
        "  reg: [mse, amr, regmix]\n"
        "  alpha: [1, 0.5, 2]\n"
        "  seed: [0, 1]\n"
        "exclude:\n"
        "  - {reg: mse, alpha: [0.5, 2]}   # alpha does not matter for mse\n"
        "  - reg: regmix\n"
        "    alpha: 1/2                    # the same value as 0.5\n"
        "    seed: 1\n";
    rm_sweep s;
    LOAD_OK(text, &s);
    /* 18 combinations - 4 (mse with alpha 0.5 or 2, 2 seeds) - 1 (regmix, 0.5, seed 1) */
    assert_int_equal(s.n_runs, 13);
    assert_int_equal(s.n_excluded, 5);
    assert_int_equal(rm_sweep_find(&s, "reg-mse_alpha-0.5_seed-0"), -1);
    assert_int_equal(rm_sweep_find(&s, "reg-mse_alpha-2_seed-1"), -1);
    assert_int_equal(rm_sweep_find(&s, "reg-regmix_alpha-0.5_seed-1"), -1);
    run_named(&s, "reg-mse_alpha-1_seed-0");
    run_named(&s, "reg-mse_alpha-1_seed-1");
    run_named(&s, "reg-regmix_alpha-0.5_seed-0");
    run_named(&s, "reg-amr_alpha-2_seed-1");
    /* the order of the remaining runs is the nested-loop order */
    assert_string_equal(s.runs[0].id, "reg-mse_alpha-1_seed-0");
    assert_string_equal(s.runs[1].id, "reg-mse_alpha-1_seed-1");
    assert_string_equal(s.runs[2].id, "reg-amr_alpha-1_seed-0");
    rm_sweep_free(&s);
}

static void test_eval_attacks_axis(void **state) {
    (void)state;
    rm_sweep s;
    /* a list of lists, or comma-separated strings */
    const char *ok =
        "name: ev\n"
        "base:\n"
        "  eps: 8/255\n"
        "  step: 8/255\n"
        "grid:\n"
        "  threads: [1]\n"
        "  eval_attacks:\n"
        "    - [clean, pgd20]\n"
        "    - \"clean,cw10x2\"\n"
        "    - [clean, pgd20@12/255]\n";
    LOAD_OK(ok, &s);
    assert_int_equal(s.n_runs, 3);
    assert_string_equal(s.runs[0].id, "threads-1_eval_attacks-clean-pgd20");
    assert_string_equal(s.runs[1].id, "threads-1_eval_attacks-clean-cw10x2");
    assert_string_equal(s.runs[2].id, "threads-1_eval_attacks-clean-pgd20-12over255");
    assert_string_equal(s.runs[0].axis_value[1], "clean,pgd20");
    assert_int_equal(s.runs[1].cfg.n_eval, 2);
    assert_int_equal(s.runs[1].cfg.eval[1].kind, RM_EVAL_CW);
    assert_int_equal(s.runs[1].cfg.eval[1].steps, 10);
    assert_int_equal(s.runs[1].cfg.eval[1].restarts, 2);
    assert_true(s.runs[2].cfg.eval[1].eps == 12.0 / 255.0);
    assert_int_equal(s.runs[0].cfg.threads, 1);
    rm_sweep_free(&s);
}

/* Hand-computed from the cost model in sweep.h. */
static void test_cost(void **state) {
    (void)state;
    const char *text =
        "name: cost\n"
        "base:\n"
        "  train_subset: 1000\n"
        "  epochs: 2\n"
        "  test_subset: 100\n"
        "  eval_attacks: [clean, pgd10x2]\n"
        "  train_attack_steps: 3\n"
        "zip:\n"
        "  - method: [pgi, pgi, pgi, pgi, fgsm-rs, pgd-at, trades]\n"
        "    reg: [none, mse, agr, regmix, amr, none, none]\n";
    rm_sweep s;
    LOAD_OK(text, &s);
    assert_int_equal(s.n_runs, 7);
    /* evaluation: 2 evaluations x 100 images x (clean 1 + pgd10x2 (2*10+1)*2 = 43) = 8600;
     * training: 2 epochs x 1000 images x per-image cost */
    const double eval = 2 * 100 * 43;
    const double per_image[7] = {5, 7, 8, 10, 7, 2 * 3 + 3, 2 * 3 + 7};
    for (int k = 0; k < 7; k++) {
        double want = 2 * 1000 * per_image[k] + eval;
        if (fabs(rm_sweep_run_cost(&s.runs[k]) - want) > 1e-9 * want)
            fail_msg("run %s: cost %g, expected %g", s.runs[k].id, rm_sweep_run_cost(&s.runs[k]), want);
    }
    rm_sweep_free(&s);

    /* full CIFAR-10 data, PreAct-ResNet-18 (x120), val_size held out, an evaluation
     * every 2 of 5 epochs (epochs 2, 4 and 5: 3), test_subset 0 = 10000 images */
    const char *cifar =
        "name: cost2\n"
        "base:\n"
        "  model: preact-resnet18\n"
        "  dataset: cifar10\n"
        "  reg: none\n"
        "  val_size: 5000\n"
        "  epochs: 5\n"
        "  eval_every: 2\n"
        "  test_subset: 0\n"
        "  eval_attacks: [clean, fgsm, cw20]\n";
    LOAD_OK(cifar, &s);
    double want = 120.0 * (5 * 45000.0 * 5 + 3 * 10000.0 * (1 + 3 + 41));
    assert_true(fabs(rm_sweep_run_cost(&s.runs[0]) - want) <= 1e-9 * want);
    rm_sweep_free(&s);
}

static void load_shipped(const char *name, rm_sweep *s) {
    char p[512];
    snprintf(p, sizeof p, "%s/../../sweeps/%s", REGMIX_TEST_DATA_DIR, name);
    if (rm_sweep_load(p, s) != RM_OK) {
        char m[1100];
        snprintf(m, sizeof m, "%s", rm_error_message());
        rm_error_clear();
        fail_msg("%s: %s", p, m);
    }
}

static void test_shipped_sweeps(void **state) {
    (void)state;
    rm_sweep s;
    load_shipped("fmnist-quick.yaml", &s);
    assert_string_equal(s.name, "fmnist-quick");
    assert_int_equal(s.n_runs, 5 * 2);
    const rm_sweep_run *r = run_named(&s, "reg-regmix_seed-1");
    assert_string_equal(r->cfg.outdir, "results/fmnist-quick");
    assert_int_equal(r->cfg.epochs, 3);
    assert_int_equal(r->cfg.train_subset, 10000);
    assert_int_equal(r->cfg.test_subset, 1000);
    assert_int_equal(r->cfg.threads, 1);
    rm_sweep_free(&s);

    load_shipped("fmnist-ablation.yaml", &s);
    /* none 3 + mse 3 + amr 3x3x3 + agr 3x3 + regmix 3 seeds */
    assert_int_equal(s.n_runs, 3 + 3 + 27 + 9 + 3);
    assert_int_equal(s.n_excluded, 5 * 3 * 3 * 3 * 3 - 45);
    r = run_named(&s, "reg-amr_alpha-0.5_beta-0.25_gamma-1_seed-2");
    assert_true(r->cfg.alpha == 0.5 && r->cfg.beta == 0.25 && r->cfg.gamma == 1.0);
    assert_int_equal(r->cfg.train_subset, 0);
    run_named(&s, "reg-agr_alpha-1_beta-0.5_gamma-2_seed-0");
    assert_int_equal(rm_sweep_find(&s, "reg-mse_alpha-1_beta-0.5_gamma-2_seed-0"), -1);
    rm_sweep_free(&s);

    load_shipped("cifar10-paper.yaml", &s);
    assert_int_equal(s.n_runs, 6);
    r = run_named(&s, "seed-0_method-trades_reg-none_step-2over255");
    assert_string_equal(r->cfg.model, "preact-resnet18");
    assert_string_equal(r->cfg.dataset, "cifar10");
    assert_int_equal(r->cfg.epochs, 110);
    assert_true(r->cfg.eps == 8.0 / 255.0);
    assert_true(r->cfg.step == 2.0 / 255.0);
    assert_true(r->cfg.trades_beta == 6.0 && r->cfg.beta == 0.5);
    assert_int_equal(r->cfg.train_attack_steps, 10);
    assert_int_equal(r->cfg.reset_every, 40);
    r = run_named(&s, "seed-0_method-pgi_reg-regmix_step-8over255");
    assert_true(r->cfg.step == 8.0 / 255.0);
    assert_true(r->cfg.label_smoothing == 0.6);
    run_named(&s, "seed-0_method-pgd-at_reg-none_step-2over255");
    run_named(&s, "seed-0_method-fgsm-rs_reg-none_step-10over255");
    /* longest first: the 10-step methods on ResNet cost more than PGI */
    assert_true(rm_sweep_run_cost(&s.runs[5]) > rm_sweep_run_cost(&s.runs[0]));
    rm_sweep_free(&s);
}

/* The FGSM-PGK studies (sweeps/cifar{10,100}-pgk-regmix.yaml): PGK's reference settings
 * per dataset, PGK with every regulariser and PGI with mse and regmix, 3 seeds, on model
 * resnet18. */
static void test_shipped_pgk_sweeps(void **state) {
    (void)state;
    const struct {
        const char *file, *dataset;
        double s, lambda, mu, ema_value;
        int reset, pgi_reset;
    } want[] = {{"cifar10-pgk-regmix.yaml", "cifar10", 0.5, 5.6, 0.3, 0.82, 10, 40},
                {"cifar100-pgk-regmix.yaml", "cifar100", 0.8, 1.0, 0.1, 0.9, 40, 10}};
    for (int f = 0; f < 2; f++) {
        rm_sweep s;
        load_shipped(want[f].file, &s);
        assert_int_equal(s.n_runs, (4 + 2) * 3);
        int pgk = 0, ema = 0;
        for (int i = 0; i < s.n_runs; i++) {
            const rm_config *c = &s.runs[i].cfg;
            assert_string_equal(c->model, "resnet18");
            assert_string_equal(c->dataset, want[f].dataset);
            assert_int_equal(c->epochs, 110);
            assert_int_equal(c->batch, 128);
            assert_true(c->eps == 8.0 / 255.0 && c->step == 8.0 / 255.0);
            assert_string_equal(c->eval_model, "ema");
            ema += rm_config_ema_enabled(c);
            if (!strcmp(c->method, "pgk")) {
                pgk++;
                assert_true(c->label_smoothing == want[f].s && c->lambda == want[f].lambda);
                assert_true(c->pgi_momentum == want[f].mu && c->ema_value == want[f].ema_value);
                assert_int_equal(c->reset_every, want[f].reset);
            } else {
                assert_string_equal(c->method, "pgi");
                assert_true(!strcmp(c->reg, "mse") || !strcmp(c->reg, "regmix"));
                assert_true(c->label_smoothing == 0.6 && c->lambda == 10.0 && c->pgi_momentum == 0.3);
                assert_int_equal(c->reset_every, want[f].pgi_reset);
            }
        }
        assert_int_equal(pgk, 4 * 3);
        assert_int_equal(ema, pgk); /* the EMA: every pgk run, no pgi run */
        rm_sweep_free(&s);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_and_zip),
        cmocka_unit_test(test_ids_stable_when_extended),
        cmocka_unit_test(test_id_part),
        cmocka_unit_test(test_no_axes_and_outdir),
        cmocka_unit_test(test_exclude),
        cmocka_unit_test(test_eval_attacks_axis),
        cmocka_unit_test(test_cost),
        cmocka_unit_test(test_shipped_sweeps),
        cmocka_unit_test(test_shipped_pgk_sweeps),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
