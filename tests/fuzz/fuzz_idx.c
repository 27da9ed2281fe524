/* IDX reader (rm_idx_load: MNIST / Fashion-MNIST, plain or gzipped). The input holds
 * both files: its first two bytes (little-endian) give, modulo the rest's length + 1,
 * where the image file ends and the label file begins. */
#include "fuzz_support.h"

#include "regmix/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t rest = size - 2, cut = ((size_t)data[0] | (size_t)data[1] << 8) % (rest + 1);
    const char *images = fuzz_write_file("images-idx3-ubyte", data + 2, cut);
    const char *labels = fuzz_write_file("labels-idx1-ubyte", data + 2 + cut, rest - cut);
    rm_dataset d;
    if (rm_idx_load(images, labels, 10, "fuzz", &d) == RM_OK) {
        fuzz_require(d.n >= 1 && d.c == 1 && d.h >= 1 && d.w >= 1, "bad shape");
        for (int64_t i = 0; i < d.n; i++)
            fuzz_require(d.labels[i] >= 0 && d.labels[i] < 10, "label %d out of range", d.labels[i]);
        size_t pixels = (size_t)d.n * (size_t)d.h * (size_t)d.w;
        for (size_t i = 0; i < pixels; i++)
            fuzz_require(d.images[i] >= 0.0f && d.images[i] <= 1.0f, "pixel %g out of [0, 1]", d.images[i]);
        rm_dataset_free(&d);
    }
    return 0;
}
