/* Writes the binary seed inputs of the fuzz harnesses into tests/fuzz/corpus/ (the text
 * seeds are written by hand). Run from the repository root after changing a format:
 *     build-dev/tests/fuzz/gen_seeds tests/fuzz/corpus
 * Seeds are small valid inputs (and a few near misses) in each harness's input layout
 * (see the comment at the top of each fuzz_<name>.c); the fuzzer mutates from them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "regmix/config.h"
#include "regmix/runfile.h"

static const char *root;

static void die(const char *what) {
    fprintf(stderr, "gen_seeds: %s: %s\n", what, rm_error_message()[0] ? rm_error_message() : strerror(errno));
    exit(1);
}

static void put(const char *harness, const char *name, const void *data, size_t size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", root, harness, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) die(path);
}

/* Reads a whole file (the HDF5 seeds are written by regmix's writers, then copied). */
static unsigned char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) die(path);
    fclose(f);
    *size = (size_t)n;
    return b;
}

static void be32(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* fuzz_idx: 2 bytes (where the image file ends) + images + labels; n images of h x w. */
static void idx_seed(const char *name, int n, int h, int w, int gzip_images) {
    unsigned char images[16 + 4 * 5 * 5], labels[8 + 4];
    size_t ni = 16 + (size_t)n * h * w, nl = 8 + (size_t)n;
    be32(images, 0x803), be32(images + 4, (unsigned)n), be32(images + 8, (unsigned)h), be32(images + 12, (unsigned)w);
    for (size_t i = 16; i < ni; i++) images[i] = (unsigned char)(i * 37);
    be32(labels, 0x801), be32(labels + 4, (unsigned)n);
    for (int i = 0; i < n; i++) labels[8 + i] = (unsigned char)(i % 10);
    unsigned char img_file[512];
    size_t img_size = ni;
    if (gzip_images) {
        char tmp[] = "/tmp/regmix-seed-XXXXXX";
        int fd = mkstemp(tmp);
        if (fd < 0) die("mkstemp");
        close(fd);
        gzFile g = gzopen(tmp, "wb9");
        if (!g || gzwrite(g, images, (unsigned)ni) != (int)ni || gzclose(g) != Z_OK) die("gzip");
        unsigned char *z = slurp(tmp, &img_size);
        memcpy(img_file, z, img_size);
        free(z);
        unlink(tmp);
    } else {
        memcpy(img_file, images, ni);
    }
    unsigned char seed[2 + 512 + 16];
    seed[0] = (unsigned char)(img_size & 0xff), seed[1] = (unsigned char)(img_size >> 8);
    memcpy(seed + 2, img_file, img_size);
    memcpy(seed + 2 + img_size, labels, nl);
    put("fuzz_idx", name, seed, 2 + img_size + nl);
}

/* fuzz_cifar: 1 byte (kind, one or two files) + records. */
static void cifar_seed(const char *name, int kind, int two, int records) {
    int rec = kind == 0 ? 3073 : 3074;
    size_t size = 1 + (size_t)records * rec;
    unsigned char *b = calloc(size, 1);
    b[0] = (unsigned char)(kind + 3 * two);
    for (int r = 0; r < records; r++) {
        unsigned char *p = b + 1 + (size_t)r * rec;
        p[0] = (unsigned char)(r % (kind == 0 ? 10 : 20));
        if (kind) p[1] = (unsigned char)(r * 7 % 100);
        for (int i = kind ? 2 : 1; i < rec; i++) p[i] = (unsigned char)(i * 13 + r);
    }
    put("fuzz_cifar", name, b, size);
    free(b);
}

static void hdf5_seeds(void) {
    char dir[] = "/tmp/regmix-seed-XXXXXX", path[512], ckpt[600];
    if (!mkdtemp(dir)) die("mkdtemp");
    snprintf(path, sizeof path, "%s/run.h5", dir);
    rm_config cfg;
    rm_config_defaults(&cfg);
    rm_run_info info = {.mpi_rank = 0, .mpi_size = 1, .threads = 1};
    rm_metric_spec metrics[] = {{"loss", "nats", "training loss"}, {"test_clean", "fraction", "clean accuracy"}};
    rm_runfile *rf;
    if (rm_runfile_create(path, &cfg, &info, metrics, 2, &rf) != RM_OK) die("rm_runfile_create");
    double row1[2] = {2.3, 0.1}, row2[2] = {1.9, 0.4};
    if (rm_runfile_append(rf, 1, row1) != RM_OK || rm_runfile_append(rf, 2, row2) != RM_OK ||
        rm_runfile_set_status(rf, RM_RUN_COMPLETED, "") != RM_OK || rm_runfile_close(rf) != RM_OK)
        die("run file");
    /* a checkpoint with one tensor of each dtype under the names a trainer uses */
    char hash[17];
    rm_config_hash(&cfg, hash);
    rm_checkpoint_writer *w;
    if (rm_checkpoint_begin(path, hash, &w) != RM_OK) die("rm_checkpoint_begin");
    float conv[2 * 1 * 3 * 3], bias[2] = {0.5f, -0.25f};
    for (int i = 0; i < 18; i++) conv[i] = (float)i / 18.0f - 0.5f;
    unsigned char fresh[3] = {1, 0, 1};
    uint64_t rng[4] = {1, 2, 3, 0x9E3779B97F4A7C15ULL};
    int64_t dconv[4] = {2, 1, 3, 3}, two = 2, three = 3, four = 4;
    if (rm_checkpoint_add(w, "model/conv1.weight", RM_DT_F32, 4, dconv, conv) != RM_OK ||
        rm_checkpoint_add(w, "model/bn1.bias", RM_DT_F32, 1, &two, bias) != RM_OK ||
        rm_checkpoint_add(w, "optimizer/conv1.weight.momentum", RM_DT_F32, 4, dconv, conv) != RM_OK ||
        rm_checkpoint_add(w, "attack/fresh", RM_DT_U8, 1, &three, fresh) != RM_OK ||
        rm_checkpoint_add(w, "rng/attack", RM_DT_U64, 1, &four, rng) != RM_OK)
        die("rm_checkpoint_add");
    rm_checkpoint_meta meta = {.epoch = 2, .iteration = 10, .steps = 10};
    if (rm_checkpoint_commit(w, &meta) != RM_OK) die("rm_checkpoint_commit");
    size_t n;
    unsigned char *b = slurp(path, &n);
    put("fuzz_runfile", "completed-2-rows.h5", b, n);
    free(b);
    if (rm_runfile_checkpoint_path(path, ckpt, sizeof ckpt) != RM_OK) die("checkpoint path");
    b = slurp(ckpt, &n);
    put("fuzz_checkpoint", "five-tensors.ckpt.h5", b, n);
    free(b);
    unlink(ckpt);
    unlink(path);
    snprintf(path, sizeof path, "%s/run.h5.lock", dir);
    unlink(path);
    rmdir(dir);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds tests/fuzz/corpus\n");
        return 2;
    }
    root = argv[1];
    idx_seed("two-3x4.idx", 2, 3, 4, 0);
    idx_seed("four-5x5-gzip.idx", 4, 5, 5, 1);
    cifar_seed("cifar10-2.bin", 0, 0, 2);
    cifar_seed("cifar100-fine-2-files.bin", 1, 1, 2);
    cifar_seed("cifar100-coarse-1.bin", 2, 0, 1);
    hdf5_seeds();
    return 0;
}
