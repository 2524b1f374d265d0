"""MNIST and Fashion-MNIST from their local IDX files (nothing is downloaded).

Files (each raw or gzipped ``.gz``): ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte``
(60000 samples) and ``t10k-images-idx3-ubyte`` / ``t10k-labels-idx1-ubyte`` (10000), looked
for in ``root/MNIST/raw`` (torchvision's layout), ``root/mnist`` and ``root`` itself
(Fashion-MNIST: ``root/FashionMNIST/raw``, ``root/fashion-mnist``, ``root``).
images (N, 1, 28, 28) float32 in [0, 1] (``normalize=False``: uint8), labels int64 (N,) in
0..9. Files of another size in the same format (a subset) are read after a notice; the official
files are checked against their published MD5 (:mod:`pyconv.data.checksums`).
"""

from __future__ import annotations

import numpy as np

from .checksums import SOURCES, check_official
from .datasets import ImageDataset
from .idx import idx_magic, read_idx
from .locate import find_files, official_source

__all__ = ["FashionMNIST", "MNIST"]

_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801


class MNIST(ImageDataset):
    """``MNIST(root, train=True, normalize=True, transform=None)``: the train (60000) or test
    (10000) side; see the module docstring for the files, folders and shapes."""

    key = "mnist"
    subfolders = ("MNIST/raw", "mnist", "")
    class_names = [str(d) for d in range(10)]

    def __init__(self, root, train: bool = True, normalize: bool = True, transform=None):
        op = type(self).__name__
        prefix = "train" if train else "t10k"
        names = {"images": f"{prefix}-images-idx3-ubyte", "labels": f"{prefix}-labels-idx1-ubyte"}
        paths = find_files(op, root, self.subfolders,
                           {k: [n, n + ".gz"] for k, n in names.items()}, SOURCES[self.key])
        with official_source(SOURCES[self.key]):
            images, labels = self._read_split(paths)
        images = images[:, None]
        if normalize:
            images = images.astype(np.float32) / np.float32(255.0)
        super().__init__(images, labels, self.class_names, transform=transform)
        self.root = root
        self.train = train
        self.files = paths

    def _read_split(self, paths: dict) -> tuple[np.ndarray, np.ndarray]:
        """images uint8 (N, H, W) and labels uint8 (N,) from ``paths``, validated."""
        op = type(self).__name__
        images = self._read(paths["images"], _IMAGES_MAGIC, "images")
        labels = self._read(paths["labels"], _LABELS_MAGIC, "labels")
        if 0 in images.shape[1:]:
            raise ValueError(f"{op}: {paths['images']} holds images of size "
                             f"{images.shape[1]}x{images.shape[2]}; expected (N, H, W), H, W > 0")
        if labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"{op}: {paths['labels']} holds {labels.shape[0]} labels but "
                f"{paths['images']} holds {images.shape[0]} images; the counts must match")
        if labels.size and labels.max() > 9:
            raise ValueError(f"{op}: {paths['labels']} holds label {int(labels.max())}; "
                             f"expected 0..9")
        return images, labels

    def _read(self, path: str, magic: int, what: str) -> np.ndarray:
        op = type(self).__name__
        check_official(self.key, path, op)
        array = read_idx(path, op=op)
        if idx_magic(array) != magic:
            raise ValueError(
                f"{op}: {path} has IDX magic number 0x{idx_magic(array):08X} but an {what} "
                f"file must start with 0x{magic:08X} (unsigned bytes, {magic & 0xFF} "
                f"dimensions)")
        return array


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): MNIST's format, file names and shapes; clothing classes."""

    key = "fashion-mnist"
    subfolders = ("FashionMNIST/raw", "fashion-mnist", "")
    class_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
