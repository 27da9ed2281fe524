/* src/optim against PyTorch: tests/data/optim_fixture.txt, written by
 * tests/pytorch/gen_optim_fixtures.py (torch.optim.SGD, MultiStepLR, CosineAnnealingLR,
 * and numpy's interp for the cyclic schedule). Prints the max difference per tensor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "regmix/optim.h"

#define FIXTURE REGMIX_TEST_DATA_DIR "/optim_fixture.txt"
#define MAX_RECORDS 64

/* ---- fixture reader: '#' comments, then lines "<name> <count> <values...>" ---- */
typedef struct {
    char name[64];
    size_t n;
    double *v;
} record;

typedef struct {
    record r[MAX_RECORDS];
    size_t count;
} fixture;

static fixture fx;

static int load_fixture(void **state) {
    (void)state;
    FILE *f = fopen(FIXTURE, "r");
    if (!f) {
        fprintf(stderr, "fopen(%s): %s\n", FIXTURE, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    while (getline(&line, &cap, f) != -1) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (fx.count == MAX_RECORDS) {
            fprintf(stderr, "%s: more than %d records\n", FIXTURE, MAX_RECORDS);
            rc = -1;
            break;
        }
        record *r = &fx.r[fx.count];
        int used = 0;
        if (sscanf(line, "%63s %zu%n", r->name, &r->n, &used) != 2 || r->n == 0) {
            fprintf(stderr, "%s: bad record line: %.60s\n", FIXTURE, line);
            rc = -1;
            break;
        }
        r->v = malloc(r->n * sizeof *r->v);
        if (!r->v) {
            rc = -1;
            break;
        }
        char *p = line + used;
        for (size_t k = 0; k < r->n; k++) {
            char *end;
            errno = 0;
            r->v[k] = strtod(p, &end);
            if (end == p || errno) {
                fprintf(stderr, "%s: record %s: value %zu of %zu unreadable\n", FIXTURE,
                        r->name, k, r->n);
                rc = -1;
                break;
            }
            p = end;
        }
        fx.count++;
        if (rc) break;
    }
    free(line);
    fclose(f);
    return rc;
}

static int free_fixture(void **state) {
    (void)state;
    for (size_t i = 0; i < fx.count; i++) free(fx.r[i].v);
    fx.count = 0;
    return 0;
}

static const record *find(const char *name) {
    for (size_t i = 0; i < fx.count; i++)
        if (strcmp(fx.r[i].name, name) == 0) return &fx.r[i];
    fail_msg("fixture %s has no record %s", FIXTURE, name);
    return NULL;
}

static void to_float(const record *r, float *dst, size_t n) {
    assert_int_equal(r->n, n);
    for (size_t k = 0; k < n; k++) dst[k] = (float)r->v[k];
}

/* Prints "name  max |diff|  OK/NOT OK" and returns the max difference. */
static double report(const char *name, const float *got, const record *want, double tol) {
    double worst = 0.0;
    for (size_t k = 0; k < want->n; k++) {
        double d = fabs((double)got[k] - want->v[k]);
        if (!(d <= worst)) worst = d; /* NaN propagates as a failure */
    }
    printf("  %-22s max |C - torch| %.3e  %s\n", name, worst, worst <= tol ? "OK" : "NOT OK");
    return worst;
}

/* ---- SGD ---- */
static void test_sgd_matches_torch(void **state) {
    (void)state;
    const record *cfg = find("sgd.config");
    assert_int_equal(cfg->n, 4);
    const double lr = cfg->v[0];
    const int steps = (int)cfg->v[3];

    float w[6], wg[6], b[4], bg[4], bn[3] = {0.5f, 1.5f, 2.5f}, bng[3] = {9.f, 9.f, 9.f};
    to_float(find("w.init"), w, 6);
    to_float(find("b.init"), b, 4);
    /* a running statistic between the two trained tensors, as in a network's state_dict:
     * it must not move and must not shift which buffer belongs to which parameter */
    rm_param params[3] = {
        {.name = "w", .ndim = 2, .dims = {2, 3}, .numel = 6, .data = w, .grad = wg},
        {.name = "bn.running_mean", .ndim = 1, .dims = {3}, .numel = 3, .data = bn,
         .grad = bng, .is_buffer = 1},
        {.name = "b", .ndim = 1, .dims = {4}, .numel = 4, .data = b, .grad = bg},
    };
    rm_sgd *opt = NULL;
    rm_sgd_config c = {.momentum = cfg->v[1], .weight_decay = cfg->v[2]};
    assert_int_equal(rm_sgd_create(params, 3, c, &opt), RM_OK);

    double worst = 0.0;
    char name[64];
    for (int s = 1; s <= steps; s++) {
        snprintf(name, sizeof name, "w.grad.%d", s);
        to_float(find(name), wg, 6);
        snprintf(name, sizeof name, "b.grad.%d", s);
        to_float(find(name), bg, 4);
        rm_sgd_step(opt, lr);
        snprintf(name, sizeof name, "w.after.%d", s);
        worst = fmax(worst, report(name, w, find(name), 1e-6));
        snprintf(name, sizeof name, "b.after.%d", s);
        worst = fmax(worst, report(name, b, find(name), 1e-6));
    }
    snprintf(name, sizeof name, "w.momentum.%d", steps);
    worst = fmax(worst, report(name, rm_sgd_momentum(opt, 0), find(name), 1e-6));
    snprintf(name, sizeof name, "b.momentum.%d", steps);
    worst = fmax(worst, report(name, rm_sgd_momentum(opt, 2), find(name), 1e-6));
    assert_null(rm_sgd_momentum(opt, 1));
    assert_int_equal(rm_sgd_steps_taken(opt), steps);
    assert_true(bn[0] == 0.5f && bn[1] == 1.5f && bn[2] == 2.5f);
    rm_sgd_destroy(opt);
    assert_true(worst <= 1e-6);
}

/* ---- learning-rate schedules ---- */
static double compare_schedule(const char *kind, long total, long n_points) {
    char name[64];
    snprintf(name, sizeof name, "lr.%s.%ld", kind, total);
    const record *want = find(name);
    assert_int_equal(want->n, n_points);
    rm_lr_schedule s;
    assert_int_equal(rm_lr_schedule_init(&s, kind, 0.1), RM_OK);
    double worst = 0.0;
    long worst_it = 0;
    for (long it = 0; it < n_points; it++) {
        double d = fabs(rm_lr_at(&s, it, total) - want->v[it]);
        if (!(d <= worst)) {
            worst = d;
            worst_it = it;
        }
    }
    /* the fixture holds 10 significant digits of values <= 0.1 */
    const double tol = 1e-10;
    printf("  %-22s max |C - ref| %.3e at it %ld  %s\n", name, worst, worst_it,
           worst <= tol ? "OK" : "NOT OK");
    if (!(worst <= tol))
        printf("    repro: it %ld total %ld: C %.12e ref %.12e\n", worst_it, total,
               rm_lr_at(&s, worst_it, total), want->v[worst_it]);
    return worst;
}

static void test_lr_schedules_match_torch(void **state) {
    (void)state;
    const long totals[] = {110, 97};
    double worst = 0.0;
    for (size_t i = 0; i < sizeof totals / sizeof totals[0]; i++) {
        long T = totals[i];
        char name[64];
        snprintf(name, sizeof name, "lr.multistep.milestones.%ld", T);
        const record *ms = find(name);
        assert_int_equal(ms->n, 2);
        assert_int_equal(rm_lr_milestone_iteration(100.0 / 110.0, T), (long)ms->v[0]);
        assert_int_equal(rm_lr_milestone_iteration(105.0 / 110.0, T), (long)ms->v[1]);
        worst = fmax(worst, compare_schedule("multistep", T, T));
        worst = fmax(worst, compare_schedule("cosine", T, T));
        worst = fmax(worst, compare_schedule("cyclic", T, T + 1)); /* includes it == T */
    }
    assert_true(worst <= 1e-10);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_matches_torch),
        cmocka_unit_test(test_lr_schedules_match_torch),
    };
    return cmocka_run_group_tests(tests, load_fixture, free_fixture);
}
