#include "fuzz_support.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_FILES = 8 };
static char scratch[512];
static char names[MAX_FILES][64];
static int n_names;

static void remove_scratch(void) {
    for (int i = 0; i < n_names; i++) unlink(fuzz_path(names[i]));
    rmdir(scratch);
}

const char *fuzz_path(const char *name) {
    static char path[MAX_FILES][600];
    static int next;
    if (!scratch[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(scratch, sizeof scratch, "%s/regmix-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(scratch)) {
            fprintf(stderr, "fuzz: mkdtemp(%s): %s\n", scratch, strerror(errno));
            abort();
        }
        atexit(remove_scratch);
    }
    char *p = path[next++ % MAX_FILES];
    snprintf(p, sizeof path[0], "%s/%s", scratch, name);
    return p;
}

const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size) {
    int known = 0;
    for (int i = 0; i < n_names; i++) known |= !strcmp(names[i], name);
    if (!known && n_names < MAX_FILES) snprintf(names[n_names++], sizeof names[0], "%s", name);
    const char *path = fuzz_path(name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        fprintf(stderr, "fuzz: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
    return path;
}

char *fuzz_text(const uint8_t *data, size_t size) {
    static char *buf;
    static size_t cap;
    if (size + 1 > cap) {
        free(buf);
        cap = size + 1;
        buf = malloc(cap);
        if (!buf) abort();
    }
    if (size) memcpy(buf, data, size);
    buf[size] = '\0';
    return buf;
}

void fuzz_require(int ok, const char *fmt, ...) {
    if (ok) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz: property violated: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}
