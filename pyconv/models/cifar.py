"""ConvNets for CIFAR-10 (32x32 RGB): ``cifar_convnet`` (issue 6's two-block model) and
``CifarConvNet`` (the benchmarks' three-block model; not in the registry)."""

from __future__ import annotations

from .. import nn
from .common import ConvClassifier, conv_pool_steps, conv_relu_pool
from .registry import register

__all__ = ["CifarConvNet", "CifarNet"]


@register("cifar_convnet", task="classification",
          description="CIFAR-10 ConvNet: conv 32, pool, conv 64, pool, fc 128, fc 10")
class CifarNet(ConvClassifier):
    """(N, C, H, W) -> (N, num_classes); defaults (N, 3, 32, 32) -> (N, 10).

    conv C->32 3x3 pad 1 (32x32), relu, maxpool 2 (16x16), conv 32->64 3x3 pad 1 (16x16), relu,
    maxpool 2 (8x8), flatten (64*8*8 = 4096), linear ->128, relu, linear 128->num_classes
    (sizes for 32x32; padding keeps the size through each convolution, so any input of at least
    4x4 works).
    """

    steps = conv_pool_steps("first", "second", padding=1)

    def __init__(self, in_channels=3, num_classes=10, input_size=(32, 32)):
        super().__init__(in_channels, num_classes, input_size)

    def layers(self, in_channels, num_classes, area):
        return (nn.Sequential(*conv_relu_pool(in_channels, 32, 1), *conv_relu_pool(32, 64, 1)),
                nn.Sequential(nn.Linear(64 * area, 128), nn.ReLU(), nn.Linear(128, num_classes)))


class CifarConvNet(ConvClassifier):
    """The benchmarks' model (``pyconv bench``): (N, 3, 32, 32) -> (N, 10).

    Three blocks of conv 3x3 pad 1, relu, maxpool 2 with 32, 64 and 128 channels
    (32 -> 16 -> 8 -> 4 pixels), flatten (2048), linear 2048->256, relu, linear 256->10.
    Kept unchanged so benchmark numbers stay comparable; not registered, so ``config`` is None.
    """

    steps = conv_pool_steps("first", "second", "third", padding=1)

    def __init__(self):
        super().__init__(3, 10, (32, 32))

    def layers(self, in_channels, num_classes, area):
        return (nn.Sequential(*conv_relu_pool(3, 32, 1), *conv_relu_pool(32, 64, 1),
                              *conv_relu_pool(64, 128, 1)),
                nn.Sequential(nn.Linear(128 * area, 256), nn.ReLU(), nn.Linear(256, 10)))
