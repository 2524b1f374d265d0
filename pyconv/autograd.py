"""Reverse-mode automatic differentiation: Function, the graph, and the backward engine.

An op is a :class:`Function` subclass with two static methods that work on raw arrays
(NumPy or CuPy), never on :class:`~pyconv.tensor.Tensor`::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):               # x: array
            y = np.exp(x)
            ctx.save_for_backward(y)
            return y                        # an array, or a tuple of arrays
        @staticmethod
        def backward(ctx, grad_y):          # one gradient array per forward output
            (y,) = ctx.saved_arrays
            return grad_y * y               # one gradient (or None) per forward argument;
                                            # trailing non-tensor arguments may be omitted

``Exp.apply(t)`` unwraps tensors, runs ``forward``, and, when gradients are needed, records a
:class:`Node` that points at the nodes (or leaf tensors) of its inputs.

The engine (:func:`run_backward`) is iterative: it orders the nodes reachable from the roots
topologically with an explicit stack, so graphs of any depth work without recursion. Each node
runs once, after all of its consumers have contributed their gradients. Leaf gradients
accumulate into ``.grad`` with ``+=``. Unless ``retain_graph=True``, each node drops its saved
arrays after it runs; a second backward through it raises ``RuntimeError``.
"""

from __future__ import annotations

import threading

__all__ = [
    "Context",
    "Function",
    "Node",
    "enable_grad",
    "is_grad_enabled",
    "no_grad",
    "run_backward",
    "set_grad_enabled",
    "zero_grads",
]

_state = threading.local()


def is_grad_enabled() -> bool:
    """True unless inside ``no_grad()`` (per thread, like PyTorch)."""
    return getattr(_state, "grad_enabled", True)


def _set_grad_mode(mode: bool) -> None:
    _state.grad_enabled = bool(mode)


class set_grad_enabled:
    """Context manager and decorator that sets gradient recording on or off."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = is_grad_enabled()
        _set_grad_mode(self.mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set_grad_mode(self.prev)
        return False


class _GradModeContext:
    mode = True

    def __enter__(self):
        self.prev = is_grad_enabled()
        _set_grad_mode(self.mode)
        return self

    def __exit__(self, *exc):
        _set_grad_mode(self.prev)
        return False

    def __call__(self, fn):
        import functools

        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = is_grad_enabled()
            _set_grad_mode(mode)
            try:
                return fn(*args, **kwargs)
            finally:
                _set_grad_mode(prev)

        return wrapper


class no_grad(_GradModeContext):
    """Disable graph recording: ``with pyconv.no_grad():`` or ``@pyconv.no_grad()``."""

    mode = False


class enable_grad(_GradModeContext):
    """Re-enable graph recording inside a ``no_grad`` block."""

    mode = True


class Context:
    """Per-call scratch space handed to ``forward`` and ``backward``.

    Attributes:
        needs_input_grad: tuple of bools, one per positional forward argument.
        backend: the backend module that was current when ``forward`` ran; ``backward`` must use
            the same one.
    """

    __slots__ = ("needs_input_grad", "backend", "_saved", "_freed", "non_differentiable", "__dict__")

    def __init__(self, needs_input_grad=(), backend=None):
        self.needs_input_grad = needs_input_grad
        self.backend = backend
        self._saved = ()
        self._freed = False
        self.non_differentiable = ()

    def save_for_backward(self, *arrays):
        self._saved = arrays

    @property
    def saved_arrays(self):
        if self._freed:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or to use saved values after "
                "they were freed). Saved intermediate values of the graph are freed when you call "
                ".backward(). Specify retain_graph=True on the first backward call if you need to "
                "backward through the graph a second time."
            )
        return self._saved

    def mark_non_differentiable(self, *output_indices: int):
        """Outputs at these indices (e.g. max-pool indices) never require grad."""
        self.non_differentiable = tuple(output_indices)

    def free(self):
        self._saved = ()
        self.__dict__.clear()
        self._freed = True


class Node:
    """One recorded Function application.

    ``edges[i]`` describes forward argument ``i``: ``None`` (no gradient flows there), a leaf
    ``Tensor`` (gradient accumulates into its ``.grad``), or ``(node, output_index)``.
    """

    __slots__ = ("fn", "ctx", "edges", "out_meta", "retained", "__weakref__")

    def __init__(self, fn, ctx, edges, out_meta):
        self.fn = fn
        self.ctx = ctx
        self.edges = edges
        self.out_meta = out_meta  # list of (shape, dtype, xp) per output, for zero-filling
        self.retained = None  # {output_index: weakref to Tensor} for retain_grad()

    @property
    def name(self) -> str:
        return self.fn.__name__ + "Backward"

    def __repr__(self):
        return f"<{self.name}>"


class Function:
    """Base class for differentiable operations; see the module docstring."""

    @staticmethod
    def forward(ctx, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):  # pragma: no cover - abstract
        """One gradient per output: zeros for a floating output that received none, None for an
        integer output (indices, labels: never differentiable)."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        if _Tensor is None:
            _bind_late_imports()
        Tensor, current = _Tensor, _current_backend
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = any(needs) and is_grad_enabled()
        ctx = Context(needs if record else (False,) * len(args), current())
        raw = [a._data if isinstance(a, Tensor) else a for a in args]
        out = cls.forward(ctx, *raw, **kwargs)
        multi = isinstance(out, tuple)
        outs = out if multi else (out,)
        if not record:
            results = tuple(Tensor._wrap(o) for o in outs)
            return results if multi else results[0]

        edges = []
        for a, need in zip(args, needs):
            if not need:
                edges.append(None)
            elif a._node is None:
                edges.append(a)
            else:
                edges.append((a._node, a._out_index))
        node = Node(cls, ctx, tuple(edges), [(o.shape, o.dtype, _array_module(o)) for o in outs])
        results = []
        for i, o in enumerate(outs):
            if i in ctx.non_differentiable:
                results.append(Tensor._wrap(o))
            else:
                results.append(Tensor._wrap(o, node=node, out_index=i))
        results = tuple(results)
        return results if multi else results[0]


# tensor.py and backends/ import this module, so their names are bound on first use
_Tensor = _current_backend = _array_module = None


def _bind_late_imports():
    global _Tensor, _current_backend, _array_module
    from .backends import current
    from .tensor import Tensor, _array_module as array_module

    _Tensor, _current_backend, _array_module = Tensor, current, array_module


def _add_grad(current, grad):
    return grad if current is None else current + grad


def _check_grad(node, index, grad, expected_shape):
    if grad is not None and tuple(grad.shape) != tuple(expected_shape):
        raise RuntimeError(
            f"{node.name} returned a gradient of shape {tuple(grad.shape)} for input {index}, "
            f"expected {tuple(expected_shape)}"
        )


def _topological_order(root_nodes):
    """Nodes reachable from ``root_nodes``, each after every node that consumes its outputs."""
    order = []
    visited = set()
    for root in root_nodes:
        if id(root) in visited:
            continue
        visited.add(id(root))
        stack = [(root, iter(root.edges))]
        while stack:
            node, it = stack[-1]
            advanced = False
            for edge in it:
                if isinstance(edge, tuple):
                    child = edge[0]
                    if id(child) not in visited:
                        visited.add(id(child))
                        stack.append((child, iter(child.edges)))
                        advanced = True
                        break
            if not advanced:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def run_backward(roots, retain_graph: bool = False) -> None:
    """Backpropagate. ``roots`` is a list of ``(tensor, grad_array)`` pairs."""
    if _Tensor is None:
        _bind_late_imports()
    Tensor = _Tensor

    buffers: dict[int, list] = {}
    root_nodes = []
    for tensor, grad in roots:
        if tensor._node is None:
            if tensor.requires_grad:
                tensor._accumulate_grad(grad)
            continue
        node = tensor._node
        buf = buffers.setdefault(id(node), [None] * len(node.out_meta))
        buf[tensor._out_index] = _add_grad(buf[tensor._out_index], grad)
        root_nodes.append(node)

    with no_grad():
        for node in _topological_order(root_nodes):
            if node.ctx._freed:
                node.ctx.saved_arrays  # raises the "second time" RuntimeError
            grads = buffers.pop(id(node), None)
            if grads is None:
                continue  # reachable only through outputs that received no gradient
            # integer outputs (max-pool indices) never get a gradient: no zero-filled buffer
            grads = [
                g if g is not None or dtype.kind not in "fc" else xp.zeros(shape, dtype=dtype)
                for g, (shape, dtype, xp) in zip(grads, node.out_meta)
            ]
            if node.retained:
                for idx, ref in node.retained.items():
                    t = ref()
                    if t is not None:
                        t._accumulate_grad(grads[idx])
            in_grads = node.fn.backward(node.ctx, *grads)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if len(in_grads) < len(node.edges):
                # trailing non-tensor arguments (shapes, flags) need no gradient entry
                if any(e is not None for e in node.edges[len(in_grads):]):
                    raise RuntimeError(
                        f"{node.name} returned {len(in_grads)} gradients for {len(node.edges)} inputs"
                    )
            for i, (edge, g) in enumerate(zip(node.edges, in_grads)):
                if edge is None or g is None:
                    continue
                if isinstance(edge, Tensor):
                    _check_grad(node, i, g, edge.shape)
                    edge._accumulate_grad(g)
                else:
                    child, idx = edge
                    _check_grad(node, i, g, child.out_meta[idx][0])
                    buf = buffers.setdefault(id(child), [None] * len(child.out_meta))
                    buf[idx] = _add_grad(buf[idx], g)
            if not retain_graph:
                node.ctx.free()


def zero_grads(tensors, set_to_none: bool = True) -> None:
    """Reset ``.grad`` of each tensor: to None (default) or, with ``set_to_none=False``, to
    zeros in place (what ``Module.zero_grad`` and ``Optimizer.zero_grad`` do)."""
    for t in tensors:
        if t.grad is None:
            continue
        if set_to_none:
            t.grad = None
        else:
            t.grad._data[...] = 0
