"""conv2d and conv_transpose2d on the C++ kernels (csrc/cpu/conv2d.cpp: implicit GEMM or
Winograd F(4x4, 3x3), chosen per shape in C++).

conv_transpose2d is conv2d's adjoint, so its three kernels are conv2d's with the roles swapped
(as in numpy_ref/conv.py), running on exactly the same native code
(csrc/cpu/conv_transpose2d.cpp).

Special paths of another family, used when the extension has them: depthwise convolutions
(groups == C == K) go to ``_C.conv2d_depthwise_*``, first layers with few input channels
(groups == 1, C <= 4) to ``_C.conv2d_small_c_*``, and pointwise ones (1x1, stride 1, no padding,
groups == 1) to ``_C.conv2d_pointwise_*`` (forward and both gradients each, where built).
"""

from __future__ import annotations

from ..._native import _C
from . import ready

__all__ = ["conv2d_backward_input", "conv2d_backward_weight", "conv2d_forward",
           "conv_transpose2d_backward_input", "conv_transpose2d_backward_weight",
           "conv_transpose2d_forward"]

SMALL_C_MAX_CHANNELS = 4


def _native(name):
    """``_C.<name>`` when this build has it, else None."""
    return getattr(_C, name, None)


def _depthwise(groups, channels, out_channels):
    return groups == channels == out_channels


def _small_c(groups, channels):
    return groups == 1 and channels <= SMALL_C_MAX_CHANNELS


def _pointwise(groups, kernel_size, stride, padding):
    return (groups == 1 and tuple(kernel_size) == (1, 1) and tuple(stride) == (1, 1)
            and not any(padding))


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups):
    x, weight, bias = ready(x), ready(weight), ready(bias)
    stride, padding, dilation = tuple(stride), tuple(padding), tuple(dilation)
    channels, out_channels = x.shape[1], weight.shape[0]
    if _depthwise(groups, channels, out_channels):
        special = _native("conv2d_depthwise_forward")
        if special is not None:
            return special(x, weight, bias, stride, padding, dilation)
    elif _small_c(groups, channels):
        special = _native("conv2d_small_c_forward")
        if special is not None:
            return special(x, weight, bias, stride, padding, dilation)
    elif _pointwise(groups, weight.shape[2:], stride, padding):
        special = _native("conv2d_pointwise_forward")
        if special is not None:
            return special(x, weight, bias)
    return _C.conv2d_forward(x, weight, bias, stride, padding, dilation, int(groups))


def conv2d_backward_input(grad_y, weight, input_shape, stride, padding, dilation, groups):
    grad_y, weight = ready(grad_y), ready(weight)
    input_shape, stride = tuple(input_shape), tuple(stride)
    padding, dilation = tuple(padding), tuple(dilation)
    if _depthwise(groups, input_shape[1], weight.shape[0]):
        special = _native("conv2d_depthwise_backward_input")
        if special is not None:
            return special(grad_y, weight, input_shape, stride, padding, dilation)
    elif _small_c(groups, input_shape[1]):
        special = _native("conv2d_small_c_backward_input")
        if special is not None:
            return special(grad_y, weight, input_shape, stride, padding, dilation)
    elif _pointwise(groups, weight.shape[2:], stride, padding):
        special = _native("conv2d_pointwise_backward_input")
        if special is not None:
            return special(grad_y, weight)
    return _C.conv2d_backward_input(grad_y, weight, input_shape, stride, padding, dilation,
                                    int(groups))


def conv2d_backward_weight(grad_y, x, weight_shape, stride, padding, dilation, groups):
    grad_y, x = ready(grad_y), ready(x)
    weight_shape, stride = tuple(weight_shape), tuple(stride)
    padding, dilation = tuple(padding), tuple(dilation)
    if _depthwise(groups, x.shape[1], weight_shape[0]):
        special = _native("conv2d_depthwise_backward_weight")
        if special is not None:
            return special(grad_y, x, weight_shape, stride, padding, dilation)
    elif _small_c(groups, x.shape[1]):
        special = _native("conv2d_small_c_backward_weight")
        if special is not None:
            return special(grad_y, x, weight_shape, stride, padding, dilation)
    elif _pointwise(groups, weight_shape[2:], stride, padding):
        special = _native("conv2d_pointwise_backward_weight")
        if special is not None:
            return special(grad_y, x)
    return _C.conv2d_backward_weight(grad_y, x, weight_shape, stride, padding, dilation,
                                     int(groups))


def _symmetric(padding):
    ph, pw = padding
    return (ph, ph, pw, pw)


# conv_transpose2d runs in C++ (csrc/cpu/conv_transpose2d.cpp) on conv2d's kernels; a depthwise
# one (groups == C == K) is composed here from the conv2d functions above so that it reaches the
# depthwise kernels when the build has them.


def _depthwise_special(groups, channels, out_channels):
    return (_depthwise(groups, channels, out_channels)
            and _native("conv2d_depthwise_forward") is not None)


def conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding, dilation, groups):
    if not _depthwise_special(groups, x.shape[1], weight.shape[1] * groups):
        return _C.conv_transpose2d_forward(ready(x), ready(weight), ready(bias), tuple(stride),
                                           tuple(padding), tuple(output_padding),
                                           tuple(dilation), int(groups))
    sizes = zip(x.shape[2:], stride, padding, dilation, weight.shape[2:], output_padding)
    p, q = ((size - 1) * step - 2 * pad + dil * (extent - 1) + extra + 1
            for size, step, pad, dil, extent, extra in sizes)
    y = conv2d_backward_input(x, weight, (x.shape[0], weight.shape[1] * groups, p, q), stride,
                              _symmetric(padding), dilation, groups)
    if bias is not None:
        y += bias.reshape(-1, 1, 1)
    return y


def conv_transpose2d_backward_input(grad_y, weight, input_shape, stride, padding, dilation,
                                    groups):
    if not _depthwise_special(groups, input_shape[1], weight.shape[1] * groups):
        return _C.conv_transpose2d_backward_input(ready(grad_y), ready(weight), tuple(input_shape),
                                                  tuple(stride), tuple(padding), tuple(dilation),
                                                  int(groups))
    grad_x = conv2d_forward(grad_y, weight, None, stride, _symmetric(padding), dilation, groups)
    return grad_x[:, :, :input_shape[2], :input_shape[3]].copy()


def conv_transpose2d_backward_weight(grad_y, x, weight_shape, stride, padding, dilation, groups):
    if not _depthwise_special(groups, x.shape[1], weight_shape[1] * groups):
        return _C.conv_transpose2d_backward_weight(ready(grad_y), ready(x), tuple(weight_shape),
                                                   tuple(stride), tuple(padding),
                                                   tuple(dilation), int(groups))
    return conv2d_backward_weight(x, grad_y, weight_shape, stride, _symmetric(padding), dilation,
                                  groups)
