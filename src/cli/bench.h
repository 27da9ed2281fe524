/* regmix bench internals: options, one result line (text table or JSON), and the
 * benchmarks of bench_step.c. */
#ifndef REGMIX_CLI_BENCH_H
#define REGMIX_CLI_BENCH_H

#include <stdio.h>

#include "regmix/nn.h"

typedef struct {
    const char *model, *method, *reg; /* method NULL: no --step */
    const char *weights, *dataset;    /* --sign-flips: a run file's checkpoint, test images */
    int batch, threads, classes, iters, warmup;
    int c, h, w;                      /* input image shape (--shape; default: the model's usual dataset's) */
    rm_precision precision;
    int json, conv_peak, sign_flips, no_passes;
    char kernels[512]; /* the convolutions' oneDNN implementations at this batch, or "" */
} bench_opts;

/* One figure: a pass timed over `batch` images, `seconds` per run, `flops` per run. */
typedef struct {
    const char *pass;
    int batch;
    double seconds, flops;
    double cpu_seconds;    /* process CPU time per run (all threads) */
    const char *precision; /* precision this line ran in */
    const char *extra;     /* JSON members to add (",\"key\": value" ...), or "" */
} bench_line;

/* Prints the context header (text mode) and the table's column names. */
void bench_header(const bench_opts *o, const char *what, const char *detail);
void bench_print(const bench_opts *o, const bench_line *l);
/* Wall and process CPU clocks, for bench_line.seconds / cpu_seconds. */
typedef struct {
    double wall, cpu;
} bench_clock;
bench_clock bench_clock_now(void);
/* Per-run seconds since `start` over `iters` runs into l. */
void bench_clock_stop(bench_clock start, int iters, bench_line *l);

/* The machine's convolution peak (64->64 3x3, batch o->batch, f32 and bf16). */
int bench_conv_peak(const bench_opts *o);
/* A whole training step of o->method / o->reg (all passes, optimiser, PGI buffers). */
int bench_step(const bench_opts *o, rm_net *net);
/* Share of input-gradient elements whose sign differs between f32 and bf16. */
int bench_sign_flips(const bench_opts *o);

#endif
