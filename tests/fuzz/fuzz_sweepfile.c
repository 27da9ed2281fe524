/* The sweep-file parser and expansion (rm_sweep_load: base / grid / zip / exclude, run
 * ids). Property: every run of a loaded sweep has a valid configuration and an id that
 * is a safe file name, and rm_sweep_find finds it. */
#include <string.h>

#include "fuzz_support.h"

#include "regmix/sweep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rm_sweep s;
    if (rm_sweep_load(fuzz_write_file("sweep.yaml", data, size), &s) != RM_OK) {
        rm_sweep_free(&s);
        return 0;
    }
    fuzz_require(s.n_runs >= 1 && s.n_runs <= RM_SWEEP_MAX_RUNS, "n_runs %d", s.n_runs);
    for (int i = 0; i < s.n_runs; i++) {
        const rm_sweep_run *r = &s.runs[i];
        fuzz_require(r->id[0] && !strchr(r->id, '/') && strcmp(r->id, ".") && strcmp(r->id, ".."),
                     "run id '%s' is not a safe file name", r->id);
        fuzz_require(rm_config_validate(&r->cfg) == RM_OK, "run %s: %s", r->id, rm_error_message());
        fuzz_require(rm_sweep_find(&s, r->id) == i, "rm_sweep_find(%s)", r->id);
    }
    rm_sweep_free(&s);
    return 0;
}
