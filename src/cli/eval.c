/* regmix eval RUN.h5: evaluates a run's checkpointed weights under a list of attacks on
 * the test set (inference-mode batch norm), e.g. the full test set after training on a
 * per-epoch subset, or AutoAttack on the first N test images. A run with an EMA model
 * has two: the EMA and the student (its trained weights); --model picks one, by default
 * the one the run evaluated with (eval_model). Reads the run's configuration from its
 * file; writes nothing. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "regmix/runfile.h"
#include "regmix/train.h"

static int eval_usage(FILE *out) {
    fprintf(out, "usage: regmix eval RUN.h5 [--attacks LIST] [--test-subset N | --first N] [--threads T] [--model M]\n"
                 "  LIST: comma-separated evaluation attacks (default clean,fgsm,pgd20,cw20),\n"
                 "        e.g. pgd50x5 (5 restarts), cw20, pgd20@12/255 (another budget),\n"
                 "        aa (AutoAttack: APGD-CE, APGD-T, FAB-T, Square), aa-fast (APGD-CE, APGD-T),\n"
                 "        apgd-ce, apgd-t, fab-t, square (one component), aa@12/255\n"
                 "  --test-subset N: evaluate the first N of the fixed test subset; 0 (default) = all\n"
                 "  --first N: evaluate the first N images of the test file, in file order\n"
                 "  --model M: ema or student, for a run with an EMA model (default: its eval_model)\n"
                 "  Prints one line per attack (AutoAttack: the robust accuracy after each component),\n"
                 "  gradient-masking warnings, and, last, one JSON object.\n");
    return out == stderr ? EXIT_USAGE : 0;
}

static int fail(const char *what) {
    fprintf(stderr, "regmix eval: %s%s\n", what ? what : "", rm_error_message());
    return EXIT_FAILED;
}

/* The first n images of `test` (the whole test file, in file order), as a new dataset. */
static rm_status first_images(const rm_dataset *test, int64_t n, rm_dataset *out) {
    if (n > test->n)
        return rm_fail(RM_ERR_ARG, "--first %lld: the %s test set has only %lld images", (long long)n, test->name,
                       (long long)test->n);
    RM_TRY(rm_dataset_alloc(out, test->name, n, test->c, test->h, test->w, test->num_classes));
    const size_t d = (size_t)test->c * (size_t)test->h * (size_t)test->w;
    memcpy(out->images, test->images, (size_t)n * d * sizeof(float));
    memcpy(out->labels, test->labels, (size_t)n * sizeof(int32_t));
    memcpy(out->source_index, test->source_index, (size_t)n * sizeof(int64_t));
    return RM_OK;
}

/* "null" for NaN (JSON has no NaN), else the number. */
static void json_number(double v) {
    if (v != v) printf("null");
    else printf("%.4f", v);
}

static void print_results(const rm_config *cfg, const rm_eval_result *res, const double *seconds,
                          const char *path, const char *which, int64_t n) {
    char warn[1024];
    rm_gm_explain(cfg, res, warn, sizeof warn);
    for (char *line = strtok(warn, "\n"); line; line = strtok(NULL, "\n")) printf("# warning: %s\n", line);
    rm_metric_def defs[128];
    double extra[128];
    const int n_extra = rm_eval_extra_metrics(cfg, defs, 128);
    rm_eval_extra_values(cfg, res, extra);
    printf("{\"run\":\"%s\",\"model\":\"%s\",\"test_images\":%lld", path, which, (long long)n);
    for (int i = 0; i < cfg->n_eval; i++) {
        printf(",\"test_%s\":", cfg->eval[i].name);
        json_number(res[i].accuracy);
    }
    for (int i = 0; i < n_extra; i++) {
        printf(",\"%s\":", defs[i].name);
        json_number(extra[i]);
    }
    for (int i = 0; i < cfg->n_eval; i++) printf(",\"seconds_%s\":%.1f", cfg->eval[i].name, seconds[i]);
    printf("}\n");
}

static int evaluate(rm_trainer *t, const rm_config *cfg, const rm_dataset *data, const char *path,
                    const char *which) {
    printf("# regmix eval %s: model %s, %lld test images, eps %.4g, threads %d\n", path, which, (long long)data->n, cfg->eps,
           omp_get_max_threads());
    printf("%-20s %10s %10s\n", "attack", "accuracy%", "seconds");
    fflush(stdout);
    rm_eval_result res[RM_CFG_MAX_EVAL];
    double seconds[RM_CFG_MAX_EVAL];
    for (int i = 0; i < cfg->n_eval; i++) {
        double t0 = rm_now_seconds();
        if (rm_trainer_evaluate_full(t, data, &cfg->eval[i], &res[i]) != RM_OK) return fail(NULL);
        seconds[i] = rm_now_seconds() - t0;
        printf("%-20s %10.2f %10.1f\n", cfg->eval[i].name, res[i].accuracy, seconds[i]);
        for (int k = 0; k < res[i].n_parts && res[i].n_parts > 1; k++)
            printf("  after %-12s %10.2f\n", rm_aa_part_name(res[i].part[k]), res[i].part_accuracy[k]);
        if (res[i].zero_grad == res[i].zero_grad)
            printf("  zero gradients %5.2f %% of the APGD runs\n", res[i].zero_grad);
        fflush(stdout);
    }
    print_results(cfg, res, seconds, path, which, data->n);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    const char *path = NULL, *attacks = "clean,fgsm,pgd20,cw20", *subset = NULL, *threads = NULL, *first = NULL;
    const char *model = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return eval_usage(stdout);
        if (a[0] == '-' && i + 1 >= argc) return eval_usage(stderr);
        if (!strcmp(a, "--attacks")) attacks = argv[++i];
        else if (!strcmp(a, "--test-subset")) subset = argv[++i];
        else if (!strcmp(a, "--first")) first = argv[++i];
        else if (!strcmp(a, "--threads")) threads = argv[++i];
        else if (!strcmp(a, "--model")) model = argv[++i];
        else if (a[0] == '-' || path) {
            fprintf(stderr, "regmix eval: unexpected argument '%s'\n", a);
            return eval_usage(stderr);
        } else path = a;
    }
    if (!path) return eval_usage(stderr);
    if (subset && first) {
        fprintf(stderr, "regmix eval: --test-subset and --first exclude each other\n");
        return EXIT_USAGE;
    }
    long long n_first = 0;
    if (first) {
        char *end;
        n_first = strtoll(first, &end, 10);
        if (*end || end == first || n_first < 1) {
            fprintf(stderr, "regmix eval: --first: expected a positive number of images, got '%s'\n", first);
            return EXIT_USAGE;
        }
    }
    rm_run_summary sum;
    if (rm_runfile_read(path, &sum) != RM_OK) return fail(NULL);
    rm_config cfg;
    rm_config_defaults(&cfg);
    rm_status st = rm_config_load_yaml_text(&cfg, sum.config_yaml, path);
    rm_run_summary_free(&sum);
    if (st != RM_OK) return fail("the run's configuration: ");
    if (rm_config_set(&cfg, "eval_attacks", attacks, "--attacks") != RM_OK ||
        rm_config_set(&cfg, "test_subset", subset ? subset : "0", subset ? "--test-subset" : NULL) != RM_OK ||
        (threads && rm_config_set(&cfg, "threads", threads, "--threads") != RM_OK) ||
        (model && rm_config_set(&cfg, "eval_model", model, "--model") != RM_OK)) {
        fprintf(stderr, "regmix eval: %s\n", rm_error_message());
        return EXIT_USAGE;
    }
    int has_ema = rm_config_ema_enabled(&cfg);
    if (model && !strcmp(model, "ema") && !has_ema) {
        fprintf(stderr, "regmix eval: --model ema: run %s has no EMA model (method %s, ema %s); use --model student\n",
                path, cfg.method, cfg.ema);
        return EXIT_USAGE;
    }
    const char *which = has_ema ? cfg.eval_model : "student";
    if (!rm_checkpoint_present(path)) {
        fprintf(stderr, "regmix eval: %s has no checkpoint yet (nothing to evaluate)\n", path);
        return EXIT_FAILED;
    }
    rm_trainer *t;
    if (rm_trainer_create(&cfg, &t) != RM_OK) return fail(NULL);
    if (rm_trainer_load_checkpoint(t, path, 1) != RM_OK) {
        rm_trainer_destroy(t);
        return fail(NULL);
    }
    if (!strcmp(which, "ema")) rm_ema_swap(rm_trainer_ema(t)); /* the net now holds the EMA model */
    rm_dataset head;
    memset(&head, 0, sizeof head);
    int rc;
    if (first && first_images(rm_trainer_test_set(t), n_first, &head) != RM_OK)
        rc = fail(NULL);
    else
        rc = evaluate(t, &cfg, first ? &head : rm_trainer_test_set(t), path, which);
    rm_dataset_free(&head);
    rm_trainer_destroy(t);
    return rc;
}
