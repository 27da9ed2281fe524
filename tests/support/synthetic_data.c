#include "synthetic_data.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "regmix/common.h"

static void be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void write_file(const char *dir, const char *name, const unsigned char *b, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_split(const char *dir, const char *split, int n, rm_rng *r) {
    size_t ni = 16 + (size_t)n * 784, nl = 8 + (size_t)n;
    unsigned char *b = malloc(ni);
    assert_non_null(b);
    be32(b, 0x803), be32(b + 4, (uint32_t)n), be32(b + 8, 28), be32(b + 12, 28);
    for (size_t i = 16; i < ni; i++) b[i] = (unsigned char)rm_rng_below(r, 256);
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
    write_file(dir, name, b, ni);
    be32(b, 0x801), be32(b + 4, (uint32_t)n);
    for (size_t i = 8; i < nl; i++) b[i] = (unsigned char)rm_rng_below(r, 10);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
    write_file(dir, name, b, nl);
    free(b);
}

void rm_test_write_idx_dataset(const char *dir, int n_train, int n_test, uint64_t seed) {
    rm_rng r;
    rm_rng_seed(&r, seed);
    write_split(dir, "train", n_train, &r);
    write_split(dir, "t10k", n_test, &r);
}
