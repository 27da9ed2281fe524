#!/usr/bin/python3
"""Checks the twins of tests/pytorch/models.py against the reference implementations
they copy, which are not part of this repository: download the files first, e.g.

    FGSM-PGK (github.com/jiaxiaojunQAQ/FGSM-PGK, commit ef58b3c): CIFAR10_models/resnet.py
    TRADES (github.com/yaodongyu/TRADES, commit 6e8e11b): models/wideresnet.py

    /usr/bin/python3 tests/pytorch/check_twins.py --resnet resnet.py --wideresnet wideresnet.py

For each pair, on 3x32x32 inputs (the only shape the references take) in float64:
state_dict names, order and shapes equal (TRADES' unused `sub_block1` excepted), the
twin's weights load into the reference (strict, or missing exactly sub_block1), and the
logits agree in train mode (batch statistics, then the running statistics they leave)
and in eval mode. Prints the largest difference per check and exits 1 if any exceeds
1e-12 relative. Not run by ctest (the references are not in the repository).
"""
import argparse
import importlib.util
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

TOL = 1e-12


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def entries(model, skip=""):
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()
            if not (skip and k.startswith(skip))]


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def compare(label, twin, ref, skip=""):
    ok = True
    if entries(twin) != entries(ref, skip):
        print("%s: state_dict differs\n  twin %s\n  ref  %s" % (label, entries(twin), entries(ref, skip)))
        return False
    res = ref.load_state_dict(twin.state_dict(), strict=not skip)
    missing = [k for k in res.missing_keys if not k.startswith(skip)] if skip else []
    if missing or res.unexpected_keys:
        print("%s: load: missing %s unexpected %s" % (label, missing, res.unexpected_keys))
        return False
    print("%s: %d state_dict entries, names/order/shapes equal; %d parameters; loaded (%s)"
          % (label, len(entries(twin)), sum(p.numel() for p in twin.parameters()),
             "strict" if not skip else "missing only %s*" % skip))
    g = torch.Generator().manual_seed(0)
    x = torch.rand((4, 3, 32, 32), generator=g, dtype=torch.float64)
    for mode in ("train", "eval"):
        twin.train(mode == "train")
        ref.train(mode == "train")
        with torch.no_grad():
            a, b = twin(x), ref(x)
        r = rel(a, b)
        ok &= r <= TOL
        print("    %-5s logits rel diff %.2e %s" % (mode, r, "OK" if r <= TOL else "OVER"))
        if mode == "train":
            rs = max(rel(twin.state_dict()[k], ref.state_dict()[k]) for k in twin.state_dict()
                     if k.endswith("running_var") or k.endswith("running_mean"))
            ok &= rs <= TOL
            print("    running statistics after it: rel diff %.2e %s" % (rs, "OK" if rs <= TOL else "OVER"))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--resnet", help="FGSM-PGK CIFAR10_models/resnet.py")
    ap.add_argument("--wideresnet", help="TRADES models/wideresnet.py")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    ok = True
    if args.resnet:
        twin, _ = models.create("resnet18")
        ok &= compare("resnet18 vs FGSM-PGK ResNet18", twin.double(),
                      load_module(args.resnet, "ref_resnet").ResNet18().double())
    if args.wideresnet:
        mod = load_module(args.wideresnet, "ref_wrn")
        for depth, width in ((10, 2), (16, 4), (34, 10)):
            twin, _ = models.create("wrn-%d-%d" % (depth, width))
            ok &= compare("wrn-%d-%d vs TRADES WideResNet" % (depth, width), twin.double(),
                          mod.WideResNet(depth=depth, widen_factor=width).double(), skip="sub_block1.")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
