"""Conv2d and ConvTranspose2d layers: PyTorch's constructor arguments, attribute and parameter
names (state_dict keys), initialisation and repr."""

from __future__ import annotations

import numbers

import numpy as np

from .. import functional as F
from ..shapes import pair
from . import init
from .module import Module
from .parameter import Parameter

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_channels(layer, in_channels, out_channels, groups):
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{layer}: groups must be a positive integer, got {groups!r}")
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{layer}: {name} must be a positive integer, got {value!r}")
        if value % groups:
            raise ValueError(f"{layer}: {name} must be divisible by groups, got {name}={value} "
                             f"and groups={groups}")


def _float_dtype(layer, dtype):
    dtype = np.dtype(np.float32 if dtype is None else dtype)
    if dtype.kind != "f":
        raise TypeError(f"{layer}: dtype must be a floating-point type, got {dtype}")
    return dtype


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: geometry attributes, parameters, init and repr.

    ``weight`` has shape (out, in/groups, kH, kW) for a convolution and (in, out/groups, kH, kW)
    for a transposed one; ``bias`` is (out,) or None.
    """

    def __init__(self, layer, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 transposed, output_padding, groups, bias, padding_mode, dtype):
        super().__init__()
        _check_channels(layer, in_channels, out_channels, groups)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = pair(kernel_size, "kernel_size", layer, minimum=1)
        self.stride = pair(stride, "stride", layer, minimum=1)
        self.padding = padding
        self.dilation = pair(dilation, "dilation", layer, minimum=1)
        self.transposed = transposed
        self.output_padding = output_padding
        self.groups = int(groups)
        self.padding_mode = padding_mode
        dtype = _float_dtype(layer, dtype)
        if transposed:
            shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        else:
            shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty((self.out_channels,), dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.default_layer_init_(self.weight, self.bias)

    def extra_repr(self):
        parts = [f"{self.in_channels}, {self.out_channels}", f"kernel_size={self.kernel_size}",
                 f"stride={self.stride}"]
        if self.padding != (0, 0):
            parts.append(f"padding={self.padding}")
        if self.dilation != (1, 1):
            parts.append(f"dilation={self.dilation}")
        if self.output_padding != (0, 0):
            parts.append(f"output_padding={self.output_padding}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if self.bias is None:
            parts.append("bias=False")
        if self.padding_mode != "zeros":
            parts.append(f"padding_mode={self.padding_mode}")
        return ", ".join(parts)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C, H, W) or (C, H, W) input; weight (out_channels,
    in_channels/groups, kH, kW), bias (out_channels,).

    padding: int, pair, 'valid' or 'same' (stride 1 only). Only padding_mode='zeros' is
    implemented; PyTorch's other modes raise NotImplementedError.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", dtype=None):
        layer = "Conv2d"
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{layer}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"padding_mode={padding_mode!r}")
        if padding_mode != "zeros":
            raise NotImplementedError(
                f"{layer}: padding_mode={padding_mode!r} is not implemented in pyconv yet; "
                f"only 'zeros' is (pad the input explicitly for other modes)"
            )
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{layer}: invalid padding string {padding!r}, should be one "
                                 f"of 'same' or 'valid'")
            if padding == "same" and pair(stride, "stride", layer) != (1, 1):
                raise ValueError(f"{layer}: padding='same' is not supported for strided "
                                 f"convolutions (got stride={stride!r})")
        else:
            padding = pair(padding, "padding", layer, minimum=0)
        super().__init__(layer, in_channels, out_channels, kernel_size, stride, padding,
                         dilation, False, (0, 0), groups, bias, padding_mode, dtype)

    def forward(self, input):
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution over (N, C, H, W) or (C, H, W) input; weight (in_channels,
    out_channels/groups, kH, kW), bias (out_channels,).

    ``forward(input, output_size=None)``: output_size (the last two entries are used) picks the
    output_padding that gives that size, as PyTorch.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 dtype=None):
        layer = "ConvTranspose2d"
        if padding_mode != "zeros":
            raise ValueError(f'{layer}: only "zeros" padding mode is supported, got '
                             f"padding_mode={padding_mode!r}")
        padding = pair(padding, "padding", layer, minimum=0)
        output_padding = pair(output_padding, "output_padding", layer, minimum=0)
        super().__init__(layer, in_channels, out_channels, kernel_size, stride, padding,
                         dilation, True, output_padding, groups, bias, padding_mode, dtype)

    def _output_padding(self, input, output_size):
        """The output_padding that makes the output (…, *output_size[-2:])."""
        if output_size is None:
            return self.output_padding
        output_size = tuple(int(v) for v in output_size)[-2:]
        if len(output_size) != 2:
            raise ValueError(f"ConvTranspose2d: output_size must have at least 2 entries (H, W), "
                             f"got {output_size!r}")
        extra = []
        for d in range(2):
            smallest = ((input.shape[-2 + d] - 1) * self.stride[d] - 2 * self.padding[d]
                        + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            largest = smallest + self.stride[d] - 1
            if not smallest <= output_size[d] <= largest:
                raise ValueError(
                    f"ConvTranspose2d: requested an output_size of {output_size}, but valid sizes "
                    f"along dimension {d} range from {smallest} to {largest} (for an input of "
                    f"{tuple(input.shape[-2:])})"
                )
            extra.append(output_size[d] - smallest)
        return tuple(extra)

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  output_padding, self.groups, self.dilation)
