"""Launch glue of the RNN, LSTM and GRU cells and sequence layers: gate GEMMs (kernels/gemm.cu,
through :func:`.linear.gemm`) + one fused pointwise kernel per step (kernels/rnn.cu).

A cell step is two GEMMs, pre_ih = x @ w_ih^T + b_ih and pre_hh = h @ w_hh^T + b_hh (B, G*Hd),
and one pointwise kernel. Its backward is one pointwise kernel giving the pre-activations'
gradients, then four GEMMs (grad_x, grad_h, grad_w_ih, grad_w_hh) and two column sums (biases).

A sequence layer keeps the weights and all per-step arrays on the device: the input projection
of all L steps is one (L*B, I) GEMM; each step then runs the h-side GEMM and the pointwise
kernel. The backward walks the steps in reverse with the pointwise kernel (which adds the
gradient carried from the next step) and the grad_h GEMM, and forms grad_x, the weight and the
bias gradients of all steps at the end with one GEMM / column sum each.
"""

from __future__ import annotations

from . import as_contiguous, elementwise_grid, i32, i64, operand, suffix
from .linear import column_sum, gemm

__all__ = [
    "gru_cell_backward", "gru_cell_forward", "gru_sequence_backward", "gru_sequence_forward",
    "lstm_cell_backward", "lstm_cell_forward", "lstm_sequence_backward", "lstm_sequence_forward",
    "rnn_relu_cell_backward", "rnn_relu_cell_forward", "rnn_relu_sequence_backward",
    "rnn_relu_sequence_forward", "rnn_tanh_cell_backward", "rnn_tanh_cell_forward",
    "rnn_tanh_sequence_backward", "rnn_tanh_sequence_forward",
]

# every entry point of rnn.cu is compiled with __launch_bounds__(256)
THREADS = 256
# gates per hidden unit
_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


# ---------------------------------------------------------------------------------------------
# checks and launches
# ---------------------------------------------------------------------------------------------


class _Shapes:
    """B, I, Hd and the gate count of one cell, checked against the weights."""

    def __init__(self, op, cell, x, w_ih, w_hh):
        suffix(x.dtype)
        self.dtype = x.dtype
        self.gates = _GATES[cell]
        self.batch, self.input_size = x.shape[-2:]
        self.hidden = w_hh.shape[1]
        rows = self.gates * self.hidden
        operand(f"{op}: w_ih", w_ih, self.dtype, (rows, self.input_size))
        operand(f"{op}: w_hh", w_hh, self.dtype, (rows, self.hidden))

    def state(self, op, name, array, leading=()):
        """``array`` checked to be a (…, B, Hd) state, C-contiguous."""
        operand(f"{op}: {name}", array, self.dtype, tuple(leading) + (self.batch, self.hidden))
        return array

    def bias(self, op, name, array):
        if array is not None:
            operand(f"{op}: {name}", array, self.dtype, (self.gates * self.hidden,))
        return array


def _pointwise(dev, entry, dtype, n, args):
    """Launch ``<entry>_<f32|f64>`` over ``n`` (b, j) elements (nothing when there are none)."""
    if n == 0:
        return
    grid, block = elementwise_grid(dev, n, THREADS)
    dev.function("rnn", f"{entry}_{suffix(dtype)}")(grid, block, args)


def _projection(dev, v, w, b):
    """v @ w^T + b: (B, K) x (G*Hd, K) -> (B, G*Hd)."""
    return gemm(dev, v, w, trans_b=True, bias=b)


def _sizes(shapes):
    return i32(shapes.batch, "B"), i32(shapes.hidden, "Hd")


def _carry(carry, grad_h_new):
    """The (carry, has_carry) kernel arguments: grad_h_new stands in for a missing carry."""
    return (grad_h_new, i32(0, "has_carry")) if carry is None else (carry, i32(1, "has_carry"))


# ---------------------------------------------------------------------------------------------
# one step, forward and backward (the sequence layers reuse these on per-step views)
# ---------------------------------------------------------------------------------------------


def _elman_step(dev, cell, shapes, pre_ih, h, w_hh, b_hh, h_new):
    """h_new = act(pre_ih + h @ w_hh^T + b_hh)."""
    pre_hh = _projection(dev, h, w_hh, b_hh)
    _pointwise(dev, f"{cell}_cell_forward", shapes.dtype, h_new.size,
               (h_new, pre_ih, pre_hh, i64(h_new.size, "n")))


def _lstm_step(dev, shapes, pre_ih, h, c, w_hh, b_hh, h_new, c_new, gates):
    pre_hh = _projection(dev, h, w_hh, b_hh)
    _pointwise(dev, "lstm_cell_forward", shapes.dtype, h_new.size,
               (h_new, c_new, gates, pre_ih, pre_hh, c, *_sizes(shapes)))


def _gru_step(dev, shapes, pre_ih, h, w_hh, b_hh, h_new, workspace):
    pre_hh = _projection(dev, h, w_hh, b_hh)
    _pointwise(dev, "gru_cell_forward", shapes.dtype, h_new.size,
               (h_new, workspace, pre_ih, pre_hh, h, *_sizes(shapes)))


def _elman_step_backward(dev, cell, shapes, grad_h_new, carry, h_new, grad_pre):
    _pointwise(dev, f"{cell}_cell_backward", shapes.dtype, h_new.size,
               (grad_pre, grad_h_new, *_carry(carry, grad_h_new), h_new, i64(h_new.size, "n")))


def _lstm_step_backward(dev, shapes, grad_h_new, carry, grad_c_new, c, gates, c_new, grad_pre):
    """Returns grad_c (B, Hd) of the step's input cell state; writes grad_pre (B, 4Hd)."""
    grad_c = dev.xp.empty_like(c_new)
    _pointwise(dev, "lstm_cell_backward", shapes.dtype, grad_c.size,
               (grad_pre, grad_c, grad_h_new, *_carry(carry, grad_h_new), grad_c_new, c, gates,
                c_new, *_sizes(shapes)))
    return grad_c


def _gru_step_backward(dev, shapes, grad_h_new, carry, h, workspace, grad_pre_ih, grad_pre_hh):
    """Returns grad_h' * z (B, Hd), the part of grad_h that bypasses w_hh; writes grad_pre_*."""
    direct = dev.xp.empty_like(h)
    _pointwise(dev, "gru_cell_backward", shapes.dtype, direct.size,
               (grad_pre_ih, grad_pre_hh, direct, grad_h_new, *_carry(carry, grad_h_new), h,
                workspace, *_sizes(shapes)))
    return direct


def _weight_gradients(dev, grad_pre_ih, grad_pre_hh, x, h):
    """(grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh) from the (rows, G*Hd) pre-activation
    gradients and the (rows, I) inputs / (rows, Hd) states they multiplied."""
    b_ih = column_sum(dev, grad_pre_ih)
    b_hh = b_ih.copy() if grad_pre_hh is grad_pre_ih else column_sum(dev, grad_pre_hh)
    return (gemm(dev, grad_pre_ih, x, trans_a=True), gemm(dev, grad_pre_hh, h, trans_a=True),
            b_ih, b_hh)


def _cell_gradients(dev, grad_pre_ih, grad_pre_hh, x, h, w_ih, w_hh, grad_h_direct=None):
    """(grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh) of one cell step;
    grad_h_direct, when given, is added to grad_h (in place)."""
    grad_h = gemm(dev, grad_pre_hh, w_hh, out=grad_h_direct,
                  beta=0.0 if grad_h_direct is None else 1.0)
    return (gemm(dev, grad_pre_ih, w_ih), grad_h,
            *_weight_gradients(dev, grad_pre_ih, grad_pre_hh, x, h))


# ---------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------


def _cell_inputs(dev, op, cell, x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    x, h, w_ih, w_hh = (as_contiguous(dev, a) for a in (x, h, w_ih, w_hh))
    shapes = _Shapes(op, cell, x, w_ih, w_hh)
    shapes.state(op, "h", h)
    return shapes, x, h, w_ih, w_hh, shapes.bias(op, "b_ih", b_ih), shapes.bias(op, "b_hh", b_hh)


def _elman_cell_forward(dev, cell, x, h, w_ih, w_hh, b_ih, b_hh):
    shapes, x, h, w_ih, w_hh, b_ih, b_hh = _cell_inputs(
        dev, f"{cell}_cell_forward", cell, x, h, w_ih, w_hh, b_ih, b_hh)
    h_new = dev.xp.empty_like(h)
    _elman_step(dev, cell, shapes, _projection(dev, x, w_ih, b_ih), h, w_hh, b_hh, h_new)
    return h_new


def _elman_cell_backward(dev, cell, grad_h_new, x, h, w_ih, w_hh, h_new):
    op = f"{cell}_cell_backward"
    shapes, x, h, w_ih, w_hh, _, _ = _cell_inputs(dev, op, cell, x, h, w_ih, w_hh)
    grad_h_new = shapes.state(op, "grad_h_new", as_contiguous(dev, grad_h_new))
    h_new = shapes.state(op, "h_new", as_contiguous(dev, h_new))
    grad_pre = dev.xp.empty_like(h_new)
    _elman_step_backward(dev, cell, shapes, grad_h_new, None, h_new, grad_pre)
    return _cell_gradients(dev, grad_pre, grad_pre, x, h, w_ih, w_hh)


def rnn_tanh_cell_forward(dev, x, h, w_ih, w_hh, b_ih, b_hh):
    return _elman_cell_forward(dev, "rnn_tanh", x, h, w_ih, w_hh, b_ih, b_hh)


def rnn_tanh_cell_backward(dev, grad_h_new, x, h, w_ih, w_hh, h_new):
    return _elman_cell_backward(dev, "rnn_tanh", grad_h_new, x, h, w_ih, w_hh, h_new)


def rnn_relu_cell_forward(dev, x, h, w_ih, w_hh, b_ih, b_hh):
    return _elman_cell_forward(dev, "rnn_relu", x, h, w_ih, w_hh, b_ih, b_hh)


def rnn_relu_cell_backward(dev, grad_h_new, x, h, w_ih, w_hh, h_new):
    return _elman_cell_backward(dev, "rnn_relu", grad_h_new, x, h, w_ih, w_hh, h_new)


def lstm_cell_forward(dev, x, h, c, w_ih, w_hh, b_ih, b_hh):
    op = "lstm_cell_forward"
    shapes, x, h, w_ih, w_hh, b_ih, b_hh = _cell_inputs(dev, op, "lstm", x, h, w_ih, w_hh, b_ih,
                                                        b_hh)
    c = shapes.state(op, "c", as_contiguous(dev, c))
    xp = dev.xp
    h_new, c_new = xp.empty_like(h), xp.empty_like(h)
    gates = xp.empty((shapes.batch, 4 * shapes.hidden), dtype=shapes.dtype)
    _lstm_step(dev, shapes, _projection(dev, x, w_ih, b_ih), h, c, w_hh, b_hh, h_new, c_new,
               gates)
    return h_new, c_new, gates


def lstm_cell_backward(dev, grad_h_new, grad_c_new, x, h, c, w_ih, w_hh, gates, c_new):
    op = "lstm_cell_backward"
    shapes, x, h, w_ih, w_hh, _, _ = _cell_inputs(dev, op, "lstm", x, h, w_ih, w_hh)
    grad_h_new, grad_c_new, c, c_new = (
        shapes.state(op, name, as_contiguous(dev, a))
        for name, a in (("grad_h_new", grad_h_new), ("grad_c_new", grad_c_new), ("c", c),
                        ("c_new", c_new)))
    gates = operand(f"{op}: gates", as_contiguous(dev, gates), shapes.dtype,
                    (shapes.batch, 4 * shapes.hidden))
    grad_pre = dev.xp.empty_like(gates)
    grad_c = _lstm_step_backward(dev, shapes, grad_h_new, None, grad_c_new, c, gates, c_new,
                                 grad_pre)
    grad_x, grad_h, *weights = _cell_gradients(dev, grad_pre, grad_pre, x, h, w_ih, w_hh)
    return (grad_x, grad_h, grad_c, *weights)


def gru_cell_forward(dev, x, h, w_ih, w_hh, b_ih, b_hh):
    shapes, x, h, w_ih, w_hh, b_ih, b_hh = _cell_inputs(dev, "gru_cell_forward", "gru", x, h,
                                                        w_ih, w_hh, b_ih, b_hh)
    h_new = dev.xp.empty_like(h)
    workspace = dev.xp.empty((shapes.batch, 4 * shapes.hidden), dtype=shapes.dtype)
    _gru_step(dev, shapes, _projection(dev, x, w_ih, b_ih), h, w_hh, b_hh, h_new, workspace)
    return h_new, workspace


def gru_cell_backward(dev, grad_h_new, x, h, w_ih, w_hh, workspace):
    op = "gru_cell_backward"
    shapes, x, h, w_ih, w_hh, _, _ = _cell_inputs(dev, op, "gru", x, h, w_ih, w_hh)
    grad_h_new = shapes.state(op, "grad_h_new", as_contiguous(dev, grad_h_new))
    workspace = operand(f"{op}: workspace", as_contiguous(dev, workspace), shapes.dtype,
                        (shapes.batch, 4 * shapes.hidden))
    xp = dev.xp
    grad_pre_ih = xp.empty((shapes.batch, 3 * shapes.hidden), dtype=shapes.dtype)
    grad_pre_hh = xp.empty_like(grad_pre_ih)
    direct = _gru_step_backward(dev, shapes, grad_h_new, None, h, workspace, grad_pre_ih,
                                grad_pre_hh)
    return _cell_gradients(dev, grad_pre_ih, grad_pre_hh, x, h, w_ih, w_hh, direct)


# ---------------------------------------------------------------------------------------------
# sequence layers (time-major x (L, B, I); steps L-1 .. 0 with reverse)
# ---------------------------------------------------------------------------------------------


def _order(length, reverse):
    """Time steps in processing order."""
    return range(length - 1, -1, -1) if reverse else range(length)


def _before(t, length, reverse, all_states, initial):
    """The state step t starts from: the previous step's, or the initial one."""
    p = t + 1 if reverse else t - 1
    return all_states[p] if 0 <= p < length else initial


def _states_before(dev, all_states, initial, reverse):
    """(L, B, Hd): for every step the state it started from (device copies)."""
    before = dev.xp.empty_like(all_states)
    if len(all_states):
        if reverse:
            before[:-1], before[-1] = all_states[1:], initial
        else:
            before[1:], before[0] = all_states[:-1], initial
    return before


def _flat(array):
    """(L, B, F) -> (L*B, F), a view of the contiguous array."""
    return array.reshape(array.shape[0] * array.shape[1], array.shape[2])


def _sequence_inputs(dev, op, cell, x, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    x, h0, w_ih, w_hh = (as_contiguous(dev, a) for a in (x, h0, w_ih, w_hh))
    if x.ndim != 3:
        raise ValueError(f"{op}: x must be (L, B, I), got shape {tuple(x.shape)}")
    shapes = _Shapes(op, cell, x, w_ih, w_hh)
    shapes.state(op, "h0", h0)
    return shapes, x, h0, w_ih, w_hh, shapes.bias(op, "b_ih", b_ih), shapes.bias(op, "b_hh", b_hh)


def _input_projections(dev, shapes, x, w_ih, b_ih):
    """x @ w_ih^T + b_ih for all steps at once: (L, B, G*Hd)."""
    return _projection(dev, _flat(x), w_ih, b_ih).reshape(x.shape[0], shapes.batch,
                                                           w_ih.shape[0])


def _sequence_grads(dev, op, shapes, length, named):
    """The (L, B, Hd) per-step / (B, Hd) final-state gradients, checked and contiguous."""
    return [shapes.state(op, name, as_contiguous(dev, a), (length,) if per_step else ())
            for name, a, per_step in named]


def _sequence_gradients(dev, grad_pre_ih, grad_pre_hh, x, states_before, w_ih, input_grad):
    """(grad_x (L, B, I) or None, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh) of all steps."""
    flat_ih = _flat(grad_pre_ih)
    flat_hh = flat_ih if grad_pre_hh is grad_pre_ih else _flat(grad_pre_hh)
    grad_x = gemm(dev, flat_ih, w_ih).reshape(x.shape) if input_grad else None
    return (grad_x, *_weight_gradients(dev, flat_ih, flat_hh, _flat(x), _flat(states_before)))


def _elman_sequence_forward(dev, cell, x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    shapes, x, h0, w_ih, w_hh, b_ih, b_hh = _sequence_inputs(
        dev, f"{cell}_sequence_forward", cell, x, h0, w_ih, w_hh, b_ih, b_hh)
    pre_ih = _input_projections(dev, shapes, x, w_ih, b_ih)
    out = dev.xp.empty((x.shape[0], shapes.batch, shapes.hidden), dtype=shapes.dtype)
    h = h0
    for t in _order(x.shape[0], reverse):
        _elman_step(dev, cell, shapes, pre_ih[t], h, w_hh, b_hh, out[t])
        h = out[t]
    return out, h.copy()


def _elman_sequence_backward(dev, cell, grad_out, grad_h_n, x, h0, w_ih, w_hh, out, reverse,
                             input_grad):
    op = f"{cell}_sequence_backward"
    shapes, x, h0, w_ih, w_hh, _, _ = _sequence_inputs(dev, op, cell, x, h0, w_ih, w_hh)
    length = x.shape[0]
    grad_out, grad_h_n, out = _sequence_grads(dev, op, shapes, length, (
        ("grad_out", grad_out, True), ("grad_h_n", grad_h_n, False), ("out", out, True)))
    grad_pre = dev.xp.empty_like(out)
    carry = grad_h_n
    for t in reversed(_order(length, reverse)):
        _elman_step_backward(dev, cell, shapes, grad_out[t], carry, out[t], grad_pre[t])
        carry = gemm(dev, grad_pre[t], w_hh)
    grad_x, *weights = _sequence_gradients(dev, grad_pre, grad_pre, x,
                                           _states_before(dev, out, h0, reverse), w_ih,
                                           input_grad)
    return (grad_x, carry.copy() if carry is grad_h_n else carry, *weights)


def rnn_tanh_sequence_forward(dev, x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    return _elman_sequence_forward(dev, "rnn_tanh", x, h0, w_ih, w_hh, b_ih, b_hh, reverse)


def rnn_tanh_sequence_backward(dev, grad_out, grad_h_n, x, h0, w_ih, w_hh, out, reverse,
                               input_grad):
    return _elman_sequence_backward(dev, "rnn_tanh", grad_out, grad_h_n, x, h0, w_ih, w_hh, out,
                                    reverse, input_grad)


def rnn_relu_sequence_forward(dev, x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    return _elman_sequence_forward(dev, "rnn_relu", x, h0, w_ih, w_hh, b_ih, b_hh, reverse)


def rnn_relu_sequence_backward(dev, grad_out, grad_h_n, x, h0, w_ih, w_hh, out, reverse,
                               input_grad):
    return _elman_sequence_backward(dev, "rnn_relu", grad_out, grad_h_n, x, h0, w_ih, w_hh, out,
                                    reverse, input_grad)


def lstm_sequence_forward(dev, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
    op = "lstm_sequence_forward"
    shapes, x, h0, w_ih, w_hh, b_ih, b_hh = _sequence_inputs(dev, op, "lstm", x, h0, w_ih, w_hh,
                                                             b_ih, b_hh)
    c0 = shapes.state(op, "c0", as_contiguous(dev, c0))
    length = x.shape[0]
    pre_ih = _input_projections(dev, shapes, x, w_ih, b_ih)
    xp = dev.xp
    out = xp.empty((length, shapes.batch, shapes.hidden), dtype=shapes.dtype)
    c_all = xp.empty_like(out)
    gates = xp.empty((length, shapes.batch, 4 * shapes.hidden), dtype=shapes.dtype)
    h, c = h0, c0
    for t in _order(length, reverse):
        _lstm_step(dev, shapes, pre_ih[t], h, c, w_hh, b_hh, out[t], c_all[t], gates[t])
        h, c = out[t], c_all[t]
    return out, h.copy(), c.copy(), gates, c_all


def lstm_sequence_backward(dev, grad_out, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, out, gates,
                           c_all, reverse, input_grad):
    op = "lstm_sequence_backward"
    shapes, x, h0, w_ih, w_hh, _, _ = _sequence_inputs(dev, op, "lstm", x, h0, w_ih, w_hh)
    length = x.shape[0]
    grad_out, grad_h_n, grad_c_n, c0, out, c_all = _sequence_grads(dev, op, shapes, length, (
        ("grad_out", grad_out, True), ("grad_h_n", grad_h_n, False),
        ("grad_c_n", grad_c_n, False), ("c0", c0, False), ("out", out, True),
        ("c_all", c_all, True)))
    gates = operand(f"{op}: gates", as_contiguous(dev, gates), shapes.dtype,
                    (length, shapes.batch, 4 * shapes.hidden))
    grad_pre = dev.xp.empty_like(gates)
    carry, grad_c = grad_h_n, grad_c_n
    for t in reversed(_order(length, reverse)):
        c_before = _before(t, length, reverse, c_all, c0)
        grad_c = _lstm_step_backward(dev, shapes, grad_out[t], carry, grad_c, c_before, gates[t],
                                     c_all[t], grad_pre[t])
        carry = gemm(dev, grad_pre[t], w_hh)
    grad_x, *weights = _sequence_gradients(dev, grad_pre, grad_pre, x,
                                           _states_before(dev, out, h0, reverse), w_ih,
                                           input_grad)
    return (grad_x, carry.copy() if carry is grad_h_n else carry,
            grad_c.copy() if grad_c is grad_c_n else grad_c, *weights)


def gru_sequence_forward(dev, x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    shapes, x, h0, w_ih, w_hh, b_ih, b_hh = _sequence_inputs(
        dev, "gru_sequence_forward", "gru", x, h0, w_ih, w_hh, b_ih, b_hh)
    length = x.shape[0]
    pre_ih = _input_projections(dev, shapes, x, w_ih, b_ih)
    xp = dev.xp
    out = xp.empty((length, shapes.batch, shapes.hidden), dtype=shapes.dtype)
    workspace = xp.empty((length, shapes.batch, 4 * shapes.hidden), dtype=shapes.dtype)
    h = h0
    for t in _order(length, reverse):
        _gru_step(dev, shapes, pre_ih[t], h, w_hh, b_hh, out[t], workspace[t])
        h = out[t]
    return out, h.copy(), workspace


def gru_sequence_backward(dev, grad_out, grad_h_n, x, h0, w_ih, w_hh, out, workspace, reverse,
                          input_grad):
    op = "gru_sequence_backward"
    shapes, x, h0, w_ih, w_hh, _, _ = _sequence_inputs(dev, op, "gru", x, h0, w_ih, w_hh)
    length = x.shape[0]
    grad_out, grad_h_n, out = _sequence_grads(dev, op, shapes, length, (
        ("grad_out", grad_out, True), ("grad_h_n", grad_h_n, False), ("out", out, True)))
    workspace = operand(f"{op}: workspace", as_contiguous(dev, workspace), shapes.dtype,
                        (length, shapes.batch, 4 * shapes.hidden))
    xp = dev.xp
    grad_pre_ih = xp.empty((length, shapes.batch, 3 * shapes.hidden), dtype=shapes.dtype)
    grad_pre_hh = xp.empty_like(grad_pre_ih)
    carry = grad_h_n
    for t in reversed(_order(length, reverse)):
        h_before = _before(t, length, reverse, out, h0)
        direct = _gru_step_backward(dev, shapes, grad_out[t], carry, h_before, workspace[t],
                                    grad_pre_ih[t], grad_pre_hh[t])
        carry = gemm(dev, grad_pre_hh[t], w_hh, out=direct, beta=1.0)
    grad_x, *weights = _sequence_gradients(dev, grad_pre_ih, grad_pre_hh, x,
                                           _states_before(dev, out, h0, reverse), w_ih,
                                           input_grad)
    return (grad_x, carry.copy() if carry is grad_h_n else carry, *weights)
