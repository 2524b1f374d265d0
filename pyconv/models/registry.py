"""The model registry: ``create(name, ...)``, ``available()``, ``spec(name)``.

A model family registers its class with :func:`register`; the defaults of ``in_channels``,
``num_classes``, ``input_size`` and of every option are read from the class's ``__init__``
signature, so each default is written once. A model built by ``create`` (or by calling its class)
carries ``model.config``, a JSON-able dict such that ``create(**model.config)`` rebuilds the same
architecture (same state_dict keys and shapes).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

__all__ = ["ModelSpec", "available", "create", "register", "spec"]

_COMMON = ("in_channels", "num_classes", "input_size")
_TASKS = ("classification", "reconstruction")
_REGISTRY: dict = {}


@dataclass(frozen=True)
class ModelSpec:
    """What ``pyconv.models.spec(name)`` tells about a model.

    input_size: default (H, W); in_channels, num_classes: defaults (num_classes is None for
    reconstruction models); task: "classification" (logits (N, num_classes), cross-entropy loss)
    or "reconstruction" (output of the input's shape, MSE loss); loss: "cross_entropy" or "mse";
    options: the extra keyword arguments of ``create`` with their defaults; builder: the class.
    """

    name: str
    input_size: tuple
    in_channels: int
    num_classes: int | None
    task: str
    loss: str
    description: str
    options: Mapping = field(default_factory=dict)
    builder: type | None = None


def register(name: str, *, task: str, description: str):
    """Class decorator: registers ``cls`` as model ``name`` and sets ``cls.model_name``."""
    if task not in _TASKS:
        raise ValueError(f"register: task must be one of {_TASKS}, got {task!r}")

    def decorate(cls):
        if name in _REGISTRY:
            raise ValueError(f"register: model {name!r} is already registered")
        params = inspect.signature(cls.__init__).parameters
        missing = [p for p in _COMMON if p not in params]
        if missing:
            raise TypeError(f"register: {cls.__name__}.__init__ lacks the arguments {missing}")
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        defaults = {p.name: p.default for p in params.values()
                    if p.name != "self" and p.kind in kinds}
        required = [k for k, v in defaults.items() if v is inspect.Parameter.empty]
        if required:
            raise TypeError(f"register: {cls.__name__}.__init__ arguments {required} need defaults")
        options = {k: v for k, v in defaults.items() if k not in _COMMON}
        cls.model_name = name
        _REGISTRY[name] = ModelSpec(
            name=name, input_size=tuple(defaults["input_size"]),
            in_channels=defaults["in_channels"], num_classes=defaults["num_classes"], task=task,
            loss="cross_entropy" if task == "classification" else "mse",
            description=description, options=MappingProxyType(options), builder=cls,
        )
        return cls

    return decorate


def available() -> list:
    """The registered model names, in registration order."""
    return list(_REGISTRY)


def spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of model ``name``; ValueError listing the names if unknown."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available models: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def create(name: str, *, in_channels=None, num_classes=None, input_size=None, **options):
    """Builds model ``name``; None takes the spec's default for in_channels, num_classes and
    input_size ((H, W) or an int for a square). ``options`` are the model's own keyword arguments
    (see ``spec(name).options``); an unknown one is a ValueError listing the valid ones.
    Reconstruction models ignore num_classes (their output has the input's shape).
    """
    s = spec(name)
    unknown = sorted(set(options) - set(s.options))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in s.options.items()) or "none"
        raise ValueError(f"create: model {name!r} has no option {unknown[0]!r}; its options are: "
                         f"{valid}")
    args = {
        "in_channels": s.in_channels if in_channels is None else in_channels,
        "num_classes": s.num_classes if num_classes is None or s.task != "classification"
        else num_classes,
        "input_size": s.input_size if input_size is None else input_size,
    }
    return s.builder(**args, **options)
