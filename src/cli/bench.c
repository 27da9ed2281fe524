/* regmix bench: images/s and GFLOP/s of forward, forward+backward and
 * backward-data-only (the attack path), after warm-up, benchdnn style. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "regmix/nn.h"

typedef struct {
    const char *model;
    int batch, threads, classes, iters, warmup;
    int c, h, w; /* input image shape; 0: the model's usual dataset's */
} bench_opts;

static int bench_usage(FILE *out) {
    fprintf(out, "usage: regmix bench [--model fmnist-cnn|preact-resnet18|resnet18|wrn-D-W] [--shape CxHxW]\n"
                 "                    [--batch B] [--threads T] [--classes K] [--iters N] [--warmup W]\n"
                 "defaults: --model fmnist-cnn --batch 128 --threads 1 --classes 10 --iters 20 --warmup 3;\n"
                 "--shape: 1x28x28 for fmnist-cnn, else 3x32x32 (any model takes any shape)\n");
    return out == stderr ? 2 : 0;
}

static int parse_int(const char *flag, const char *v, int lo, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || x < lo || x > 1000000) {
        fprintf(stderr, "regmix bench: %s expects an integer >= %d, got '%s'\n", flag, lo, v);
        return 0;
    }
    *out = (int)x;
    return 1;
}

static int parse_shape(const char *v, bench_opts *o) {
    char tail;
    if (sscanf(v, "%dx%dx%d%c", &o->c, &o->h, &o->w, &tail) != 3 || o->c < 1 || o->h < 1 || o->w < 1) {
        fprintf(stderr, "regmix bench: --shape expects CxHxW with positive integers (e.g. 1x28x28), got '%s'\n", v);
        return 0;
    }
    return 1;
}

typedef enum { PASS_FWD, PASS_FWD_BWD, PASS_BWD_DATA } pass_kind;

/* One timed pass: forward in training mode, plus the requested backward. */
static rm_status run_pass(rm_net *net, rm_tape *tape, pass_kind kind, const float *x, int batch,
                          float *logits, const float *dlogits, float *dx) {
    RM_TRY(rm_net_forward(net, tape, RM_MODE_TRAIN, x, batch, logits));
    if (kind == PASS_FWD_BWD) RM_TRY(rm_net_backward(net, tape, dlogits, NULL, RM_GRAD_WEIGHTS));
    if (kind == PASS_BWD_DATA) RM_TRY(rm_net_backward(net, tape, dlogits, dx, RM_GRAD_INPUT));
    return RM_OK;
}

int cmd_bench(int argc, char **argv) {
    bench_opts o = {"fmnist-cnn", 128, 1, 10, 20, 3, 0, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return bench_usage(stdout);
        if (i + 1 >= argc) {
            fprintf(stderr, "regmix bench: %s needs a value\n", a);
            return bench_usage(stderr);
        }
        const char *v = argv[++i];
        int ok = 1;
        if (!strcmp(a, "--model")) o.model = v;
        else if (!strcmp(a, "--shape")) ok = parse_shape(v, &o);
        else if (!strcmp(a, "--batch")) ok = parse_int(a, v, 1, &o.batch);
        else if (!strcmp(a, "--threads")) ok = parse_int(a, v, 1, &o.threads);
        else if (!strcmp(a, "--classes")) ok = parse_int(a, v, 2, &o.classes);
        else if (!strcmp(a, "--iters")) ok = parse_int(a, v, 1, &o.iters);
        else if (!strcmp(a, "--warmup")) ok = parse_int(a, v, 0, &o.warmup);
        else {
            fprintf(stderr, "regmix bench: unknown option '%s'\n", a);
            return bench_usage(stderr);
        }
        if (!ok) return 2;
    }
    omp_set_num_threads(o.threads);
    if (o.c == 0) {
        int gray = !strcmp(o.model, "fmnist-cnn");
        o.c = gray ? 1 : 3;
        o.h = o.w = gray ? 28 : 32;
    }

    rm_net *net = NULL;
    rm_tape *tape = NULL;
    if (rm_net_create(o.model, o.c, o.h, o.w, o.classes, &net) != RM_OK || rm_tape_create(net, &tape) != RM_OK) {
        fprintf(stderr, "regmix bench: %s\n", rm_error_message());
        rm_net_destroy(net);
        return 1;
    }
    size_t in = (size_t)o.batch * rm_net_input_size(net), out = (size_t)o.batch * o.classes;
    float *x = rm_alloc(in * sizeof(float)), *dx = rm_alloc(in * sizeof(float));
    float *logits = rm_alloc(out * sizeof(float)), *dl = rm_alloc(out * sizeof(float));
    if (!x || !dx || !logits || !dl) {
        fprintf(stderr, "regmix bench: %s\n", rm_error_message());
        return 1;
    }
    rm_rng rng;
    rm_rng_seed(&rng, 1);
    for (size_t i = 0; i < in; i++) x[i] = rm_rng_uniform(&rng);
    for (size_t i = 0; i < out; i++) dl[i] = (rm_rng_uniform(&rng) - 0.5f) / (float)o.batch;

    char host[64] = "?";
    gethostname(host, sizeof host - 1);
    printf("# regmix bench --model %s --shape %dx%dx%d --batch %d --threads %d --iters %d --warmup %d\n",
           o.model, o.c, o.h, o.w, o.batch, o.threads, o.iters, o.warmup);
    printf("# host %s, oneDNN %s, ISA %s, OpenMP threads %d\n", host, rm_dnnl_version(),
           rm_dnnl_isa(), omp_get_max_threads());
    double flops = rm_net_forward_flops(net);
    printf("# forward %.1f MFLOP per image; fwd+bwd counted as 3x, bwd-data-only as 2x forward\n",
           flops / 1e6);
    printf("%-16s %8s %12s %12s %10s\n", "pass", "batch", "ms/iter", "images/s", "GFLOP/s");
    fflush(stdout);

    static const char *names[3] = {"forward", "forward+backward", "backward-data"};
    static const double flop_mult[3] = {1.0, 3.0, 2.0};
    int rc = 0;
    for (int k = 0; k < 3 && rc == 0; k++) {
        for (int w = 0; w < o.warmup; w++)
            if (run_pass(net, tape, (pass_kind)k, x, o.batch, logits, dl, dx) != RM_OK) rc = 1;
        double t0 = rm_now_seconds();
        for (int it = 0; it < o.iters && rc == 0; it++)
            if (run_pass(net, tape, (pass_kind)k, x, o.batch, logits, dl, dx) != RM_OK) rc = 1;
        double dt = (rm_now_seconds() - t0) / o.iters;
        if (rc) break;
        double ips = o.batch / dt;
        printf("%-16s %8d %12.3f %12.1f %10.2f\n", names[k], o.batch, dt * 1e3, ips,
               ips * flops * flop_mult[k] / 1e9);
        fflush(stdout);
    }
    if (rc) fprintf(stderr, "regmix bench: %s\n", rm_error_message());
    rm_free(x);
    rm_free(dx);
    rm_free(logits);
    rm_free(dl);
    rm_tape_destroy(tape);
    rm_net_destroy(net);
    return rc;
}
