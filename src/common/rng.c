/* xoshiro256** (Blackman & Vigna) seeded through splitmix64. */
#include "regmix/common.h"

#include <math.h>
#include <time.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rm_rng_seed(rm_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

void rm_rng_derive(rm_rng *r, uint64_t seed, const char *purpose) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a of the purpose, mixed into the seed */
    for (const char *c = purpose; *c; c++) h = (h ^ (uint8_t)*c) * 0x100000001b3ULL;
    rm_rng_seed(r, seed ^ h);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rm_rng_u64(rm_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t rm_rng_below(rm_rng *r, uint32_t n) {
    /* Lemire's multiply-shift with rejection: unbiased for every n. */
    uint64_t m = (uint64_t)(uint32_t)(rm_rng_u64(r) >> 32) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)(rm_rng_u64(r) >> 32) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float rm_rng_uniform(rm_rng *r) { return (float)(rm_rng_u64(r) >> 40) * 0x1.0p-24f; }

float rm_rng_uniform_range(rm_rng *r, float lo, float hi) {
    return lo + (hi - lo) * rm_rng_uniform(r);
}

float rm_rng_normal(rm_rng *r) {
    double u1 = ((double)(rm_rng_u64(r) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
    double u2 = (double)(rm_rng_u64(r) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2));
}

double rm_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
