/* The sweep file as read (sweepfile.c), before it is expanded into runs
 * (sweepfile_expand.c). Private to src/sweep/. */
#ifndef REGMIX_SWEEPFILE_INTERNAL_H
#define REGMIX_SWEEPFILE_INTERNAL_H

#include "regmix/sweep.h"

/* Longest canonical value text (rm_config_setting_text): eval_attacks with budgets. */
#define SW_CANON_MAX 1024

typedef struct {
    char text[RM_SWEEP_VALUE_MAX]; /* as written, trimmed; a list joined with ',' */
    char canon[SW_CANON_MAX];      /* the setting's canonical text once applied */
    int line;
} sw_value;

typedef struct {
    char name[32];  /* the setting */
    int line;       /* line of the axis key */
    int dim;        /* loop dimension: a grid axis or a whole zip group */
    int n;          /* values (equal for all axes of one dimension) */
    sw_value *v;
} sw_axis;

/* One exclude entry: a run is excluded when, for every key k, match[k][its value index
 * on axis[k]] is set. */
typedef struct {
    int line;
    int n_keys;
    int axis[RM_SWEEP_MAX_AXES];
    unsigned char *match[RM_SWEEP_MAX_AXES];
} sw_exclude;

typedef struct {
    const char *path;
    char name[64];
    char description[512];
    rm_config base;          /* defaults + base */
    int base_line;           /* line of the base: key (1 if absent): for messages */
    int base_sets_outdir;
    int n_axes;              /* axes of one dimension are contiguous */
    sw_axis axes[RM_SWEEP_MAX_AXES];
    int n_dims;
    int n_excl;
    sw_exclude *excl;
    int max_runs;            /* RM_SWEEP_MAX_RUNS, or the file's max_runs */
    int max_runs_line;       /* line of max_runs: (0 if absent) */
} sw_file;

/* The most runs max_runs may allow: each run's table entry is a few KB, so this is a
 * few hundred MB of run table on every rank. */
#define SW_MAX_RUNS_LIMIT 100000

void sw_file_free(sw_file *f);

/* Expands f into out->runs (n_runs, n_excluded; the rest of *out is filled by the
 * caller): exclusion, ids, per-run configs, validation, duplicate hashes and ids. */
rm_status sw_expand(const sw_file *f, rm_sweep *out);

/* Strips the "source.c:123: " prefix that rm_fail puts before a message. */
const char *sw_strip_source(const char *msg);

#endif
