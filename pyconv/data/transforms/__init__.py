"""Transforms of image batches: ``Compose``, ``Normalize``, ``ToFloat``, ``Resize`` and the
random augmentations ``RandomHorizontalFlip``, ``RandomRotation``, ``RandomShift``,
``RandomZoom`` (or all three at once, ``RandomAffine``), ``RandomCrop``, ``GaussianNoise``;
``from_spec`` builds a pipeline from the CLI's ``--augment`` text.

A transform is a callable on a NumPy array (N, C, H, W) or one image (C, H, W) that returns a
new array of the same rank (and the same shape, except Resize and a sized RandomCrop),
vectorised over the batch: :class:`~pyconv.data.DataLoader` applies it to whole batches.
Random transforms take ``seed=None`` (pyconv's global generator, so ``pyconv.manual_seed``
reproduces a run) or an int (their own generator) and draw one set of parameters per image
per call. The geometric ones follow Keras' ``ImageDataGenerator`` (``rotation_range``,
``width_shift_range``, ``height_shift_range``, ``zoom_range``, ``horizontal_flip``,
``fill_mode``); RandomCrop and Resize follow torchvision / ``F.interpolate``.
"""

from .affine import RandomAffine, RandomRotation, RandomShift, RandomZoom
from .basic import Compose, Normalize, ToFloat
from .crop import RandomCrop
from .flip import RandomHorizontalFlip
from .noise import GaussianNoise
from .resize import Resize
from .sampling import warp_affine
from .spec import SPEC_KEYS, from_spec

__all__ = [
    "Compose", "GaussianNoise", "Normalize", "RandomAffine", "RandomCrop",
    "RandomHorizontalFlip", "RandomRotation", "RandomShift", "RandomZoom", "Resize", "SPEC_KEYS",
    "ToFloat", "from_spec", "warp_affine",
]
