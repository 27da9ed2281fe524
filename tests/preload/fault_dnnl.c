/* A oneDNN failure in one process only, for tests that start regmix under mpirun (the
 * regmix binary carries no test hook): preloaded (LD_PRELOAD) into one rank, this
 * dnnl_primitive_execute fails with dnnl_runtime_error from the moment the file named by
 * REGMIX_FAULT_DNNL_WHEN exists (e.g. a run's first checkpoint), and passes every call to
 * oneDNN before. Built without sanitizers: a preloaded library must not need their
 * runtime ahead of the executable's. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <dnnl.h>

typedef dnnl_status_t (*execute_fn)(const_dnnl_primitive_t, dnnl_stream_t, int, const dnnl_exec_arg_t *);

dnnl_status_t dnnl_primitive_execute(const_dnnl_primitive_t p, dnnl_stream_t s, int nargs, const dnnl_exec_arg_t *args) {
    static execute_fn real;
    static int failing;
    if (!real) real = (execute_fn)dlsym(RTLD_NEXT, "dnnl_primitive_execute");
    const char *when = getenv("REGMIX_FAULT_DNNL_WHEN");
    if (!failing && when && access(when, F_OK) == 0) failing = 1;
    if (failing || !real) return dnnl_runtime_error;
    return real(p, s, nargs, args);
}
