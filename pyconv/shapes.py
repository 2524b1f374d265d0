"""Argument normalisation and output-size arithmetic shared by the op layer and the backends.

All rules are PyTorch's. Errors name the function and the argument and show what was expected.
"""

from __future__ import annotations

import math
import numbers


def pair(value, name: str, op: str, *, minimum: int | None = None) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(2, 3)`` stays. Rejects non-integers, wrong lengths and values
    below ``minimum``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        out = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 1 and isinstance(value[0], numbers.Integral):
        out = (int(value[0]), int(value[0]))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    ):
        out = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if minimum is not None and min(out) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return out


def conv_padding(padding, kernel_size, stride, dilation, op: str = "conv2d"):
    """conv2d padding (int, pair, 'valid' or 'same') as ``(top, bottom, left, right)``.

    'same' is only allowed with stride 1; with an even dilated kernel extent the extra row/column
    goes to the bottom/right, as PyTorch does.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                                 f"(got stride={stride})")
            pads = []
            for k, d in zip(kernel_size, dilation):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
            return tuple(pads)
        raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    ph, pw = pair(padding, "padding", op, minimum=0)
    return (ph, ph, pw, pw)


def conv_output_size(length: int, pad_begin: int, pad_end: int, kernel: int, stride: int,
                     dilation: int) -> int:
    """Output length of a convolution window sweep (may be <= 0 when the kernel does not fit)."""
    return (length + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


def pool_output_size(length: int, kernel: int, stride: int, padding: int, dilation: int,
                     ceil_mode: bool) -> int:
    """PyTorch's pooling output length: with ceil_mode the division rounds up, but a last window
    that would start inside the right padding is dropped."""
    span = length + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= length + padding:
        out -= 1
    return out


def normalize_dim(dim: int, ndim: int, op: str, name: str = "dim") -> int:
    """Wrap a negative dim; IndexError when out of range (PyTorch's wording)."""
    lo, hi = -max(ndim, 1), max(ndim, 1) - 1
    if not isinstance(dim, numbers.Integral) or not lo <= dim <= hi:
        raise IndexError(f"{op}: {name} out of range (expected to be in range of [{lo}, {hi}], "
                         f"but got {dim})")
    return int(dim) % max(ndim, 1)


def prod(values) -> int:
    return math.prod(int(v) for v in values)
