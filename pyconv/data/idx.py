"""The IDX file format of MNIST and Fashion-MNIST: read and write, raw or gzipped (``.gz``).

Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D
float32, 0x0E float64), the number of dimensions, each dimension as a big-endian uint32, then
the values, big-endian, row-major. The first four bytes read as one big-endian int are the
"magic number": 0x00000803 for MNIST's images (uint8, 3 dimensions), 0x00000801 for its labels.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

__all__ = ["idx_magic", "read_idx", "write_idx"]

_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}


def idx_magic(array: np.ndarray) -> int:
    """The magic number an IDX file holding ``array`` starts with (type code << 8 | ndim)."""
    return _IDX_CODES[array.dtype.newbyteorder("=")] << 8 | array.ndim


def _read_bytes(path, op: str) -> bytes:
    if not str(path).endswith(".gz"):
        with open(path, "rb") as f:
            return f.read()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise ValueError(f"{op}: {path} is not a valid gzip file ({exc})") from None


def read_idx(path: str, op: str = "read_idx") -> np.ndarray:
    """Read one IDX file (``.gz`` files are decompressed). Returns an array of the header's
    shape and type in native byte order; ValueError naming ``path`` if the magic number, the
    header or the size is wrong."""
    raw = _read_bytes(path, op)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{op}: {path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{op}: {path} is truncated inside its header ({len(raw)} bytes, the "
                         f"header of {ndim} dimensions needs {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"{op}: {path} holds {len(raw)} bytes but its header (shape {shape}, "
            f"{dtype.newbyteorder('=')}) implies {expected}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path, array) -> None:
    """Write ``array`` (any shape; uint8, int8, int16, int32, float32 or float64) as an IDX
    file, gzipped when ``path`` ends with ``.gz``. ``read_idx`` gives the array back."""
    array = np.asarray(array)
    if array.dtype.newbyteorder("=") not in _IDX_CODES:
        raise TypeError(f"write_idx: array dtype must be one of uint8, int8, int16, int32, "
                        f"float32, float64, got {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: array must have 1..255 dimensions, got {array.ndim}")
    header = struct.pack(">I", idx_magic(array)) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=array.dtype.newbyteorder(">")).tobytes()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(payload)
