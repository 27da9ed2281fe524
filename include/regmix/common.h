/* regmix common: one error path, one seeded RNG, small helpers shared by every module.
 *
 * Functions that can fail return rm_status. The first failure records a message with
 * the file, line and the failed call (rm_error_message()); callers propagate the status
 * with RM_TRY and the command line turns it into one line on stderr and a non-zero exit. */
#ifndef REGMIX_COMMON_H
#define REGMIX_COMMON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    RM_OK = 0,
    RM_ERR_ARG,      /* bad setting or argument value */
    RM_ERR_IO,       /* file missing, unreadable, short write */
    RM_ERR_FORMAT,   /* file exists but its contents are wrong (magic, size, range) */
    RM_ERR_NOMEM,
    RM_ERR_DNNL,     /* a oneDNN call failed */
    RM_ERR_HDF5,
    RM_ERR_MPI,
    RM_ERR_DIVERGED, /* NaN/Inf in a loss: the run stops with status "diverged" */
    RM_ERR_STATE,    /* refused: e.g. config hash mismatch, run already completed */
    RM_ERR_INTERRUPTED /* preempted by a signal */
} rm_status;

/* Records "file:line: message" as the current error (the first one wins until cleared)
 * and returns `code`, so that `return rm_fail(...)` reads naturally. */
rm_status rm_fail_at(rm_status code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define rm_fail(code, ...) rm_fail_at((code), __FILE__, __LINE__, __VA_ARGS__)

const char *rm_error_message(void);
void rm_error_clear(void);
const char *rm_status_name(rm_status s);

/* Propagate a failure: RM_TRY(rm_load(...)); */
#define RM_TRY(expr)                                                                       \
    do {                                                                                   \
        rm_status rm_try_status_ = (expr);                                                 \
        if (rm_try_status_ != RM_OK) return rm_try_status_;                                \
    } while (0)

/* Allocation that records RM_ERR_NOMEM with the call site on failure. Memory is
 * 64-byte aligned (AVX-512 lines) and zeroed. Free with rm_free. */
void *rm_alloc_at(size_t bytes, const char *file, int line);
#define rm_alloc(bytes) rm_alloc_at((bytes), __FILE__, __LINE__)
void rm_free(void *p);

/* ---- deterministic RNG: xoshiro256** seeded with splitmix64 ----
 * Every random choice of a run (init, shuffling, augmentation, attack starts) comes
 * from generators derived from the run seed, so a seed reproduces the run bit for bit. */
typedef struct {
    uint64_t s[4];
} rm_rng;

void rm_rng_seed(rm_rng *r, uint64_t seed);
/* An independent stream for a named purpose: rm_rng_derive(&r, seed, "init"). */
void rm_rng_derive(rm_rng *r, uint64_t seed, const char *purpose);
uint64_t rm_rng_u64(rm_rng *r);
uint32_t rm_rng_below(rm_rng *r, uint32_t n);        /* uniform in [0, n), unbiased */
float rm_rng_uniform(rm_rng *r);                      /* uniform in [0, 1) */
float rm_rng_uniform_range(rm_rng *r, float lo, float hi);
float rm_rng_normal(rm_rng *r);                       /* standard normal (Box-Muller) */

double rm_now_seconds(void); /* monotonic clock */

/* A file HDF5 could not write (a full disk) stays dirty inside HDF5, whose exit handler
 * then crashes on it (HDF5 1.10: SIGSEGV in H5F__close_cb). Writers call
 * rm_note_unwritable_file after such a failure; rm_exit ends the process like exit(rc),
 * but after such a failure without the exit handlers (stdio flushed first): the files
 * keep what was flushed before the failure, and a run file left open is repaired when
 * its run resumes. */
void rm_note_unwritable_file(void);
_Noreturn void rm_exit(int rc);

/* CPUs in this process's affinity mask (what mpirun bound the rank to), -1 if unknown.
 * More OpenMP threads than this share those CPUs and run slower than fewer threads. */
int rm_cpus_allowed(void);

#endif
