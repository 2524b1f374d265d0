"""Launch glue for kernels/activation.cu: relu, leaky_relu, sigmoid, tanh, gelu.

Every op is one grid-stride launch over the flat elements. float32 arrays whose pointers are all
16-byte aligned and whose length is a multiple of 4 go through the ``_vec4_f32`` entry (float4
loads and stores); everything else, including misaligned views such as ``x[1:]``, through the
scalar ``_f32`` / ``_f64`` entry.
"""

from __future__ import annotations

from . import as_contiguous, elementwise_grid, i64, real, suffix

__all__ = [
    "gelu_backward", "gelu_forward", "leaky_relu_backward", "leaky_relu_forward",
    "relu_backward", "relu_forward", "sigmoid_backward", "sigmoid_forward",
    "tanh_backward", "tanh_forward",
]

THREADS = 256  # the kernels' __launch_bounds__
_VEC = 4  # floats per float4
_VEC_ALIGN = 16  # bytes


def _data_pointer(dev, array) -> int:
    if dev.xp.__name__ == "numpy":
        return array.ctypes.data
    return array.data.ptr  # CuPy


def can_vectorize(dev, *arrays) -> bool:
    """True when the float4 entry may run on these contiguous arrays of one size: float32, a
    length that is a multiple of 4, and every data pointer 16-byte aligned."""
    first = arrays[0]
    if first.dtype.itemsize != 4 or first.dtype.kind != "f" or first.size % _VEC:
        return False
    return all(_data_pointer(dev, a) % _VEC_ALIGN == 0 for a in arrays)


def _launch(dev, entry, inputs, scalars=()):
    """Allocate the output like ``inputs[0]`` and run ``entry`` on contiguous copies of
    ``inputs`` (one shape, one float dtype), then the op's ``scalars`` (in the element type)."""
    first = inputs[0]
    kind = suffix(first.dtype)
    for a in inputs[1:]:
        if a.shape != first.shape:
            raise ValueError(f"{entry}: shapes {first.shape} and {a.shape} differ")
        if a.dtype != first.dtype:
            raise TypeError(f"{entry}: dtypes {first.dtype} and {a.dtype} differ")
    # the output takes the inputs' shape, not as_contiguous's (which turns 0-d into 1-d)
    out = dev.xp.empty(first.shape, dtype=first.dtype)
    inputs = [as_contiguous(dev, a) for a in inputs]
    n = first.size
    if n == 0:
        return out
    scalars = tuple(real(first.dtype, s) for s in scalars)
    if can_vectorize(dev, out, *inputs):
        grid, block = elementwise_grid(dev, n // _VEC, THREADS)
        function = dev.function("activation", f"{entry}_vec4_f32")
        function(grid, block, (out, *inputs, i64(n // _VEC, "n / 4"), *scalars))
    else:
        grid, block = elementwise_grid(dev, n, THREADS)
        function = dev.function("activation", f"{entry}_{kind}")
        function(grid, block, (out, *inputs, i64(n, "n"), *scalars))
    return out


def _gelu_entry(approximate, direction):
    if approximate == "none":
        return f"gelu_erf_{direction}"
    if approximate == "tanh":
        return f"gelu_tanh_{direction}"
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def relu_forward(dev, x):
    return _launch(dev, "relu_forward", [x])


def relu_backward(dev, grad_y, y):
    return _launch(dev, "relu_backward", [grad_y, y])


def leaky_relu_forward(dev, x, negative_slope):
    return _launch(dev, "leaky_relu_forward", [x], [negative_slope])


def leaky_relu_backward(dev, grad_y, x, negative_slope):
    return _launch(dev, "leaky_relu_backward", [grad_y, x], [negative_slope])


def sigmoid_forward(dev, x):
    return _launch(dev, "sigmoid_forward", [x])


def sigmoid_backward(dev, grad_y, y):
    return _launch(dev, "sigmoid_backward", [grad_y, y])


def tanh_forward(dev, x):
    return _launch(dev, "tanh_forward", [x])


def tanh_backward(dev, grad_y, y):
    return _launch(dev, "tanh_backward", [grad_y, y])


def gelu_forward(dev, x, approximate):
    return _launch(dev, _gelu_entry(approximate, "forward"), [x])


def gelu_backward(dev, grad_y, x, approximate):
    return _launch(dev, _gelu_entry(approximate, "backward"), [grad_y, x])
