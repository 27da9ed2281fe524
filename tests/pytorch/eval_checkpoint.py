#!/usr/bin/python3
"""Loads a regmix checkpoint into the PyTorch twin of its network and measures the
clean test accuracy there (issue: a checkpoint written by regmix must load into PyTorch
and give the same test accuracy).

usage: /usr/bin/python3 tests/pytorch/eval_checkpoint.py RUN.h5 [DATA_DIR]

Reads the run's model from /config, the weights from /checkpoint/model (state_dict
names), the Fashion-MNIST / MNIST test set from DATA_DIR (IDX, gzip; default
/usr/share/datasets/fashion-mnist), evaluates in eval mode (running BN statistics) on the
whole test set, and prints one line: `accuracy <percent> <correct>/<n>`.
"""
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


def load_model(path):
    """The run's network (from /config) with its checkpointed weights, in eval mode."""
    with h5py.File(path, "r", swmr=True) as f:
        model_name = f["config"].attrs["model"]
        if isinstance(model_name, bytes):
            model_name = model_name.decode()
        ck = f["checkpoint"]  # external link to RUN.ckpt.h5:/checkpoint
        state = {name: torch.from_numpy(ds[()]) for name, ds in ck["model"].items()}
    num_classes = state["fc2.bias" if model_name == "fmnist-cnn" else "linear.bias"].shape[0]
    model = (FmnistCNN if model_name == "fmnist-cnn" else PreActResNet18)(num_classes=num_classes)
    model.load_state_dict(state)  # strict: every name and shape must match
    model.eval()
    return model


def load_test_set(data_dir):
    """The IDX test split in file order: images (N, 1, H, W) float in [0, 1], labels int64."""
    images = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1), torch.from_numpy(labels)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    data_dir = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    torch.set_num_threads(1)
    model = load_model(path)
    x, labels = load_test_set(data_dir)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            pred = model(x[i:i + 500]).argmax(dim=1)
            correct += int((pred == labels[i:i + 500]).sum())
    print(f"accuracy {100.0 * correct / len(x):.4f} {correct}/{len(x)}")


if __name__ == "__main__":
    main()
