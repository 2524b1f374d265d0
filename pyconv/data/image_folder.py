"""Class-per-folder image datasets (``root/<class>/<image>.png|jpg|jpeg``), read with Pillow.

Class names are the subfolder names, sorted; labels index into them. Every image is converted
to one mode, "L" (1 channel) or "RGB" (3 channels) (default: "L" if every image is grayscale,
else "RGB"), and to one size (H, W): ``size`` resizes them all (bilinear); without it they must
already agree. images (N, C, H, W) float32 in [0, 1], labels int64 (N,).
"""

from __future__ import annotations

import os

import numpy as np

from .datasets import ImageDataset

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "common_format", "read_images", "scan_folder"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_WIDE_GRAY_MODES = {"I", "I;16", "I;16B", "I;16L"}  # 16-bit PNGs: scaled by 65535
_GRAYSCALE_MODES = {"1", "L", "LA"} | _WIDE_GRAY_MODES


def _pillow(op: str):
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(f"{op}: reading image files needs Pillow: pip install pillow") from None
    return Image


def _check_size(size, op: str):
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s > 0
                       for s in size)):
        raise ValueError(f"{op}: size must be a positive int or (H, W), got {size!r}")
    return int(size[0]), int(size[1])


def _open(Image, path: str, op: str):
    try:
        return Image.open(path)
    except OSError as exc:  # UnidentifiedImageError is an OSError
        raise ValueError(f"{op}: cannot read {path} as an image ({exc})") from None


def common_format(paths, mode: str | None = None, size=None,
                  op: str = "common_format") -> tuple[str, tuple[int, int]]:
    """The (mode, (H, W)) that :func:`read_images` converts ``paths`` to, from the files'
    headers: ``mode`` or, if None, "L" when every image is grayscale, else "RGB"; ``size`` or,
    if None, the images' common size (ValueError naming two files if they differ)."""
    Image = _pillow(op)
    if mode not in (None, "L", "RGB"):
        raise ValueError(f"{op}: mode must be 'L', 'RGB' or None, got {mode!r}")
    size = _check_size(size, op)
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError(f"{op}: no image files given")
    grayscale, first = True, None
    for path in paths:
        with _open(Image, path, op) as im:
            grayscale = grayscale and im.mode in _GRAYSCALE_MODES
            hw = (im.size[1], im.size[0])
        if first is None:
            first = (path, hw)
        elif size is None and hw != first[1]:
            raise ValueError(
                f"{op}: images differ in size ({first[0]} is {first[1][0]}x{first[1][1]}, "
                f"{path} is {hw[0]}x{hw[1]}, H x W); pass size=(H, W) to resize them all")
    return mode or ("L" if grayscale else "RGB"), size or first[1]


def _pixels(Image, im, mode: str, size: tuple) -> np.ndarray:
    """One open image -> float32 (C, H, W) in [0, 1] of ``mode`` and ``size`` (H, W)."""
    wide = im.mode in _WIDE_GRAY_MODES
    # converting 16-bit grey to "L" would clip at 255: go through 32-bit float instead
    im = im.convert("F" if wide else mode)
    if im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.BILINEAR)
    arr = np.asarray(im, dtype=np.float32)
    if wide:
        arr = np.clip(arr / np.float32(65535.0), 0, 1)[None]
        return np.repeat(arr, 3, axis=0) if mode == "RGB" else arr
    arr = arr / np.float32(255.0)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def read_images(paths, mode: str | None = None, size=None, op: str = "read_images") -> np.ndarray:
    """Image files -> float32 (N, C, H, W) in [0, 1] (C = 1 for "L", 3 for "RGB"): converted
    to ``mode`` ("L", "RGB" or None) and resized (bilinear) to ``size`` ((H, W), an int, or
    None), both settled by :func:`common_format`."""
    Image = _pillow(op)
    mode, (height, width) = common_format(paths, mode, size, op)
    out = []
    for path in paths:
        with _open(Image, os.fspath(path), op) as im:
            try:
                out.append(_pixels(Image, im, mode, (height, width)))
            except OSError as exc:  # truncated or corrupt pixel data
                raise ValueError(f"{op}: cannot read {path} as an image ({exc})") from None
    return np.stack(out)


def scan_folder(root: str, op: str) -> tuple[list[str], list[str], list[int]]:
    """(class names sorted, image paths, labels) of a class-per-folder directory."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{op}: {root} is not a folder")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise FileNotFoundError(
            f"{op}: {root} has no class subfolders; expected {root}/<class>/<image>"
            f"{'|'.join(IMAGE_EXTENSIONS)}")
    paths, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        files = sorted(f for f in os.listdir(folder)
                       if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."))
        if not files:
            raise FileNotFoundError(
                f"{op}: class folder {folder} holds no {'/'.join(IMAGE_EXTENSIONS)} images")
        paths += [os.path.join(folder, f) for f in files]
        labels += [label] * len(files)
    return classes, paths, labels


class ImageFolder(ImageDataset):
    """``ImageFolder(root, size=None, mode=None, transform=None, classes=None)``: every image of
    ``root/<class>/``; ``classes`` (a list of names) fixes the class list and order, e.g. to
    give a test folder the training folder's labels (its subfolders must be among them)."""

    def __init__(self, root, size=None, mode: str | None = None, transform=None, classes=None):
        op = type(self).__name__
        root = os.fspath(root)
        found, paths, labels = scan_folder(root, op)
        if classes is not None:
            unknown = sorted(set(found) - set(classes))
            if unknown:
                raise ValueError(f"{op}: {root} has class folders {unknown} that are not among "
                                 f"the expected classes {list(classes)}")
            index = {name: i for i, name in enumerate(classes)}
            labels = [index[found[k]] for k in labels]
        else:
            classes = found
        images = read_images(paths, mode=mode, size=size, op=op)
        super().__init__(images, np.asarray(labels, dtype=np.int64), classes, transform=transform)
        self.root = root
        self.paths = paths
