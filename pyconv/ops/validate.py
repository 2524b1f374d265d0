"""Argument checks shared by the op layer. Every message names the op and the argument and
shows what was expected next to what was given."""

from __future__ import annotations

from ..tensor import Tensor


def check_tensor(value, op: str, name: str) -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a pyconv Tensor, got {type(value).__name__}")
    return value


def check_float(value, op: str, name: str) -> Tensor:
    """A floating-point tensor (ints and bools are rejected with a TypeError)."""
    check_tensor(value, op, name)
    if value.dtype.kind != "f":
        raise TypeError(
            f"{op}: {name} must be a floating-point tensor (float32 or float64), got dtype "
            f"{value.dtype}"
        )
    return value


def check_same_dtype(reference: Tensor, value, op: str, name: str, ref_name: str = "input"):
    """``value`` (a tensor or None) must have ``reference``'s dtype."""
    if value is None:
        return None
    check_float(value, op, name)
    if value.dtype != reference.dtype:
        raise TypeError(
            f"{op}: {name} has dtype {value.dtype} but {ref_name} has dtype {reference.dtype}; "
            f"convert one of them (e.g. {name}.to({ref_name}.dtype))"
        )
    return value


def check_ndim(value: Tensor, allowed, op: str, name: str, what: str = "") -> None:
    allowed = (allowed,) if isinstance(allowed, int) else tuple(allowed)
    if value.ndim not in allowed:
        options = " or ".join(str(a) for a in allowed)
        raise ValueError(
            f"{op}: expected {name} with {options} dimensions{what}, got {value.ndim} "
            f"(shape {value.shape})"
        )


def check_shape(value: Tensor, expected: tuple, op: str, name: str) -> None:
    if value is not None and tuple(value.shape) != tuple(expected):
        raise ValueError(
            f"{op}: expected {name} of shape {tuple(expected)}, got {tuple(value.shape)}"
        )
