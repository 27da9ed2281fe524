#!/usr/bin/python3
"""PyTorch twin of `regmix bench --step METHOD --reg R`: the same training step, written
the way a PyTorch user would write it, timed the same way (warm-up, then the mean of
--iters steps), for jobscripts/bench-vs-pytorch.sh.

    /usr/bin/python3 tests/pytorch/bench_step.py --model preact-resnet18 --batch 128 \
        --threads 2 --step pgi --reg regmix [--precision f32|bf16] [--iters N] [--warmup W]

One step, model.train() throughout (method notes, "The training step"):
  pgi      e = P(D[ids]) (fresh samples: D = P(a sign(U(-eps, eps))), M = 0);
           z_i = f(x + e); g = d CE_ls(z_i, y) / d e (input gradient only);
           M = g / ||g||_1 + mu M;  d = P(e + a sign(g));  D = P(e + a sign(M));
  fgsm-rs  e = P(U(-eps, eps)); z_i, g as above with plain CE; d = P(e + a sign(g));
  then     z_f = f(x + d) (and z_c = f(x) for agr / regmix);
           L = CE_ls(z_f, y) + R with R one of
             none, mse: lambda mean((z_f - z_i)^2),
             amr: alpha KL(p_f||p_i) + beta KL(p_i||p_f),  agr: gamma KL(p_c||p_f),
             regmix: amr + agr (every side attached);
           SGD (momentum 0.9, weight decay 5e-4) step.
  pgd-at   PGD-10 (a = eps/4, random start) in train mode, then CE on x + d and SGD.
eps = a = 0.1, s = 0.6, mu = 0.3, lambda = 10, alpha = 1, beta = 0.5, gamma = 1.
bf16: torch.autocast("cpu", dtype=torch.bfloat16) around every forward pass (PyTorch's
mixed precision for CPUs); losses, attack arithmetic and the optimiser stay f32.

Random images and labels (like regmix bench). Prints one JSON object per line with
pass, images_per_s, gflops, ms, cpu_ms (the same keys as `regmix bench --json`); GFLOP/s use the
same count as regmix: convolution and linear multiply-adds x2 of one forward pass
(counted with hooks), times 1 per forward pass, 2 per backward pass with weight
gradients and 1 per backward pass for the input only.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

EPS = STEP = 0.1
SMOOTH, MU = 0.6, 0.3
LAMBDA, ALPHA, BETA, GAMMA = 10.0, 1.0, 0.5, 1.0
PGD_STEPS = 10


def ce_ls(z, y, s=SMOOTH):
    """CE against t_y = s, t_k = (1 - s)/(K - 1) (s = 1: plain CE)."""
    k = z.shape[1]
    t = torch.full_like(z, (1.0 - s) / (k - 1))
    t[torch.arange(z.shape[0]), y] = s
    return -(t * F.log_softmax(z, dim=1)).sum(dim=1).mean()


def kl(a, b):
    """KL(softmax(a) || softmax(b)), batchmean."""
    la, lb = F.log_softmax(a, dim=1), F.log_softmax(b, dim=1)
    return (la.exp() * (la - lb)).sum(dim=1).mean()


def project(v, x):
    return torch.minimum(torch.maximum(v.clamp(-EPS, EPS), -x), 1.0 - x)


def forward_flops(model, shape):
    """Multiply-adds x2 of conv and linear layers for one image."""
    total = [0.0]

    def conv_hook(m, inp, out):
        total[0] += 2.0 * out[0].numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]

    def lin_hook(m, inp, out):
        total[0] += 2.0 * m.in_features * m.out_features

    hooks = [m.register_forward_hook(conv_hook if isinstance(m, torch.nn.Conv2d) else lin_hook)
             for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model.eval()
        model(torch.zeros((1,) + shape))
        model.train()
    for h in hooks:
        h.remove()
    return total[0]


class Step:
    def __init__(self, args, model, n):
        self.a, self.m = args, model
        self.opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
        self.D = None
        self.M = None
        self.fresh = torch.ones(n, dtype=torch.bool)
        self.bf16 = args.precision == "bf16"

    def f(self, x):
        if self.bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return self.m(x).float()
        return self.m(x)

    def pgi_prior(self, x, ids):
        if self.D is None:
            self.D = torch.zeros((self.fresh.numel(),) + x.shape[1:])
            self.M = torch.zeros_like(self.D)
        fr = self.fresh[ids]
        if fr.any():
            u = torch.empty_like(x[fr]).uniform_(-EPS, EPS)
            self.D[ids[fr]] = project(STEP * torch.sign(u), x[fr])
            self.M[ids[fr]] = 0
            self.fresh[ids[fr]] = False
        return project(self.D[ids], x)

    def fast(self, x, y, ids):
        """Returns (z_i or None, d): the initial pass and the final perturbation."""
        reg = self.a.reg
        pgi = self.a.step == "pgi"
        e = self.pgi_prior(x, ids) if pgi else project(torch.empty_like(x).uniform_(-EPS, EPS), x)
        xi = (x + e).requires_grad_(True)
        zi = self.f(xi)
        keep = reg in ("mse", "amr", "regmix")
        (g,) = torch.autograd.grad(ce_ls(zi, y, SMOOTH if pgi else 1.0), xi, retain_graph=keep)
        with torch.no_grad():
            d = project(e + STEP * torch.sign(g), x)
            if pgi:
                self.M[ids] = g / g.abs().sum() + MU * self.M[ids]
                self.D[ids] = project(e + STEP * torch.sign(self.M[ids]), x)
        return (zi if keep else None), d

    def pgd(self, x, y):
        d = project(torch.empty_like(x).uniform_(-EPS, EPS), x)
        for _ in range(PGD_STEPS):
            d.requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(self.f(x + d), y), d)
            d = project(d.detach() + EPS / 4 * torch.sign(g), x)
        return d

    def __call__(self, x, y, ids):
        reg = self.a.reg
        if self.a.step == "pgd-at":
            zi, d = None, self.pgd(x, y)
        else:
            zi, d = self.fast(x, y, ids)
        zf = self.f(x + d)
        zc = self.f(x) if reg in ("agr", "regmix") else None
        loss = ce_ls(zf, y, SMOOTH if self.a.step == "pgi" else 1.0)
        if reg == "mse":
            loss = loss + LAMBDA * (zf - zi).pow(2).mean()
        if reg in ("amr", "regmix"):
            loss = loss + ALPHA * kl(zf, zi) + BETA * kl(zi, zf)
        if reg in ("agr", "regmix"):
            loss = loss + GAMMA * kl(zc, zf)
        self.opt.zero_grad(set_to_none=False)
        loss.backward()
        self.opt.step()

    def flop_multiple(self):
        """(forward, weight-backward, input-backward) passes per step, regmix's count."""
        reg = self.a.reg
        if self.a.step == "pgd-at":
            return PGD_STEPS + 1, 1, PGD_STEPS
        clean = reg in ("agr", "regmix")
        initial = reg in ("mse", "amr", "regmix")
        return 2 + clean, 1 + initial + clean, 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="fmnist-cnn", choices=sorted(models.MODELS))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--step", default="pgi", choices=["pgi", "fgsm-rs", "pgd-at"])
    ap.add_argument("--reg", default=None, choices=["none", "mse", "amr", "agr", "regmix"])
    ap.add_argument("--precision", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    if a.reg is None:
        a.reg = "none" if a.step == "pgd-at" else "regmix"
    if a.step == "pgd-at" and a.reg != "none":
        ap.error("pgd-at takes --reg none")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model, shape = models.create(a.model, a.classes)
    flops = forward_flops(model, shape)
    x = torch.rand((a.batch,) + shape)
    y = torch.randint(0, a.classes, (a.batch,))
    ids = torch.arange(a.batch)
    step = Step(a, model, a.batch)
    for _ in range(a.warmup):
        step(x, y, ids)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(a.iters):
        step(x, y, ids)
    dt = (time.perf_counter() - t0) / a.iters
    cpu = (time.process_time() - c0) / a.iters
    fwd, bww, bwi = step.flop_multiple()
    mult = fwd + 2 * bww + bwi
    print(json.dumps({
        "pass": "step:%s:%s" % (a.step, a.reg), "images_per_s": a.batch / dt,
        "gflops": flops * a.batch * mult / dt / 1e9, "ms": dt * 1e3, "cpu_ms": cpu * 1e3, "batch": a.batch,
        "model": a.model, "precision": a.precision, "threads": torch.get_num_threads(),
        "torch_version": torch.__version__, "flop_multiple": mult,
        "mkldnn_bf16": torch.backends.mkldnn.is_available(),
    }), flush=True)


if __name__ == "__main__":
    main()
