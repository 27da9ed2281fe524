/* PyTorch reference fixtures (.rmfx) for the model tests, and the hash formula that fills
 * a net's weights exactly as tests/pytorch/gen_model_fixtures.py does.
 *
 * File (little-endian): "RMFX0001", uint32 record count, then per record
 *   uint32 name_len, name bytes (no NUL), uint32 ndim, int64 dims[ndim] (full shape),
 *   uint64 stride, uint64 count, float32 data[count]
 * where data[i] is the element at flat (row-major) index i * stride: tensors of more than
 * 16384 elements are sampled to keep the files small. */
#ifndef REGMIX_TEST_FIXTURE_H
#define REGMIX_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "regmix/common.h"
#include "regmix/nn.h"

#define FIXTURE_MAX_NDIM 8

typedef struct {
    char *name;
    int ndim;
    int64_t dims[FIXTURE_MAX_NDIM];
    size_t numel;  /* product of dims */
    size_t stride; /* data[i] = element at flat index i * stride */
    size_t count;  /* ceil(numel / stride) */
    float *data;
    int used;      /* set by fixture_find: lets a test check it consumed every record */
} fixture_record;

typedef struct {
    char *path;
    size_t count;
    fixture_record *records;
} fixture_file;

/* Reads the whole file; RM_ERR_IO (cannot open/read) or RM_ERR_FORMAT (bad magic,
 * truncation, bad sizes, trailing bytes), naming the file and the record. */
rm_status fixture_load(const char *path, fixture_file **out);
void fixture_free(fixture_file *f);

/* The record called `name` (marked used), or NULL. */
fixture_record *fixture_find(fixture_file *f, const char *name);

/* Records not yet returned by fixture_find; prints each one's name. */
size_t fixture_report_unused(const fixture_file *f);

/* Compares ours (the full tensor, numel elements) with a sampled reference:
 *   rel = max_i |ours[i*stride] - ref[i]| / max(max_i |ref[i]|, 1e-30)
 * and prints "  <label> max|diff| %.3e  rel %.3e  OK/NOT OK". Returns 1 when rel <= max_rel
 * (and the sizes agree and nothing is NaN), else 0. */
int fixture_compare(const char *label, const float *ours, size_t numel, const fixture_record *ref,
                    double max_rel);

/* ---- the weight formula (see gen_model_fixtures.py) ----
 * key = FNV-1a 64 of the name; for flat index i:
 *   h = (i + 1) * 0x9E3779B97F4A7C15 + key; h ^= h >> 31; h *= 0x94D049BB133111EB; h ^= h >> 29
 *   u = (h >> 11) * 2^-53 */
uint64_t fixture_name_key(const char *name);
double fixture_u(uint64_t key, uint64_t i);

/* Fills every parameter and buffer of the net with the formula (conv/linear weight and
 * linear bias: (2u - 1) / sqrt(fan_in); BN weight 0.5 + u, bias 0.2 (2u - 1), running_mean
 * 0.1 (2u - 1), running_var 0.5 + u; computed in double, rounded to float), then calls
 * rm_net_params_changed. A tensor it cannot classify is filled with NaN (and reported), so
 * every comparison downstream fails loudly. */
void fixture_fill_params(rm_net *net);

#endif
