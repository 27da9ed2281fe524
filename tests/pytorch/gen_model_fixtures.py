#!/usr/bin/python3
"""Writes the PyTorch reference fixtures for tests/test_pytorch_models.c.

    /usr/bin/python3 tests/pytorch/gen_model_fixtures.py [--out DIR] [--fixtures NAME ...]
                                                         [--float32-check]

For each fixture of FIXTURES (a model of tests/pytorch/models.py on an input shape) it
fills every state_dict tensor with a hash formula that tests/support/fixture.c reproduces
bit for bit (so the 11M ResNet weights are never stored), runs the reference sequence in
FLOAT64 (so the fixture measures only the float32 error of the C engine) and writes
tests/data/model_<fixture>.rmfx. It also writes tests/data/model_shapes.rmfx: the
state_dict names and shapes of models too big to run here (wrn-34-10) and of models on
other datasets' shapes (see write_shapes).

Weight formula, keyed by the tensor name (FNV-1a 64 of its bytes), for flat index i:
    h = (i + 1) * 0x9E3779B97F4A7C15 + key;  h ^= h >> 31;  h *= 0x94D049BB133111EB;
    h ^= h >> 29;  u = (h >> 11) * 2^-53                      (all mod 2^64, u in [0, 1))
    conv/linear weight and linear bias: (1/sqrt(fan_in)) * (2u - 1)
    BN weight 0.5 + u, BN bias 0.2 (2u - 1), running_mean 0.1 (2u - 1), running_var 0.5 + u
computed in double, rounded to float32. Labels "labels": floor(10 u). The input starts
as u of "input" and is then moved by ~1e-4 so that no ReLU or max-pool decision is within
float32 rounding of its branch point (see repair_input); the C test reads it from the file.
The input record's shape (B, C, H, W) tells the C test which input shape to build.

Sequence (B = 4, model.train()):
  1. CE(model(x)) backward: logits, loss, grad_input, grad:<param>, running_after1:<buffer>
  2. SGD(lr 0.1, momentum 0.9, wd 5e-4) step, zero_grad, forward/backward again, step:
     after_sgd2:<every state_dict entry>
  3. fresh model, eval mode: eval_logits, eval_loss, eval_grad_input (d loss / d x only)
Also init:<every state_dict entry> (the formula's values) so the C fill is checked alone.

File format (little-endian): "RMFX0001", uint32 record count, then per record
  uint32 name_len, name, uint32 ndim, int64 dims[ndim], uint64 stride, uint64 count,
  float32 data[count] = elements at flat indices 0, stride, 2 stride, ...
stride is 1 up to S elements, else ceil(numel / S): large tensors are sampled (S = 16384 for
the first two models, 1024 for the later ones, to keep tests/data small).
"""
import argparse
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

BATCH = 4
NUM_CLASSES = 10

# (fixture name, model, input shape, samples per tensor at most)
FIXTURES = [
    ("fmnist-cnn", "fmnist-cnn", (1, 28, 28), 16384),
    ("preact-resnet18", "preact-resnet18", (3, 32, 32), 16384),
    ("resnet18", "resnet18", (3, 32, 32), 1024),
    ("wrn-10-2", "wrn-10-2", (3, 32, 32), 1024),
    ("wrn-10-2_1x28x28", "wrn-10-2", (1, 28, 28), 1024),  # maps 28, 14, 7
]
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4

# ---------------------------------------------------------------- weight formula

def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def formula_u(name, n):
    """u in [0, 1) for flat indices 0..n-1 of tensor `name`, as float64."""
    key = np.uint64(fnv1a64(name))
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps mod 2^64 on purpose
        h = (np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) + key
        h ^= h >> np.uint64(31)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(29)
    return (h >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def formula_values(name, shape, kind, fan_in=0):
    """float32 array of the formula for one tensor; kind says which affine map of u."""
    u = formula_u(name, int(np.prod(shape)))
    if kind == "uniform_fan_in":
        v = (1.0 / math.sqrt(fan_in)) * (2.0 * u - 1.0)
    elif kind in ("bn_weight", "running_var"):
        v = 0.5 + u
    elif kind == "bn_bias":
        v = 0.2 * (2.0 * u - 1.0)
    elif kind == "running_mean":
        v = 0.1 * (2.0 * u - 1.0)
    elif kind == "u":
        v = u
    else:
        raise ValueError(kind)
    return v.astype(np.float32).reshape(shape)


def fill_model(model):
    """Sets every state_dict tensor (bar num_batches_tracked) by the formula, classifying
    by module type. Returns {name: float32 array} of the values set."""
    values = {}
    for mname, m in model.named_modules():
        prefix = mname + "." if mname else ""
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            specs = [("weight", "uniform_fan_in")] + ([("bias", "uniform_fan_in")] if m.bias is not None else [])
        elif isinstance(m, nn.Linear):
            fan_in = m.in_features
            specs = [("weight", "uniform_fan_in"), ("bias", "uniform_fan_in")]
        elif isinstance(m, nn.BatchNorm2d):
            fan_in = 0
            specs = [("weight", "bn_weight"), ("bias", "bn_bias"),
                     ("running_mean", "running_mean"), ("running_var", "running_var")]
        else:
            continue
        for attr, kind in specs:
            t = getattr(m, attr)
            v = formula_values(prefix + attr, tuple(t.shape), kind, fan_in)
            with torch.no_grad():
                t.copy_(torch.from_numpy(v.astype(np.float64)).to(t.dtype))
            values[prefix + attr] = v
    missing = [k for k in model.state_dict() if not k.endswith("num_batches_tracked") and k not in values]
    assert not missing, "not filled: %s" % missing
    return values


def make_input(shape):
    x = formula_values("input", (BATCH,) + tuple(shape), "u")
    labels = np.floor(formula_u("labels", BATCH) * NUM_CLASSES).astype(np.int64)
    return x, labels

# ---------------------------------------------------------------- branch margins
# Why the input is nudged: a ReLU input within float32 rounding of zero (or a 2x2 max-pool
# window whose two largest values are that close) can take the other branch in the C
# engine than in the float64 reference. With B = 4 and train-mode batch norm, one such
# flip anywhere in preact-resnet18 changes whole gradient tensors by 1e-3 .. 25 %
# (measured by flipping single sites; with the plain formula input PyTorch's own float32
# run has two flips and misses the tolerances by 40x), far beyond the test tolerances. So the formula input is moved (by about
# 1e-4) until, in all three forward passes of the sequence, every ReLU input and every
# live pool gap is at least MARGINS[pass] * rms(tensor) from its branch point. Float32
# errors of these tensors, measured in PyTorch, are at most 1.3e-5 * rms in train mode
# and 1.5e-6 * rms in eval mode: the margins leave a factor 10-20.
MARGINS = (1.5e-4, 1.5e-4, 3e-5)  # train pass 1, train pass 2, eval pass
STEP_CAP = 5e-5  # largest change of one pixel per iteration
KICK_AFTER, KICK_SIZE = 20, 5e-5  # a random move after this many steps without progress


class record_relu_inputs:
    """Within `with`, appends [tensor, pooled] for every tensor F.relu is applied to (the
    twins call F.relu for every ReLU), in execution order; pooled: a 2x2 max-pool takes
    the ReLU's output. Wraps torch.nn.functional.relu and max_pool2d meanwhile."""

    def __init__(self, store):
        self.store = store

    def __enter__(self):
        self.relu, self.max_pool2d = F.relu, F.max_pool2d
        last = {}

        def relu(v, *args, **kwargs):
            out = self.relu(v, *args, **kwargs)
            self.store.append([v, False])
            last["out"] = out
            return out

        def max_pool2d(v, *args, **kwargs):
            if last.get("out") is v:
                self.store[-1][1] = True
            return self.max_pool2d(v, *args, **kwargs)
        F.relu, F.max_pool2d = relu, max_pool2d
        return self

    def __exit__(self, *exc):
        F.relu, F.max_pool2d = self.relu, self.max_pool2d


def branch_margins(outs, tau):
    """-> (hinge penalty pushing every site towards 2 tau, sites under tau, least margin),
    margins in units of the rms of their tensor."""
    penalty, under, least = 0.0, 0, math.inf
    for v, pooled in outs:
        rms = v.detach().pow(2).mean().sqrt()
        margins = [v.abs() / rms]
        if pooled:
            r = F.relu(v) / rms
            b, c, h, w = r.shape
            win = r.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)
            top2 = win.topk(2, dim=-1).values
            live = top2[..., 0] > 0  # all-zero windows pass no gradient whichever is picked
            margins.append((top2[..., 0] - top2[..., 1])[live])
        for a in margins:
            if a.numel() == 0:
                continue
            least = min(least, a.min().item())
            under += int((a < tau).sum().item())
            near = a < 2 * tau
            if near.any():
                penalty = penalty + (2 * tau - a[near]).sum()
    return penalty, under, least


def build(name, shape):
    return models.create(name, NUM_CLASSES, shape)[0]


def forward_passes(name, shape, init_sd, x, labels):
    """The three forward passes of run_sequence at input x (differentiable in x; the
    second pass's weights are treated as constants). -> ReLU inputs per pass."""
    passes = [[], [], []]
    m1 = build(name, shape)
    m1.double().load_state_dict(init_sd)
    m1.train()
    with record_relu_inputs(passes[0]):
        loss = F.cross_entropy(m1(x), labels)
    grads = torch.autograd.grad(loss, list(m1.parameters()), retain_graph=True)
    m2 = build(name, shape)
    m2.double().load_state_dict(m1.state_dict())
    m2.train()
    with torch.no_grad():  # first SGD step: the momentum buffer is just grad + wd * w
        for p, g in zip(m2.parameters(), grads):
            p -= LR * (g + WEIGHT_DECAY * p)
    with record_relu_inputs(passes[1]):
        m2(x)
    m3 = build(name, shape)
    m3.double().load_state_dict(init_sd)
    m3.eval()
    with record_relu_inputs(passes[2]):
        m3(x)
    return passes


def repair_input(name, shape, x0, labels, margins=MARGINS, max_iter=400):
    """Moves x0 (float64 holding float32 values) until every branch margin is met;
    Polyak steps on the hinge penalty, x rounded to float32 after every step so the
    final check holds for the exact input the fixture stores."""
    model = build(name, shape)
    model.double()
    fill_model(model)
    init_sd = model.state_dict()
    x = x0.clone()
    kick = torch.Generator().manual_seed(fnv1a64(name))
    best, best_it = math.inf, 0
    for it in range(max_iter + 1):
        xv = x.clone().requires_grad_(True)
        penalties, report = [], []
        for outs, tau in zip(forward_passes(name, shape, init_sd, xv, labels), margins):
            p, under, least = branch_margins(outs, tau)
            penalties.append(p)
            report.append((under, least))
        if it % 10 == 0 or all(u == 0 for u, _ in report):
            print("    margin repair iter %3d: sites under margin %s (train1, train2, eval): %s"
                  % (it, "/".join("%.1e" % t for t in margins),
                     ", ".join("%d (least %.1e)" % r for r in report)), flush=True)
        if all(u == 0 for u, _ in report):
            return x, it
        if it == max_iter:
            break
        under = sum(u for u, _ in report)
        if under < best:
            best, best_it = under, it
        elif it - best_it >= KICK_AFTER:
            # Stalled: a site on opposite sides of its branch point in the two train passes
            # is pushed both ways at once. A small random move reshuffles the sites.
            print("    margin repair iter %3d: stalled, random move of +-%.0e" % (it, KICK_SIZE))
            noise = torch.rand(x.shape, generator=kick, dtype=torch.float64) * 2 - 1
            x = (x + KICK_SIZE * noise).clamp(0.0, 1.0).float().double()
            best, best_it = math.inf, it
            continue
        # A Polyak step per pass: eval-mode sites depend on x far more weakly than
        # train-mode ones (no batch statistics), one summed step would starve them.
        step = torch.zeros_like(x)
        live = [p for p in penalties if torch.is_tensor(p)]
        for k, p in enumerate(live):
            (gx,) = torch.autograd.grad(p, xv, retain_graph=k + 1 < len(live))
            step += (p.item() / gx.pow(2).sum().item()) * gx
        step *= min(1.0, STEP_CAP / step.abs().max().item())
        x = (x - step).clamp(0.0, 1.0).float().double()
    raise SystemExit("%s: could not clear the branch margins in %d iterations" % (name, max_iter))

# ---------------------------------------------------------------- expected names


def expected_state_dict(name, shape, classes=NUM_CLASSES):
    """The state_dict (name, shape) list written independently of models.py, from the
    spec, so a slip in models.py is caught here rather than in the C test."""
    def bn(p, c):
        return [(p + s, (c,)) for s in ("weight", "bias", "running_mean", "running_var")]
    c, h, w = shape
    if name == "fmnist-cnn":
        return ([("conv1.weight", (32, c, 3, 3))] + bn("bn1.", 32)
                + [("conv2.weight", (64, 32, 3, 3))] + bn("bn2.", 64)
                + [("fc1.weight", (256, 64 * (h // 4) * (w // 4))), ("fc1.bias", (256,)),
                   ("fc2.weight", (classes, 256)), ("fc2.bias", (classes,))])
    if name == "resnet18":  # post-activation BasicBlocks; shortcut = 1x1 conv + BN
        out = [("conv1.weight", (64, c, 3, 3))] + bn("bn1.", 64)
        cin = 64
        for li, planes in enumerate([64, 128, 256, 512]):
            for b in range(2):
                p = "layer%d.%d." % (li + 1, b)
                out += [(p + "conv1.weight", (planes, cin, 3, 3))] + bn(p + "bn1.", planes)
                out += [(p + "conv2.weight", (planes, planes, 3, 3))] + bn(p + "bn2.", planes)
                if b == 0 and li > 0:
                    out += [(p + "shortcut.0.weight", (planes, cin, 1, 1))] + bn(p + "shortcut.1.", planes)
                cin = planes
        return out + [("linear.weight", (classes, 512)), ("linear.bias", (classes,))]
    if name.startswith("wrn-"):  # TRADES' WideResNet without sub_block1
        depth, width = map(int, name.split("-")[1:])
        n, ch = (depth - 4) // 6, [16, 16 * width, 32 * width, 64 * width]
        out = [("conv1.weight", (16, c, 3, 3))]
        for g in range(3):
            for i in range(n):
                p = "block%d.layer.%d." % (g + 1, i)
                cin, cout = (ch[g] if i == 0 else ch[g + 1]), ch[g + 1]
                out += bn(p + "bn1.", cin) + [(p + "conv1.weight", (cout, cin, 3, 3))]
                out += bn(p + "bn2.", cout) + [(p + "conv2.weight", (cout, cout, 3, 3))]
                if cin != cout:
                    out += [(p + "convShortcut.weight", (cout, cin, 1, 1))]
        return out + bn("bn1.", ch[3]) + [("fc.weight", (classes, ch[3])), ("fc.bias", (classes,))]
    out = [("conv1.weight", (64, c, 3, 3))]
    cin = 64
    for li, planes in enumerate([64, 128, 256, 512]):
        for b in range(2):
            p = "layer%d.%d." % (li + 1, b)
            out += bn(p + "bn1.", cin) + [(p + "conv1.weight", (planes, cin, 3, 3))]
            out += bn(p + "bn2.", planes) + [(p + "conv2.weight", (planes, planes, 3, 3))]
            if b == 0 and li > 0:
                out += [(p + "shortcut.0.weight", (planes, cin, 1, 1))]
            cin = planes
    return out + bn("bn.", 512) + [("linear.weight", (classes, 512)), ("linear.bias", (classes,))]


def check_state_dict(name, shape, model, classes=NUM_CLASSES, verbose=True):
    got = [(k, tuple(v.shape)) for k, v in model.state_dict().items()
           if not k.endswith("num_batches_tracked")]
    want = expected_state_dict(name, shape, classes)
    print("%s on %s, %d classes: %d state_dict entries (num_batches_tracked omitted), %d parameters%s"
          % (name, "x".join(map(str, shape)), classes, len(got), sum(p.numel() for p in model.parameters()),
             ":" if verbose else ""))
    for k, s in got if verbose else []:
        print("    %-36s %s" % (k, list(s)))
    if got != want:
        raise SystemExit("%s: state_dict differs from the spec:\n got  %s\n want %s" % (name, got, want))
    print("%s: state_dict names, order and shapes match the spec" % name)

# ---------------------------------------------------------------- reference run


def run_sequence(name, shape, dtype, x, labels):
    """The three-part reference sequence at input x (float32 values); returns an ordered
    list of (record name, tensor)."""
    recs = []

    def record(name, t, *stride):  # a copy: grads and buffers are later updated in place
        recs.append((name, t.detach().clone(), *stride))
    model = build(name, shape)
    model.to(dtype)
    init = fill_model(model)
    x = x.to(dtype)
    record("input", x, 1)  # never sampled: the C test runs on it
    record("labels", labels.to(torch.float64), 1)
    sd_names = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    for k in sd_names:
        record("init:" + k, torch.from_numpy(init[k]))

    # 1. train-mode forward / backward
    model.train()
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    record("logits", logits)
    record("loss", loss.reshape(1))
    record("grad_input", xg.grad)
    for k, p in model.named_parameters():
        record("grad:" + k, p.grad)
    for k, v in model.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            record("running_after1:" + k, v)

    # 2. two SGD steps
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    opt.step()
    opt.zero_grad()
    loss2 = F.cross_entropy(model(x), labels)
    loss2.backward()
    opt.step()
    sd = model.state_dict()
    for k in sd_names:
        record("after_sgd2:" + k, sd[k])

    # 3. eval mode from the initial weights, input gradient only
    model = build(name, shape)
    model.to(dtype)
    fill_model(model)
    model.eval()
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    loss = F.cross_entropy(logits, labels)
    (gx,) = torch.autograd.grad(loss, xg)
    record("eval_logits", logits)
    record("eval_loss", loss.reshape(1))
    record("eval_grad_input", gx)
    return recs

# ---------------------------------------------------------------- file format


def sample_stride(numel, max_samples):
    return 1 if numel <= max_samples else -(-numel // max_samples)


def write_fixture(path, recs, max_samples):
    """recs: (name, tensor) or (name, tensor, stride) with an explicit stride."""
    with open(path, "wb") as f:
        f.write(b"RMFX0001")
        f.write(struct.pack("<I", len(recs)))
        for name, t, *given in recs:
            flat = t.reshape(-1).to(torch.float64).numpy()
            stride = given[0] if given else sample_stride(flat.size, max_samples)
            data = flat[::stride].astype("<f4")
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb)
            f.write(struct.pack("<I", t.dim()))
            f.write(struct.pack("<%dq" % t.dim(), *t.shape))
            f.write(struct.pack("<QQ", stride, data.size))
            f.write(data.tobytes())


def float32_check(name, shape, ref, x, labels, max_samples):
    """Diagnostic only: how far PyTorch's own float32 run is from the float64 reference,
    in the C test's metric, to show the tolerances are achievable in float32."""
    got = {r[0]: r[1] for r in run_sequence(name, shape, torch.float32, x, labels)}
    tol = {"logits": 1e-4, "loss": 1e-4, "grad_input": 1e-4, "grad:": 1e-3,
           "running_after1:": 1e-4, "after_sgd2:": 1e-3, "eval_": 1e-4}
    worst = {}
    for k, r, *_ in ref:
        if k in ("input", "labels") or k.startswith("init:"):
            continue
        stride = sample_stride(r.numel(), max_samples)
        a = got[k].reshape(-1).double()[::stride]
        b = r.reshape(-1).double()[::stride]
        rel = ((a - b).abs().max() / max(b.abs().max().item(), 1e-30)).item()
        cat = next(c for c in tol if k.startswith(c))
        if rel > worst.get(cat, (0, ""))[0]:
            worst[cat] = (rel, k)
    print("%s: PyTorch float32 vs float64 reference, worst rel error per kind:" % name)
    for cat, (rel, k) in worst.items():
        print("    %-16s %.3e  (tol %.0e) %-4s at %s"
              % (cat, rel, tol[cat], "ok" if rel <= tol[cat] else "OVER", k))


# ---------------------------------------------------------------- state_dicts only

# (model, input shape, classes): models too big to run here, and models on the other
# datasets' image shapes. wrn-34-10 on CIFAR-10 has 46 160 474 weights. By hand, with
# n = 5 blocks per group, a group from c_in to c channels holds
#   first block: bn1 2 c_in + conv1 9 c_in c + bn2 2c + conv2 9 c^2 + convShortcut c_in c,
#   4 more blocks of 2c + 9 c^2 + 2c + 9 c^2:
#   block1 (16 -> 160)  256 352 +  1 845 760 =  2 102 112
#   block2 (160 -> 320) 1 434 560 +  7 377 920 =  8 812 480
#   block3 (320 -> 640) 5 736 320 + 29 501 440 = 35 237 760
# plus conv1 3*16*9 = 432, bn1 1 280 and fc 640*10 + 10 = 6 410. (TRADES' module also
# holds the unused sub_block1: another 2 102 112, 48 262 586 in all.)
SHAPES = [
    ("wrn-34-10", (3, 32, 32), 10),
    ("wrn-28-10", (3, 32, 32), 100),
    ("wrn-16-4", (1, 28, 28), 10),
    ("resnet18", (1, 28, 28), 100),
    ("preact-resnet18", (1, 28, 28), 10),
    ("fmnist-cnn", (3, 32, 32), 10),
]


def write_shapes(path):
    """One record per state_dict entry, named "sd:<model>:<C>x<H>x<W>:<classes>:<entry>",
    in state_dict order, with the entry's shape and one value (stride = numel): 1 for a
    buffer, 0 for a parameter."""
    recs = []
    for name, shape, classes in SHAPES:
        model = models.create(name, classes, shape)[0]
        check_state_dict(name, shape, model, classes, verbose=False)
        key = "sd:%s:%s:%d:" % (name, "x".join(map(str, shape)), classes)
        params = dict(model.named_parameters())
        for k, v in model.state_dict().items():
            if k.endswith("num_batches_tracked"):
                continue
            flag = torch.full(tuple(v.shape), 0.0 if k in params else 1.0, dtype=torch.float64)
            recs.append((key + k, flag, v.numel()))
    write_fixture(path, recs, 1)
    print("wrote %s, %d records, %d bytes" % (os.path.normpath(path), len(recs), os.path.getsize(path)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"))
    ap.add_argument("--fixtures", nargs="*", default=[f[0] for f in FIXTURES] + ["shapes"],
                    help="fixture names (FIXTURES) and/or 'shapes'")
    ap.add_argument("--float32-check", action="store_true",
                    help="also run in float32 and report its error against the reference")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)  # nothing random is used; set anyway
    for fixture, name, shape, max_samples in FIXTURES:
        if fixture not in args.fixtures:
            continue
        t0 = time.perf_counter()
        check_state_dict(name, shape, build(name, shape))
        x_np, labels_np = make_input(shape)
        x0 = torch.from_numpy(x_np.astype(np.float64))
        labels = torch.from_numpy(labels_np)
        x, iters = repair_input(name, shape, x0, labels)
        print("%s: input moved by at most %.2e from the formula (%d margin-repair steps, %.1f s)"
              % (fixture, (x - x0).abs().max().item(), iters, time.perf_counter() - t0))
        recs = run_sequence(name, shape, torch.float64, x, labels)
        ref = {r[0]: r[1] for r in recs}
        path = os.path.join(args.out, "model_%s.rmfx" % fixture)
        write_fixture(path, recs, max_samples)
        print("%s: wrote %s, %d records, %d bytes, %.1f s (loss %.6f, eval loss %.6f)"
              % (fixture, os.path.normpath(path), len(recs), os.path.getsize(path),
                 time.perf_counter() - t0, ref["loss"].item(), ref["eval_loss"].item()))
        if args.float32_check:
            float32_check(name, shape, recs, x, labels, max_samples)
    if "shapes" in args.fixtures:
        write_shapes(os.path.join(args.out, "model_shapes.rmfx"))


if __name__ == "__main__":
    main()
