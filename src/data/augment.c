/* Training augmentation: zero padding + random crop back to H x W, then a random
 * horizontal flip (torchvision RandomCrop(padding=p) followed by RandomHorizontalFlip). */
#include "regmix/data.h"

#include <string.h>

rm_augment rm_augment_default(const char *name) {
    rm_augment a = {0, 0};
    if (name && strncmp(name, "cifar", 5) == 0) {
        a.pad = 4; /* reference code: pad 4 + random 32x32 crop + flip */
        a.flip = 1;
    }
    return a;
}

/* in, out: (c, h, w). The crop window starts at (dy, dx) in the padded image, so an
 * output pixel reads input row y + dy - pad; the flip mirrors the cropped image, so
 * output column x reads cropped column w - 1 - x. */
void rm_augment_image(const float *in, float *out, int c, int h, int w, int pad, int dy,
                      int dx, int flip) {
    for (int k = 0; k < c; k++) {
        const float *src = in + (size_t)k * h * w;
        float *dst = out + (size_t)k * h * w;
        for (int y = 0; y < h; y++) {
            int sy = y + dy - pad;
            float *row = dst + (size_t)y * w;
            if (sy < 0 || sy >= h) {
                memset(row, 0, (size_t)w * sizeof *row);
                continue;
            }
            const float *srow = src + (size_t)sy * w;
            for (int x = 0; x < w; x++) {
                int sx = (flip ? w - 1 - x : x) + dx - pad;
                row[x] = (sx >= 0 && sx < w) ? srow[sx] : 0.0f;
            }
        }
    }
}

void rm_augment_random(const rm_augment *aug, rm_rng *rng, const float *in, float *out, int c,
                       int h, int w) {
    int dy = 0, dx = 0, flip = 0;
    if (aug->pad > 0) {
        uint32_t span = 2u * (uint32_t)aug->pad + 1u;
        dy = (int)rm_rng_below(rng, span);
        dx = (int)rm_rng_below(rng, span);
    }
    if (aug->flip) flip = (int)rm_rng_below(rng, 2);
    rm_augment_image(in, out, c, h, w, aug->pad > 0 ? aug->pad : 0, dy, dx, flip);
}
