"""Data: the bundled digits, MNIST and CIFAR-10 readers for local files, ``DataLoader`` and
transforms (see :mod:`pyconv.data.datasets` for shapes and dtypes)."""

from .datasets import (
    CIFAR10,
    MNIST,
    Dataset,
    DigitsDataset,
    TensorDataset,
    load_digits,
    load_digits_split,
    read_idx,
    stratified_split,
)
from .loader import DataLoader
from .transforms import Compose, Normalize

__all__ = [
    "CIFAR10", "Compose", "DataLoader", "Dataset", "DigitsDataset", "MNIST", "Normalize",
    "TensorDataset", "load_digits", "load_digits_split", "read_idx", "stratified_split",
]
