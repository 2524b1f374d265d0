"""``mnist_cnn``: the CNN of TensorFlow's convolutional-network tutorial, on MNIST-sized input."""

from __future__ import annotations

from .. import nn
from .common import ConvClassifier, conv_pool_steps, conv_relu_pool
from .registry import register

__all__ = ["MnistCNN"]


@register("mnist_cnn", task="classification",
          description="TensorFlow's tutorial CNN: conv 32, pool, conv 64, pool, conv 64, "
                      "dense 64, dense 10")
class MnistCNN(ConvClassifier):
    """(N, C, H, W) -> (N, num_classes) logits; defaults (N, 1, 28, 28) -> (N, 10).

    conv C->32 3x3 (26x26), relu, maxpool 2 (13x13), conv 32->64 3x3 (11x11), relu, maxpool 2
    (5x5), conv 64->64 3x3 (3x3), relu, flatten (64*3*3 = 576), linear ->64, relu,
    linear 64->num_classes (sizes for 28x28; 'valid' convolutions as in the tutorial; the
    smallest input is 18x18).
    """

    steps = conv_pool_steps("first", "second") + [("the third convolution", 3, 1, 0)]

    def __init__(self, in_channels=1, num_classes=10, input_size=(28, 28)):
        super().__init__(in_channels, num_classes, input_size)

    def layers(self, in_channels, num_classes, area):
        return (nn.Sequential(*conv_relu_pool(in_channels, 32, 0), *conv_relu_pool(32, 64, 0),
                              nn.Conv2d(64, 64, 3), nn.ReLU()),
                nn.Sequential(nn.Linear(64 * area, 64), nn.ReLU(), nn.Linear(64, num_classes)))
