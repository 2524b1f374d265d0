"""The data side of ``pyconv train`` / ``eval`` / ``predict``: a dataset made to fit a model.

:func:`fit_to_model` converts images (N, C, H, W) float32 in [0, 1] to the model's channel
count (grey -> RGB repeats the channel, RGB -> grey averages) and input size
(:class:`pyconv.data.transforms.Resize`). :class:`Prepared` holds the train / validation / test
arrays of one run and the normalisation (training images' mean and std) that eval and predict
reapply, so all three see the same inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Prepared", "fit_to_model", "model_input", "prepare", "resize", "standardize"]

from .training import UsageError


def resize(images: np.ndarray, size: tuple) -> np.ndarray:
    """images (N, C, H, W) -> (N, C, size[0], size[1]) with pyconv.data.transforms.Resize."""
    from .data import transforms

    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return np.asarray(transforms.Resize(tuple(size))(images), dtype=np.float32)


def fit_to_model(images: np.ndarray, channels: int, size: tuple) -> np.ndarray:
    """images (N, C, H, W) float32 -> (N, channels, *size): channels repeated (1 -> n) or
    averaged (n -> 1), then resized."""
    c = images.shape[1]
    if c != channels:
        if c == 1:
            images = np.repeat(images, channels, axis=1)
        elif channels == 1:
            images = images.mean(axis=1, keepdims=True, dtype=np.float32)
        else:
            raise UsageError(f"cannot convert {c}-channel images to the model's {channels} "
                             f"channels")
    return np.ascontiguousarray(resize(images, size), dtype=np.float32)


def model_input(name: str, dataset_channels: int) -> tuple:
    """``(channels, (H, W), task)`` the model ``name`` is built for.

    Channels: the spec's ``in_channels`` when it names one (3 for the CIFAR models), else the
    dataset's."""
    from . import models

    try:
        spec = models.spec(name)
    except (KeyError, ValueError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None
    channels = getattr(spec, "in_channels", None) or dataset_channels
    return int(channels), tuple(int(s) for s in spec.input_size), spec.task


def standardize(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(images - mean) / std as float32: the model's input from images in [0, 1]."""
    return ((images - np.float32(mean)) / np.float32(std)).astype(np.float32)


@dataclass
class Prepared:
    """Arrays of one run, already fitted to the model: images float32 (N, C, H, W) in [0, 1],
    labels int64 (N,). ``val_*`` is None when no validation split was asked for."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray | None
    val_labels: np.ndarray | None
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: list
    mean: float
    std: float
    info: dict = field(default_factory=dict)

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """(images - mean) / std as float32 (the model's input)."""
        return standardize(images, self.mean, self.std)


def load_split(dataset: str, split: str, data_dir=None, seed: int = 0,
               test_fraction: float = 0.2):
    """pyconv.data.load_dataset with its errors as UsageError (exit status 2 in the CLI)."""
    from . import data

    if isinstance(data_dir, str):
        data_dir = os.path.expanduser(data_dir)  # a quoted or --data-dir=~/... path
    try:
        return data.load_dataset(dataset, split, data_dir, seed=seed, test_fraction=test_fraction)
    except OSError as exc:  # missing files: the message names them and where to get them
        raise UsageError(str(exc)) from None
    except (KeyError, ValueError, TypeError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None


def prepare(model_name: str, dataset: str, data_dir=None, seed: int = 0,
            test_fraction: float = 0.2, val_fraction: float = 0.0, normalize: bool = True,
            input_size=None):
    """Load ``dataset``, fit it to ``model_name`` (at ``input_size`` (H, W) instead of the
    model's default when given) and hold out ``val_fraction`` of the training split
    (stratified, seeded). Normalisation statistics come from the training side only;
    ``normalize=False`` (the autoencoder, whose target is the [0, 1] image) keeps mean 0, std 1.
    """
    from .data import stratified_split

    train = load_split(dataset, "train", data_dir, seed, test_fraction)
    test = load_split(dataset, "test", data_dir, seed, test_fraction)
    channels, size, task = model_input(model_name, train.images.shape[1])
    size = size if input_size is None else tuple(int(v) for v in input_size)
    train_images = fit_to_model(np.asarray(train.images, dtype=np.float32), channels, size)
    test_images = fit_to_model(np.asarray(test.images, dtype=np.float32), channels, size)
    train_labels = np.asarray(train.labels, dtype=np.int64)
    val_images = val_labels = None
    if val_fraction > 0:
        keep, held = stratified_split(train_labels, val_fraction, seed)
        val_images, val_labels = train_images[held], train_labels[held]
        train_images, train_labels = train_images[keep], train_labels[keep]
    mean, std = 0.0, 1.0
    if normalize:
        mean = float(train_images.mean(dtype=np.float64))
        std = float(train_images.std(dtype=np.float64)) or 1.0
    info = {"dataset": dataset, "data_dir": None if data_dir is None else str(data_dir),
            "seed": seed, "test_fraction": test_fraction, "val_fraction": val_fraction,
            "channels": channels, "input_size": list(size), "task": task}
    return Prepared(train_images, train_labels, val_images, val_labels, test_images,
                    np.asarray(test.labels, dtype=np.int64), list(train.classes), mean, std, info)
