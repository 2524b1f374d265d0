"""``conv_autoencoder``: strided-conv encoder, conv-transpose decoder, sigmoid output."""

from __future__ import annotations

from .. import nn
from .common import check_common, check_input, feature_size, model_config
from .registry import register

__all__ = ["ConvAutoencoder"]


@register("conv_autoencoder", task="reconstruction",
          description="convolutional autoencoder: strided convs 16-32, conv-transposes back, "
                      "sigmoid output, MSE loss")
class ConvAutoencoder(nn.Module):
    """(N, C, H, W) -> (N, C, H, W) in [0, 1]; default input (N, 1, 28, 28).

    ``encoder``: conv C->16 3x3 stride 2 pad 1 (14x14), relu, conv 16->32 3x3 stride 2 pad 1
    (7x7), relu. ``decoder``: conv-transpose 32->16 3x3 stride 2 pad 1 (14x14), relu,
    conv-transpose 16->C 3x3 stride 2 pad 1 (28x28), sigmoid (sizes for 28x28; 32x32 goes
    32-16-8-16-32, 8x8 goes 8-4-2-4-8). Each conv-transpose's output_padding (0 or 1 per axis)
    is chosen from input_size so the output has the input's size for odd sizes too.

    Train it with ``mse_loss(model(x), x)`` on inputs in [0, 1]; for a denoising autoencoder
    feed noisy inputs (``pyconv.data.transforms.GaussianNoise``) against the clean targets.
    num_classes is ignored (config records None).
    """

    def __init__(self, in_channels=1, num_classes=None, input_size=(28, 28)):
        name = type(self).__name__
        in_channels, num_classes, input_size = check_common(
            name, in_channels, num_classes, input_size, classifier=False)
        half = feature_size(name, input_size, [("the first convolution", 3, 2, 1)])
        quarter = feature_size(name, half, [("the second convolution", 3, 2, 1)])
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1,
                               output_padding=_output_padding(quarter, half)),
            nn.ReLU(),
            nn.ConvTranspose2d(16, in_channels, 3, stride=2, padding=1,
                               output_padding=_output_padding(half, input_size)),
            nn.Sigmoid(),
        )
        self._expected = (in_channels, *input_size)
        self.config = model_config(self, in_channels=in_channels, num_classes=None,
                                   input_size=input_size)

    def forward(self, x):
        check_input(self, x)
        return self.decoder(self.encoder(x))


def _output_padding(small: tuple, large: tuple) -> tuple:
    """output_padding that takes a 3x3 stride-2 pad-1 conv-transpose from ``small`` back to
    ``large`` (the size its mirror convolution started from)."""
    return tuple(l - (2 * s - 1) for s, l in zip(small, large))
