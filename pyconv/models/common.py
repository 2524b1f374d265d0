"""What the model families share: argument checks, output-size arithmetic, ``model.config`` and
the conv-stack-then-linear-stack classifier."""

from __future__ import annotations

import numbers

from .. import nn

__all__ = ["ConvClassifier", "check_common", "check_input", "check_input_size",
           "check_positive_int", "conv_pool_steps", "conv_relu_pool", "feature_size",
           "model_config"]


def check_positive_int(model: str, name: str, value) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{model}: {name} must be an int, got {value!r}")
    if value < 1:
        raise ValueError(f"{model}: {name} must be >= 1, got {value}")
    return int(value)


def check_input_size(model: str, value) -> tuple:
    """input_size as (H, W): an int means a square; a list (from JSON) is accepted."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{model}: input_size must be (H, W) or an int, got {value!r}")
    return tuple(check_positive_int(model, "input_size", v) for v in value)


def check_common(model: str, in_channels, num_classes, input_size, classifier=True) -> tuple:
    """The checked (in_channels, num_classes, input_size (H, W)) every model takes; a model that
    is not a classifier ignores num_classes and gets None."""
    return (check_positive_int(model, "in_channels", in_channels),
            check_positive_int(model, "num_classes", num_classes) if classifier else None,
            check_input_size(model, input_size))


def conv_output(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution or pooling window along one axis (PyTorch's floor rule)."""
    return (size + 2 * padding - kernel) // stride + 1


def feature_size(model: str, input_size: tuple, steps) -> tuple:
    """(H, W) after ``steps``, a list of (label, kernel, stride, padding) applied in order.

    An input too small to survive the steps is a ValueError that names the smallest square that
    works, instead of a shape error deep in a forward pass.
    """
    def run(h, w):
        for label, kernel, stride, padding in steps:
            h, w = conv_output(h, kernel, stride, padding), conv_output(w, kernel, stride, padding)
            if h < 1 or w < 1:
                return None, label
        return (h, w), None

    out, failed = run(*input_size)
    if out is None:
        smallest = next(s for s in range(1, 4096) if run(s, s)[0] is not None)
        raise ValueError(f"{model}: input_size {tuple(input_size)} is too small: nothing is left "
                         f"after {failed}; use at least {smallest}x{smallest}")
    return out


def model_config(model, **values) -> dict:
    """The JSON-able ``model.config``: the registered name first, tuples as lists."""
    config = {"name": type(model).model_name}
    for key, value in values.items():
        config[key] = list(value) if isinstance(value, tuple) else value
    return config


def conv_relu_pool(in_channels: int, out_channels: int, padding: int) -> list:
    """conv 3x3 (stride 1), ReLU, max-pool 2x2: three entries of a ``Sequential``."""
    return [nn.Conv2d(in_channels, out_channels, 3, padding=padding), nn.ReLU(), nn.MaxPool2d(2)]


class ConvClassifier(nn.Module):
    """``features`` (convolutions, NCHW) -> flatten -> ``classifier`` (linear layers), so
    state_dict keys read ``features.0.weight`` ... ``classifier.3.bias``, as the same model
    written with two ``torch.nn.Sequential`` would name them.

    A subclass lists in ``steps`` the (label, kernel, stride, padding) of every layer of
    ``features`` that changes the size, defines ``layers(in_channels, num_classes, area,
    **options) -> (features, classifier)`` (area: H*W of the last feature map), and calls
    ``super().__init__(in_channels, num_classes, input_size, **options)`` from an ``__init__``
    whose signature holds the defaults (the registry reads them there).
    """

    steps = ()

    def __init__(self, in_channels, num_classes, input_size, **options):
        name = type(self).__name__
        in_channels, num_classes, input_size = check_common(
            name, in_channels, num_classes, input_size)
        h, w = feature_size(name, input_size, self.size_steps(**options))
        super().__init__()
        self.features, self.classifier = self.layers(in_channels, num_classes, h * w, **options)
        self._expected = (in_channels, *input_size)
        self.config = (model_config(self, in_channels=in_channels, num_classes=num_classes,
                                    input_size=input_size, **options)
                       if hasattr(type(self), "model_name") else None)

    def size_steps(self, **options) -> list:
        """``steps``; a model whose sizes depend on its options overrides this instead."""
        return list(self.steps)

    def layers(self, in_channels: int, num_classes: int, area: int, **options) -> tuple:
        raise NotImplementedError

    def forward(self, x):
        check_input(self, x)
        return self.classifier(self.features(x).flatten(1))


def check_input(model, x) -> None:
    """x must be (N, *model._expected): a wrong size fails here, not deep in a matmul."""
    if tuple(x.shape[1:]) != model._expected:
        raise ValueError(
            f"{type(model).__name__}: expected input (N, {', '.join(map(str, model._expected))})"
            f" (in_channels, *input_size), got {tuple(x.shape)}"
        )


def conv_pool_steps(*blocks: str, padding: int = 0) -> list:
    """``steps`` of :class:`ConvClassifier` for blocks of conv 3x3 (padding) + max-pool 2, one
    per label ("first", "second", ...)."""
    steps = []
    for block in blocks:
        steps += [(f"the {block} convolution", 3, 1, padding),
                  (f"the {block} max-pooling", 2, 2, 0)]
    return steps
