/* regmix bench: images/s and GFLOP/s of forward, forward+backward and
 * backward-data-only (the attack path), after warm-up, benchdnn style; with --step a
 * whole training step of a method; --conv-peak the machine's convolution peak;
 * --sign-flips what bf16 does to the input gradient's signs. Text table or, with
 * --json, one JSON object per line. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/bench.h"
#include "cli/commands.h"

static int bench_usage(FILE *out) {
    fprintf(out,
            "usage: regmix bench [--model M] [--shape CxHxW] [--batch B] [--threads T] [--classes K]\n"
            "                    [--precision f32|bf16] [--iters N] [--warmup W] [--json]\n"
            "                    [--step METHOD [--reg R] [--no-passes]] [--conv-peak]\n"
            "                    [--sign-flips [--weights RUN.h5] [--dataset NAME]]\n"
            "  (no mode)     forward, forward+backward, backward-data of the model\n"
            "  --step METHOD those passes, then one whole training step of METHOD (pgi, fgsm-rs,\n"
            "                pgd-at, trades) with regulariser R (default regmix for pgi and\n"
            "                fgsm-rs, none otherwise): every pass, the PGI buffers and the SGD\n"
            "                update, on random images (--no-passes: the step alone)\n"
            "  --conv-peak   only the machine's convolution peak: a 64->64 3x3 convolution on\n"
            "                32x32 images, forward, batch B, in f32 and (where the CPU has it) bf16\n"
            "  --sign-flips  share of input-gradient elements whose sign differs between f32 and\n"
            "                bf16 (the attacks step on sign(g)): N batches of test images of\n"
            "                --dataset (default: the model's; random images if absent), weights\n"
            "                from --weights (a run file whose checkpoint to load) or the seeded init\n"
            "  --json        one JSON object per line: pass, images_per_s, gflops, ms, batch,\n"
            "                model, precision, threads, isa, cpu (and per mode a few more)\n"
            "  M: fmnist-cnn, preact-resnet18, resnet18, wrn-D-W (e.g. wrn-34-10)\n"
            "defaults: --model fmnist-cnn --batch 128 --threads 1 --classes 10 --precision f32\n"
            "          --iters 20 --warmup 3; --shape 1x28x28 for fmnist-cnn, else 3x32x32\n"
            "          (any model takes any shape)\n");
    return out == stderr ? 2 : 0;
}

static int parse_shape(const char *v, bench_opts *o) {
    char tail;
    if (sscanf(v, "%dx%dx%d%c", &o->c, &o->h, &o->w, &tail) != 3 || o->c < 1 || o->h < 1 || o->w < 1) {
        fprintf(stderr, "regmix bench: --shape expects CxHxW with positive integers (e.g. 1x28x28), got '%s'\n", v);
        return 0;
    }
    return 1;
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

/* The CPU's model name (/proc/cpuinfo), for figures that differ 2-3x between machines. */
static const char *cpu_model(void) {
    static char name[128];
    if (name[0]) return name;
    snprintf(name, sizeof name, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return name;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10)) continue;
        const char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        snprintf(name, sizeof name, "%s", v);
        name[strcspn(name, "\n")] = '\0';
        for (char *p = name; *p; p++)
            if (*p == '"' || *p == '\\') *p = ' '; /* stays a valid JSON string */
        break;
    }
    fclose(f);
    return name;
}

void bench_header(const bench_opts *o, const char *what, const char *detail) {
    if (o->json) return;
    char host[64] = "?", note[256];
    gethostname(host, sizeof host - 1);
    rm_precision_effective(o->precision, note, sizeof note);
    printf("# regmix bench: %s\n", what);
    printf("# model %s, batch %d, threads %d, iters %d, warmup %d, precision %s%s%s\n", o->model,
           o->batch, o->threads, o->iters, o->warmup, rm_precision_name(o->precision),
           note[0] ? " -- " : "", note);
    printf("# host %s, CPU %s, oneDNN %s, ISA %s, OpenMP threads %d\n", host, cpu_model(),
           rm_dnnl_version(), rm_dnnl_isa(), omp_get_max_threads());
    if (detail) printf("# %s\n", detail);
    if (o->kernels[0]) printf("# convolutions at batch %d: %s\n", o->batch, o->kernels);
    if (!strncmp(what, "sign flips", 10)) return; /* its own columns */
    printf("%-22s %6s %6s %11s %11s %9s %11s\n", "pass", "prec", "batch", "ms/iter", "images/s", "GFLOP/s",
           "cpu ms/iter");
    fflush(stdout);
}

bench_clock bench_clock_now(void) {
    struct timespec ts;
    double cpu = 0;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0) cpu = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    return (bench_clock){rm_now_seconds(), cpu};
}

void bench_clock_stop(bench_clock start, int iters, bench_line *l) {
    bench_clock now = bench_clock_now();
    l->seconds = (now.wall - start.wall) / iters;
    l->cpu_seconds = (now.cpu - start.cpu) / iters;
}

void bench_print(const bench_opts *o, const bench_line *l) {
    double ips = l->batch / l->seconds, gf = l->flops / l->seconds / 1e9;
    if (!o->json) {
        printf("%-22s %6s %6d %11.3f %11.1f %9.2f %11.3f\n", l->pass, l->precision, l->batch,
               l->seconds * 1e3, ips, gf, l->cpu_seconds * 1e3);
    } else {
        printf("{\"pass\": \"%s\", \"images_per_s\": %.6g, \"gflops\": %.6g, \"ms\": %.6g, "
               "\"cpu_ms\": %.6g, \"batch\": %d, \"model\": \"%s\", \"precision\": \"%s\", \"threads\": %d, "
               "\"isa\": \"%s\", \"onednn\": \"%s\", \"cpu\": \"%s\", \"conv_kernels\": \"%s\"%s}\n",
               l->pass, ips, gf, l->seconds * 1e3, l->cpu_seconds * 1e3, l->batch, o->model, l->precision, o->threads,
               rm_dnnl_isa(), rm_dnnl_version(), cpu_model(), o->kernels, l->extra ? l->extra : "");
    }
    fflush(stdout);
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

/* forward, forward+backward, backward-data on random images */
static int bench_passes(const bench_opts *o, rm_net *net) {
    rm_tape *tape = NULL;
    size_t in = (size_t)o->batch * rm_net_input_size(net), out = (size_t)o->batch * o->classes;
    float *x = rm_alloc(in * sizeof(float)), *dx = rm_alloc(in * sizeof(float));
    float *logits = rm_alloc(out * sizeof(float)), *dl = rm_alloc(out * sizeof(float));
    int rc = !x || !dx || !logits || !dl || rm_tape_create(net, &tape) != RM_OK;
    if (!rc) {
        rm_rng rng;
        rm_rng_seed(&rng, 1);
        for (size_t i = 0; i < in; i++) x[i] = rm_rng_uniform(&rng);
        for (size_t i = 0; i < out; i++) dl[i] = (rm_rng_uniform(&rng) - 0.5f) / (float)o->batch;
    }
    static const char *names[3] = {"forward", "forward+backward", "backward-data"};
    static const double flop_mult[3] = {1.0, 3.0, 2.0};
    const double flops = rm_net_forward_flops(net) * o->batch;
    for (int k = 0; k < 3 && rc == 0; k++) {
        for (int w = 0; w < o->warmup && rc == 0; w++)
            if (run_pass(net, tape, (pass_kind)k, x, o->batch, logits, dl, dx) != RM_OK) rc = 1;
        bench_clock t0 = bench_clock_now();
        for (int it = 0; it < o->iters && rc == 0; it++)
            if (run_pass(net, tape, (pass_kind)k, x, o->batch, logits, dl, dx) != RM_OK) rc = 1;
        if (rc) break;
        bench_line l = {.pass = names[k], .batch = o->batch, .flops = flops * flop_mult[k],
                        .precision = rm_precision_name(rm_net_precision(net)), .extra = ""};
        bench_clock_stop(t0, o->iters, &l);
        bench_print(o, &l);
    }
    if (rc) fprintf(stderr, "regmix bench: %s\n", rm_error_message());
    rm_free(x);
    rm_free(dx);
    rm_free(logits);
    rm_free(dl);
    rm_tape_destroy(tape);
    return rc;
}

/* Parses argv into o; returns -1 to go on, else the exit code. */
static int parse_options(int argc, char **argv, bench_opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return bench_usage(stdout);
        int *flag = !strcmp(a, "--json")         ? &o->json
                    : !strcmp(a, "--conv-peak")  ? &o->conv_peak
                    : !strcmp(a, "--sign-flips") ? &o->sign_flips
                    : !strcmp(a, "--no-passes")  ? &o->no_passes
                                                 : NULL;
        if (flag) {
            *flag = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "regmix bench: %s needs a value\n", a);
            return bench_usage(stderr);
        }
        const char *v = argv[++i];
        int ok = 1;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--shape")) ok = parse_shape(v, o);
        else if (!strcmp(a, "--step")) o->method = v;
        else if (!strcmp(a, "--reg")) o->reg = v;
        else if (!strcmp(a, "--weights")) o->weights = v;
        else if (!strcmp(a, "--dataset")) o->dataset = v;
        else if (!strcmp(a, "--precision")) {
            ok = rm_precision_parse(v, &o->precision) == RM_OK;
            if (!ok) fprintf(stderr, "regmix bench: --precision expects f32 or bf16, got '%s'\n", v);
        } else if (!strcmp(a, "--batch")) ok = parse_int(a, v, 1, &o->batch);
        else if (!strcmp(a, "--threads")) ok = parse_int(a, v, 1, &o->threads);
        else if (!strcmp(a, "--classes")) ok = parse_int(a, v, 2, &o->classes);
        else if (!strcmp(a, "--iters")) ok = parse_int(a, v, 1, &o->iters);
        else if (!strcmp(a, "--warmup")) ok = parse_int(a, v, 0, &o->warmup);
        else {
            fprintf(stderr, "regmix bench: unknown option '%s'\n", a);
            return bench_usage(stderr);
        }
        if (!ok) return 2;
    }
    if (o->reg && !o->method) {
        fprintf(stderr, "regmix bench: --reg belongs to --step METHOD\n");
        return 2;
    }
    if (o->c == 0) { /* the model's usual dataset's images */
        int gray = !strcmp(o->model, "fmnist-cnn");
        o->c = gray ? 1 : 3;
        o->h = o->w = gray ? 28 : 32;
    }
    if (o->conv_peak + o->sign_flips + (o->method != NULL) > 1) {
        fprintf(stderr, "regmix bench: --step, --conv-peak and --sign-flips are separate modes\n");
        return 2;
    }
    return -1;
}

int cmd_bench(int argc, char **argv) {
    bench_opts o = {.model = "fmnist-cnn", .batch = 128, .threads = 1, .classes = 10, .iters = 20,
                    .warmup = 3, .precision = RM_PRECISION_F32};
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0) return rc;
    omp_set_num_threads(o.threads);
    if (o.conv_peak) return bench_conv_peak(&o);
    if (o.sign_flips) return bench_sign_flips(&o);

    rm_net *net = NULL;
    if (rm_net_create(o.model, o.c, o.h, o.w, o.classes, &net) != RM_OK ||
        rm_net_set_precision(net, o.precision) != RM_OK) {
        fprintf(stderr, "regmix bench: %s\n", rm_error_message());
        rm_net_destroy(net);
        return 1;
    }
    if (rm_net_conv_kernels(net, o.batch, o.kernels, sizeof o.kernels) != RM_OK) {
        fprintf(stderr, "regmix bench: %s\n", rm_error_message());
        rm_net_destroy(net);
        return 1;
    }
    char detail[128];
    snprintf(detail, sizeof detail, "forward %.1f MFLOP per image; fwd+bwd counted as 3x, bwd-data-only as 2x forward",
             rm_net_forward_flops(net) / 1e6);
    bench_header(&o, o.method ? "passes, then a whole training step (random images)"
                              : "passes on random images", detail);
    rc = o.no_passes ? 0 : bench_passes(&o, net);
    if (rc == 0 && o.method) rc = bench_step(&o, net);
    rm_net_destroy(net);
    return rc;
}
