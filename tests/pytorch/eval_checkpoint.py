#!/usr/bin/python3
"""Loads a regmix checkpoint into the PyTorch twin of its network and measures the
clean test accuracy there (a checkpoint written by regmix must load into PyTorch and give
the same test accuracy).

usage: /usr/bin/python3 tests/pytorch/eval_checkpoint.py RUN.h5 [DATA_DIR]
           [--model ema|student] [--first N] [--logits OUT]

Reads the run's model and dataset from /config, the weights from /checkpoint/model (the
trained "student" weights) or /checkpoint/ema (the EMA model of a run that keeps one; same
state_dict names) into the model's twin built for the dataset's image shape (strict: every
name and shape must match; prints `loaded <n> tensors strictly into <model> <CxHxW>`
first), the Fashion-MNIST / MNIST test set from DATA_DIR (IDX, gzip; default
/usr/share/datasets/fashion-mnist), evaluates in eval mode (running BN statistics) on the
whole test set (--first N: its first N images), and prints one line:
`accuracy <percent> <correct>/<n> model <ema|student>`. --logits OUT writes the logits as
float32 (n, classes). --model defaults to what `regmix eval` evaluates: the EMA model when
the checkpoint has one and the run's eval_model is ema, else the student.
"""
import argparse
import gzip
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

# dataset -> (image shape, classes)
DATASETS = {"fashion-mnist": ((1, 28, 28), 10), "mnist": ((1, 28, 28), 10),
            "cifar10": ((3, 32, 32), 10), "cifar100": ((3, 32, 32), 100)}


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def text_attr(attrs, name, default):
    v = attrs.get(name, default)
    return v.decode() if isinstance(v, bytes) else str(v)


def load_model(path, which=None):
    """The run's network (from /config) with its checkpointed weights, in eval mode, and
    which model it is ("ema" or "student"; None: what `regmix eval` picks)."""
    with h5py.File(path, "r", swmr=True) as f:
        model_name = text_attr(f["config"].attrs, "model", "")
        dataset = text_attr(f["config"].attrs, "dataset", "")
        ck = f["checkpoint"]  # external link to RUN.ckpt.h5:/checkpoint
        if which is None:
            which = "ema" if "ema" in ck and text_attr(f["config"].attrs, "eval_model", "ema") == "ema" \
                else "student"
        group = "ema" if which == "ema" else "model"
        if group not in ck:
            sys.exit("%s: the checkpoint has no EMA model (/checkpoint/ema)" % path)
        state = {name: torch.from_numpy(ds[()]) for name, ds in ck[group].items()}
    shape, num_classes = DATASETS[dataset]
    model, _ = models.create(model_name, num_classes, shape)
    model.load_state_dict(state)  # strict: every name and shape must match
    print(f"loaded {len(state)} tensors strictly into {model_name} {'x'.join(map(str, shape))}")
    model.eval()
    return model, which


def load_test_set(data_dir):
    """The IDX test split in file order: images (N, 1, H, W) float in [0, 1], labels int64."""
    images = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1), torch.from_numpy(labels)


def main():
    ap = argparse.ArgumentParser(usage=__doc__.split("\n\n")[1])
    ap.add_argument("run")
    ap.add_argument("data_dir", nargs="?", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--model", choices=("ema", "student"))
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--logits")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, which = load_model(args.run, args.model)
    with h5py.File(args.run, "r", swmr=True) as f:
        dataset = text_attr(f["config"].attrs, "dataset", "")
    if DATASETS[dataset][0][0] != 1:
        sys.exit(f"{args.run}: evaluates (Fashion-)MNIST runs only, not dataset {dataset}")
    x, labels = load_test_set(args.data_dir)
    n = args.first if args.first > 0 else len(x)
    x, labels = x[:n], labels[:n]
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 500]) for i in range(0, n, 500)])
    correct = int((logits.argmax(dim=1) == labels).sum())
    if args.logits:
        logits.numpy().astype("<f4").tofile(args.logits)
    print(f"accuracy {100.0 * correct / n:.4f} {correct}/{n} model {which}")


if __name__ == "__main__":
    main()
