"""PyTorch twins of the two networks of the C engine (include/regmix/nn.h).

The parameter names and layouts are the contract with the C side: rm_net_params() lists
exactly these state_dict entries (minus num_batches_tracked), in this order.

- fmnist-cnn: a small two-conv CNN for Fashion-MNIST, input (B, 1, 28, 28).
- preact-resnet18: Kuang Liu's PreActResNet18 (pytorch-cifar), the model of the
  FGSM-PGI and TRADES reference code, input (B, 3, 32, 32).
"""
import torch.nn as nn
import torch.nn.functional as F


class FmnistCNN(nn.Module):
    """conv-bn-relu-pool x2, then two linear layers; flatten in (C, H, W) order."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * 7 * 7, 256)
        self.fc2 = nn.Linear(256, num_classes)

    def forward(self, x):
        out = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # (B, 32, 14, 14)
        out = F.max_pool2d(F.relu(self.bn2(self.conv2(out))), 2)  # (B, 64, 7, 7)
        out = out.flatten(1)  # (B, 3136), C-major like the C engine
        out = F.relu(self.fc1(out))
        return self.fc2(out)


class PreActBlock(nn.Module):
    """Pre-activation basic block: the shortcut branches off after bn1+relu."""

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.has_shortcut = stride != 1 or in_planes != planes
        if self.has_shortcut:
            # A Sequential so the weight is named "shortcut.0.weight", as in the reference.
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.has_shortcut else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        in_planes = 64
        for i, (planes, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)]):
            blocks = [PreActBlock(in_planes, planes, stride), PreActBlock(planes, planes, 1)]
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*blocks))
            in_planes = planes
        self.bn = nn.BatchNorm2d(512)
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x):
        out = self.conv1(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.relu(self.bn(out))
        out = F.avg_pool2d(out, 4)  # global at 4x4
        return self.linear(out.flatten(1))


MODELS = {
    "fmnist-cnn": (FmnistCNN, (1, 28, 28)),
    "preact-resnet18": (PreActResNet18, (3, 32, 32)),
}


def create(name, num_classes=10):
    """Returns (model, input shape (C, H, W))."""
    cls, shape = MODELS[name]
    return cls(num_classes), shape
