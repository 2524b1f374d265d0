"""``resnet_mini``: a small ResNet — stem conv + BN, basic residual blocks, global average
pooling, fc."""

from __future__ import annotations

import numbers

from .. import nn
from ..nn import functional as F
from .common import check_common, model_config
from .registry import register

__all__ = ["BasicBlock", "ResNetMini"]


class BasicBlock(nn.Module):
    """ResNet's basic block, (N, in, H, W) -> (N, out, H/stride, W/stride) (ceil):
    relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)) with 3x3 convolutions (pad 1, no bias;
    conv1 has the stride). shortcut is the identity, or ``downsample`` = conv 1x1 (stride) + BN
    when the shape changes. Names as in torchvision's BasicBlock."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.downsample = None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


@register("resnet_mini", task="classification",
          description="small ResNet: conv + BN stem, 3 basic residual blocks 16-32-64, "
                      "global average pooling, fc")
class ResNetMini(nn.Module):
    """(N, C, H, W) -> (N, num_classes) logits; defaults (N, 1, 28, 28) -> (N, 10).

    ``conv1`` 3x3 pad 1 C->widths[0] (no bias), ``bn1``, relu (28x28); ``blocks``: one
    :class:`BasicBlock` per width, the first with stride 1 and the others with stride 2
    (widths (16, 32, 64): 16@28x28, 32@14x14, 64@7x7); global average pooling (mean over H, W)
    -> (N, widths[-1]); ``fc`` linear widths[-1] -> num_classes. Any input size works (the
    pooling is global); input_size only records the intended one.
    """

    def __init__(self, in_channels=1, num_classes=10, input_size=(28, 28), widths=(16, 32, 64)):
        name = type(self).__name__
        in_channels, num_classes, input_size = check_common(
            name, in_channels, num_classes, input_size)
        if (not isinstance(widths, (tuple, list)) or not 1 <= len(widths) <= 4
                or not all(isinstance(w, numbers.Integral) and not isinstance(w, bool) and w > 0
                           for w in widths)):
            raise ValueError(f"{name}: widths must be a list of 1 to 4 positive ints (one "
                             f"residual block each), got {widths!r}")
        widths = tuple(int(w) for w in widths)
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.blocks = nn.Sequential(*[
            BasicBlock(widths[max(i - 1, 0)], width, 1 if i == 0 else 2)
            for i, width in enumerate(widths)
        ])
        self.fc = nn.Linear(widths[-1], num_classes)
        self.config = model_config(self, in_channels=in_channels, num_classes=num_classes,
                                   input_size=input_size, widths=widths)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.fc(x.mean((2, 3)))
