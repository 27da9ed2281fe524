/* CIFAR-10 / CIFAR-100 binary reader (rm_cifar_load). The first byte chooses the kind
 * (byte % 3: CIFAR-10, CIFAR-100 fine, CIFAR-100 coarse) and whether the rest is one
 * file or two (byte / 3 % 2: cut in the middle), as rm_dataset_load passes the five
 * CIFAR-10 training batches. */
#include "fuzz_support.h"

#include "regmix/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    rm_cifar_kind kind = (rm_cifar_kind)(data[0] % 3);
    int two = data[0] / 3 % 2;
    size_t rest = size - 1, cut = two ? rest / 2 : rest;
    const char *paths[2] = {fuzz_write_file("batch_1.bin", data + 1, cut),
                            fuzz_write_file("batch_2.bin", data + 1 + cut, rest - cut)};
    rm_dataset d;
    if (rm_cifar_load(kind, paths, two ? 2 : 1, "fuzz", &d) == RM_OK) {
        int classes = kind == RM_CIFAR10 ? 10 : kind == RM_CIFAR100_FINE ? 100 : 20;
        fuzz_require(d.n >= 1 && d.c == 3 && d.h == 32 && d.w == 32 && d.num_classes == classes,
                     "bad shape");
        for (int64_t i = 0; i < d.n; i++)
            fuzz_require(d.labels[i] >= 0 && d.labels[i] < classes, "label %d out of range", d.labels[i]);
        rm_dataset_free(&d);
    }
    return 0;
}
