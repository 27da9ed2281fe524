/* regmix nn: CPU training engine on oneDNN 2.6.
 *
 * A network is a fixed graph of layers (convolution, batch norm, ReLU, max/avg pooling,
 * global average pooling, linear, residual add) built by name ("fmnist-cnn",
 * "preact-resnet18", "resnet18", "wrn-D-W") for a given input image shape. Its
 * parameters use PyTorch state_dict names and layouts (conv OIHW, linear [out,in] with
 * the input flattened in C,H,W order, BN [C]), so weights move to and from PyTorch by
 * name alone.
 *
 * Several forward passes per step: every forward pass records its activations on a
 * tape (rm_tape). Backward on a tape accumulates into the shared weight gradients;
 * the regularisers back-propagate through two or three tapes of the same step, and
 * their weight gradients add up. A backward with only RM_GRAD_INPUT returns the
 * gradient with respect to the input image and runs no weight-gradient primitive
 * (what attacks need, and cheaper).
 *
 * Activations stay in the layouts oneDNN chooses; reorders happen only at the input,
 * at the logits and where a primitive wants another layout. Primitives are created
 * once per batch size and kept (a smaller last batch does not rebuild every epoch).
 */
#ifndef REGMIX_NN_H
#define REGMIX_NN_H

#include "regmix/common.h"

typedef enum {
    RM_MODE_TRAIN = 0, /* batch norm on batch statistics; updates running statistics
                          (PyTorch: momentum 0.1, unbiased running variance) */
    RM_MODE_EVAL = 1   /* batch norm on running statistics */
} rm_mode;

enum {
    RM_GRAD_INPUT = 1u,   /* compute d loss / d input image */
    RM_GRAD_WEIGHTS = 2u  /* accumulate d loss / d parameters into rm_param.grad */
};

/* One tensor of the state_dict. data/grad are plain float arrays in PyTorch layout. */
typedef struct {
    char name[64];     /* e.g. "layer1.0.bn1.running_mean" */
    int ndim;
    int64_t dims[4];
    size_t numel;
    float *data;
    float *grad;       /* NULL for buffers */
    int is_buffer;     /* running_mean / running_var: not trained, no weight decay */
    int64_t fan_in;    /* for initialisation; 0 where not applicable */
} rm_param;

typedef struct rm_net rm_net;
typedef struct rm_tape rm_tape;

/* The models (PyTorch twins in tests/pytorch/models.py):
 *   fmnist-cnn       two conv-BN-ReLU-maxpool stages and two linear layers
 *   preact-resnet18  PreAct-ResNet-18 of the FGSM-PGI / TRADES code
 *   resnet18         post-activation ResNet-18 (CIFAR stem) of the FGSM-PGK code
 *   wrn-D-W          TRADES' WideResNet: depth D = 6n+4 (10, 16, ..., 34, ..., up to
 *                    RM_WRN_MAX_DEPTH), widen factor W in 1..RM_WRN_MAX_WIDTH
 * Every model takes any input image shape c x h x w (h == w; the dataset's: 1x28x28 for
 * (Fashion-)MNIST, 3x32x32 for CIFAR): the first layer takes c channels and the
 * residual networks end in global average pooling, whatever the final map's size. */
#define RM_WRN_MAX_DEPTH 142
#define RM_WRN_MAX_WIDTH 32

/* Parses "wrn-D-W": 0 when `model` does not start with "wrn-" (not of the family),
 * 1 for a valid name (depth and width set; either may be NULL), -1 for a malformed one
 * with the reason written to why (e.g. "depth 33 is not 6n+4 (10, 16, 22, 28, 34, ...)"). */
int rm_net_wrn_parse(const char *model, int *depth, int *width, char *why, size_t why_size);

/* Builds `model` for (c, h, w) input images and num_classes outputs (>= 2); the weights
 * get rm_net_init(net, 0). An unknown model, a malformed wrn-D-W, an image too small
 * for the model's pooling or a non-square image is RM_ERR_ARG naming them. */
rm_status rm_net_create(const char *model, int c, int h, int w, int num_classes, rm_net **out);
void rm_net_destroy(rm_net *net);

const char *rm_net_model(const rm_net *net);
int rm_net_num_classes(const rm_net *net);
void rm_net_input_shape(const rm_net *net, int *c, int *h, int *w);
size_t rm_net_input_size(const rm_net *net); /* c*h*w */

/* The parameters and buffers, in PyTorch state_dict order (num_batches_tracked omitted). */
rm_param *rm_net_params(rm_net *net, size_t *count);
rm_param *rm_net_find_param(rm_net *net, const char *name);

/* PyTorch default initialisation (Kaiming-uniform a=sqrt(5) for conv/linear weights,
 * uniform(+-1/sqrt(fan_in)) for biases, BN weight 1, bias 0, running 0/1), seeded.
 * wrn-D-W follows TRADES' own initialisation instead: conv weights normal with std
 * sqrt(2 / (k*k*out_channels)), linear bias 0 (linear weight and BN as above). */
void rm_net_init(rm_net *net, uint64_t seed);

/* Call after anything wrote rm_param.data (optimiser step, checkpoint load, tests):
 * refreshes the copies of the weights in the layouts the primitives use. */
void rm_net_params_changed(rm_net *net);

void rm_net_zero_grad(rm_net *net);

/* Multiply-adds x2 of one forward pass for one image (for GFLOP/s figures). */
double rm_net_forward_flops(const rm_net *net);

/* Images that went through each kind of pass since the network was created (benchmarks
 * derive a training step's FLOPs from them: forward 1x, backward with weight gradients
 * 2x (data and weights), backward for the input only 1x rm_net_forward_flops). */
typedef struct {
    int64_t forward, backward_weights, backward_input;
} rm_net_pass_count;
void rm_net_pass_counts(const rm_net *net, rm_net_pass_count *out);

rm_status rm_tape_create(rm_net *net, rm_tape **out);
void rm_tape_destroy(rm_tape *tape);

/* x: (batch, C, H, W) plain NCHW floats; logits: (batch, num_classes).
 * Records the activations on `tape` (overwriting what it held). */
rm_status rm_net_forward(rm_net *net, rm_tape *tape, rm_mode mode, const float *x, int batch,
                         float *logits);

/* Back-propagates d loss / d logits (batch, num_classes) through the pass recorded on
 * `tape`. flags: RM_GRAD_WEIGHTS adds into rm_param.grad; RM_GRAD_INPUT writes
 * dx (batch, C, H, W), otherwise dx may be NULL. */
rm_status rm_net_backward(rm_net *net, rm_tape *tape, const float *dlogits, float *dx,
                          unsigned flags);

/* ---- data-parallel training: synchronised batch norm ----
 * fn sums buf[0..n) element-wise over the ranks that train this network together, in
 * place, in a fixed order (the same result on every rank, run after run). When set,
 * every training-mode batch norm uses the statistics of the whole group's batch:
 * forward pass, running statistics (with the group's count in the unbiased factor) and
 * backward pass (diff_src through the group's mean and variance). Every rank must then
 * run the same sequence of training-mode forward and backward calls. The weight
 * gradients stay local (the caller sums them over the group). fn NULL: off. */
typedef rm_status (*rm_allreduce_fn)(void *ctx, double *buf, int n);
void rm_net_set_allreduce(rm_net *net, rm_allreduce_fn fn, void *ctx);

/* "2.6.3", and the ISA oneDNN dispatches to (e.g. "avx512_core_bf16"). */
const char *rm_dnnl_version(void);
const char *rm_dnnl_isa(void);

/* ---- numerical precision of the convolutions and linear layers ----
 * RM_PRECISION_BF16: the convolutions and linear layers read bf16 weights and bf16
 * activations (oneDNN runs them on AMX tiles or AVX-512 BF16 instructions), and the
 * activations and their gradients between layers are bf16; batch norm, ReLU, pooling
 * and the residual adds work on those bf16 tensors with f32 arithmetic inside. In f32
 * stay: the master weights (rm_param.data) and their gradients, the batch-norm
 * statistics, the logits and d loss / d logits, the input image and its gradient (the
 * first convolution writes it in f32), and everything outside the network (losses,
 * optimiser, attacks, PGI buffers).
 * On a CPU with neither AMX nor AVX-512 BF16 (what oneDNN dispatches to decides), a
 * bf16 request runs f32; rm_precision_effective says so. */
typedef enum { RM_PRECISION_F32 = 0, RM_PRECISION_BF16 = 1 } rm_precision;

const char *rm_precision_name(rm_precision p); /* "f32" | "bf16" */
/* "f32" | "bf16"; anything else is RM_ERR_ARG naming the text. */
rm_status rm_precision_parse(const char *text, rm_precision *out);
/* The precision a request gets on this CPU. note (size bytes, may be NULL) receives "",
 * the mixed policy of rm_precision_winograd_f32, or, for a fallback, why ("bf16
 * requested, but oneDNN's ISA avx2 has no bf16 instructions (AVX-512 BF16 or AMX):
 * running f32"). */
rm_precision rm_precision_effective(rm_precision requested, char *note, size_t size);
/* 1 on a CPU with AVX-512 BF16 but no AMX: a bf16 network keeps its 3x3 stride-1
 * convolutions with 64 or more input channels in f32 where oneDNN runs them as Winograd
 * (faster there than its direct bf16 kernels); rm_precision_effective's note says so. */
int rm_precision_winograd_f32(void);
/* Sets the network's precision (the effective one for `requested`); the primitives are
 * rebuilt at the next pass. Default RM_PRECISION_F32. */
rm_status rm_net_set_precision(rm_net *net, rm_precision requested);
rm_precision rm_net_precision(const rm_net *net); /* the effective precision */

/* The oneDNN implementations of the network's convolutions at this batch size, one
 * "name xcount" list per pass kind: "forward: jit_wino_4x3:avx512_core x15,
 * jit:avx512_core x5; backward data: ...; backward weights: ...". oneDNN picks Winograd
 * (3x3, stride 1, f32, enough images) or direct convolution per layer and pass. */
rm_status rm_net_conv_kernels(rm_net *net, int batch, char *buf, size_t size);

/* The convolution peak of this machine as regmix bench measures it: a 64->64 3x3
 * convolution (stride 1, pad 1) on 32x32 images, forward, in the layouts oneDNN picks,
 * `batch` images, `iters` timed runs after `warmup`, in `precision` (effective: see
 * rm_precision_effective); direct convolution, or with `auto_alg` the algorithm oneDNN
 * picks (what the network's layers get: Winograd where it is faster).
 * *seconds: mean time of one run; *flops: its multiply-adds x2 (direct count);
 * impl (may be NULL): the implementation's name. */
rm_status rm_dnnl_conv_peak(rm_precision precision, int auto_alg, int batch, int iters, int warmup,
                            double *seconds, double *flops, const char **impl);

#endif
