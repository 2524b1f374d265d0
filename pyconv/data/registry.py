"""``load_dataset(name, split, data_dir)``: every dataset pyconv reads, by name (the CLI's
``--dataset``), as an :class:`~pyconv.data.ImageDataset` (images float32 (N, C, H, W) in
[0, 1], labels int64 (N,), ``classes``).

* "digits": the bundled 8x8 digits (N, 1, 8, 8), split by ``seed`` / ``test_fraction``;
* "mnist", "fashion-mnist": (N, 1, 28, 28) from the IDX files under ``data_dir``;
* "cifar10": (N, 3, 32, 32) from the python batches under ``data_dir``;
* "folder": class-per-folder images: ``data_dir/train/<class>/`` and ``data_dir/test/<class>/``,
  or one ``data_dir/<class>/`` tree split like the digits; options ``size`` and ``mode``
  (see :class:`~pyconv.data.ImageFolder`).

``data_dir`` defaults to ``$PYCONV_DATA``. Nothing is ever downloaded.
"""

from __future__ import annotations

import os

from .cifar import CIFAR10
from .datasets import ImageDataset
from .digits import DigitsDataset
from .image_folder import ImageFolder, common_format, scan_folder
from .locate import resolve_root
from .mnist import MNIST, FashionMNIST
from .split import stratified_split

__all__ = ["DATASETS", "load_dataset"]

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "folder")
SPLITS = ("train", "test")
_OPTIONS = {"folder": {"size", "mode"}}


def _load_folder(root: str, train: bool, seed: int, test_fraction: float, size, mode):
    op = "load_dataset('folder')"
    sides = [os.path.join(root, s) for s in SPLITS]
    if all(os.path.isdir(s) for s in sides):
        classes, train_paths, _ = scan_folder(sides[0], op)
        _, test_paths, _ = scan_folder(sides[1], op)
        # one mode and size for both sides, so train and test images have the same shape
        mode, size = common_format(train_paths + test_paths, mode, size, op)
        return ImageFolder(sides[0] if train else sides[1], size=size, mode=mode,
                           classes=classes)
    if os.path.isdir(sides[0]) or os.path.isdir(sides[1]):
        missing = sides[1] if os.path.isdir(sides[0]) else sides[0]
        raise FileNotFoundError(f"{op}: {missing} is missing: a folder dataset has both train/ "
                                f"and test/ subfolders, or neither (then it is split by seed)")
    whole = ImageFolder(root, size=size, mode=mode)
    train_idx, test_idx = stratified_split(whole.labels, test_fraction, seed, op=op)
    return whole.subset(train_idx if train else test_idx)


def load_dataset(name: str, split: str = "train", data_dir=None, *, seed: int = 0,
                 test_fraction: float = 0.2, **options) -> ImageDataset:
    """One side (``split`` "train" or "test") of dataset ``name`` (one of :data:`DATASETS`).

    ``seed`` and ``test_fraction`` choose the split of datasets that have none ("digits", a
    single-tree "folder"); the same values always give the same, disjoint sides. ``options``:
    ``size`` and ``mode`` for "folder". Returns an ImageDataset with images float32
    (N, C, H, W) in [0, 1], labels int64 (N,) and ``classes``.
    """
    if name not in DATASETS:
        raise ValueError(f"load_dataset: unknown dataset {name!r}; expected one of "
                         f"{', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"load_dataset: split must be 'train' or 'test', got {split!r}")
    unknown = sorted(set(options) - _OPTIONS.get(name, set()))
    if unknown:
        raise TypeError(f"load_dataset: dataset {name!r} takes no option(s) {unknown} "
                        f"(allowed: {sorted(_OPTIONS.get(name, set())) or 'none'})")
    train = split == "train"
    if name == "digits":
        return DigitsDataset(train=train, seed=seed, test_fraction=test_fraction)
    root = resolve_root(data_dir, f"load_dataset({name!r})")
    if name == "mnist":
        return MNIST(root, train=train)
    if name == "fashion-mnist":
        return FashionMNIST(root, train=train)
    if name == "cifar10":
        return CIFAR10(root, train=train)
    return _load_folder(root, train, seed, test_fraction, options.get("size"),
                        options.get("mode"))
