"""PyTorch twins of the networks of the C engine (include/regmix/nn.h).

The parameter names and layouts are the contract with the C side: rm_net_params() lists
exactly these state_dict entries (minus num_batches_tracked), in this order.

- fmnist-cnn: a small two-conv CNN for Fashion-MNIST.
- preact-resnet18: Kuang Liu's PreActResNet18 (pytorch-cifar), the model of the
  FGSM-PGI and TRADES reference code.
- resnet18: Kuang Liu's (post-activation) ResNet18, the model of the FGSM-PGK code.
- wrn-D-W: TRADES' WideResNet (models/wideresnet.py, dropRate 0), any depth D = 6n+4 and
  widen factor W; without TRADES' `sub_block1`, a module its forward never calls.

Every model takes an input shape in_shape = (C, H, W) (default: its usual dataset's):
the first layer reads C channels, fmnist-cnn's fc1 takes 64 (H/4) (W/4) features, and
the residual networks end in global average pooling. The reference code's
avg_pool2d(4) (ResNets) and avg_pool2d(8) (WideResNet) are exactly global pooling on
32x32 images, where their last map is 4x4 / 8x8; on 28x28 images the maps are 4x4 and
7x7, where avg_pool2d(8) would fail.
"""
import re

import torch.nn as nn
import torch.nn.functional as F


def global_avg_pool(x):
    """(B, C, H, W) -> (B, C): the mean over the whole map."""
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


class FmnistCNN(nn.Module):
    """conv-bn-relu-pool x2, then two linear layers; flatten in (C, H, W) order."""

    def __init__(self, num_classes=10, in_shape=(1, 28, 28)):
        super().__init__()
        c, h, w = in_shape
        self.conv1 = nn.Conv2d(c, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * (h // 2 // 2) * (w // 2 // 2), 256)  # 3136 on 28x28
        self.fc2 = nn.Linear(256, num_classes)

    def forward(self, x):
        out = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)  # (B, 32, 14, 14) on 28x28
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
    def __init__(self, num_classes=10, in_shape=(3, 32, 32)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_shape[0], 64, 3, stride=1, padding=1, bias=False)
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
        return self.linear(global_avg_pool(out))  # avg_pool2d(4) on 32x32 inputs


class BasicBlock(nn.Module):
    """Post-activation basic block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)),
    the shortcut a 1x1 conv + BN where the shape changes."""

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()  # empty: identity, no state_dict entries
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR stem: 3x3 conv, stride 1, no max-pool."""

    def __init__(self, num_classes=10, in_shape=(3, 32, 32)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_shape[0], 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        for i, (planes, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)]):
            blocks = [BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1)]
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*blocks))
            in_planes = planes
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(global_avg_pool(out))  # avg_pool2d(4) on 32x32 inputs


class WideBlock(nn.Module):
    """TRADES' BasicBlock: pre-activation; where the width changes, the 1x1 convShortcut
    takes relu(bn1(x)), else the shortcut is x itself."""

    def __init__(self, in_planes, out_planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.equal_in_out = in_planes == out_planes
        self.convShortcut = None if self.equal_in_out else nn.Conv2d(
            in_planes, out_planes, 1, stride=stride, padding=0, bias=False)

    def forward(self, x):
        a = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return (x if self.equal_in_out else self.convShortcut(a)) + out


class WideGroup(nn.Module):
    """TRADES' NetworkBlock: its blocks under `layer` (names blockG.layer.I.*)."""

    def __init__(self, n, in_planes, out_planes, stride):
        super().__init__()
        self.layer = nn.Sequential(*[WideBlock(in_planes if i == 0 else out_planes, out_planes,
                                               stride if i == 0 else 1) for i in range(n)])

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth=34, widen_factor=10, num_classes=10, in_shape=(3, 32, 32)):
        super().__init__()
        assert depth >= 10 and (depth - 4) % 6 == 0 and widen_factor >= 1
        n = (depth - 4) // 6
        ch = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_shape[0], ch[0], 3, stride=1, padding=1, bias=False)
        self.block1 = WideGroup(n, ch[0], ch[1], 1)
        self.block2 = WideGroup(n, ch[1], ch[2], 2)
        self.block3 = WideGroup(n, ch[2], ch[3], 2)
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.fc = nn.Linear(ch[3], num_classes)

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.relu(self.bn1(out))
        return self.fc(global_avg_pool(out))  # avg_pool2d(8) on 32x32 inputs


# name -> (constructor(num_classes, in_shape), default input shape); "wrn-D-W" in create()
MODELS = {
    "fmnist-cnn": (FmnistCNN, (1, 28, 28)),
    "preact-resnet18": (PreActResNet18, (3, 32, 32)),
    "resnet18": (ResNet18, (3, 32, 32)),
}


def create(name, num_classes=10, in_shape=None):
    """Returns (model, input shape (C, H, W)); in_shape None: the model's default."""
    m = re.fullmatch(r"wrn-([1-9][0-9]*)-([1-9][0-9]*)", name)
    if m:
        shape = tuple(in_shape or (3, 32, 32))
        return WideResNet(int(m.group(1)), int(m.group(2)), num_classes, shape), shape
    cls, shape = MODELS[name]
    shape = tuple(in_shape or shape)
    return cls(num_classes, shape), shape
