/* A synthetic Fashion-MNIST-shaped data set for tests that run the regmix binary without
 * the installed data: IDX files (plain, which the reader takes when no .gz exists) of
 * 28x28 images of uniform random bytes and uniform random labels 0..9. Dense pixels keep
 * every sum of a training step well conditioned (no constant background). */
#ifndef REGMIX_TEST_SYNTHETIC_DATA_H
#define REGMIX_TEST_SYNTHETIC_DATA_H

#include <stdint.h>

/* Writes {train,t10k}-{images-idx3,labels-idx1}-ubyte into dir (which must exist):
 * n_train and n_test samples drawn from rm_rng seeded with seed. CMocka assertions. */
void rm_test_write_idx_dataset(const char *dir, int n_train, int n_test, uint64_t seed);

#endif
