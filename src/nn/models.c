/* The model zoo. Parameter names and declaration order follow the PyTorch modules'
 * state_dict (tests/pytorch/models.py), so checkpoints move by name alone. */
#include <stdio.h>
#include <string.h>

#include "nn/engine.h"

#define CHECK_T(t)                                                                         \
    do {                                                                                   \
        if ((t) < 0) return rm_fail(RM_ERR_ARG, "building %s: graph construction failed", model); \
    } while (0)

/* fmnist-cnn: conv(1->32,3x3,p1)-BN-ReLU-maxpool2, conv(32->64,3x3,p1)-BN-ReLU-maxpool2,
 * linear(3136->256)-ReLU, linear(256->K). Input (1, 28, 28). */
static rm_status build_fmnist_cnn(rm_net *n, const char *model, int classes) {
    RM_TRY(graph_declare_conv(n, "conv1", 32, 1, 3, 0));
    RM_TRY(graph_declare_bn(n, "bn1", 32));
    RM_TRY(graph_declare_conv(n, "conv2", 64, 32, 3, 0));
    RM_TRY(graph_declare_bn(n, "bn2", 64));
    RM_TRY(graph_declare_linear(n, "fc1", 256, 64 * 7 * 7));
    RM_TRY(graph_declare_linear(n, "fc2", classes, 256));
    int t = graph_input(n, 1, 28, 28);
    t = graph_conv(n, t, "conv1", 1, 1);
    t = graph_relu(n, graph_bn(n, t, "bn1"));
    t = graph_maxpool(n, t, 2, 2);
    t = graph_conv(n, t, "conv2", 1, 1);
    t = graph_relu(n, graph_bn(n, t, "bn2"));
    t = graph_maxpool(n, t, 2, 2);
    t = graph_relu(n, graph_linear(n, t, "fc1"));
    t = graph_linear(n, t, "fc2");
    CHECK_T(t);
    return RM_OK;
}

/* PreAct-ResNet-18 (He et al. 2016, the variant used by FGSM-PGI and TRADES):
 * 3x3 stem conv, four stages of two pre-activation blocks (64/128/256/512, stride
 * 1/2/2/2), 1x1 shortcut conv where the shape changes, BN-ReLU, global average pool,
 * linear. Input (3, 32, 32). */
static rm_status declare_block(rm_net *n, const char *p, int in, int planes, int shortcut) {
    char name[48];
    snprintf(name, sizeof name, "%s.bn1", p);
    RM_TRY(graph_declare_bn(n, name, in));
    snprintf(name, sizeof name, "%s.conv1", p);
    RM_TRY(graph_declare_conv(n, name, planes, in, 3, 0));
    snprintf(name, sizeof name, "%s.bn2", p);
    RM_TRY(graph_declare_bn(n, name, planes));
    snprintf(name, sizeof name, "%s.conv2", p);
    RM_TRY(graph_declare_conv(n, name, planes, planes, 3, 0));
    if (shortcut) {
        snprintf(name, sizeof name, "%s.shortcut.0", p);
        RM_TRY(graph_declare_conv(n, name, planes, in, 1, 0));
    }
    return RM_OK;
}

/* out = relu(bn1(x)); sc = shortcut(out) or x; out = conv2(relu(bn2(conv1(out)))) + sc */
static int block(rm_net *n, const char *p, int x, int stride, int shortcut) {
    char name[48];
    snprintf(name, sizeof name, "%s.bn1", p);
    int out = graph_relu(n, graph_bn(n, x, name));
    int sc = x;
    if (shortcut) {
        snprintf(name, sizeof name, "%s.shortcut.0", p);
        sc = graph_conv(n, out, name, stride, 0);
    }
    snprintf(name, sizeof name, "%s.conv1", p);
    out = graph_conv(n, out, name, stride, 1);
    snprintf(name, sizeof name, "%s.bn2", p);
    out = graph_relu(n, graph_bn(n, out, name));
    snprintf(name, sizeof name, "%s.conv2", p);
    out = graph_conv(n, out, name, 1, 1);
    return graph_add(n, out, sc);
}

static rm_status build_preact_resnet18(rm_net *n, const char *model, int classes) {
    static const int planes[4] = {64, 128, 256, 512}, strides[4] = {1, 2, 2, 2};
    RM_TRY(graph_declare_conv(n, "conv1", 64, 3, 3, 0));
    int in = 64;
    for (int s = 0; s < 4; s++) {
        for (int b = 0; b < 2; b++) {
            char p[24];
            snprintf(p, sizeof p, "layer%d.%d", s + 1, b);
            int stride = b == 0 ? strides[s] : 1;
            RM_TRY(declare_block(n, p, in, planes[s], stride != 1 || in != planes[s]));
            in = planes[s];
        }
    }
    RM_TRY(graph_declare_bn(n, "bn", 512));
    RM_TRY(graph_declare_linear(n, "linear", classes, 512));

    int t = graph_input(n, 3, 32, 32);
    t = graph_conv(n, t, "conv1", 1, 1);
    in = 64;
    for (int s = 0; s < 4; s++) {
        for (int b = 0; b < 2; b++) {
            char p[24];
            snprintf(p, sizeof p, "layer%d.%d", s + 1, b);
            int stride = b == 0 ? strides[s] : 1;
            t = block(n, p, t, stride, stride != 1 || in != planes[s]);
            in = planes[s];
        }
    }
    t = graph_relu(n, graph_bn(n, t, "bn"));
    t = graph_gap(n, t); /* avg_pool2d(out, 4) on the 4x4 map */
    t = graph_linear(n, t, "linear");
    CHECK_T(t);
    return RM_OK;
}


/* Tiny single-layer models for the finite-difference tests ("tiny:<layer>"): the layer
 * under test followed by a linear head, on a small input. 16 channels where it matters,
 * so that oneDNN picks its blocked layouts and the reorder paths are exercised too. */
static rm_status build_tiny(rm_net *n, const char *model, int classes) {
    const char *kind = model + strlen("tiny:");
    int C = 3, H = 6;
    int t = -1;
    if (!strcmp(kind, "conv")) {          /* 3x3, stride 1, pad 1, with bias */
        RM_TRY(graph_declare_conv(n, "conv", 4, C, 3, 1));
        RM_TRY(graph_declare_linear(n, "head", classes, 4 * H * H));
        t = graph_conv(n, graph_input(n, C, H, H), "conv", 1, 1);
    } else if (!strcmp(kind, "conv16")) { /* 16 -> 16, 3x3, stride 2, pad 1, no bias */
        C = 16;
        RM_TRY(graph_declare_conv(n, "conv", 16, C, 3, 0));
        RM_TRY(graph_declare_linear(n, "head", classes, 16 * 3 * 3));
        t = graph_conv(n, graph_input(n, C, H, H), "conv", 2, 1);
    } else if (!strcmp(kind, "conv1x1")) { /* 1x1, stride 2, no padding (shortcut) */
        C = 16;
        RM_TRY(graph_declare_conv(n, "conv", 32, C, 1, 0));
        RM_TRY(graph_declare_linear(n, "head", classes, 32 * 3 * 3));
        t = graph_conv(n, graph_input(n, C, H, H), "conv", 2, 0);
    } else if (!strcmp(kind, "wino")) { /* two 32 -> 32 3x3 convs on 32x32: the inner one Winograd-sized */
        C = 32;
        H = 32;
        RM_TRY(graph_declare_conv(n, "conv1", 32, C, 3, 0));
        RM_TRY(graph_declare_conv(n, "conv2", 32, 32, 3, 0));
        RM_TRY(graph_declare_linear(n, "head", classes, 32 * H * H));
        t = graph_conv(n, graph_conv(n, graph_input(n, C, H, H), "conv1", 1, 1), "conv2", 1, 1);
    } else if (!strcmp(kind, "bn")) {
        C = 16;
        RM_TRY(graph_declare_bn(n, "bn", C));
        RM_TRY(graph_declare_linear(n, "head", classes, C * H * H));
        t = graph_bn(n, graph_input(n, C, H, H), "bn");
    } else if (!strcmp(kind, "bnrelu")) { /* batch norm with the ReLU fused into it */
        C = 16;
        RM_TRY(graph_declare_bn(n, "bn", C));
        RM_TRY(graph_declare_linear(n, "head", classes, C * H * H));
        t = graph_relu(n, graph_bn(n, graph_input(n, C, H, H), "bn"));
    } else if (!strcmp(kind, "relu")) {
        RM_TRY(graph_declare_linear(n, "head", classes, C * H * H));
        t = graph_relu(n, graph_input(n, C, H, H));
    } else if (!strcmp(kind, "maxpool")) {
        C = 16;
        RM_TRY(graph_declare_linear(n, "head", classes, C * 3 * 3));
        t = graph_maxpool(n, graph_input(n, C, H, H), 2, 2);
    } else if (!strcmp(kind, "avgpool")) {
        C = 16;
        RM_TRY(graph_declare_linear(n, "head", classes, C * 3 * 3));
        t = graph_avgpool(n, graph_input(n, C, H, H), 2, 2);
    } else if (!strcmp(kind, "gap")) {
        C = 16;
        RM_TRY(graph_declare_linear(n, "head", classes, C));
        t = graph_gap(n, graph_input(n, C, H, H));
    } else if (!strcmp(kind, "linear")) { /* linear on a vector input (2-D path) */
        RM_TRY(graph_declare_linear(n, "fc", 8, C * H * H));
        RM_TRY(graph_declare_linear(n, "head", classes, 8));
        t = graph_linear(n, graph_input(n, C, H, H), "fc");
    } else if (!strcmp(kind, "add")) {    /* residual: x + conv(x), x read twice */
        C = 16;
        RM_TRY(graph_declare_conv(n, "conv", C, C, 3, 0));
        RM_TRY(graph_declare_linear(n, "head", classes, C * H * H));
        int x = graph_input(n, C, H, H);
        t = graph_add(n, graph_conv(n, x, "conv", 1, 1), x);
    } else {
        return rm_fail(RM_ERR_ARG, "unknown test model '%s'", model);
    }
    t = graph_linear(n, t, "head");
    CHECK_T(t);
    return RM_OK;
}

rm_status models_build(rm_net *n, const char *model, int num_classes) {
    if (num_classes < 2) return rm_fail(RM_ERR_ARG, "num_classes must be >= 2 (got %d)", num_classes);
    if (!strcmp(model, "fmnist-cnn")) return build_fmnist_cnn(n, model, num_classes);
    if (!strcmp(model, "preact-resnet18")) return build_preact_resnet18(n, model, num_classes);
    if (!strncmp(model, "tiny:", 5)) return build_tiny(n, model, num_classes);
    return rm_fail(RM_ERR_ARG, "unknown model '%s' (known: fmnist-cnn, preact-resnet18)", model);
}
