#!/usr/bin/python3
"""Writes the PyTorch reference of one prior-guided FGSM step (FGSM-PGI, sweeps/METHOD.md)
for tests/test_pytorch_pgi_step.c: tests/data/pgi_step_mse.rmfx and pgi_step_regmix.rmfx.

    /usr/bin/python3 tests/pytorch/gen_pgi_step_fixtures.py [--out DIR]

Both files hold the same step on the same weights and batch; only the regulariser differs.
fmnist-cnn (tests/pytorch/models.py) with the formula weights of gen_model_fixtures.py,
float64, model.train(), B = 8:
  x: the formula "input" in [0, 1] (moved by at most 3e-4, see repair_input), y: "labels".
  e: the prior, P(eps (2u - 1)) with u the formula of "pgi_prior"; M = 0.
  1. z_i = f(x + e);  g = d CE_ls(z_i, y) / d e           (input gradient only)
  2. M' = g / ||g||_1 (+ mu * 0);  d = P(e + a sign(g));  D' = P(e + a sign(M'))
  3. z_f = f(x + d) with d a constant; regmix also z_c = f(x)
  4. L = CE_ls(z_f, y) + R,
       mse:    R = lambda mean((z_f - z_i)^2), z_i attached (as in the FGSM-PGI code)
       regmix: R = alpha KL(p_f||p_i) + beta KL(p_i||p_f) + gamma KL(p_c||p_f), batchmean,
               every side attached
     L.backward(): the weight gradients flow through every pass R uses.
Settings: eps = a = 0.1, s = 0.6, mu = 0.3, lambda = 10, alpha = 1, beta = 0.5, gamma = 1.
Each train-mode forward updates the BN running statistics (passes in the order i, f, c).

P is evaluated in float32 with the C code's operation order (clamp to [-eps, eps], then to
[-x, 1 - x] with 1 - x rounded to float32), so e, d and D' are the exact float32 values the
C code must produce once sign(g) agrees; everything else is float64.

Records (RMFX, the format of gen_model_fixtures.py): input, labels, prior (e), delta (d),
prior_next (D'), momentum_next (M'), logits_i, logits_f [, logits_c], loss, ce,
mse | amr, agr (batch means, shape [1]), correct (examples whose z_f has its arg max at
the label), grad:<param> for every parameter, running:<buffer> for every BN running
statistic after the step. The run prints the margins it kept and, with --float32-check,
how far PyTorch's own float32 step is from this reference.
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
import models  # noqa: E402

MODEL = "fmnist-cnn"
BATCH = 8
K = 10
EPS = STEP = 0.1
SMOOTH = 0.6
MU = 0.3
LAMBDA = 10.0
ALPHA, BETA, GAMMA = 1.0, 0.5, 1.0
EPS32 = np.float32(EPS)  # the C side holds eps and step as float
STEP32 = np.float32(STEP)

# sign(g) decides d and D'. An element whose |g| is within the float32 error of the C
# engine could take the other sign there. PyTorch's own float32 step has |g32 - g64| at
# most 2e-6 * rms(g) (--float32-check prints it relative to max |g|: 4.6e-7), and the
# formula input has 11 elements under 2e-3 * rms, the least at 2.4e-4 * rms; so every
# |g| is pushed above G_MARGIN * rms, 250 times that error. (2e-3 is reachable too but
# takes ~300 repair steps, 8 minutes on two cores.) The C test prints its own error of g.
G_MARGIN = 5e-4
# ReLU / max-pool branch margin of a train-mode pass, in units of the rms of the tensor:
# the value gen_model_fixtures.py uses for its train passes (its measured float32 error
# of these tensors is at most 1.3e-5 * rms).
BRANCH_MARGIN = 1.5e-4
REPAIR_STEP_CAP = 2e-4  # largest change of one pixel per repair iteration

# ---------------------------------------------------------------- the step, float64


def ce_ls(z, y):
    """CE against t_y = s, t_k = (1 - s)/(K - 1) (sweeps/METHOD.md; not torch's label_smoothing)."""
    t = torch.full_like(z, (1.0 - SMOOTH) / (K - 1))
    t[torch.arange(z.shape[0]), y] = SMOOTH
    return -(t * F.log_softmax(z, dim=1)).sum(dim=1).mean()


def kl(a, b):
    """KL(softmax(a) || softmax(b)), batchmean."""
    la, lb = F.log_softmax(a, dim=1), F.log_softmax(b, dim=1)
    return (la.exp() * (la - lb)).sum(dim=1).mean()


def project32(v, x, sign=None):
    """P(v) or, with sign, P(v + a sign) in float32, in the order of rm_project: the sum
    rounded to float32, then [-eps, eps], then [-x, 1 - x]."""
    v, x = v.float(), x.float()
    if sign is not None:
        v = v + float(STEP32) * sign.float()
    v = v.clamp(-float(EPS32), float(EPS32))
    v = torch.maximum(v, -x)
    v = torch.minimum(v, 1.0 - x)  # 1 - x rounded to float32, like 1.0f - x[i]
    return v.double()


def project64(v, x):
    """Differentiable P in float64 (for the input repair only)."""
    return torch.minimum(torch.maximum(v.clamp(-EPS, EPS), -x), 1.0 - x)


def new_model(dtype):
    m, _ = models.create(MODEL, K)
    m.to(dtype)
    gm.fill_model(m)
    m.train()
    return m


def pgi_step(reg, x, e, y, dtype=torch.float64):
    """One step (docstring steps 1-4); returns an ordered list of (name, tensor)."""
    recs = []

    def record(name, t):
        recs.append((name, t.detach().clone().double()))
    m = new_model(dtype)
    x, e = x.to(dtype), e.to(dtype)
    record("input", x)
    record("labels", y.double())
    record("prior", e)
    # 1. initial pass and its input gradient (the graph is kept: R back-propagates through it)
    inp = (x + e).requires_grad_(True)
    zi = m(inp)
    (g,) = torch.autograd.grad(ce_ls(zi, y), inp, retain_graph=True)
    # 2. momentum (M = 0), final perturbation and next prior
    m_prev = torch.zeros_like(g)  # the test sets M = 0 in the PGI buffers
    m_next = g / g.abs().sum() + MU * m_prev
    d = project32(e, x, torch.sign(g)).to(dtype)
    d_next = project32(e, x, torch.sign(m_next)).to(dtype)
    record("delta", d)
    record("prior_next", d_next)
    record("momentum_next", m_next)
    # 3. final (and clean) pass
    zf = m(x + d)
    zc = m(x) if reg == "regmix" else None
    # 4. loss and weight gradients
    ce = ce_ls(zf, y)
    terms = [("ce", ce)]
    if reg == "mse":
        terms.append(("mse", LAMBDA * (zf - zi).pow(2).mean()))
    else:
        terms.append(("amr", ALPHA * kl(zf, zi) + BETA * kl(zi, zf)))
        terms.append(("agr", GAMMA * kl(zc, zf)))
    loss = sum(v for _, v in terms)
    m.zero_grad()
    loss.backward()
    record("logits_i", zi)
    record("logits_f", zf)
    if zc is not None:
        record("logits_c", zc)
    record("loss", loss.reshape(1))
    record("correct", (zf.argmax(dim=1) == y).sum().reshape(1))
    for k, v in terms:
        record(k, v.reshape(1))
    for k, p in m.named_parameters():
        record("grad:" + k, p.grad)
    for k, v in m.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            record("running:" + k, v)
    return recs, g

# ---------------------------------------------------------------- input repair
# The C engine runs in float32. A ReLU input or max-pool gap within its rounding error of
# the branch point, or an input-gradient element within it of zero (sign(g) picks d), can
# make the C step take another branch than this reference. The input x is moved (a few
# 1e-4 at most) until, in all three passes (x + e, x + d, x), every ReLU/pool margin is
# >= BRANCH_MARGIN * rms and every |g| >= G_MARGIN * rms(g). The g margin needs the second
# derivative of the loss in x, which autograd gives (create_graph).


def margins_at(x, e0, y):
    """Differentiable hinge penalty at x, and the report (sites under margin, least
    margin) per pass i, f, c and for g."""
    m = new_model(torch.float64)
    e = project64(e0, x)
    outs = [[], [], []]
    hooks = gm.hook_relu_inputs(MODEL, m, outs[0])
    inp = x + e
    (g,) = torch.autograd.grad(ce_ls(m(inp), y), inp, create_graph=True)
    for h in hooks:
        h.remove()
    d = project64(e + STEP * torch.sign(g.detach()), x)
    for i, xin in ((1, x + d), (2, x)):
        hooks = gm.hook_relu_inputs(MODEL, m, outs[i])
        m(xin)
        for h in hooks:
            h.remove()
    penalty, report = 0.0, []
    for o in outs:
        p, under, least = gm.branch_margins(o, BRANCH_MARGIN)
        penalty = penalty + p
        report.append((under, least))
    a = g.abs() / g.detach().pow(2).mean().sqrt()
    near = a < 2 * G_MARGIN
    if near.any():
        penalty = penalty + (2 * G_MARGIN - a[near]).sum()
    report.append((int((a < G_MARGIN).sum()), a.min().item()))
    return penalty, report


def repair_input(x0, e0, y, max_iter=400):
    x = x0.clone()
    for it in range(max_iter + 1):
        xv = x.clone().requires_grad_(True)
        penalty, report = margins_at(xv, e0, y)
        done = all(u == 0 for u, _ in report)
        if it % 10 == 0 or done:
            print("    repair iter %3d: under margin (pass i, f, c; |g|): %s"
                  % (it, ", ".join("%d (least %.2e)" % r for r in report)), flush=True)
        if done:
            return x, it, report
        if it == max_iter:
            break
        (gx,) = torch.autograd.grad(penalty, xv)
        step = (penalty.item() / gx.pow(2).sum().item()) * gx
        step *= min(1.0, REPAIR_STEP_CAP / step.abs().max().item())
        x = (x - step).clamp(0.0, 1.0).float().double()
    raise SystemExit("could not clear the margins in %d iterations" % max_iter)

# ---------------------------------------------------------------- main


def rel_err(a, b):
    return ((a - b).abs().max() / max(b.abs().max().item(), 1e-30)).item()


def float32_check(reg, ref, x, e, y):
    """Diagnostic: PyTorch's own float32 step against the float64 reference, in the C
    test's metric (max |diff| / max |ref| per tensor)."""
    recs32, g32 = pgi_step(reg, x, e, y, torch.float32)
    got = dict(recs32, grad_input=g32)
    worst = {}
    for k, r in ref:
        if k in ("input", "labels", "prior"):
            continue
        cat = k.split(":")[0] + ":" if ":" in k else k
        err = rel_err(got[k], r)
        if err > worst.get(cat, (-1, ""))[0]:
            worst[cat] = (err, k)
    print("%s: PyTorch float32 vs float64, worst max|diff|/max|ref|: %s" % (reg, ", ".join(
        "%s %.1e" % (c, v) for c, (v, _) in worst.items())))


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
    e0 = torch.from_numpy((EPS * (2.0 * gm.formula_u("pgi_prior", int(np.prod(shape))) - 1.0))
                          .astype(np.float32).reshape(shape).astype(np.float64))
    x, iters, report = repair_input(x0, e0, y)
    e = project32(e0, x)
    print("input moved by at most %.2e from the formula (%d repair steps); labels %s"
          % ((x - x0).abs().max().item(), iters, y.tolist()))
    print("min |g| / rms(g) = %.3e (required >= %.0e); least ReLU/pool margin / rms: "
          "pass i %.2e, f %.2e, c %.2e (required >= %.1e)"
          % (report[3][1], G_MARGIN, report[0][1], report[1][1], report[2][1], BRANCH_MARGIN))
    for reg in ("mse", "regmix"):
        recs, g = pgi_step(reg, x, e, y)
        r = dict(recs)
        path = os.path.join(args.out, "pgi_step_%s.rmfx" % reg)
        gm.write_fixture(path, recs)
        terms = ", ".join("%s %.9g" % (k, r[k].item()) for k in ("loss", "ce", "mse", "amr", "agr") if k in r)
        print("%s: wrote %s, %d records, %d bytes: %s"
              % (reg, os.path.normpath(path), len(recs), os.path.getsize(path), terms))
        top2 = r["logits_f"].topk(2, dim=1).values
        gap = (top2[:, 0] - top2[:, 1]).min().item()
        if gap < 1e-3:  # the arg max (correct) must not hinge on float32 rounding
            raise SystemExit("%s: z_f has a top-2 gap of %.1e" % (reg, gap))
        print("%s: correct %d of %d, least top-2 gap of z_f %.3e"
              % (reg, int(r["correct"].item()), BATCH, gap))
        print("%s: |g| min %.3e max %.3e rms %.3e; d at +-eps: %d of %d"
              % (reg, g.abs().min().item(), g.abs().max().item(), g.pow(2).mean().sqrt().item(),
                 int((r["delta"].abs() == float(EPS32)).sum()), g.numel()))
        if args.float32_check:
            float32_check(reg, recs + [("grad_input", g.detach())], x, e, y)
    print("done in %.1f s" % (time.perf_counter() - t0))


if __name__ == "__main__":
    main()
