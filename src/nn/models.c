/* The model zoo. Parameter names and declaration order follow the PyTorch modules'
 * state_dict (tests/pytorch/models.py), so checkpoints move by name alone. Every builder
 * takes the input image shape (c, h, w): the first layer reads c channels, and the
 * residual networks end in global average pooling over whatever map is left (the
 * reference code's avg_pool2d(4) / avg_pool2d(8) on 32x32 images is exactly that). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/engine.h"

/* wrn-D-W's graph: stem conv, 3 (D-4)/6 blocks of 7 nodes, 3 shortcut convs at most,
 * final BN, ReLU, pooling, linear; state_dict: 1 + 30 (D-4)/6 + 3 + 4 + 2 tensors. */
#define WRN_BLOCKS(depth) (((depth) - 4) / 6)
_Static_assert(21 * WRN_BLOCKS(RM_WRN_MAX_DEPTH) + 8 <= MAX_NODES &&
                   21 * WRN_BLOCKS(RM_WRN_MAX_DEPTH) + 9 <= MAX_TENSORS &&
                   30 * WRN_BLOCKS(RM_WRN_MAX_DEPTH) + 10 <= MAX_PARAMS,
               "the engine's limits must hold the deepest wrn-D-W");

#define CHECK_T(t)                                                                         \
    do {                                                                                   \
        if ((t) < 0) return rm_fail(RM_ERR_ARG, "building %s: graph construction failed", model); \
    } while (0)

/* "<prefix>.<part>" (layer names of a block). The buffer is reused: one at() per
 * statement, or an argument may see another call's name. */
typedef struct {
    char s[64];
} layer_name;

static const char *at(layer_name *b, const char *prefix, const char *part) {
    snprintf(b->s, sizeof b->s, "%s.%s", prefix, part);
    return b->s;
}

/* The residual networks pool globally at the end: the engine's pooling is square. */
static rm_status need_square(const char *model, int c, int h, int w) {
    if (h != w)
        return rm_fail(RM_ERR_ARG, "model %s takes square images only (global average pooling), not %dx%dx%d",
                       model, c, h, w);
    return RM_OK;
}

/* fmnist-cnn: conv(c->32,3x3,p1)-BN-ReLU-maxpool2, conv(32->64,3x3,p1)-BN-ReLU-maxpool2,
 * linear(64 (h/4) (w/4) -> 256)-ReLU, linear(256->K). On 1x28x28 (Fashion-MNIST) fc1 takes
 * 64*7*7 = 3136 features, on 3x32x32 (CIFAR) 64*8*8 = 4096. */
static rm_status build_fmnist_cnn(rm_net *n, const char *model, int c, int h, int w, int classes) {
    if (h < 4 || w < 4)
        return rm_fail(RM_ERR_ARG, "model %s needs images of at least 4x4 (two 2x2 max-pools), not %dx%dx%d",
                       model, c, h, w);
    RM_TRY(graph_declare_conv(n, "conv1", 32, c, 3, 0));
    RM_TRY(graph_declare_bn(n, "bn1", 32));
    RM_TRY(graph_declare_conv(n, "conv2", 64, 32, 3, 0));
    RM_TRY(graph_declare_bn(n, "bn2", 64));
    int t = graph_input(n, c, h, w);
    t = graph_conv(n, t, "conv1", 1, 1);
    t = graph_relu(n, graph_bn(n, t, "bn1"));
    t = graph_maxpool(n, t, 2, 2);
    t = graph_conv(n, t, "conv2", 1, 1);
    t = graph_relu(n, graph_bn(n, t, "bn2"));
    t = graph_maxpool(n, t, 2, 2);
    CHECK_T(t);
    const tensor_shape *s = &n->shape[t]; /* flattened in (C, H, W) order */
    RM_TRY(graph_declare_linear(n, "fc1", 256, s->c * s->h * s->w));
    RM_TRY(graph_declare_linear(n, "fc2", classes, 256));
    t = graph_relu(n, graph_linear(n, t, "fc1"));
    t = graph_linear(n, t, "fc2");
    CHECK_T(t);
    return RM_OK;
}

/* ---- pre-activation blocks: PreAct-ResNet-18 and WideResNet share them ----
 * state_dict order bn1, conv1, bn2, conv2, then the 1x1 shortcut conv (named
 * "shortcut.0" in PreActResNet, "convShortcut" in TRADES' WideResNet). */
static rm_status declare_preact_block(rm_net *n, const char *p, int in, int planes, const char *shortcut) {
    layer_name b;
    RM_TRY(graph_declare_bn(n, at(&b, p, "bn1"), in));
    RM_TRY(graph_declare_conv(n, at(&b, p, "conv1"), planes, in, 3, 0));
    RM_TRY(graph_declare_bn(n, at(&b, p, "bn2"), planes));
    RM_TRY(graph_declare_conv(n, at(&b, p, "conv2"), planes, planes, 3, 0));
    if (shortcut) RM_TRY(graph_declare_conv(n, at(&b, p, shortcut), planes, in, 1, 0));
    return RM_OK;
}

/* out = relu(bn1(x)); sc = shortcut(out) or x; out = conv2(relu(bn2(conv1(out)))) + sc.
 * TRADES' BasicBlock computes the same (its shortcut also branches off after bn1+relu
 * when the width changes, and its identity shortcut takes x). */
static int preact_block(rm_net *n, const char *p, int x, int stride, const char *shortcut) {
    layer_name b;
    int out = graph_relu(n, graph_bn(n, x, at(&b, p, "bn1")));
    int sc = shortcut ? graph_conv(n, out, at(&b, p, shortcut), stride, 0) : x;
    out = graph_conv(n, out, at(&b, p, "conv1"), stride, 1);
    out = graph_relu(n, graph_bn(n, out, at(&b, p, "bn2")));
    out = graph_conv(n, out, at(&b, p, "conv2"), 1, 1);
    return graph_add(n, out, sc);
}

/* The four stages of both ResNet-18s: 2 blocks each, 64/128/256/512 planes, stride
 * 1/2/2/2 in the first block of a stage, a projection shortcut where the shape changes. */
static const int RESNET18_PLANES[4] = {64, 128, 256, 512}, RESNET18_STRIDES[4] = {1, 2, 2, 2};

/* PreAct-ResNet-18 (He et al. 2016, the variant used by FGSM-PGI and TRADES): 3x3 stem
 * conv, the four stages of pre-activation blocks, BN-ReLU, global average pooling,
 * linear. */
static rm_status build_preact_resnet18(rm_net *n, const char *model, int c, int h, int w, int classes) {
    RM_TRY(need_square(model, c, h, w));
    RM_TRY(graph_declare_conv(n, "conv1", 64, c, 3, 0));
    int in = 64;
    for (int s = 0; s < 4; s++) {
        for (int b = 0; b < 2; b++) {
            char p[24];
            snprintf(p, sizeof p, "layer%d.%d", s + 1, b);
            int stride = b == 0 ? RESNET18_STRIDES[s] : 1, proj = stride != 1 || in != RESNET18_PLANES[s];
            RM_TRY(declare_preact_block(n, p, in, RESNET18_PLANES[s], proj ? "shortcut.0" : NULL));
            in = RESNET18_PLANES[s];
        }
    }
    RM_TRY(graph_declare_bn(n, "bn", 512));
    RM_TRY(graph_declare_linear(n, "linear", classes, 512));

    int t = graph_input(n, c, h, w);
    t = graph_conv(n, t, "conv1", 1, 1);
    in = 64;
    for (int s = 0; s < 4; s++) {
        for (int b = 0; b < 2; b++) {
            char p[24];
            snprintf(p, sizeof p, "layer%d.%d", s + 1, b);
            int stride = b == 0 ? RESNET18_STRIDES[s] : 1, proj = stride != 1 || in != RESNET18_PLANES[s];
            t = preact_block(n, p, t, stride, proj ? "shortcut.0" : NULL);
            in = RESNET18_PLANES[s];
        }
    }
    t = graph_relu(n, graph_bn(n, t, "bn"));
    t = graph_gap(n, t);
    t = graph_linear(n, t, "linear");
    CHECK_T(t);
    return RM_OK;
}

/* ---- ResNet-18, post-activation (He et al. 2015; the FGSM-PGK code's ResNet18) ----
 * BasicBlock: out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), shortcut =
 * bn(conv1x1(x)) ("shortcut.0", "shortcut.1") where the shape changes, else x.
 * state_dict order conv1, bn1, conv2, bn2, shortcut.0, shortcut.1. */
static rm_status declare_basic_block(rm_net *n, const char *p, int in, int planes, int proj) {
    layer_name b;
    RM_TRY(graph_declare_conv(n, at(&b, p, "conv1"), planes, in, 3, 0));
    RM_TRY(graph_declare_bn(n, at(&b, p, "bn1"), planes));
    RM_TRY(graph_declare_conv(n, at(&b, p, "conv2"), planes, planes, 3, 0));
    RM_TRY(graph_declare_bn(n, at(&b, p, "bn2"), planes));
    if (proj) {
        RM_TRY(graph_declare_conv(n, at(&b, p, "shortcut.0"), planes, in, 1, 0));
        RM_TRY(graph_declare_bn(n, at(&b, p, "shortcut.1"), planes));
    }
    return RM_OK;
}

static int basic_block(rm_net *n, const char *p, int x, int stride, int proj) {
    layer_name b;
    int out = graph_conv(n, x, at(&b, p, "conv1"), stride, 1);
    out = graph_relu(n, graph_bn(n, out, at(&b, p, "bn1")));
    out = graph_conv(n, out, at(&b, p, "conv2"), 1, 1);
    out = graph_bn(n, out, at(&b, p, "bn2"));
    int sc = x;
    if (proj) {
        sc = graph_conv(n, x, at(&b, p, "shortcut.0"), stride, 0);
        sc = graph_bn(n, sc, at(&b, p, "shortcut.1"));
    }
    return graph_relu(n, graph_add(n, out, sc));
}

/* CIFAR stem (3x3 conv, stride 1, no max-pool) + BN-ReLU, the four stages, global
 * average pooling, linear. */
static rm_status build_resnet18(rm_net *n, const char *model, int c, int h, int w, int classes) {
    RM_TRY(need_square(model, c, h, w));
    RM_TRY(graph_declare_conv(n, "conv1", 64, c, 3, 0));
    RM_TRY(graph_declare_bn(n, "bn1", 64));
    int in = 64;
    for (int s = 0; s < 4; s++) {
        for (int b = 0; b < 2; b++) {
            char p[24];
            snprintf(p, sizeof p, "layer%d.%d", s + 1, b);
            int stride = b == 0 ? RESNET18_STRIDES[s] : 1;
            RM_TRY(declare_basic_block(n, p, in, RESNET18_PLANES[s], stride != 1 || in != RESNET18_PLANES[s]));
            in = RESNET18_PLANES[s];
        }
    }
    RM_TRY(graph_declare_linear(n, "linear", classes, 512));

    int t = graph_input(n, c, h, w);
    t = graph_relu(n, graph_bn(n, graph_conv(n, t, "conv1", 1, 1), "bn1"));
    in = 64;
    for (int s = 0; s < 4; s++) {
        for (int b = 0; b < 2; b++) {
            char p[24];
            snprintf(p, sizeof p, "layer%d.%d", s + 1, b);
            int stride = b == 0 ? RESNET18_STRIDES[s] : 1;
            t = basic_block(n, p, t, stride, stride != 1 || in != RESNET18_PLANES[s]);
            in = RESNET18_PLANES[s];
        }
    }
    t = graph_gap(n, t);
    t = graph_linear(n, t, "linear");
    CHECK_T(t);
    return RM_OK;
}

/* ---- WideResNet-D-W (Zagoruyko & Komodakis 2016, as in TRADES' models/wideresnet.py,
 * dropRate 0) ----
 * 3x3 stem conv to 16 channels; three groups block1..block3 of (D-4)/6 pre-activation
 * blocks ("blockG.layer.I"), 16W / 32W / 64W channels, stride 1/2/2 in a group's first
 * block, a 1x1 "convShortcut" where the width changes; BN-ReLU ("bn1"), global average
 * pooling, linear "fc". TRADES' module also holds a "sub_block1" that its forward never
 * uses: it is left out (46.16 M weights for wrn-34-10, not 48.26 M). */
int rm_net_wrn_parse(const char *model, int *depth, int *width, char *why, size_t why_size) {
    if (strncmp(model, "wrn-", 4) != 0) return 0;
    char scratch[8];
    if (!why || why_size == 0) why = scratch, why_size = sizeof scratch;
    const char *p = model + 4;
    long v[2] = {0, 0};
    for (int k = 0; k < 2; k++) { /* "D-" then "W" and the end; one spelling per model */
        size_t digits = strspn(p, "0123456789");
        int last = k == 1;
        if (digits == 0 || digits > 9 || (p[0] == '0' && digits > 1) || p[digits] != (last ? '\0' : '-')) {
            snprintf(why, why_size, "expected wrn-D-W with a depth D and a widen factor W (whole "
                     "numbers without leading zeros), e.g. wrn-34-10");
            return -1;
        }
        v[k] = strtol(p, NULL, 10);
        p += digits + !last;
    }
    if (v[0] < 10 || (v[0] - 4) % 6 != 0) {
        snprintf(why, why_size, "depth %ld is not 6n+4 with n >= 1 (10, 16, 22, 28, 34, 40, ...)", v[0]);
        return -1;
    }
    if (v[0] > RM_WRN_MAX_DEPTH) {
        snprintf(why, why_size, "depth %ld is larger than %d, the deepest the engine holds", v[0], RM_WRN_MAX_DEPTH);
        return -1;
    }
    if (v[1] < 1 || v[1] > RM_WRN_MAX_WIDTH) {
        snprintf(why, why_size, "widen factor %ld is not in 1..%d", v[1], RM_WRN_MAX_WIDTH);
        return -1;
    }
    if (depth) *depth = (int)v[0];
    if (width) *width = (int)v[1];
    return 1;
}

static rm_status build_wrn(rm_net *n, const char *model, int c, int h, int w, int classes) {
    char why[160];
    int depth = 0, width = 0;
    if (rm_net_wrn_parse(model, &depth, &width, why, sizeof why) != 1)
        return rm_fail(RM_ERR_ARG, "model '%s': %s", model, why);
    RM_TRY(need_square(model, c, h, w));
    const int blocks = WRN_BLOCKS(depth), chans[4] = {16, 16 * width, 32 * width, 64 * width};
    const int strides[3] = {1, 2, 2};
    RM_TRY(graph_declare_conv(n, "conv1", chans[0], c, 3, 0));
    for (int g = 0; g < 3; g++) {
        for (int i = 0; i < blocks; i++) {
            char p[32];
            snprintf(p, sizeof p, "block%d.layer.%d", g + 1, i);
            int in = i == 0 ? chans[g] : chans[g + 1];
            RM_TRY(declare_preact_block(n, p, in, chans[g + 1], in != chans[g + 1] ? "convShortcut" : NULL));
        }
    }
    RM_TRY(graph_declare_bn(n, "bn1", chans[3]));
    RM_TRY(graph_declare_linear(n, "fc", classes, chans[3]));

    int t = graph_conv(n, graph_input(n, c, h, w), "conv1", 1, 1);
    for (int g = 0; g < 3; g++) {
        for (int i = 0; i < blocks; i++) {
            char p[32];
            snprintf(p, sizeof p, "block%d.layer.%d", g + 1, i);
            int in = i == 0 ? chans[g] : chans[g + 1];
            /* TRADES: equalInOut decides the shortcut; a strided block always widens */
            t = preact_block(n, p, t, i == 0 ? strides[g] : 1, in != chans[g + 1] ? "convShortcut" : NULL);
        }
    }
    t = graph_relu(n, graph_bn(n, t, "bn1"));
    t = graph_gap(n, t);
    t = graph_linear(n, t, "fc");
    CHECK_T(t);
    n->he_normal_init = 1;
    return RM_OK;
}

/* Tiny single-layer models for the finite-difference tests ("tiny:<layer>"): the layer
 * under test on a (c, h, w) input followed by a linear head. The tests use 16 channels
 * where it matters, so that oneDNN picks its blocked layouts and the reorder paths are
 * exercised too. */
static rm_status build_tiny(rm_net *n, const char *model, int C, int H, int W, int classes) {
    const char *kind = model + strlen("tiny:");
    int t = -1, x = graph_input(n, C, H, W);
    if (!strcmp(kind, "conv")) {          /* C -> 4, 3x3, stride 1, pad 1, with bias */
        RM_TRY(graph_declare_conv(n, "conv", 4, C, 3, 1));
        t = graph_conv(n, x, "conv", 1, 1);
    } else if (!strcmp(kind, "conv16")) { /* C -> 16, 3x3, stride 2, pad 1, no bias */
        RM_TRY(graph_declare_conv(n, "conv", 16, C, 3, 0));
        t = graph_conv(n, x, "conv", 2, 1);
    } else if (!strcmp(kind, "conv1x1")) { /* C -> 32, 1x1, stride 2, no padding (shortcut) */
        RM_TRY(graph_declare_conv(n, "conv", 32, C, 1, 0));
        t = graph_conv(n, x, "conv", 2, 0);
    } else if (!strcmp(kind, "wino")) { /* two C -> 32 -> 32 3x3 convs (take 32x32x32: Winograd-sized) */
        RM_TRY(graph_declare_conv(n, "conv1", 32, C, 3, 0));
        RM_TRY(graph_declare_conv(n, "conv2", 32, 32, 3, 0));
        t = graph_conv(n, graph_conv(n, x, "conv1", 1, 1), "conv2", 1, 1);
    } else if (!strcmp(kind, "bn")) {
        RM_TRY(graph_declare_bn(n, "bn", C));
        t = graph_bn(n, x, "bn");
    } else if (!strcmp(kind, "bnrelu")) { /* batch norm with the ReLU fused into it */
        RM_TRY(graph_declare_bn(n, "bn", C));
        t = graph_relu(n, graph_bn(n, x, "bn"));
    } else if (!strcmp(kind, "relu")) {
        t = graph_relu(n, x);
    } else if (!strcmp(kind, "maxpool")) {
        t = graph_maxpool(n, x, 2, 2);
    } else if (!strcmp(kind, "avgpool")) {
        t = graph_avgpool(n, x, 2, 2);
    } else if (!strcmp(kind, "gap")) {
        t = graph_gap(n, x);
    } else if (!strcmp(kind, "linear")) { /* linear on a vector input (2-D path) */
        RM_TRY(graph_declare_linear(n, "fc", 8, C * H * W));
        t = graph_linear(n, x, "fc");
    } else if (!strcmp(kind, "add")) {    /* residual: x + conv(x), x read twice */
        RM_TRY(graph_declare_conv(n, "conv", C, C, 3, 0));
        t = graph_add(n, graph_conv(n, x, "conv", 1, 1), x);
    } else {
        return rm_fail(RM_ERR_ARG, "unknown test model '%s'", model);
    }
    CHECK_T(t);
    const tensor_shape *s = &n->shape[t];
    RM_TRY(graph_declare_linear(n, "head", classes, s->c * s->h * s->w));
    t = graph_linear(n, t, "head");
    CHECK_T(t);
    return RM_OK;
}

rm_status models_build(rm_net *n, const char *model, int c, int h, int w, int num_classes) {
    if (num_classes < 2) return rm_fail(RM_ERR_ARG, "num_classes must be >= 2 (got %d)", num_classes);
    if (c < 1 || h < 1 || w < 1 || c > 4096 || h > 4096 || w > 4096)
        return rm_fail(RM_ERR_ARG, "model %s: input shape %dx%dx%d is not in 1..4096 per dimension", model, c, h, w);
    if (!strcmp(model, "fmnist-cnn")) return build_fmnist_cnn(n, model, c, h, w, num_classes);
    if (!strcmp(model, "preact-resnet18")) return build_preact_resnet18(n, model, c, h, w, num_classes);
    if (!strcmp(model, "resnet18")) return build_resnet18(n, model, c, h, w, num_classes);
    if (!strncmp(model, "wrn-", 4)) return build_wrn(n, model, c, h, w, num_classes);
    if (!strncmp(model, "tiny:", 5)) return build_tiny(n, model, c, h, w, num_classes);
    return rm_fail(RM_ERR_ARG, "unknown model '%s' (known: fmnist-cnn, preact-resnet18, resnet18, wrn-D-W)", model);
}
