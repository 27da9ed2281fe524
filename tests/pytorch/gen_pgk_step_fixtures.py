#!/usr/bin/python3
"""Writes the PyTorch reference of two FGSM-PGK training steps with the EMA model
(sweeps/METHOD.md, "FGSM-PGK (method: pgk) and the EMA model") for
tests/test_pytorch_pgk_step.c:
tests/data/pgk_step_mse.rmfx and pgk_step_regmix.rmfx.

    /usr/bin/python3 tests/pytorch/gen_pgk_step_fixtures.py [--out DIR] [--float32-check]

Both files start from the same weights and batch; only the regulariser differs.
fmnist-cnn (tests/pytorch/models.py) with the formula weights of gen_model_fixtures.py,
float64, model.train(), B = 8, sample ids 0..7; the prior D = e (the formula
"pgi_prior", as in gen_pgi_step_fixtures.py), M = 0; the EMA shadow = the initial
weights and BN statistics, t = 0. Then two steps on the same batch (the second starts
from the prior, momentum, weights and BN statistics the first left), each:
  1. e = P(D);  z_i = f(x + e);  g = d CE_ls(z_i, y) / d e        (input gradient only)
  2. d = P(e + a sign(g));  z_f = f(x + d) (d a constant); regmix also z_c = f(x)
  3. n_i, n_f = examples whose z_i, z_f have their arg max at the label;
     r = n_f / (n_i + 1);  M <- (2 - r) g / ||g||_1 + mu M;  D <- P(e + a sign(M))
  4. L = CE_ls(z_f, y) + R  (mse: lambda mean((z_f - z_i)^2); regmix: alpha KL(p_f||p_i)
     + beta KL(p_i||p_f) + gamma KL(p_c||p_f)); L.backward() through every pass R uses
  5. torch.optim.SGD(lr, momentum 0.9, weight_decay 5e-4).step()
  6. EMA: c = ema_decay if r < ema_value else min(1, 0.99999 r / ema_value);
     k = min(c, (t + 1) / (t + 10));  shadow <- k shadow + (1 - k) w for every parameter
     and BN running statistic (FGSM-PGK's EMA class with buffer_ema=True); t += 1.
Settings (PGK's CIFAR-10 script, at Fashion-MNIST's budget): eps = a = 0.1, s = 0.5,
mu = 0.3, lambda = 5.6, ema_value = 0.82, ema_decay = 0.999, lr = 0.1; alpha = 1,
beta = 0.5, gamma = 1.

P is evaluated in float32 with the C code's operation order (gen_pgi_step_fixtures.py),
so e, d and D are the exact float32 values the C code must produce once the signs of g
and M agree; everything else is float64.

Records (RMFX): input, labels, prior (e of step 1), then per step S = 1, 2 with prefix
"S/": logits_i, logits_f [, logits_c], count_i, count_f, r, delta (d), prior_next (D),
momentum_next (M), loss, ce, mse | amr, agr (batch means), grad:<param> (before the SGD
step), running:<buffer> (BN statistics after the step's passes), weight:<param> (after
the SGD step), ema_k (the decay used), ema:<name> (shadow of every parameter and BN
statistic after the update).
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_model_fixtures as gm  # noqa: E402  (formula, margins, RMFX writer)
import gen_pgi_step_fixtures as pg  # noqa: E402  (P in float32 / float64, KL, the model)
import models  # noqa: E402

MODEL = pg.MODEL
BATCH = 8
K = 10
STEP = pg.STEP  # = eps = 0.1; pg.project32 holds them as float32
SMOOTH = 0.5
MU = 0.3
LAMBDA = 5.6
ALPHA, BETA, GAMMA = 1.0, 0.5, 1.0
EMA_VALUE, EMA_DECAY = 0.82, 0.999
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4
STEPS = 2
REGS = ("mse", "regmix")
# margins, in units of the rms of their tensor (see gen_pgi_step_fixtures.py): ReLU and
# max-pool branch points, |g| (sign(g) picks d) and |M| (sign(M) picks the next prior)
BRANCH_MARGIN = pg.BRANCH_MARGIN
G_MARGIN = pg.G_MARGIN
# the counts n_i, n_f feed r: every top-2 logit gap of z_i and z_f at least this
GAP_MARGIN = 2e-3
REPAIR_STEP_CAP = 2e-4


def ce_ls(z, y):
    """CE against t_y = s, t_k = (1 - s)/(K - 1) (sweeps/METHOD.md)."""
    t = torch.full_like(z, (1.0 - SMOOTH) / (K - 1))
    t[torch.arange(z.shape[0]), y] = SMOOTH
    return -(t * F.log_softmax(z, dim=1)).sum(dim=1).mean()


def regulariser(reg, zf, zi, zc):
    if reg == "mse":
        return [("mse", LAMBDA * (zf - zi).pow(2).mean())]
    return [("amr", ALPHA * pg.kl(zf, zi) + BETA * pg.kl(zi, zf)), ("agr", GAMMA * pg.kl(zc, zf))]


def ema_decay(r, t):
    """k of PGK's EMA: the cap c from r, then min(c, (t + 1) / (t + 10))."""
    c = EMA_DECAY if r < EMA_VALUE else min(1.0, 0.99999 * r / EMA_VALUE)
    return min(c, (t + 1) / (t + 10))


def correct(z, y):
    return int((z.argmax(dim=1) == y).sum())


def pgk_sequence(reg, x, e0, y, dtype=torch.float64):
    """The two steps (docstring 1-6); returns the ordered records and the input gradients."""
    recs, grads = [], []

    def record(name, t):
        recs.append((name, torch.as_tensor(t).detach().clone().double().reshape(
            torch.as_tensor(t).shape or (1,))))
    m = pg.new_model(dtype)
    opt = torch.optim.SGD(m.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    shadow = {k: v.detach().clone() for k, v in m.state_dict().items() if "num_batches" not in k}
    x = x.to(dtype)
    record("input", x)
    record("labels", y.double())
    record("prior", e0)
    D, M = e0.to(dtype), torch.zeros_like(x)
    for s in range(1, STEPS + 1):
        p = "%d/" % s
        e = pg.project32(D, x).to(dtype)  # e = P(D[I]) for the image of now
        inp = (x + e).requires_grad_(True)
        zi = m(inp)
        (g,) = torch.autograd.grad(ce_ls(zi, y), inp, retain_graph=True)
        d = pg.project32(e, x, torch.sign(g)).to(dtype)
        zf = m(x + d)
        zc = m(x) if reg == "regmix" else None
        n_i, n_f = correct(zi, y), correct(zf, y)
        r = n_f / (n_i + 1)
        M = (2.0 - r) * g / g.abs().sum() + MU * M
        D = pg.project32(e, x, torch.sign(M)).to(dtype)
        terms = [("ce", ce_ls(zf, y))] + regulariser(reg, zf, zi, zc)
        loss = sum(v for _, v in terms)
        opt.zero_grad()
        loss.backward()
        record(p + "logits_i", zi)
        record(p + "logits_f", zf)
        if zc is not None:
            record(p + "logits_c", zc)
        record(p + "count_i", torch.tensor([float(n_i)]))
        record(p + "count_f", torch.tensor([float(n_f)]))
        record(p + "r", torch.tensor([r], dtype=torch.float64))
        record(p + "delta", d)
        record(p + "prior_next", D)
        record(p + "momentum_next", M)
        record(p + "loss", loss.reshape(1))
        for k, v in terms:
            record(p + k, v.reshape(1))
        for k, w in m.named_parameters():
            record(p + "grad:" + k, w.grad)
        opt.step()
        state = m.state_dict()
        for k, v in state.items():
            if k.endswith("running_mean") or k.endswith("running_var"):
                record(p + "running:" + k, v)
        for k, w in m.named_parameters():
            record(p + "weight:" + k, w)
        k_ema = ema_decay(r, s - 1)
        record(p + "ema_k", torch.tensor([k_ema], dtype=torch.float64))
        for k in shadow:
            shadow[k] = k_ema * shadow[k] + (1.0 - k_ema) * state[k].detach()
            record(p + "ema:" + k, shadow[k])
        grads.append(g.detach())
    return recs, grads

# ---------------------------------------------------------------- input repair
# As in gen_pgi_step_fixtures.py: the input x is moved (a few 1e-4 at most) until, in
# every pass of both steps and both regularisers, every ReLU / max-pool margin, every
# |g| and every |M| is clear of float32 rounding, and every top-2 logit gap of z_i and
# z_f (the counts) is at least GAP_MARGIN. Step 2's weights come from step 1's SGD step;
# the penalty's gradient treats them as constants (the margins themselves are exact).


def hinge(a, tau):
    near = a < 2 * tau
    return (2 * tau - a[near]).sum() if near.any() else 0.0


def sequence_margins(reg, x, e0, y):
    """Differentiable penalty and report [(sites under margin, least margin)] for
    (ReLU/pool sites, |g|, |M|, top-2 gaps) over both steps of one regulariser."""
    m = pg.new_model(torch.float64)
    buf = {}  # SGD momentum (torch.optim.SGD: the first step's buffer is the gradient)
    penalty, rep = 0.0, [[0, np.inf] for _ in range(4)]

    def note(i, a, tau):
        rep[i][0] += int((a < tau).sum())
        rep[i][1] = min(rep[i][1], a.min().item())
    D, M = pg.project64(e0, x), torch.zeros_like(x)
    for s in range(1, STEPS + 1):
        e = pg.project64(D, x)
        outs = [[], [], []]
        hooks = gm.hook_relu_inputs(MODEL, m, outs[0])
        inp = x + e
        zi = m(inp)
        (g,) = torch.autograd.grad(ce_ls(zi, y), inp, create_graph=True)
        for h in hooks:
            h.remove()
        d = pg.project64(e + STEP * torch.sign(g.detach()), x)
        passes = [None, None, None]
        for i, xin in ((1, x + d), (2, x)):
            hooks = gm.hook_relu_inputs(MODEL, m, outs[i])
            passes[i] = m(xin)
            for h in hooks:
                h.remove()
        zf, zc = passes[1], passes[2]
        for o in outs:
            pen, under, least = gm.branch_margins(o, BRANCH_MARGIN)
            penalty = penalty + pen
            rep[0][0] += under
            rep[0][1] = min(rep[0][1], least)
        a = g.abs() / g.detach().pow(2).mean().sqrt()
        penalty = penalty + hinge(a, G_MARGIN)
        note(1, a, G_MARGIN)
        r = correct(zf.detach(), y) / (correct(zi.detach(), y) + 1)
        M = (2.0 - r) * g / g.abs().sum() + MU * M
        am = M.abs() / M.detach().pow(2).mean().sqrt()
        penalty = penalty + hinge(am, G_MARGIN)
        note(2, am, G_MARGIN)
        for z in (zi, zf):
            top2 = z.topk(2, dim=1).values
            gap = top2[:, 0] - top2[:, 1]
            penalty = penalty + hinge(gap, GAP_MARGIN)
            note(3, gap, GAP_MARGIN)
        D = pg.project64(e + STEP * torch.sign(M.detach()), x)
        if s < STEPS:  # the weights of the next step: constants for the penalty's gradient,
            # in a new model (this step's graph still needs the weights it used)
            terms = [ce_ls(zf, y)] + [v for _, v in regulariser(reg, zf, zi, zc)]
            wg = torch.autograd.grad(sum(terms), list(m.parameters()), retain_graph=True)
            nxt = pg.new_model(torch.float64)
            nxt.load_state_dict(m.state_dict())
            with torch.no_grad():
                for w, gw in zip(nxt.parameters(), wg):
                    buf[w] = gw + WEIGHT_DECAY * w + MOMENTUM * buf.get(w, 0.0)
                    w -= LR * buf[w]
            m, buf = nxt, {w: buf[w] for w in nxt.parameters()}
    return penalty, rep


def repair_input(x0, e0, y, max_iter=400):
    x = x0.clone()
    for it in range(max_iter + 1):
        xv = x.clone().requires_grad_(True)
        penalty, report = 0.0, []
        for reg in REGS:
            p, rep = sequence_margins(reg, xv, e0, y)
            penalty = penalty + p
            report.append(rep)
        done = all(u == 0 for rep in report for u, _ in rep)
        if it % 10 == 0 or done:
            print("    repair iter %3d: under margin (relu/pool, |g|, |M|, top-2 gap) %s"
                  % (it, "; ".join("%s: %s" % (reg, ", ".join("%d (least %.2e)" % tuple(u) for u in rep))
                                   for reg, rep in zip(REGS, report))), flush=True)
        if done:
            return x, it
        if it == max_iter:
            break
        (gx,) = torch.autograd.grad(penalty, xv)
        step = (penalty.item() / gx.pow(2).sum().item()) * gx
        step *= min(1.0, REPAIR_STEP_CAP / step.abs().max().item())
        x = (x - step).clamp(0.0, 1.0).float().double()
    raise SystemExit("could not clear the margins in %d iterations" % max_iter)

# ---------------------------------------------------------------- main


def float32_check(reg, ref, x, e, y):
    """Diagnostic: PyTorch's own float32 sequence against the float64 reference, in the
    C test's metric (max |diff| / max |ref| per tensor), worst per kind of record."""
    recs32, _ = pgk_sequence(reg, x, e, y, torch.float32)
    got = dict(recs32)
    worst = {}
    for k, r in ref:
        if k in ("input", "labels", "prior"):
            continue
        kind = k.split(":")[0]
        err = ((got[k] - r).abs().max() / max(r.abs().max().item(), 1e-30)).item()
        if err > worst.get(kind, -1):
            worst[kind] = err
    print("%s: PyTorch float32 vs float64, worst max|diff|/max|ref|: %s"
          % (reg, ", ".join("%s %.1e" % kv for kv in worst.items())))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"))
    ap.add_argument("--float32-check", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)  # nothing random is used
    t0 = time.perf_counter()
    shape = (BATCH,) + models.MODELS[MODEL][1]
    x0 = torch.from_numpy(gm.formula_values("input", shape, "u").astype(np.float64))
    y = torch.from_numpy(np.floor(gm.formula_u("labels", BATCH) * K).astype(np.int64))
    e0 = torch.from_numpy((pg.EPS * (2.0 * gm.formula_u("pgi_prior", int(np.prod(shape))) - 1.0))
                          .astype(np.float32).reshape(shape).astype(np.float64))
    x, iters = repair_input(x0, e0, y)
    e = pg.project32(e0, x)
    print("input moved by at most %.2e from the formula (%d repair steps); labels %s"
          % ((x - x0).abs().max().item(), iters, y.tolist()))
    for reg in REGS:
        recs, grads = pgk_sequence(reg, x, e, y)
        r = dict(recs)
        path = os.path.join(args.out, "pgk_step_%s.rmfx" % reg)
        gm.write_fixture(path, recs)
        print("%s: wrote %s, %d records, %d bytes" % (reg, os.path.normpath(path), len(recs), os.path.getsize(path)))
        for s in range(1, STEPS + 1):
            p = "%d/" % s
            terms = ", ".join("%s %.9g" % (k, r[p + k].item()) for k in ("loss", "ce", "mse", "amr", "agr")
                              if p + k in r)
            print("  step %d: n_i %d, n_f %d, r %.6g, EMA k %.6g; %s; |g| min %.3e rms %.3e"
                  % (s, r[p + "count_i"].item(), r[p + "count_f"].item(), r[p + "r"].item(),
                     r[p + "ema_k"].item(), terms, grads[s - 1].abs().min().item(),
                     grads[s - 1].pow(2).mean().sqrt().item()))
        if args.float32_check:
            float32_check(reg, recs, x, e, y)
    print("done in %.1f s" % (time.perf_counter() - t0))


if __name__ == "__main__":
    main()
