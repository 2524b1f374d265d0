"""``Tensor``: an n-dimensional array (NumPy, or CuPy on the GPU) plus autograd bookkeeping.

A tensor holds its array in ``_data`` and, when it was produced by a recorded operation, the
graph :class:`~pyconv.autograd.Node` that made it (``grad_fn``). Leaves (tensors made by the
user, such as parameters) have no node; if they require grad, backward accumulates into their
``.grad``. Arithmetic follows NumPy broadcasting; methods and names follow PyTorch.
"""

from __future__ import annotations

import numbers
import weakref

import numpy as np

from . import autograd

__all__ = ["Tensor", "device", "is_tensor"]

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)


def _array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy`` (DeZero's get_array_module)."""
    for a in arrays:
        if type(a).__module__.startswith("cupy"):
            import cupy

            return cupy
    return np


def resolve_dtype(dtype):
    """Normalise a dtype given as a NumPy dtype/type, a string or None (returns None)."""
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unsupported dtype {dtype!r}") from None


def as_array(data, dtype=None, copy=False):
    """Convert Python data, NumPy/CuPy arrays or tensors to an array with PyTorch's dtype rules:
    Python floats become float32, Python ints int64, bools bool; arrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data._data
    dtype = resolve_dtype(dtype)
    xp = _array_module(data)
    if xp is not np or isinstance(data, (np.ndarray, np.generic)):
        arr = xp.array(data, dtype=dtype, copy=True) if copy else xp.asarray(data, dtype=dtype)
        return arr
    arr = np.array(data, dtype=dtype)
    if dtype is None and arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    elif dtype is None and arr.dtype.kind in "iu":
        arr = arr.astype(np.int64)
    if arr.dtype == object:
        raise TypeError(f"could not convert {type(data).__name__} to a tensor")
    return arr


class device(str):
    """A device name (``'cpu'`` or ``'cuda'``); compares equal to the plain string."""

    @property
    def type(self) -> str:
        return self.split(":")[0]

    @property
    def index(self):
        parts = self.split(":")
        return int(parts[1]) if len(parts) > 1 else None


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def _unwrap_index(index):
    """Tensors inside an index become arrays (``x[mask]``, ``x[idx_tensor, :]``)."""
    if isinstance(index, Tensor):
        return index._data
    if isinstance(index, tuple):
        return tuple(i._data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def _sizes(size):
    """``zeros(2, 3)`` and ``zeros((2, 3))`` both mean shape (2, 3)."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


class Tensor:
    """See the module docstring. Construct with :func:`pyconv.tensor` (copies) or
    ``Tensor(array)`` (shares NumPy arrays, like ``torch.from_numpy``)."""

    __slots__ = ("_data", "_requires_grad", "grad", "_node", "_out_index", "__weakref__", "__dict__")
    __array_priority__ = 1000  # NumPy defers binary ops with a Tensor to the Tensor

    def __init__(self, data, dtype=None, requires_grad=False):
        self._data = as_array(data, dtype)
        self._node = None
        self._out_index = 0
        self.grad = None
        self._requires_grad = False
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _wrap(cls, array, node=None, out_index=0):
        """Fast internal constructor: no conversion, no copy."""
        t = cls.__new__(cls)
        if isinstance(array, np.generic) or not hasattr(array, "shape"):
            array = np.asarray(array)
        t._data = array
        t._node = node
        t._out_index = out_index
        t._requires_grad = node is not None
        t.grad = None
        return t

    # ----- properties -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return tuple(self._data.shape)

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def device(self) -> device:
        return device("cpu" if _array_module(self._data) is np else "cuda")

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool):
        if self._node is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if value and self._data.dtype.kind not in "fc":
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients, got {self.dtype}"
            )
        self._requires_grad = bool(value)

    @property
    def data(self) -> "Tensor":
        """A tensor sharing this one's storage, outside the graph (as ``torch.Tensor.data``)."""
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value):
        self._data = as_array(value)

    @property
    def T(self) -> "Tensor":
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    # ----- conversion -------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead."
            )
        if _array_module(self._data) is not np:
            raise TypeError("can't convert cuda tensor to numpy: use tensor.cpu() first")
        return self._data

    def __array__(self, dtype=None, copy=None):
        """NumPy's conversion protocol (NumPy 2 signature): ``np.asarray(t)`` shares memory with a
        CPU tensor; ``copy=True`` always copies; ``copy=False`` raises ValueError when a copy
        cannot be avoided (a CUDA tensor, or a different ``dtype``)."""
        on_host = _array_module(self._data) is np
        converts = dtype is not None and np.dtype(dtype) != self._data.dtype
        if copy is False and (converts or not on_host):
            raise ValueError(
                "Unable to avoid copy while creating an array as requested: the tensor is "
                + ("on cuda" if not on_host else f"{self.dtype}, not {np.dtype(dtype)}")
            )
        arr = self._data if on_host else self._data.get()
        if converts:
            return arr.astype(dtype)
        return arr.copy() if copy and on_host else arr

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Export through DLPack (``np.from_dlpack(t)``, ``torch.from_dlpack(t)``, CuPy's), sharing
        memory: delegated to the underlying NumPy or CuPy array. As PyTorch, a tensor that
        requires grad must be detached first."""
        if self.requires_grad:
            raise RuntimeError("Can't export tensors that require gradient, use tensor.detach()")
        options = {"stream": stream, "max_version": max_version, "dl_device": dl_device,
                   "copy": copy}
        # older producers do not know every keyword: pass only those the caller set
        return self._data.__dlpack__(**{k: v for k, v in options.items() if v is not None})

    def __dlpack_device__(self):
        """(DLPack device type, device id): (1, 0) for CPU tensors, (2, id) for CUDA ones."""
        return self._data.__dlpack_device__()

    def item(self):
        if self._data.size != 1:
            raise ValueError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar"
            )
        return self._data.reshape(()).item()

    def tolist(self):
        return self._data.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.kind not in "iu":
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self._data.size} values is ambiguous"
            )
        return bool(self.item())

    def to(self, *args, **kwargs) -> "Tensor":
        """``to(dtype)``, ``to('cpu')``, ``to(device, dtype)``; returns self when nothing changes."""
        dtype = kwargs.pop("dtype", None)
        dev = kwargs.pop("device", None)
        if kwargs:
            raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, str):
                dev = a
            elif isinstance(a, Tensor):
                dtype = a.dtype
            else:
                dtype = a
        out = self
        if dev is not None:
            name = device(dev).type
            if name != self.device.type:
                from .backends import transfer

                out = transfer(out, name)
        if dtype is not None and resolve_dtype(dtype) != out.dtype:
            out = out._cast(resolve_dtype(dtype))
        return out

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self) -> "Tensor":
        return self.to("cuda")

    def _cast(self, dtype) -> "Tensor":
        return _Cast.apply(self, dtype)

    def float(self) -> "Tensor":
        return self.to(np.float32)

    def double(self) -> "Tensor":
        return self.to(np.float64)

    def long(self) -> "Tensor":
        return self.to(np.int64)

    def int(self) -> "Tensor":
        return self.to(np.int32)

    def bool(self) -> "Tensor":
        return self.to(np.bool_)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.to(other.dtype)

    # ----- autograd ---------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``. ``gradient`` defaults to 1 for
        a single-element tensor and must be given (same shape) otherwise."""
        if not self.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn"
            )
        xp = _array_module(self._data)
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            grad = xp.ones(self.shape, dtype=self.dtype)
        else:
            grad = as_array(gradient, dtype=self.dtype)
            if grad.shape != self._data.shape:
                raise ValueError(
                    f"backward: gradient has shape {tuple(grad.shape)} but the tensor has shape "
                    f"{self.shape}"
                )
        autograd.run_backward([(self, grad)], retain_graph=retain_graph)

    def _accumulate_grad(self, g):
        g = _array_module(g).asarray(g)
        if g.dtype != self._data.dtype:
            g = g.astype(self._data.dtype)
        if g.shape != self._data.shape:
            raise RuntimeError(
                f"gradient of shape {tuple(g.shape)} does not match tensor of shape {self.shape}"
            )
        if self.grad is None:
            self.grad = Tensor._wrap(g.copy())  # copy: backward may hand one array to two inputs
        else:
            self.grad._data += g

    def detach(self) -> "Tensor":
        return Tensor._wrap(self._data)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward (a no-op on leaves)."""
        if self._node is None:
            if not self.requires_grad:
                raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
            return
        if self._node.retained is None:
            self._node.retained = {}
        self._node.retained[self._out_index] = weakref.ref(self)

    # ----- copies and in-place updates (outside the graph) ----------------------------------
    def clone(self) -> "Tensor":
        return _Clone.apply(self)

    def contiguous(self) -> "Tensor":
        if self._data.flags["C_CONTIGUOUS"]:
            return self
        return self.clone()

    def _check_inplace(self):
        if self._node is None and self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation."
            )
        if self._node is not None and autograd.is_grad_enabled():
            raise RuntimeError(
                "in-place operations on tensors that are part of an autograd graph are not "
                "supported by pyconv; use the out-of-place form"
            )

    def copy_(self, src) -> "Tensor":
        self._check_inplace()
        self._data[...] = as_array(src)
        return self

    def zero_(self) -> "Tensor":
        self._check_inplace()
        self._data[...] = 0
        return self

    def fill_(self, value) -> "Tensor":
        self._check_inplace()
        self._data[...] = value
        return self

    def add_(self, other, alpha=1) -> "Tensor":
        self._check_inplace()
        self._data += as_array(other) * alpha if alpha != 1 else as_array(other)
        return self

    def sub_(self, other, alpha=1) -> "Tensor":
        return self.add_(other, alpha=-alpha)

    def mul_(self, other) -> "Tensor":
        self._check_inplace()
        self._data *= as_array(other)
        return self

    def div_(self, other) -> "Tensor":
        self._check_inplace()
        self._data /= as_array(other)
        return self

    def __setitem__(self, index, value):
        self._check_inplace()
        self._data[_unwrap_index(index)] = as_array(value)

    def _inplace(self, other, op):
        if autograd.is_grad_enabled() and (
            self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)
        ):
            if self._node is None and self.requires_grad:
                self._check_inplace()
            return op(self, other)  # recorded: rebind the name to the new node's output
        self._data[...] = op(self, other)._data
        return self

    def __iadd__(self, other):
        return self._inplace(other, Tensor.__add__)

    def __isub__(self, other):
        return self._inplace(other, Tensor.__sub__)

    def __imul__(self, other):
        return self._inplace(other, Tensor.__mul__)

    def __itruediv__(self, other):
        return self._inplace(other, Tensor.__truediv__)

    # ----- arithmetic ---------------------------------------------------------------------------
    def _operands(self, other, reverse=False):
        """(self, other) converted for a binary op with PyTorch's promotion for Python scalars:
        an integer tensor combined with a Python float becomes float32 (NumPy would pick
        float64)."""
        me = self
        if not isinstance(other, Tensor):
            if isinstance(other, numbers.Number) and not isinstance(other, bool):
                if isinstance(other, float) and self._data.dtype.kind not in "fc":
                    me = self._cast(np.dtype(np.float32))
            else:
                other = Tensor(other)
        return (other, me) if reverse else (me, other)

    def _as_float_if_int(self):
        return self if self._data.dtype.kind in "fc" else self._cast(np.dtype(np.float32))

    def __add__(self, other):
        return Add.apply(*self._operands(other))

    def __radd__(self, other):
        return Add.apply(*self._operands(other, reverse=True))

    def __sub__(self, other):
        return Sub.apply(*self._operands(other))

    def __rsub__(self, other):
        return Sub.apply(*self._operands(other, reverse=True))

    def __mul__(self, other):
        return Mul.apply(*self._operands(other))

    def __rmul__(self, other):
        return Mul.apply(*self._operands(other, reverse=True))

    def __truediv__(self, other):
        return Div.apply(*self._as_float_if_int()._operands(other))

    def __rtruediv__(self, other):
        return Div.apply(*self._as_float_if_int()._operands(other, reverse=True))

    def __pow__(self, other):
        return Pow.apply(*self._operands(other))

    def __rpow__(self, other):
        return Pow.apply(*self._operands(other, reverse=True))

    def __neg__(self):
        return Neg.apply(self)

    def __pos__(self):
        return self

    def __matmul__(self, other):
        return MatMul.apply(*self._operands(other))

    def __rmatmul__(self, other):
        return MatMul.apply(*self._operands(other, reverse=True))

    def matmul(self, other):
        return self @ other

    def add(self, other, alpha=1):
        return self + (other * alpha if alpha != 1 else other)

    def sub(self, other, alpha=1):
        return self - (other * alpha if alpha != 1 else other)

    def mul(self, other):
        return self * other

    def div(self, other):
        return self / other

    def pow(self, exponent):
        return self**exponent

    # ----- comparisons (no gradient) ------------------------------------------------------------
    def _compare(self, other, op):
        other = other._data if isinstance(other, Tensor) else other
        return Tensor._wrap(op(self._data, other))

    def __eq__(self, other):
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    def __and__(self, other):
        return self._compare(other, lambda a, b: a & b)

    def __or__(self, other):
        return self._compare(other, lambda a, b: a | b)

    def __invert__(self):
        return Tensor._wrap(~self._data)

    __hash__ = object.__hash__

    def eq(self, other):
        return self == other

    def equal(self, other) -> bool:
        return self.shape == other.shape and bool((self._data == other._data).all())

    def allclose(self, other, rtol=1e-5, atol=1e-8) -> bool:
        return bool(_array_module(self._data).allclose(self._data, as_array(other), rtol, atol))

    def all(self):
        return Tensor._wrap(self._data.all())

    def any(self):
        return Tensor._wrap(self._data.any())

    # ----- unary math -------------------------------------------------------------------------
    def exp(self):
        return Exp.apply(self)

    def log(self):
        return Log.apply(self)

    def sqrt(self):
        return Sqrt.apply(self)

    def abs(self):
        return Abs.apply(self)

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
        return Clamp.apply(self, min=min, max=max)

    clip = clamp

    def relu(self):
        from . import functional

        return functional.relu(self)

    def sigmoid(self):
        from . import functional

        return functional.sigmoid(self)

    def tanh(self):
        from . import functional

        return functional.tanh(self)

    def softmax(self, dim):
        from . import functional

        return functional.softmax(self, dim)

    def log_softmax(self, dim):
        from . import functional

        return functional.log_softmax(self, dim)

    # ----- reductions ---------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False):
        return Sum.apply(self, dim=dim, keepdim=keepdim)

    def mean(self, dim=None, keepdim=False):
        if self.dtype.kind not in "fc":
            raise RuntimeError(
                f"mean(): could not infer output dtype. Input dtype must be floating point, got {self.dtype}"
            )
        return Mean.apply(self, dim=dim, keepdim=keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, correction=None):
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        return Var.apply(self, dim=dim, correction=correction, keepdim=keepdim)

    def std(self, dim=None, unbiased=None, keepdim=False, correction=None):
        return self.var(dim, unbiased, keepdim, correction).sqrt()

    def _extreme(self, dim, keepdim, mode):
        if dim is None:
            return MaxMin.apply(self, mode=mode)
        return MinMaxResult(*MaxMin.apply(self, dim=dim, keepdim=keepdim, mode=mode))

    def max(self, dim=None, keepdim=False):
        """``max()`` -> scalar tensor; ``max(dim)`` -> ``(values, indices)``."""
        return self._extreme(dim, keepdim, "max")

    def min(self, dim=None, keepdim=False):
        return self._extreme(dim, keepdim, "min")

    def argmax(self, dim=None, keepdim=False):
        xp = _array_module(self._data)
        if dim is None:
            return Tensor._wrap(xp.asarray(xp.argmax(self._data), dtype=np.int64))
        return Tensor._wrap(xp.argmax(self._data, axis=dim, keepdims=keepdim).astype(np.int64))

    def argmin(self, dim=None, keepdim=False):
        xp = _array_module(self._data)
        if dim is None:
            return Tensor._wrap(xp.asarray(xp.argmin(self._data), dtype=np.int64))
        return Tensor._wrap(xp.argmin(self._data, axis=dim, keepdims=keepdim).astype(np.int64))

    # ----- shape ---------------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = _sizes(shape)
        n = self._data.size
        known = int(np.prod([s for s in shape if s != -1]))
        if shape.count(-1) > 1 or (
            (-1 not in shape and known != n) or (-1 in shape and (known == 0 or n % known))
        ):
            raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {n}")
        if shape == self.shape:
            return self
        return Reshape.apply(self, shape)

    view = reshape

    def view_as(self, other):
        return self.reshape(other.shape)

    reshape_as = view_as

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        start = start_dim % self.ndim
        end = end_dim % self.ndim
        if start > end:
            raise ValueError(
                f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim})"
            )
        shape = self.shape[:start] + (-1,) + self.shape[end + 1 :]
        if 0 in self.shape:
            shape = self.shape[:start] + (int(np.prod(self.shape[start : end + 1])),) + self.shape[end + 1 :]
        return self.reshape(shape)

    def permute(self, *dims):
        dims = _sizes(dims)
        if sorted(d % max(self.ndim, 1) for d in dims) != list(range(self.ndim)):
            raise ValueError(
                f"permute: dims {dims} are not a permutation of the {self.ndim} dimensions"
            )
        return Permute.apply(self, tuple(d % self.ndim for d in dims))

    def transpose(self, dim0, dim1):
        dims = list(range(self.ndim))
        dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return self.permute(*dims)

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with <= 2 dimensions, got {self.ndim}")
        return self.T

    def squeeze(self, dim=None):
        if dim is None:
            shape = tuple(s for s in self.shape if s != 1)
        else:
            dims = {d % self.ndim for d in ((dim,) if isinstance(dim, int) else dim)} if self.ndim else set()
            shape = tuple(s for i, s in enumerate(self.shape) if not (i in dims and s == 1))
        return self.reshape(shape)

    def unsqueeze(self, dim):
        ndim = self.ndim + 1
        if not -ndim <= dim < ndim:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], but got {dim})"
            )
        dim %= ndim
        return self.reshape(self.shape[:dim] + (1,) + self.shape[dim:])

    def expand(self, *sizes):
        sizes = _sizes(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(
                f"expand: the number of sizes ({len(sizes)}) must be >= the tensor's ndim ({self.ndim})"
            )
        shape = tuple(
            self.shape[i - lead] if (s == -1 and i >= lead) else s for i, s in enumerate(sizes)
        )
        return Expand.apply(self, shape)

    def expand_as(self, other):
        return self.expand(*other.shape)

    def __getitem__(self, index):
        return GetItem.apply(self, _unwrap_index(index))

    def chunk(self, chunks, dim=0):
        size = -(-self.shape[dim] // chunks)
        return self.split(size, dim)

    def split(self, split_size, dim=0):
        return split(self, split_size, dim)

    def unbind(self, dim=0):
        return unbind(self, dim)

    # ----- display ------------------------------------------------------------------------------
    def __repr__(self):
        arr = np.asarray(self.__array__())
        body = np.array2string(arr, separator=", ", prefix="tensor(")
        extras = []
        if arr.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype=pyconv.{arr.dtype.name}")
        if self.device.type != "cpu":
            extras.append(f"device='{self.device}'")
        if self._node is not None:
            extras.append(f"grad_fn={self._node!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"


class MinMaxResult(tuple):
    """``(values, indices)`` from ``max(dim)`` / ``min(dim)``, also by attribute."""

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    @property
    def values(self):
        return self[0]

    @property
    def indices(self):
        return self[1]


class _Cast(autograd.Function):
    @staticmethod
    def forward(ctx, x, dtype):
        ctx.src = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.src) if ctx.src.kind in "fc" else None


class _Clone(autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return g


# the op modules import this one, so they are imported once it is defined
from .ops.math import Abs, Add, Clamp, Div, Exp, Log, MatMul, MaxMin, Mean, Mul, Neg, Pow, Sqrt, Sub, Sum, Var  # noqa: E402
from .ops.shape import Expand, GetItem, Permute, Reshape, split, unbind  # noqa: E402
