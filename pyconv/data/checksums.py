"""Published sizes and MD5 digests of the official dataset files, and the check against them.

A file with the official size must have the published digest (else :class:`ChecksumError`);
a file of another size is read as a file in the same format (a subset, a generated test file)
after a one-line :class:`DatasetNotice`. The digests are those torchvision checks (its
``resources`` / ``train_list`` tables); the raw IDX digests are of the files the official
``.gz`` files decompress to.
"""

from __future__ import annotations

import hashlib
import os
import warnings

__all__ = ["ChecksumError", "DatasetNotice", "OFFICIAL_FILES", "SOURCES", "check_official"]


class ChecksumError(ValueError):
    """A file has the official size but not the published digest."""


class DatasetNotice(UserWarning):
    """A dataset file is not the official one (another size): read without a checksum."""


def _idx_table(gz: dict, raw: dict) -> dict:
    sizes_raw = {"train-images-idx3-ubyte": 47040016, "train-labels-idx1-ubyte": 60008,
                 "t10k-images-idx3-ubyte": 7840016, "t10k-labels-idx1-ubyte": 10008}
    table = {name + ".gz": value for name, value in gz.items()}
    table.update({name: (sizes_raw[name], digest) for name, digest in raw.items()})
    return table


# name -> (size in bytes, MD5 hex digest)
OFFICIAL_FILES: dict[str, dict[str, tuple[int, str]]] = {
    "mnist": _idx_table(
        gz={"train-images-idx3-ubyte": (9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            "train-labels-idx1-ubyte": (28881, "d53e105ee54ea40749a09fcbcd1e9432"),
            "t10k-images-idx3-ubyte": (1648877, "9fb629c4189551a2d022fa330f9573f3"),
            "t10k-labels-idx1-ubyte": (4542, "ec29112dd5afa0611ce80d1b7f02629c")},
        raw={"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
             "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
             "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
             "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"}),
    "fashion-mnist": _idx_table(
        gz={"train-images-idx3-ubyte": (26421880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            "train-labels-idx1-ubyte": (29515, "25c81989df183df01b3e8a0aad5dffbe"),
            "t10k-images-idx3-ubyte": (4422102, "bef4ecab320f06d8554ea6380940ec79"),
            "t10k-labels-idx1-ubyte": (5148, "bb300cfdad3c16e7a12a480ee83cd310")},
        raw={"train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
             "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
             "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
             "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965"}),
    "cifar10": {
        "data_batch_1": (31035704, "c99cafc152244af753f735de768cd75f"),
        "data_batch_2": (31035320, "d4bba439e000b95fd0a9bffe97cbabec"),
        "data_batch_3": (31035999, "54ebc095f3ab1f0389bbae665268c751"),
        "data_batch_4": (31035696, "634d18415352ddfa80567beed471001a"),
        "data_batch_5": (31035623, "482c414d41f54cd18b22e5b47cb7c3cb"),
        "test_batch": (31035526, "40351d587109b95175f43aff81a1287e"),
        "batches.meta": (158, "5ff9c542aee3614f3951f8cda6e48888"),
    },
}

# Where users get the files (pyconv never downloads anything).
SOURCES = {
    "mnist": "http://yann.lecun.com/exdb/mnist/ (mirror: "
             "https://ossci-datasets.s3.amazonaws.com/mnist/)",
    "fashion-mnist": "https://github.com/zalandoresearch/fashion-mnist (files: "
                     "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/)",
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (extract it: "
               "cifar-10-batches-py/)",
}


def md5_file(path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_official(dataset: str, path, op: str) -> bool:
    """True if ``path`` is the official file of ``dataset`` (official size and digest); False,
    after a DatasetNotice, if it has another size or its name has no published digest.
    ChecksumError naming the file and both digests if the size is official but not the MD5."""
    name = os.path.basename(path)
    entry = OFFICIAL_FILES[dataset].get(name)
    if entry is None:
        return False
    size, expected = entry
    actual_size = os.path.getsize(path)
    if actual_size != size:
        warnings.warn(
            f"{op}: {path} has {actual_size} bytes, not the official {size}: reading it as a "
            f"{dataset} file in the same format (e.g. a subset), without a checksum",
            DatasetNotice, stacklevel=3)
        return False
    actual = md5_file(path)
    if actual != expected:
        raise ChecksumError(
            f"{op}: {path} has the official size ({size} bytes) but MD5 {actual}, not the "
            f"published {expected}: the file is corrupt or from another release; get it again "
            f"from {SOURCES[dataset]}")
    return True
