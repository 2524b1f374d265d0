"""Data: datasets read from local files (nothing is downloaded), ``DataLoader`` and transforms.

``load_dataset(name, split, data_dir)`` (:mod:`~pyconv.data.registry`) returns an
:class:`ImageDataset`: images float32 (N, C, H, W) in [0, 1], labels int64 (N,), ``classes``.
One reader per file: :mod:`~pyconv.data.digits` (bundled), :mod:`~pyconv.data.mnist` (MNIST,
Fashion-MNIST; IDX in :mod:`~pyconv.data.idx`), :mod:`~pyconv.data.cifar` (CIFAR-10),
:mod:`~pyconv.data.image_folder` (PNG/JPEG class folders); :mod:`~pyconv.data.checksums` holds
the official files' sizes and MD5s and :mod:`~pyconv.data.writers` writes small datasets in the
official formats for tests and CI. ``DataLoader`` (:mod:`~pyconv.data.loader`) batches any
dataset, building batches ahead in a background thread; augmentation is in
:mod:`pyconv.data.transforms`.
"""

from .checksums import ChecksumError, DatasetNotice
from .cifar import CIFAR10
from .datasets import Dataset, ImageDataset, TensorDataset
from .digits import DigitsDataset, load_digits, load_digits_split
from .idx import read_idx, write_idx
from .image_folder import ImageFolder, read_images
from .loader import DataLoader
from .mnist import MNIST, FashionMNIST
from .registry import DATASETS, load_dataset
from .split import stratified_split
from .transforms import Compose, Normalize
from .writers import write_cifar10_folder, write_mnist_folder

__all__ = [
    "CIFAR10", "ChecksumError", "Compose", "DATASETS", "DataLoader", "Dataset", "DatasetNotice",
    "DigitsDataset", "FashionMNIST", "ImageDataset", "ImageFolder", "MNIST", "Normalize",
    "TensorDataset", "load_dataset", "load_digits", "load_digits_split", "read_idx",
    "read_images", "stratified_split", "write_cifar10_folder", "write_idx", "write_mnist_folder",
]
