"""Placeholder: replaced by the op family's implementation."""


def conv2d(*args, **kwargs):
    raise NotImplementedError("conv2d")


def conv_transpose2d(*args, **kwargs):
    raise NotImplementedError("conv_transpose2d")

