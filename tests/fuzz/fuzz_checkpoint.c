/* The checkpoint reader (rm_checkpoint_open / has / shape / read: what resume and
 * `regmix eval` load through). The input is written to run.ckpt.h5 beside run.h5. Every
 * tensor name a checkpoint of fmnist-cnn holds is looked up; one that is present is read
 * with its stored shape and with a wrong one. Property: rm_checkpoint_read succeeds only
 * when dtype and shape are exactly the stored ones; no HDF5 object stays open after
 * rm_checkpoint_close or a failed open (see fuzz_runfile.c). */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_support.h"

#include "regmix/runfile.h"

static const char *const names[] = {
    "model/conv1.weight", "model/bn1.weight", "model/bn1.bias", "model/bn1.running_mean",
    "model/bn1.running_var", "model/conv2.weight", "model/fc1.weight", "model/fc1.bias",
    "model/fc2.weight", "model/fc2.bias", "optimizer/conv1.weight.momentum",
    "optimizer/fc2.bias.momentum", "attack/D", "attack/M", "attack/fresh", "rng/shuffle",
    "rng/augment", "rng/attack", "no/such/tensor", "", "/", "model",
};

static size_t dtype_size(rm_dtype t) {
    switch (t) {
    case RM_DT_U8: return 1;
    case RM_DT_F32: return 4;
    default: return 8;
    }
}

static void read_tensor(rm_checkpoint_reader *r, const char *name) {
    rm_dtype dt;
    int ndim;
    int64_t dims[RM_CKPT_MAX_DIMS];
    if (rm_checkpoint_shape(r, name, &dt, &ndim, dims) != RM_OK) return;
    fuzz_require(ndim >= 0 && ndim <= RM_CKPT_MAX_DIMS, "%s: ndim %d", name, ndim);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        fuzz_require(dims[i] >= 0, "%s: dim %d is %lld", name, i, (long long)dims[i]);
        if (dims[i] > (1 << 22) || (numel *= (size_t)dims[i]) > (1 << 22)) return; /* too large to try */
    }
    void *buf = malloc(numel * dtype_size(dt) + 8);
    fuzz_require(buf != NULL, "malloc");
    (void)rm_checkpoint_read(r, name, dt, ndim, dims, buf);
    /* one more element in the last dimension (or one dimension more): must be refused */
    int64_t wrong[RM_CKPT_MAX_DIMS + 1];
    memcpy(wrong, dims, sizeof(int64_t) * (size_t)ndim);
    int wn = ndim;
    if (ndim > 0) wrong[ndim - 1] += 1;
    else wrong[wn++] = 1;
    if (wn <= RM_CKPT_MAX_DIMS) {
        void *big = malloc((numel + 1) * dtype_size(dt) * 2 + 8);
        fuzz_require(big != NULL, "malloc");
        fuzz_require(rm_checkpoint_read(r, name, dt, wn, wrong, big) != RM_OK,
                     "%s: read with a shape it does not have", name);
        free(big);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write_file("run.ckpt.h5", data, size);
    rm_checkpoint_reader *r;
    rm_checkpoint_meta meta;
    if (rm_checkpoint_open(fuzz_path("run.h5"), &r, &meta) == RM_OK) {
        for (size_t i = 0; i < sizeof names / sizeof *names; i++)
            if (rm_checkpoint_has(r, names[i])) read_tensor(r, names[i]);
        rm_checkpoint_close(r);
    }
    ssize_t open_objects = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
    fuzz_require(open_objects == 0, "%zd HDF5 objects left open", open_objects);
    return 0;
}
