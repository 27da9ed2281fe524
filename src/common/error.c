/* The single error slot: the first failure's message wins, later ones are context. */
#include "regmix/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char error_text[1024];

rm_status rm_fail_at(rm_status code, const char *file, int line, const char *fmt, ...) {
    if (error_text[0] != '\0') return code; /* keep the root cause */
    const char *base = strrchr(file, '/');
    int n = snprintf(error_text, sizeof error_text, "%s:%d: ", base ? base + 1 : file, line);
    if (n < 0 || (size_t)n >= sizeof error_text) return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_text + n, sizeof error_text - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

const char *rm_error_message(void) { return error_text[0] ? error_text : "no error recorded"; }

void rm_error_clear(void) { error_text[0] = '\0'; }

const char *rm_status_name(rm_status s) {
    switch (s) {
    case RM_OK: return "ok";
    case RM_ERR_ARG: return "bad argument";
    case RM_ERR_IO: return "I/O error";
    case RM_ERR_FORMAT: return "bad file format";
    case RM_ERR_NOMEM: return "out of memory";
    case RM_ERR_DNNL: return "oneDNN error";
    case RM_ERR_HDF5: return "HDF5 error";
    case RM_ERR_MPI: return "MPI error";
    case RM_ERR_DIVERGED: return "diverged";
    case RM_ERR_STATE: return "refused";
    case RM_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

void *rm_alloc_at(size_t bytes, const char *file, int line) {
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        rm_fail_at(RM_ERR_NOMEM, file, line, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void rm_free(void *p) { free(p); }
