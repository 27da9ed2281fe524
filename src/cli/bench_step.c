/* regmix bench modes beyond single passes: a whole training step, the convolution peak,
 * and the bf16 sign flips of the input gradient. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli/bench.h"
#include "regmix/attack.h"
#include "regmix/data.h"
#include "regmix/method.h"
#include "regmix/optim.h"
#include "regmix/runfile.h"

static int fail(const char *what) {
    fprintf(stderr, "regmix bench: %s: %s\n", what, rm_error_message());
    return 1;
}

/* ---------------------------------------------------------------- --step */

typedef struct {
    rm_method *method;
    rm_sgd *opt;
    float *x;
    int32_t *y;
    int64_t *ids;
} step_state;

static void step_free(step_state *s) {
    rm_method_destroy(s->method);
    rm_sgd_destroy(s->opt);
    rm_free(s->x);
    rm_free(s->y);
    rm_free(s->ids);
}

static rm_status step_setup(const bench_opts *o, rm_net *net, rm_config *cfg, step_state *s) {
    const char *origin = "regmix bench --step";
    rm_config_defaults(cfg);
    RM_TRY(rm_config_set(cfg, "method", o->method, origin));
    const char *reg = o->reg ? o->reg
                      : (!strcmp(o->method, "pgi") || !strcmp(o->method, "fgsm-rs")) ? "regmix" : "none";
    RM_TRY(rm_config_set(cfg, "reg", reg, origin));
    cfg->batch = o->batch;
    cfg->threads = o->threads;
    /* one epoch of o->batch samples: every step reuses the same PGI buffers */
    RM_TRY(rm_method_create(cfg, net, o->batch, o->batch, &s->method));
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    RM_TRY(rm_sgd_create(p, np, (rm_sgd_config){cfg->momentum, cfg->weight_decay}, &s->opt));
    size_t n = (size_t)o->batch * rm_net_input_size(net);
    s->x = rm_alloc(n * sizeof(float));
    s->y = rm_alloc((size_t)o->batch * sizeof(int32_t));
    s->ids = rm_alloc((size_t)o->batch * sizeof(int64_t));
    if (!s->x || !s->y || !s->ids) return RM_ERR_NOMEM;
    rm_rng rng;
    rm_rng_seed(&rng, 2);
    for (size_t i = 0; i < n; i++) s->x[i] = rm_rng_uniform(&rng);
    for (int b = 0; b < o->batch; b++) {
        s->y[b] = (int32_t)rm_rng_below(&rng, (uint32_t)rm_net_num_classes(net));
        s->ids[b] = b;
    }
    rm_method_start_epoch(s->method, 0);
    return RM_OK;
}

/* What the trainer does per batch: the method's gradients, the SGD update, the
 * refreshed weight copies. A small learning rate keeps random-label training finite. */
static rm_status one_step(const bench_opts *o, rm_net *net, step_state *s, rm_rng *rng) {
    rm_step_terms terms;
    RM_TRY(rm_method_gradients(s->method, s->x, s->y, s->ids, o->batch, rng, &terms));
    rm_sgd_step(s->opt, 1e-3);
    rm_net_params_changed(net);
    return RM_OK;
}

int bench_step(const bench_opts *o, rm_net *net) {
    rm_config cfg;
    step_state s = {0};
    if (step_setup(o, net, &cfg, &s) != RM_OK) {
        step_free(&s);
        return fail("--step");
    }
    rm_rng rng;
    rm_rng_seed(&rng, 3);
    rm_status st = RM_OK;
    for (int w = 0; w < o->warmup && st == RM_OK; w++) st = one_step(o, net, &s, &rng);
    rm_net_pass_count c0, c1;
    rm_net_pass_counts(net, &c0);
    bench_clock t0 = bench_clock_now();
    for (int it = 0; it < o->iters && st == RM_OK; it++) st = one_step(o, net, &s, &rng);
    bench_line l = {.batch = o->batch, .precision = rm_precision_name(rm_net_precision(net))};
    bench_clock_stop(t0, o->iters, &l);
    step_free(&s);
    if (st != RM_OK) return fail("--step");
    rm_net_pass_counts(net, &c1);
    /* per step, in images: forward 1x, backward with weights 2x, input-only backward 1x */
    double fwd = (double)(c1.forward - c0.forward) / o->iters / o->batch;
    double bww = (double)(c1.backward_weights - c0.backward_weights) / o->iters / o->batch;
    double bwi = (double)(c1.backward_input - c0.backward_input) / o->iters / o->batch;
    double mult = fwd + 2 * bww + bwi;
    char extra[256];
    snprintf(extra, sizeof extra,
             ", \"method\": \"%s\", \"reg\": \"%s\", \"forward_passes\": %g, \"backward_weight_passes\": %g, "
             "\"backward_input_passes\": %g, \"flop_multiple\": %g",
             cfg.method, cfg.reg, fwd, bww, bwi, mult);
    if (!o->json)
        printf("# step %s reg=%s: %g forward, %g backward (weights), %g backward (input only) passes "
               "per step; FLOPs counted as %gx forward\n", cfg.method, cfg.reg, fwd, bww, bwi, mult);
    char pass[96];
    snprintf(pass, sizeof pass, "step:%s:%s", cfg.method, cfg.reg);
    l.pass = pass;
    l.flops = rm_net_forward_flops(net) * o->batch * mult;
    l.extra = extra;
    bench_print(o, &l);
    return 0;
}

/* ---------------------------------------------------------------- --conv-peak */

int bench_conv_peak(const bench_opts *o) {
    bench_header(o, "convolution peak: 64->64 3x3, stride 1, pad 1, 32x32 images, forward",
                 "direct convolution (the FMA peak; FLOPs of the direct algorithm), and auto: "
                 "the algorithm oneDNN picks for such a layer (Winograd where faster), same FLOP count");
    static const struct {
        const char *pass;
        rm_precision p;
        int auto_alg;
    } cases[3] = {{"conv-peak-f32", RM_PRECISION_F32, 0},
                  {"conv-peak-f32-auto", RM_PRECISION_F32, 1},
                  {"conv-peak-bf16", RM_PRECISION_BF16, 0}};
    for (int k = 0; k < 3; k++) {
        char note[256];
        if (rm_precision_effective(cases[k].p, note, sizeof note) != cases[k].p) {
            if (!o->json) printf("# %s skipped: %s\n", cases[k].pass, note);
            continue;
        }
        double sec, flops;
        const char *impl = NULL;
        /* a warm-up call, then the timed one (its CPU time includes creating the primitive) */
        if (rm_dnnl_conv_peak(cases[k].p, cases[k].auto_alg, o->batch, o->warmup > 0 ? o->warmup : 1, 0, &sec,
                              &flops, NULL) != RM_OK)
            return fail("--conv-peak");
        bench_clock t0 = bench_clock_now();
        if (rm_dnnl_conv_peak(cases[k].p, cases[k].auto_alg, o->batch, o->iters, 0, &sec, &flops, &impl) != RM_OK)
            return fail("--conv-peak");
        char extra[128];
        snprintf(extra, sizeof extra, ", \"impl\": \"%s\"", impl);
        bench_line l = {.pass = cases[k].pass, .batch = o->batch, .flops = flops,
                        .precision = rm_precision_name(cases[k].p), .extra = extra};
        bench_clock_stop(t0, o->iters, &l);
        l.seconds = sec;
        bench_print(o, &l);
        if (!o->json) printf("#   (%s)\n", impl);
    }
    return 0;
}

/* ---------------------------------------------------------------- --sign-flips */

static const char *default_dataset(const char *model) {
    return !strcmp(model, "fmnist-cnn") ? "fashion-mnist" : "cifar10";
}

static rm_status load_weights(rm_net *net, const char *run_path) {
    rm_checkpoint_reader *r;
    RM_TRY(rm_checkpoint_open(run_path, &r, NULL));
    size_t np;
    rm_param *p = rm_net_params(net, &np);
    rm_status st = RM_OK;
    for (size_t i = 0; i < np && st == RM_OK; i++) {
        char name[128];
        snprintf(name, sizeof name, "model/%s", p[i].name);
        st = rm_checkpoint_read(r, name, RM_DT_F32, p[i].ndim, p[i].dims, p[i].data);
    }
    rm_checkpoint_close(r);
    rm_net_params_changed(net);
    return st;
}

/* a: f32 gradient, b: bf16 gradient. A sign step a*sign(g) raises the objective by
 * a*sum|g| to first order; each flipped element takes 2a|g_i| off that, so the L1 share
 * of the flipped elements says how much of the step's ascent bf16 changes. */
typedef struct {
    double flips, elements, diff2, ref2, flip_l1, l1;
} flip_sums;

static void count_flips(flip_sums *s, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int sa = (a[i] > 0) - (a[i] < 0), sb = (b[i] > 0) - (b[i] < 0);
        s->flips += sa != sb;
        if (sa != sb) s->flip_l1 += fabs((double)a[i]);
        s->l1 += fabs((double)a[i]);
        double d = (double)a[i] - b[i];
        s->diff2 += d * d;
        s->ref2 += (double)a[i] * a[i];
    }
    s->elements += (double)n;
}

typedef struct {
    rm_net *net[2];
    rm_attacker *att[2];
    rm_dataset data;
    float *g[2];
} flip_state;

static void flip_free(flip_state *f) {
    for (int k = 0; k < 2; k++) {
        rm_attacker_destroy(f->att[k]);
        rm_net_destroy(f->net[k]);
        rm_free(f->g[k]);
    }
    rm_dataset_free(&f->data);
}

/* Test images of the dataset, or random ones (with a note) when it is not installed. */
static rm_status flip_data(const bench_opts *o, flip_state *f, const char **source) {
    const char *name = o->dataset ? o->dataset : default_dataset(o->model);
    int c, h, w;
    rm_net_input_shape(f->net[0], &c, &h, &w);
    if (rm_dataset_load(name, NULL, 0, &f->data) == RM_OK && f->data.c == c && f->data.h == h &&
        f->data.w == w && f->data.n >= o->batch) {
        *source = name;
        return RM_OK;
    }
    if (o->dataset) return rm_fail(RM_ERR_ARG, "--dataset %s: not loadable for model %s", name, o->model);
    rm_error_clear();
    rm_dataset_free(&f->data);
    *source = "random images (dataset not installed)";
    RM_TRY(rm_dataset_alloc(&f->data, "random", (int64_t)o->batch * o->iters, c, h, w, o->classes));
    rm_rng r;
    rm_rng_seed(&r, 4);
    for (int64_t i = 0; i < f->data.n * c * h * w; i++) f->data.images[i] = rm_rng_uniform(&r);
    for (int64_t i = 0; i < f->data.n; i++) f->data.labels[i] = (int32_t)rm_rng_below(&r, (uint32_t)o->classes);
    return RM_OK;
}

static rm_status flip_setup(const bench_opts *o, flip_state *f, const char **source) {
    for (int k = 0; k < 2; k++) {
        RM_TRY(rm_net_create(o->model, o->c, o->h, o->w, o->classes, &f->net[k]));
        if (o->weights) RM_TRY(load_weights(f->net[k], o->weights));
        RM_TRY(rm_attacker_create(f->net[k], o->batch, &f->att[k]));
        if (!(f->g[k] = rm_alloc((size_t)o->batch * rm_net_input_size(f->net[k]) * sizeof(float))))
            return RM_ERR_NOMEM;
    }
    RM_TRY(rm_net_set_precision(f->net[1], RM_PRECISION_BF16));
    return flip_data(o, f, source);
}

static void print_flips(const bench_opts *o, const char *pass, const flip_sums *s, const char *source,
                        const flip_state *f) {
    double share = s->flips / s->elements, rel = sqrt(s->diff2 / fmax(s->ref2, 1e-300));
    double l1 = s->flip_l1 / fmax(s->l1, 1e-300);
    const char *eff = rm_precision_name(rm_net_precision(f->net[1]));
    if (!o->json)
        printf("%-17s %5s %6d %10.3f %% %12.3f %% %10.3g %12.0f\n", pass, eff, o->batch, 100 * share, 100 * l1,
               rel, s->elements);
    else
        printf("{\"pass\": \"%s\", \"images_per_s\": null, \"gflops\": null, \"batch\": %d, "
               "\"model\": \"%s\", \"precision\": \"%s\", \"threads\": %d, \"isa\": \"%s\", "
               "\"sign_flip_share\": %.6g, \"sign_flip_l1_share\": %.6g, \"elements\": %.0f, "
               "\"rel_l2_error\": %.6g, \"images\": \"%s\", \"weights\": \"%s\"}\n",
               pass, o->batch, o->model, eff, o->threads, rm_dnnl_isa(), share, l1, s->elements, rel,
               source, o->weights ? o->weights : "seeded init");
    fflush(stdout);
}

int bench_sign_flips(const bench_opts *o) {
    flip_state f = {0};
    const char *source = "";
    if (flip_setup(o, &f, &source) != RM_OK) {
        flip_free(&f);
        return fail("--sign-flips");
    }
    char note[256];
    rm_precision_effective(RM_PRECISION_BF16, note, sizeof note);
    bench_header(o, "sign flips of d CE / d input, bf16 against f32 (same weights, same images)", NULL);
    if (!o->json) {
        printf("# images: %s; weights: %s%s%s\n", source, o->weights ? o->weights : "seeded init",
               note[0] ? "; " : "", note);
        printf("# flipped: elements whose sign differs; L1 share: their part of sum |g_f32| (a sign step\n"
               "# loses twice that share of its first-order ascent); rel L2: |g_bf16 - g_f32| / |g_f32|\n");
        printf("%-17s %5s %6s %12s %14s %10s %12s\n", "pass", "prec", "batch", "flipped", "L1 share", "rel L2",
               "elements");
    }
    size_t d = rm_net_input_size(f.net[0]);
    /* eval mode: what the evaluation attacks see; train mode: the PGI / FGSM step's */
    static const rm_mode modes[2] = {RM_MODE_EVAL, RM_MODE_TRAIN};
    static const char *names[2] = {"sign-flips-eval", "sign-flips-train"};
    int64_t batches = f.data.n / o->batch < o->iters ? f.data.n / o->batch : o->iters;
    for (int m = 0; m < 2; m++) {
        flip_sums s = {0};
        for (int64_t b = 0; b < batches; b++) {
            const float *x = f.data.images + (size_t)b * o->batch * d;
            const int32_t *y = f.data.labels + (size_t)b * o->batch;
            for (int k = 0; k < 2; k++)
                if (rm_attack_gradient(f.att[k], modes[m], RM_ATTACK_LOSS_CE, x, NULL, y, NULL, o->batch,
                                       NULL, f.g[k]) != RM_OK) {
                    flip_free(&f);
                    return fail("--sign-flips");
                }
            count_flips(&s, f.g[0], f.g[1], (size_t)o->batch * d);
        }
        print_flips(o, names[m], &s, source, &f);
    }
    flip_free(&f);
    return 0;
}
