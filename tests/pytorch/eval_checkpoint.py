#!/usr/bin/python3
"""Loads a regmix checkpoint into the PyTorch twin of its network and measures the
clean test accuracy there (issue: a checkpoint written by regmix must load into PyTorch
and give the same test accuracy).

usage: /usr/bin/python3 tests/pytorch/eval_checkpoint.py RUN.h5 [DATA_DIR] [--model ema|student]

Reads the run's model from /config, the weights from /checkpoint/model (the trained
"student" weights) or /checkpoint/ema (the EMA model of a run that keeps one; same
state_dict names), the Fashion-MNIST / MNIST test set from DATA_DIR (IDX, gzip; default
/usr/share/datasets/fashion-mnist), evaluates in eval mode (running BN statistics) on the
whole test set, and prints one line: `accuracy <percent> <correct>/<n> model <ema|student>`.
--model defaults to what `regmix eval` evaluates: the EMA model when the checkpoint has
one and the run's eval_model is ema, else the student.
"""
import argparse
import gzip
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import FmnistCNN, PreActResNet18  # noqa: E402


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
        ck = f["checkpoint"]  # external link to RUN.ckpt.h5:/checkpoint
        if which is None:
            which = "ema" if "ema" in ck and text_attr(f["config"].attrs, "eval_model", "ema") == "ema" \
                else "student"
        group = "ema" if which == "ema" else "model"
        if group not in ck:
            sys.exit("%s: the checkpoint has no EMA model (/checkpoint/ema)" % path)
        state = {name: torch.from_numpy(ds[()]) for name, ds in ck[group].items()}
    num_classes = state["fc2.bias" if model_name == "fmnist-cnn" else "linear.bias"].shape[0]
    model = (FmnistCNN if model_name == "fmnist-cnn" else PreActResNet18)(num_classes=num_classes)
    model.load_state_dict(state)  # strict: every name and shape must match
    model.eval()
    return model, which


def load_test_set(data_dir):
    """The IDX test split in file order: images (N, 1, H, W) float in [0, 1], labels int64."""
    images = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1), torch.from_numpy(labels)


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("run")
    ap.add_argument("data_dir", nargs="?", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--model", choices=("ema", "student"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, which = load_model(args.run, args.model)
    data_dir = args.data_dir
    x, labels = load_test_set(data_dir)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            pred = model(x[i:i + 500]).argmax(dim=1)
            correct += int((pred == labels[i:i + 500]).sum())
    print(f"accuracy {100.0 * correct / len(x):.4f} {correct}/{len(x)} model {which}")


if __name__ == "__main__":
    main()
