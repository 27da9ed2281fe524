/* The evaluation-attack list parser (rm_eval_attacks_parse: "clean,fgsm,pgd50x5,
 * pgd20@12/255"). Properties: every parsed attack is within the documented ranges, and
 * its canonical spec (rm_eval_attack_spec) parses back to the same attack. */
#include <string.h>

#include "fuzz_support.h"

#include "regmix/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = fuzz_text(data, size);
    rm_eval_attack one;
    (void)rm_eval_attack_error(text, &one);
    rm_eval_attack list[RM_CFG_MAX_EVAL];
    int n = 0;
    if (rm_eval_attacks_parse(text, list, &n, "fuzz") != RM_OK) return 0;
    fuzz_require(n >= 1 && n <= RM_CFG_MAX_EVAL, "n = %d", n);
    for (int i = 0; i < n; i++) {
        const rm_eval_attack *a = &list[i];
        fuzz_require(a->restarts >= 1 && a->restarts <= 100 && a->steps >= 0 && a->steps <= 10000 &&
                     a->eps >= 0 && a->eps <= 1 && memchr(a->name, '\0', sizeof a->name),
                     "attack %d of '%s' out of range", i, text);
        char spec[128];
        fuzz_require(rm_eval_attack_spec(a, spec, sizeof spec) > 0, "spec of attack %d", i);
        rm_eval_attack b;
        fuzz_require(rm_eval_attack_error(spec, &b) == NULL, "spec '%s' of '%s' does not parse", spec, text);
        fuzz_require(b.kind == a->kind && b.steps == a->steps && b.restarts == a->restarts && b.eps == a->eps &&
                     !strcmp(b.name, a->name), "spec '%s' of '%s' parses to another attack", spec, text);
    }
    return 0;
}
