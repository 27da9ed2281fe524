#!/usr/bin/python3
"""regmix's AutoAttack against the public reference implementation, on one checkpoint.

usage: /usr/bin/python3 tests/pytorch/compare_autoattack.py AUTOATTACK_DIR RUN.h5
           [--regmix build/regmix] [--n 1000] [--threads 1] [--eps EPS] [--batch B]
           [--versions aa,aa-fast] [--data-dir DIR] [--only regmix|reference]

AUTOATTACK_DIR is a checkout of https://github.com/fra31/auto-attack (the folder that
holds the package `autoattack/`); it is imported from there and not part of regmix.
RUN.h5 is a regmix run file with a checkpoint (fmnist-cnn or preact-resnet18 on an IDX
dataset: Fashion-MNIST or MNIST).

Both sides evaluate the first N test images in file order (regmix: `regmix eval
--first N`), at the run's eps unless --eps is given, with the same thread count:
  aa       regmix `--attacks aa`  vs  AutoAttack(version='standard'):
           APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square (5000 queries)
  aa-fast  regmix `--attacks aa-fast` vs  AutoAttack(version='custom',
           attacks_to_run=['apgd-ce', 'apgd-t']) with the standard settings of those two;
           when aa is compared too, the reference's aa-fast is read from its standard run
           (the robust accuracy after APGD-T): the reference runs the same two attacks with
           the same seed on the same examples there, so the number is the same, at no cost
The reference runs on the CPU in PyTorch through the checkpoint loader of
tests/pytorch/eval_checkpoint.py (the same weights regmix evaluates).

Prints per version the robust accuracy after each component and at the end on both
sides, the difference, the wall and CPU time of each side (CPU time: user + system of
the process, all its threads; the fairer figure on a shared machine), and a verdict per
version: the final robust accuracies agree when they differ by at most 1 percentage point. Exit status 0
when every version agrees, 1 otherwise, 2 on a usage error.
"""
import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

import h5py
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval_checkpoint import load_model, load_test_set  # noqa: E402

COMPONENTS = {"aa": ["apgd-ce", "apgd-t", "fab-t", "square"], "aa-fast": ["apgd-ce", "apgd-t"]}
TOLERANCE = 1.0  # percentage points


def run_config(path):
    with h5py.File(path, "r", swmr=True) as f:
        attrs = dict(f["config"].attrs)
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in attrs.items()}


def reference(aa_dir, model, x, y, eps, version, batch, seed):
    """Robust accuracy (%) after each component and the wall time of one AutoAttack run."""
    sys.path.insert(0, aa_dir)
    from autoattack import AutoAttack  # noqa: E402 (imported from the given folder)
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "aa.log")
        if version == "aa":
            adversary = AutoAttack(model, norm="Linf", eps=eps, version="standard", device="cpu",
                                   seed=seed, log_path=log)
        else:
            adversary = AutoAttack(model, norm="Linf", eps=eps, version="custom", device="cpu",
                                   seed=seed, log_path=log, attacks_to_run=COMPONENTS[version])
            adversary.apgd.n_restarts = 1  # the standard version's settings of these two
            adversary.apgd_targeted.n_target_classes = 9
            adversary.apgd_targeted.n_restarts = 1
        t0, c0 = time.time(), time.process_time()
        x_adv = adversary.run_standard_evaluation(x, y, bs=batch)
        seconds = (time.time() - t0, time.process_time() - c0)
        with open(log) as f:
            text = f.read()
    after = {m.group(1).lower(): float(m.group(2))
             for m in re.finditer(r"robust accuracy after ([A-Z-]+): ([0-9.]+)%", text)}
    with torch.no_grad():
        final = 100.0 * float((model(x_adv).argmax(1) == y).float().mean())
    linf = float((x_adv - x).abs().max())
    return after, final, seconds, linf


def regmix(binary, path, version, n, threads, eps):
    attack = version if eps is None else f"{version}@{eps!r}"
    cmd = [binary, "eval", path, "--attacks", attack, "--first", str(n), "--threads", str(threads)]
    def children_cpu():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime
    t0, c0 = time.time(), children_cpu()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    seconds = (time.time() - t0, children_cpu() - c0)
    result = json.loads(out.strip().splitlines()[-1])
    name = next(k for k in result if k.startswith("test_" + version) and "." not in k)
    after = {c: result[f"{name}.{c}"] for c in COMPONENTS[version]}
    return after, result[name], seconds, " ".join(cmd)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("autoattack_dir")
    ap.add_argument("run")
    ap.add_argument("--regmix", default="build/regmix")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eps", type=float, default=None)
    ap.add_argument("--batch", type=int, default=250, help="the reference's batch size (its default: 250)")
    ap.add_argument("--versions", default="aa,aa-fast")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seed", type=int, default=0, help="the reference's seed")
    ap.add_argument("--only", choices=["regmix", "reference"], default=None)
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(args.autoattack_dir, "autoattack")):
        ap.error(f"{args.autoattack_dir} holds no autoattack/ package (a checkout of fra31/auto-attack)")
    versions = args.versions.split(",")
    for v in versions:
        if v not in COMPONENTS:
            ap.error(f"unknown version {v} (aa, aa-fast)")
    torch.set_num_threads(args.threads)
    cfg = run_config(args.run)
    eps = args.eps if args.eps is not None else float(cfg["eps"])
    data_dir = args.data_dir or cfg.get("data_dir") or f"/usr/share/datasets/{cfg['dataset']}"
    model, _ = load_model(args.run)  # the model regmix eval picks by default
    x, y = load_test_set(data_dir)
    x, y = x[:args.n], y[:args.n]
    print(f"# {args.run}: {cfg['model']} on the first {len(x)} {cfg['dataset']} test images, eps {eps:.6g}, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    agree = True
    standard = None  # the reference's standard run, when done
    for v in versions:
        ref = mine = None
        if args.only != "regmix" and v == "aa-fast" and standard is not None:
            after = {c: standard[0][c] for c in COMPONENTS[v]}
            ref = (after, after["apgd-t"], (0.0, 0.0), standard[3])
            print(f"{v:8s} reference: read from the standard run (after APGD-T)", flush=True)
        elif args.only != "regmix":
            ref = reference(args.autoattack_dir, model, x, y, eps, v, args.batch, args.seed)
            if v == "aa":
                standard = ref
            print(f"{v:8s} reference: " + ", ".join(f"{c} {ref[0].get(c, float('nan')):.2f}" for c in COMPONENTS[v])
                  + f"; final {ref[1]:.2f} %  ({ref[2][0]:.1f} s wall, {ref[2][1]:.1f} s CPU; "
                  f"max |x_adv - x| {ref[3]:.6f})", flush=True)
        if args.only != "reference":
            mine = regmix(args.regmix, args.run, v, len(x), args.threads, args.eps)
            print(f"{v:8s} regmix:    " + ", ".join(f"{c} {mine[0][c]:.2f}" for c in COMPONENTS[v])
                  + f"; final {mine[1]:.2f} %  ({mine[2][0]:.1f} s wall, {mine[2][1]:.1f} s CPU: {mine[3]})",
                  flush=True)
        if ref and mine:
            diff = mine[1] - ref[1]
            ok = abs(diff) <= TOLERANCE
            agree &= ok
            print(f"{v:8s} difference {diff:+.2f} points (tolerance {TOLERANCE}): {'OK' if ok else 'NOT OK'}; "
                  f"time regmix {mine[2][0]:.1f} s wall / {mine[2][1]:.1f} s CPU, reference {ref[2][0]:.1f} s wall / "
                  f"{ref[2][1]:.1f} s CPU", flush=True)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
