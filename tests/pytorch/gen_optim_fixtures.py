#!/usr/bin/python3
"""Writes tests/data/optim_fixture.txt: PyTorch reference values for src/optim.

  * torch.optim.SGD(lr 0.1, momentum 0.9, weight_decay 5e-4, dampening 0, nesterov False)
    on two float32 tensors, three steps with the fixed gradients below: the parameters
    after every step and the momentum buffers after the last one.
  * learning rate of every iteration of T iterations, for T = 110 and T = 97:
    MultiStepLR(milestones [floor(100/110 T), floor(105/110 T)], gamma 0.1) and
    CosineAnnealingLR(T_max T, eta_min 0), both stepped once per iteration, and the
    cyclic schedule of Wong et al. np.interp([t], [0, 0.4 T, T], [0, lr, 0]).

Format: '#' comment lines, then one record per line:  <name> <count> <values...>
(values as %.9e). Run:  /usr/bin/python3 tests/pytorch/gen_optim_fixtures.py
"""
import os
import sys

import numpy as np
import torch

torch.set_num_threads(1)

LR, MOMENTUM, WD, STEPS = 0.1, 0.9, 5e-4, 3

# Two parameters: a 2x3 "weight" and a 4-element "bias", with fixed values.
INIT = {
    "w": [[0.50, -1.25, 2.00], [-0.75, 0.10, 3.50]],
    "b": [1.00, -2.00, 0.25, -0.05],
}
# One gradient per step and tensor (signs change so that momentum matters).
GRADS = {
    "w": [
        [[0.10, -0.20, 0.30], [-0.40, 0.50, -0.60]],
        [[-0.05, 0.15, 0.25], [0.35, -0.45, 0.55]],
        [[0.70, 0.00, -0.30], [0.20, 0.80, -1.00]],
    ],
    "b": [
        [0.30, -0.10, 0.00, 1.50],
        [-0.60, 0.40, 0.20, -0.25],
        [0.05, 0.90, -0.70, 0.10],
    ],
}
LR_TOTALS = [110, 97]
LR_BASE = 0.1


def record(out, name, values):
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    out.append("%s %d %s" % (name, flat.size, " ".join("%.9e" % v for v in flat)))


def sgd_records(out):
    params = {k: torch.tensor(v, dtype=torch.float32) for k, v in INIT.items()}
    for p in params.values():
        p.requires_grad_(True)
    opt = torch.optim.SGD(list(params.values()), lr=LR, momentum=MOMENTUM, weight_decay=WD,
                          dampening=0, nesterov=False)
    record(out, "sgd.config", [LR, MOMENTUM, WD, STEPS])
    for k, p in params.items():
        record(out, "%s.init" % k, p.detach().numpy())
    for step in range(STEPS):
        for k, p in params.items():
            p.grad = torch.tensor(GRADS[k][step], dtype=torch.float32)
            record(out, "%s.grad.%d" % (k, step + 1), p.grad.numpy())
        opt.step()
        for k, p in params.items():
            record(out, "%s.after.%d" % (k, step + 1), p.detach().numpy())
    for k, p in params.items():
        record(out, "%s.momentum.%d" % (k, STEPS), opt.state[p]["momentum_buffer"].numpy())


def scheduled_lrs(make_scheduler, total):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=LR_BASE)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])  # the rate this iteration's step uses
        opt.step()
        sched.step()
    return lrs


def lr_records(out):
    for total in LR_TOTALS:
        # integer arithmetic: floor(100/110 * T) without floating-point doubt
        milestones = [100 * total // 110, 105 * total // 110]
        record(out, "lr.multistep.milestones.%d" % total, milestones)
        record(out, "lr.multistep.%d" % total, scheduled_lrs(
            lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=milestones, gamma=0.1),
            total))
        record(out, "lr.cosine.%d" % total, scheduled_lrs(
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total, eta_min=0),
            total))
        record(out, "lr.cyclic.%d" % total, [
            np.interp([t], [0, 0.4 * total, total], [0, LR_BASE, 0])[0]
            for t in range(total + 1)])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "data", "optim_fixture.txt")
    out = ["# written by tests/pytorch/gen_optim_fixtures.py (torch %s, numpy %s)"
           % (torch.__version__, np.__version__),
           "# <name> <count> <values>; see the script for what each record is"]
    sgd_records(out)
    lr_records(out)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s (%d records)" % (os.path.normpath(path), len(out) - 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
