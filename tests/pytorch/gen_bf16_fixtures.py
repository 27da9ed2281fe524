#!/usr/bin/python3
"""Writes tests/data/bf16_autocast_errors.rmfx, the yardstick of tests/test_nn_bf16.c:
how far PyTorch's own mixed precision (torch.autocast("cpu", dtype=torch.bfloat16))
lands from the float64 result on exactly the computation the C test runs in bf16.

    /usr/bin/python3 tests/pytorch/gen_bf16_fixtures.py [--out DIR]

Why a yardstick: one rounding to bf16 costs at most u = 2^-8 relative, and the logits
stay within a first-order bound of k u (k roundings on the longest path). The gradients
do not: train-mode batch norm subtracts the batch means of dy and dy*xhat (a small
difference of large terms at batch 4), and a max-pool window whose two largest values
round to the same bf16 number sends its gradient elsewhere. That amplification belongs
to the network and the data, not to the engine; PyTorch's autocast, an independent bf16
implementation that users train with, measures it.

For each model (tests/pytorch/models.py), with the formula weights of
gen_model_fixtures.py and the input and labels stored in tests/data/model_<name>.rmfx
(batch 4), the sequence of that file's parts 1 and 3:
  train: model.train(), CE(model(x)) backward -> logits, d loss / d x, every weight gradient
  eval:  a fresh model.eval(), CE backward -> logits, d loss / d x
once in float64 and once in float32 under autocast. Records (shape [1] each):
  <model>:train:logits, <model>:train:grad_input, <model>:train:grads,
  <model>:eval:logits, <model>:eval:grad_input
each the relative L2 error |a_autocast - a_f64| / |a_f64| over the whole tensor (the
weight gradients concatenated in state_dict order).
"""
import argparse
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_model_fixtures as gm  # noqa: E402
import models  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")


def read_records(path, names):
    """The float32 data of the named records of an RMFX file (unsampled ones only)."""
    out = {}
    with open(path, "rb") as f:
        assert f.read(8) == b"RMFX0001", path
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            (nl,) = struct.unpack("<I", f.read(4))
            name = f.read(nl).decode()
            (nd,) = struct.unpack("<I", f.read(4))
            dims = struct.unpack("<%dq" % nd, f.read(8 * nd))
            stride, n = struct.unpack("<QQ", f.read(16))
            data = np.frombuffer(f.read(4 * n), dtype="<f4")
            if name in names:
                assert stride == 1, "%s is sampled" % name
                out[name] = data.reshape(dims)
    return out


def passes(name, x, labels, bf16):
    """{part: tensor} of the train and eval passes, float64 or float32 autocast."""
    dtype = torch.float32 if bf16 else torch.float64
    res = {}
    for mode in ("train", "eval"):
        model, _ = models.create(name, gm.NUM_CLASSES)
        model.to(dtype)
        gm.fill_model(model)
        getattr(model, mode)()
        xg = x.to(dtype).clone().requires_grad_(True)
        if bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(xg)
            logits = logits.float()
        else:
            logits = model(xg)
        F.cross_entropy(logits, labels).backward()
        res[mode + ":logits"] = logits.detach().double()
        res[mode + ":grad_input"] = xg.grad.double()
        if mode == "train":
            res["train:grads"] = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DATA)
    args = ap.parse_args()
    torch.set_num_threads(2)
    recs = []
    for name in models.MODELS:
        fx = read_records(os.path.join(DATA, "model_%s.rmfx" % name), {"input", "labels"})
        x = torch.from_numpy(fx["input"].astype(np.float64))
        labels = torch.from_numpy(fx["labels"].astype(np.int64))
        ref, got = passes(name, x, labels, False), passes(name, x, labels, True)
        for part in ("train:logits", "train:grad_input", "train:grads", "eval:logits", "eval:grad_input"):
            err = ((got[part] - ref[part]).norm() / ref[part].norm()).item()
            recs.append(("%s:%s" % (name, part), torch.tensor([err])))
            print("%-16s %-17s autocast vs float64: relative L2 error %.3e" % (name, part, err))
    path = os.path.join(args.out, "bf16_autocast_errors.rmfx")
    gm.write_fixture(path, recs)
    print("wrote %s (%d records)" % (os.path.normpath(path), len(recs)))


if __name__ == "__main__":
    main()
