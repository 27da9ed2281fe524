/* regmix eval RUN.h5: evaluates a run's checkpointed weights under a list of attacks on
 * the test set (inference-mode batch norm), e.g. the full test set after training on a
 * per-epoch subset. A run with an EMA model has two: the EMA and the student (its
 * trained weights); --model picks one, by default the one the run evaluated with
 * (eval_model). Reads the run's configuration from its file; writes nothing. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "regmix/runfile.h"
#include "regmix/train.h"

static int eval_usage(FILE *out) {
    fprintf(out, "usage: regmix eval RUN.h5 [--attacks LIST] [--test-subset N] [--threads T] [--model M]\n"
                 "  LIST: comma-separated evaluation attacks (default clean,fgsm,pgd20,cw20),\n"
                 "        e.g. pgd50x5 (5 restarts), cw20, pgd20@12/255 (another budget)\n"
                 "  --test-subset N: evaluate the first N of the fixed test subset; 0 (default) = all\n"
                 "  --model M: ema or student, for a run with an EMA model (default: its eval_model)\n"
                 "  Prints one line per attack and, last, one JSON object.\n");
    return out == stderr ? EXIT_USAGE : 0;
}

static int fail(const char *what) {
    fprintf(stderr, "regmix eval: %s%s\n", what ? what : "", rm_error_message());
    return EXIT_FAILED;
}

int cmd_eval(int argc, char **argv) {
    const char *path = NULL, *attacks = "clean,fgsm,pgd20,cw20", *subset = "0", *threads = NULL, *model = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return eval_usage(stdout);
        if (a[0] == '-' && i + 1 >= argc) return eval_usage(stderr);
        if (!strcmp(a, "--attacks")) attacks = argv[++i];
        else if (!strcmp(a, "--test-subset")) subset = argv[++i];
        else if (!strcmp(a, "--threads")) threads = argv[++i];
        else if (!strcmp(a, "--model")) model = argv[++i];
        else if (a[0] == '-' || path) {
            fprintf(stderr, "regmix eval: unexpected argument '%s'\n", a);
            return eval_usage(stderr);
        } else path = a;
    }
    if (!path) return eval_usage(stderr);
    rm_run_summary sum;
    if (rm_runfile_read(path, &sum) != RM_OK) return fail(NULL);
    rm_config cfg;
    rm_config_defaults(&cfg);
    rm_status st = rm_config_load_yaml_text(&cfg, sum.config_yaml, path);
    rm_run_summary_free(&sum);
    if (st != RM_OK) return fail("the run's configuration: ");
    if (rm_config_set(&cfg, "eval_attacks", attacks, "--attacks") != RM_OK ||
        rm_config_set(&cfg, "test_subset", subset, "--test-subset") != RM_OK ||
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
    const rm_dataset *test = rm_trainer_test_set(t);
    printf("# regmix eval %s: model %s, %lld test images, eps %.4g, threads %d\n", path, which,
           (long long)test->n, cfg.eps, omp_get_max_threads());
    printf("%-20s %10s %10s\n", "attack", "accuracy%", "seconds");
    fflush(stdout);
    double acc[RM_CFG_MAX_EVAL];
    int rc = 0;
    for (int i = 0; i < cfg.n_eval && rc == 0; i++) {
        double t0 = rm_now_seconds();
        if (rm_trainer_evaluate(t, NULL, &cfg.eval[i], &acc[i]) != RM_OK) {
            rc = fail(NULL);
            break;
        }
        printf("%-20s %10.2f %10.1f\n", cfg.eval[i].name, acc[i], rm_now_seconds() - t0);
        fflush(stdout);
    }
    if (rc == 0) {
        printf("{\"run\":\"%s\",\"model\":\"%s\",\"test_images\":%lld", path, which, (long long)test->n);
        for (int i = 0; i < cfg.n_eval; i++) printf(",\"test_%s\":%.4f", cfg.eval[i].name, acc[i]);
        printf("}\n");
    }
    rm_trainer_destroy(t);
    return rc;
}
