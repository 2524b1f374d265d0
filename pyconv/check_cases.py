"""The fixed cases of ``pyconv check``: every kernel of the backend contract on small seeded
inputs, each with PyTorch's version of the same computation for a second opinion.

A :class:`Case` is a family's ``data(rng)`` (a dict of float64 arrays and ints: the forward's
inputs plus whatever a backward kernel needs, such as an upstream gradient), ``derive(d)``
(adds, in place, what the reference computes from those inputs once they are rounded to the
dtype under test, such as a saved forward output), ``args(d)`` (the
kernel's positional arguments taken from that dict), ``outputs(args, returned)`` (the arrays to
compare, including in-place results such as optimizer state) and ``torch(th, d)`` (the expected
outputs from ``torch`` on the same data as float64 tensors, ``None`` for an output PyTorch has no
counterpart of). Shapes stay tiny because the ``simt`` backend emulates every GPU thread.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import numpy as np

from .backends import numpy_ref as ref


def _returned(args, result):
    return result if isinstance(result, tuple) else (result,)


class Case(NamedTuple):
    """One kernel on one fixed input; see the module docstring."""

    kernel: str
    label: str
    data: Callable
    args: Callable
    torch: Optional[Callable] = None
    outputs: Callable = _returned
    derive: Optional[Callable] = None


def _vjp(th, f, inputs, grads, wrt):
    """Gradients of ``f(*inputs)`` (one tensor or a tuple) against ``grads``, with respect to the
    inputs at positions ``wrt``; zeros for an input the outputs do not depend on."""
    inputs = [t.detach().clone().requires_grad_(i in wrt) if t is not None else None
              for i, t in enumerate(inputs)]
    outs = f(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    chosen = [inputs[i] for i in wrt]
    found = th.autograd.grad(outs, chosen, grads, allow_unused=True)
    return tuple(th.zeros_like(t) if g is None else g for t, g in zip(chosen, found))


def _normal(rng, *shape, scale=1.0):
    return rng.standard_normal(shape) * scale


# ----- conv2d and conv_transpose2d -------------------------------------------------------------


def _conv_family(prefix, label, data, forward_args, geometry, op):
    """The forward, backward_input and backward_weight cases of conv2d or conv_transpose2d;
    ``op(th, x, w, b)`` is PyTorch's forward, differentiated for the two backward kernels."""
    def gradient(th, d, wrt):
        return _vjp(th, lambda x, w: op(th, x, w, d["b"]), [d["x"], d["w"]], d["gy"], [wrt])

    return [
        Case(f"{prefix}_forward", label, data, forward_args,
             lambda th, d: (op(th, d["x"], d["w"], d["b"]),)),
        Case(f"{prefix}_backward_input", label, data,
             lambda d: (d["gy"], d["w"], d["x"].shape) + geometry,
             lambda th, d: gradient(th, d, 0)),
        Case(f"{prefix}_backward_weight", label, data,
             lambda d: (d["gy"], d["x"], d["w"].shape) + geometry,
             lambda th, d: gradient(th, d, 1)),
    ]


def _conv_cases(label, x_shape, w_shape, stride, padding, dilation, groups, bias):
    top, bottom, left, right = padding

    def data(rng):
        d = {"x": _normal(rng, *x_shape), "w": _normal(rng, *w_shape, scale=0.5),
             "b": _normal(rng, w_shape[0]) if bias else None}
        y = ref.conv2d_forward(d["x"], d["w"], d["b"], stride, padding, dilation, groups)
        d["gy"] = _normal(rng, *y.shape)
        return d

    def conv(th, x, w, b):
        x = th.nn.functional.pad(x, (left, right, top, bottom))
        return th.nn.functional.conv2d(x, w, b, stride, 0, dilation, groups)

    geometry = (stride, padding, dilation, groups)
    return _conv_family("conv2d", label, data, lambda d: (d["x"], d["w"], d["b"]) + geometry,
                        geometry, conv)


def _conv_transpose_cases(label, x_shape, w_shape, stride, padding, output_padding, dilation,
                          groups, bias):
    def data(rng):
        k = w_shape[1] * groups
        d = {"x": _normal(rng, *x_shape), "w": _normal(rng, *w_shape, scale=0.5),
             "b": _normal(rng, k) if bias else None}
        y = ref.conv_transpose2d_forward(d["x"], d["w"], d["b"], stride, padding, output_padding,
                                         dilation, groups)
        d["gy"] = _normal(rng, *y.shape)
        return d

    def deconv(th, x, w, b):
        return th.nn.functional.conv_transpose2d(x, w, b, stride, padding, output_padding, groups,
                                                 dilation)

    return _conv_family(
        "conv_transpose2d", label, data,
        lambda d: (d["x"], d["w"], d["b"], stride, padding, output_padding, dilation, groups),
        (stride, padding, dilation, groups), deconv)


# ----- pooling ---------------------------------------------------------------------------------


def _max_pool_cases(label, x_shape, kernel_size, stride, padding, dilation, ceil_mode):
    options = (kernel_size, stride, padding, dilation, ceil_mode)

    def data(rng):
        d = {"x": _normal(rng, *x_shape)}
        d["gy"] = _normal(rng, *ref.max_pool2d_forward(d["x"], *options)[0].shape)
        return d

    def derive(d):
        d["idx"] = ref.max_pool2d_forward(d["x"], *options)[1]

    def pool(th, x):
        return th.nn.functional.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode,
                                           return_indices=True)

    return [
        Case("max_pool2d_forward", label, data,
             lambda d: (d["x"],) + options, lambda th, d: pool(th, d["x"])),
        Case("max_pool2d_backward", label, data,
             lambda d: (d["gy"], d["idx"], d["x"].shape, kernel_size, stride, padding, dilation),
             lambda th, d: _vjp(th, lambda x: pool(th, x)[0], [d["x"]], d["gy"], [0]),
             derive=derive),
    ]


def _avg_pool_cases(label, x_shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                    divisor_override):
    options = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)

    def data(rng):
        d = {"x": _normal(rng, *x_shape)}
        d["gy"] = _normal(rng, *ref.avg_pool2d_forward(d["x"], *options).shape)
        return d

    def pool(th, x):
        return th.nn.functional.avg_pool2d(x, *options)

    return [
        Case("avg_pool2d_forward", label, data, lambda d: (d["x"],) + options,
             lambda th, d: (pool(th, d["x"]),)),
        Case("avg_pool2d_backward", label, data, lambda d: (d["gy"], d["x"].shape) + options,
             lambda th, d: _vjp(th, lambda x: pool(th, x), [d["x"]], d["gy"], [0])),
    ]


def _adaptive_pool_cases(label, x_shape, output_size):
    def data(rng):
        n, c = x_shape[:2]
        return {"x": _normal(rng, *x_shape), "gy": _normal(rng, n, c, *output_size)}

    def pool(th, x):
        return th.nn.functional.adaptive_avg_pool2d(x, output_size)

    return [
        Case("adaptive_avg_pool2d_forward", label, data, lambda d: (d["x"], output_size),
             lambda th, d: (pool(th, d["x"]),)),
        Case("adaptive_avg_pool2d_backward", label, data, lambda d: (d["gy"], d["x"].shape),
             lambda th, d: _vjp(th, lambda x: pool(th, x), [d["x"]], d["gy"], [0])),
    ]


# ----- softmax and losses ----------------------------------------------------------------------


def _softmax_cases(label, shape, dim, offset):
    """``offset`` shifts every input: 1e4 overflows exp() unless the kernel subtracts the max."""
    def data(rng):
        return {"x": _normal(rng, *shape) + offset, "gy": _normal(rng, *shape)}

    def derive(d):
        d["y"] = ref.softmax_forward(d["x"], dim)
        d["logy"] = ref.log_softmax_forward(d["x"], dim)

    def softmax(th, x):
        return th.softmax(x, dim)

    def log_softmax(th, x):
        return th.log_softmax(x, dim)

    return [
        Case("softmax_forward", label, data, lambda d: (d["x"], dim),
             lambda th, d: (softmax(th, d["x"]),)),
        Case("softmax_backward", label, data, lambda d: (d["gy"], d["y"], dim),
             lambda th, d: _vjp(th, lambda x: softmax(th, x), [d["x"]], d["gy"], [0]),
             derive=derive),
        Case("log_softmax_forward", label, data, lambda d: (d["x"], dim),
             lambda th, d: (log_softmax(th, d["x"]),)),
        Case("log_softmax_backward", label, data, lambda d: (d["gy"], d["logy"], dim),
             lambda th, d: _vjp(th, lambda x: log_softmax(th, x), [d["x"]], d["gy"], [0]),
             derive=derive),
    ]


def _class_targets(rng, m, c, ignore_index, ignored_rows):
    target = rng.integers(0, c, size=m).astype(np.int64)
    target[list(ignored_rows)] = ignore_index
    return target


def _loss_gradient(rng, reduction, shape):
    return np.asarray(rng.standard_normal(shape if reduction == "none" else ()))


def _cross_entropy_cases(label, m, c, weighted, reduction, ignore_index, ignored_rows,
                         smoothing):
    def data(rng):
        d = {"logits": _normal(rng, m, c, scale=2.0),
             "t": _class_targets(rng, m, c, ignore_index, ignored_rows),
             "wt": rng.uniform(0.5, 2.0, c) if weighted else None,
             "gl": _loss_gradient(rng, reduction, (m,))}
        return d

    def derive(d):
        d["lp"] = ref.log_softmax_forward(d["logits"], 1)

    def loss(th, logits, d):
        return th.nn.functional.cross_entropy(logits, d["t"], d["wt"], ignore_index=ignore_index,
                                              reduction=reduction, label_smoothing=smoothing)

    return [
        Case("cross_entropy_forward", label, data,
             lambda d: (d["logits"], d["t"], d["wt"], reduction, ignore_index, smoothing),
             lambda th, d: (loss(th, d["logits"], d), th.log_softmax(d["logits"], 1))),
        Case("cross_entropy_backward", label, data,
             lambda d: (d["gl"], d["lp"], d["t"], d["wt"], reduction, ignore_index, smoothing),
             lambda th, d: _vjp(th, lambda x: loss(th, x, d), [d["logits"]], d["gl"], [0]),
             derive=derive),
    ]


def _nll_cases(label, m, c, weighted, reduction, ignore_index, ignored_rows):
    def data(rng):
        return {"lp": ref.log_softmax_forward(_normal(rng, m, c), 1),
                "t": _class_targets(rng, m, c, ignore_index, ignored_rows),
                "wt": rng.uniform(0.5, 2.0, c) if weighted else None,
                "gl": _loss_gradient(rng, reduction, (m,))}

    def loss(th, lp, d):
        return th.nn.functional.nll_loss(lp, d["t"], d["wt"], ignore_index=ignore_index,
                                         reduction=reduction)

    return [
        Case("nll_loss_forward", label, data,
             lambda d: (d["lp"], d["t"], d["wt"], reduction, ignore_index),
             lambda th, d: (loss(th, d["lp"], d),)),
        Case("nll_loss_backward", label, data,
             lambda d: (d["gl"], d["t"], d["wt"], d["lp"].shape, reduction, ignore_index),
             lambda th, d: _vjp(th, lambda x: loss(th, x, d), [d["lp"]], d["gl"], [0])),
    ]


def _mse_cases(label, shape, reduction):
    def data(rng):
        return {"x": _normal(rng, *shape), "t": _normal(rng, *shape),
                "gl": _loss_gradient(rng, reduction, shape)}

    def loss(th, x, t):
        return th.nn.functional.mse_loss(x, t, reduction=reduction)

    return [
        Case("mse_loss_forward", label, data, lambda d: (d["x"], d["t"], reduction),
             lambda th, d: (loss(th, d["x"], d["t"]),)),
        Case("mse_loss_backward", label, data, lambda d: (d["gl"], d["x"], d["t"], reduction),
             lambda th, d: _vjp(th, lambda x, t: loss(th, x, t), [d["x"], d["t"]], d["gl"],
                                [0, 1])),
    ]


def _bce_cases(label, shape, weight_shape, reduction):
    def data(rng):
        return {"x": rng.uniform(0.05, 0.95, shape), "t": rng.uniform(0.0, 1.0, shape),
                "wt": rng.uniform(0.5, 2.0, weight_shape) if weight_shape else None,
                "gl": _loss_gradient(rng, reduction, shape)}

    def loss(th, x, d):
        return th.nn.functional.binary_cross_entropy(x, d["t"], d["wt"], reduction=reduction)

    return [
        Case("binary_cross_entropy_forward", label, data,
             lambda d: (d["x"], d["t"], d["wt"], reduction),
             lambda th, d: (loss(th, d["x"], d),)),
        Case("binary_cross_entropy_backward", label, data,
             lambda d: (d["gl"], d["x"], d["t"], d["wt"], reduction),
             lambda th, d: _vjp(th, lambda x: loss(th, x, d), [d["x"]], d["gl"], [0])),
    ]


def _bce_logits_cases(label, shape, weight_shape, pos_weight, reduction):
    def data(rng):
        return {"x": _normal(rng, *shape, scale=3.0), "t": rng.uniform(0.0, 1.0, shape),
                "wt": rng.uniform(0.5, 2.0, weight_shape) if weight_shape else None,
                "pw": rng.uniform(0.5, 3.0, shape[-1]) if pos_weight else None,
                "gl": _loss_gradient(rng, reduction, shape)}

    def loss(th, x, t, d):
        return th.nn.functional.binary_cross_entropy_with_logits(
            x, t, d["wt"], reduction=reduction, pos_weight=d["pw"])

    return [
        Case("binary_cross_entropy_with_logits_forward", label, data,
             lambda d: (d["x"], d["t"], d["wt"], d["pw"], reduction),
             lambda th, d: (loss(th, d["x"], d["t"], d),)),
        Case("binary_cross_entropy_with_logits_backward", label, data,
             lambda d: (d["gl"], d["x"], d["t"], d["wt"], d["pw"], reduction),
             lambda th, d: _vjp(th, lambda x, t: loss(th, x, t, d), [d["x"], d["t"]], d["gl"],
                                [0, 1])),
    ]


# ----- linear, activations, dropout, batch norm --------------------------------------------------


def _linear_cases(label, m, i, o):
    def data(rng):
        return {"x": _normal(rng, m, i), "w": _normal(rng, o, i, scale=0.5), "b": _normal(rng, o),
                "gy": _normal(rng, m, o)}

    def linear(th, x, w):
        return th.nn.functional.linear(x, w)

    return [
        Case("linear_forward", label, data, lambda d: (d["x"], d["w"], d["b"]),
             lambda th, d: (th.nn.functional.linear(d["x"], d["w"], d["b"]),)),
        Case("linear_backward_input", label, data, lambda d: (d["gy"], d["w"]),
             lambda th, d: _vjp(th, lambda x, w: linear(th, x, w), [d["x"], d["w"]], d["gy"], [0])),
        Case("linear_backward_weight", label, data, lambda d: (d["gy"], d["x"]),
             lambda th, d: _vjp(th, lambda x, w: linear(th, x, w), [d["x"], d["w"]], d["gy"], [1])),
    ]


def _activation_cases(name, label, torch_fn, *options, backward_takes="y"):
    """``name_forward(x, *options)`` and ``name_backward(grad_y, y or x, *options)``."""
    forward = getattr(ref, f"{name}_forward")

    def data(rng):
        # away from 0, where relu-like derivatives jump
        x = _normal(rng, 3, 5, scale=2.0)
        x = np.where(np.abs(x) < 0.05, 0.5, x)
        return {"x": x, "gy": _normal(rng, 3, 5)}

    def derive(d):
        d["y"] = forward(d["x"], *options)

    return [
        Case(f"{name}_forward", label, data, lambda d: (d["x"],) + options,
             lambda th, d: (torch_fn(th, d["x"]),)),
        Case(f"{name}_backward", label, data,
             lambda d: (d["gy"], d[backward_takes]) + options,
             lambda th, d: _vjp(th, lambda x: torch_fn(th, x), [d["x"]], d["gy"], [0]),
             derive=derive),
    ]


def _dropout_cases(label, shape, p, seed):
    def data(rng):
        d = {"x": _normal(rng, *shape), "gy": _normal(rng, *shape)}
        d["mask"] = ref.dropout_forward(d["x"], p, seed)[1]
        return d

    # PyTorch's masks come from its own generator: only the reference can judge these two.
    return [
        Case("dropout_forward", label, data, lambda d: (d["x"], p, seed)),
        Case("dropout_backward", label, data, lambda d: (d["gy"], d["mask"], p)),
    ]


def _batch_norm_cases(label, shape, training, momentum, eps):
    def data(rng):
        c = shape[1]
        d = {"x": _normal(rng, *shape, scale=2.0) + 1.0, "w": rng.uniform(0.5, 1.5, c),
             "b": _normal(rng, c), "rm": _normal(rng, c, scale=0.1), "rv": rng.uniform(0.5, 2, c),
             "gy": _normal(rng, *shape)}
        return d

    def derive(d):
        _, d["mean"], d["invstd"] = ref.batch_norm_forward(
            d["x"], d["w"], d["b"], d["rm"].copy(), d["rv"].copy(), training, momentum, eps)

    axes = (0,) + tuple(range(2, len(shape)))

    def torch_forward(th, d):
        rm, rv = d["rm"].clone(), d["rv"].clone()
        y = th.nn.functional.batch_norm(d["x"], rm, rv, d["w"], d["b"], training, momentum, eps)
        if training:
            mean = d["x"].mean(axes)
            var = d["x"].var(axes, unbiased=False)
        else:
            mean, var = d["rm"], d["rv"]
        return y, mean, 1.0 / th.sqrt(var + eps), rm, rv

    def torch_backward(th, d):
        stats = (None, None) if training else (d["mean"], 1.0 / d["invstd"] ** 2 - eps)

        def bn(x, w, b):
            return th.nn.functional.batch_norm(x, *stats, w, b, training, momentum, eps)

        return _vjp(th, bn, [d["x"], d["w"], d["b"]], d["gy"], [0, 1, 2])

    return [
        Case("batch_norm_forward", label, data,
             lambda d: (d["x"], d["w"], d["b"], d["rm"], d["rv"], training, momentum, eps),
             torch_forward, outputs=lambda args, out: tuple(out) + (args[3], args[4])),
        Case("batch_norm_backward", label, data,
             lambda d: (d["gy"], d["x"], d["w"], d["mean"], d["invstd"], training),
             torch_backward, derive=derive),
    ]


# ----- recurrent cells and sequences -------------------------------------------------------------


def _gates_input(th, x, h, w_ih, w_hh, b_ih, b_hh):
    return x @ w_ih.T + b_ih + h @ w_hh.T + b_hh


def _torch_lstm_cell(th, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """(h', c', activated gates i f g o) with PyTorch's own cell for the states."""
    h_new, c_new = th.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
    i, f, g, o = _gates_input(th, x, h, w_ih, w_hh, b_ih, b_hh).chunk(4, 1)
    gates = th.cat([th.sigmoid(i), th.sigmoid(f), th.tanh(g), th.sigmoid(o)], 1)
    return h_new, c_new, gates


def _torch_gru_cell(th, x, h, w_ih, w_hh, b_ih, b_hh):
    """(h', [r, z, n, W_hn h + b_hn]) with PyTorch's own cell for the state."""
    h_new = th.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)
    xr, xz, xn = (x @ w_ih.T + b_ih).chunk(3, 1)
    hr, hz, hn = (h @ w_hh.T + b_hh).chunk(3, 1)
    r, z = th.sigmoid(xr + hr), th.sigmoid(xz + hz)
    return h_new, th.cat([r, z, th.tanh(xn + r * hn), hn], 1)


_GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def _rnn_data(kind, rng, batch, inputs, hidden, steps=None):
    g = _GATES[kind] * hidden
    lead = (steps, batch) if steps else (batch,)
    d = {"x": _normal(rng, *lead, inputs), "h": _normal(rng, batch, hidden, scale=0.5),
         "c": _normal(rng, batch, hidden, scale=0.5), "w_ih": _normal(rng, g, inputs, scale=0.4),
         "w_hh": _normal(rng, g, hidden, scale=0.4), "b_ih": _normal(rng, g, scale=0.2),
         "b_hh": _normal(rng, g, scale=0.2), "gh": _normal(rng, batch, hidden),
         "gc": _normal(rng, batch, hidden)}
    if steps:
        d["gout"] = _normal(rng, steps, batch, hidden)
    return d


def _weights(d):
    return d["w_ih"], d["w_hh"], d["b_ih"], d["b_hh"]


def _pick(d, keys):
    return tuple(d[k] for k in keys)


def _cell_cases(kind, label, batch, inputs, hidden):
    fwd, bwd = f"{kind}_cell_forward", f"{kind}_cell_backward"

    def data(rng):
        return _rnn_data(kind, rng, batch, inputs, hidden)

    def derive(d):
        if kind == "lstm":
            _, d["c_new"], d["saved"] = ref.lstm_cell_forward(d["x"], d["h"], d["c"], *_weights(d))
        elif kind == "gru":
            _, d["saved"] = ref.gru_cell_forward(d["x"], d["h"], *_weights(d))
        else:
            d["saved"] = getattr(ref, fwd)(d["x"], d["h"], *_weights(d))

    def torch_cell(th, x, h, c, w_ih, w_hh, b_ih, b_hh):
        if kind == "lstm":
            return _torch_lstm_cell(th, x, h, c, w_ih, w_hh, b_ih, b_hh)
        if kind == "gru":
            return _torch_gru_cell(th, x, h, w_ih, w_hh, b_ih, b_hh)
        return getattr(th, f"{kind}_cell")(x, h, w_ih, w_hh, b_ih, b_hh)

    def torch_forward(th, d):
        out = torch_cell(th, d["x"], d["h"], d["c"], *_weights(d))
        return out if isinstance(out, tuple) else (out,)

    def torch_backward(th, d):
        parts = [d["x"], d["h"], d["c"], *_weights(d)]
        if kind == "lstm":
            return _vjp(th, lambda *a: torch_cell(th, *a)[:2], parts, (d["gh"], d["gc"]),
                        [0, 1, 2, 3, 4, 5, 6])
        def new_state(*a):
            return torch_cell(th, *a)[0] if kind == "gru" else torch_cell(th, *a)

        return _vjp(th, new_state, parts, d["gh"], [0, 1, 3, 4, 5, 6])

    lstm = kind == "lstm"
    forward_keys = ("x", "h", "c") if lstm else ("x", "h")
    backward = (("gh", "gc") if lstm else ("gh",)) + forward_keys + ("w_ih", "w_hh", "saved") + (
        ("c_new",) if lstm else ())
    return [Case(fwd, label, data, lambda d: _pick(d, forward_keys) + _weights(d), torch_forward),
            Case(bwd, label, data, lambda d: _pick(d, backward), torch_backward, derive=derive)]


def _sequence_cases(kind, label, steps, batch, inputs, hidden, reverse):
    fwd, bwd = f"{kind}_sequence_forward", f"{kind}_sequence_backward"

    def data(rng):
        return _rnn_data(kind, rng, batch, inputs, hidden, steps)

    def derive(d):
        if kind == "lstm":
            d["out"], _, _, d["gates"], d["c_all"] = ref.lstm_sequence_forward(
                d["x"], d["h"], d["c"], *_weights(d), reverse)
        elif kind == "gru":
            d["out"], _, d["ws"] = ref.gru_sequence_forward(d["x"], d["h"], *_weights(d), reverse)
        else:
            d["out"], _ = getattr(ref, fwd)(d["x"], d["h"], *_weights(d), reverse)

    def torch_sequence(th, x, h, c, w_ih, w_hh, b_ih, b_hh):
        """The cells step by step: (out, h_n[, c_n, gates, c_all | workspace])."""
        outs, extra, cells = [None] * steps, [None] * steps, [None] * steps
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        for t in order:
            if kind == "lstm":
                h, c, extra[t] = _torch_lstm_cell(th, x[t], h, c, w_ih, w_hh, b_ih, b_hh)
                cells[t] = c
            elif kind == "gru":
                h, extra[t] = _torch_gru_cell(th, x[t], h, w_ih, w_hh, b_ih, b_hh)
            else:
                h = getattr(th, f"{kind}_cell")(x[t], h, w_ih, w_hh, b_ih, b_hh)
            outs[t] = h
        out = th.stack(outs)
        if kind == "lstm":
            return out, h, c, th.stack(extra), th.stack(cells)
        if kind == "gru":
            return out, h, th.stack(extra)
        return out, h

    def torch_forward(th, d):
        return torch_sequence(th, d["x"], d["h"], d["c"], *_weights(d))

    def torch_backward(th, d):
        parts = [d["x"], d["h"], d["c"], *_weights(d)]
        if kind == "lstm":
            return _vjp(th, lambda *a: torch_sequence(th, *a)[:3], parts,
                        (d["gout"], d["gh"], d["gc"]), [0, 1, 2, 3, 4, 5, 6])
        return _vjp(th, lambda *a: torch_sequence(th, *a)[:2], parts, (d["gout"], d["gh"]),
                    [0, 1, 3, 4, 5, 6])

    lstm = kind == "lstm"
    forward_keys = ("x", "h", "c") if lstm else ("x", "h")
    saved = {"lstm": ("out", "gates", "c_all"), "gru": ("out", "ws")}.get(kind, ("out",))
    backward = ("gout", "gh") + (("gc",) if lstm else ()) + forward_keys + ("w_ih", "w_hh") + saved
    # input_grad=True: every backward kernel also returns grad_x here
    fwd_args = lambda d: _pick(d, forward_keys) + _weights(d) + (reverse,)  # noqa: E731
    bwd_args = lambda d: _pick(d, backward) + (reverse, True)  # noqa: E731
    return [Case(fwd, label, data, fwd_args, torch_forward),
            Case(bwd, label, data, bwd_args, torch_backward, derive=derive)]


# ----- optimizer updates -----------------------------------------------------------------------


def _sgd_case(label, lr, momentum, dampening, nesterov, weight_decay, maximize, first_step):
    def data(rng):
        return {"p": _normal(rng, 3, 4), "g": _normal(rng, 3, 4), "buf": _normal(rng, 3, 4)}

    def torch_step(th, d):
        p = th.nn.Parameter(d["p"].clone())
        p.grad = d["g"].clone()
        opt = th.optim.SGD([p], lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                           weight_decay=weight_decay, maximize=maximize, foreach=False)
        if not first_step:
            opt.state[p]["momentum_buffer"] = d["buf"].clone()
        opt.step()
        return p.detach(), opt.state[p]["momentum_buffer"]

    return [Case("sgd_step", label, data,
                 lambda d: (d["p"], d["g"], d["buf"], lr, momentum, dampening, nesterov,
                            weight_decay, maximize, first_step),
                 torch_step, outputs=lambda args, out: (args[0], args[2]))]


def _adam_case(label, step, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled):
    def data(rng):
        fresh = step == 1
        v = np.zeros((3, 4)) if fresh else rng.uniform(0.01, 1.0, (3, 4))
        return {"p": _normal(rng, 3, 4), "g": _normal(rng, 3, 4),
                "m": np.zeros((3, 4)) if fresh else _normal(rng, 3, 4, scale=0.3), "v": v,
                "vmax": v + rng.uniform(0.0, 0.5, (3, 4)) if amsgrad else None}

    def torch_step(th, d):
        p = th.nn.Parameter(d["p"].clone())
        p.grad = d["g"].clone()
        cls = th.optim.AdamW if decoupled else th.optim.Adam
        opt = cls([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                  maximize=maximize, foreach=False)
        state = {"step": th.tensor(float(step - 1)), "exp_avg": d["m"].clone(),
                 "exp_avg_sq": d["v"].clone()}
        if amsgrad:
            state["max_exp_avg_sq"] = d["vmax"].clone()
        opt.state[p] = state
        opt.step()
        found = opt.state[p]
        return (p.detach(), found["exp_avg"], found["exp_avg_sq"]) + (
            (found["max_exp_avg_sq"],) if amsgrad else ())

    return [Case("adam_step", label, data,
                 lambda d: (d["p"], d["g"], d["m"], d["v"], d["vmax"], step, lr, betas[0],
                            betas[1], eps, weight_decay, amsgrad, maximize, decoupled),
                 torch_step,
                 outputs=lambda args, out: _pick(args, (0, 2, 3, 4) if amsgrad else (0, 2, 3)))]


# ----- the list ----------------------------------------------------------------------------------


def _gelu(approximate):
    return lambda th, x: th.nn.functional.gelu(x, approximate=approximate)


def all_cases() -> list:
    """Every case, in the contract's order of families (built fresh: cases hold no arrays)."""
    cases = []
    cases += _conv_cases("3x3 s1 p1", (2, 3, 5, 5), (4, 3, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1,
                         True)
    cases += _conv_cases("3x3 s2 asym-pad d2 g2", (1, 4, 7, 6), (4, 2, 3, 2), (2, 1),
                         (1, 2, 0, 1), (2, 1), 2, False)
    cases += _conv_transpose_cases("3x3 s2 p1 op1", (1, 3, 3, 4), (3, 2, 3, 3), (2, 2), (1, 1),
                                   (1, 1), (1, 1), 1, True)
    cases += _conv_transpose_cases("2x3 s1 d2 g2", (2, 4, 3, 3), (4, 1, 2, 3), (1, 1), (0, 1),
                                   (0, 0), (2, 1), 2, False)
    cases += _max_pool_cases("3x3 s2 p1 ceil", (2, 2, 6, 7), (3, 3), (2, 2), (1, 1), (1, 1), True)
    cases += _max_pool_cases("2x2 s1 d2", (1, 2, 5, 5), (2, 2), (1, 1), (0, 0), (2, 2), False)
    cases += _avg_pool_cases("3x3 s2 p1 ceil no-pad-count", (2, 2, 6, 7), (3, 3), (2, 2), (1, 1),
                             True, False, None)
    cases += _avg_pool_cases("2x2 s1 divisor=3", (1, 2, 4, 5), (2, 2), (1, 1), (0, 0), False,
                             True, 3)
    cases += _adaptive_pool_cases("7x5->3x2", (2, 2, 7, 5), (3, 2))
    cases += _softmax_cases("dim=1", (3, 5), 1, 0.0)
    cases += _softmax_cases("dim=0 +1e4", (4, 2, 3), 0, 1e4)
    cases += _cross_entropy_cases("weighted mean ignore smoothing=0.1", 5, 4, True, "mean", -100,
                                  (1,), 0.1)
    cases += _cross_entropy_cases("none", 4, 3, False, "none", -100, (), 0.0)
    cases += _nll_cases("weighted mean ignore=2", 5, 4, True, "mean", 2, (3,))
    cases += _nll_cases("sum", 4, 3, False, "sum", -100, ())
    cases += _mse_cases("mean", (3, 4), "mean")
    cases += _mse_cases("none", (2, 3), "none")
    cases += _bce_cases("weighted mean", (3, 4), (4,), "mean")
    cases += _bce_cases("none", (2, 3), None, "none")
    cases += _bce_logits_cases("weight pos_weight sum", (3, 4), (3, 1), True, "sum")
    cases += _bce_logits_cases("none", (2, 3), None, False, "none")
    cases += _linear_cases("3x5 -> 4", 3, 5, 4)
    cases += _activation_cases("relu", "", lambda th, x: th.relu(x))
    cases += _activation_cases("leaky_relu", "slope=0.1",
                               lambda th, x: th.nn.functional.leaky_relu(x, 0.1), 0.1,
                               backward_takes="x")
    cases += _activation_cases("sigmoid", "", lambda th, x: th.sigmoid(x))
    cases += _activation_cases("tanh", "", lambda th, x: th.tanh(x))
    cases += _activation_cases("gelu", "erf", _gelu("none"), "none", backward_takes="x")
    cases += _activation_cases("gelu", "tanh", _gelu("tanh"), "tanh", backward_takes="x")
    cases += _dropout_cases("p=0.3", (4, 5), 0.3, 1234)
    cases += _batch_norm_cases("train", (4, 3, 2, 2), True, 0.1, 1e-5)
    cases += _batch_norm_cases("eval", (3, 2, 3), False, 0.1, 1e-3)
    for kind in ("rnn_tanh", "rnn_relu", "lstm", "gru"):
        cases += _cell_cases(kind, "B3 I4 H5", 3, 4, 5)
    for kind, reverse in (("rnn_tanh", False), ("rnn_relu", True), ("lstm", False),
                          ("gru", True)):
        cases += _sequence_cases(kind, f"L3 B2 I3 H4{' reverse' if reverse else ''}", 3, 2, 3, 4,
                                 reverse)
    cases += _sgd_case("nesterov wd", 0.1, 0.9, 0.0, True, 0.01, False, False)
    cases += _sgd_case("dampening maximize first", 0.05, 0.5, 0.1, False, 0.0, True, True)
    cases += _adam_case("amsgrad wd step 3", 3, 1e-2, (0.9, 0.999), 1e-8, 0.01, True, False, False)
    cases += _adam_case("adamw maximize step 1", 1, 1e-2, (0.8, 0.99), 1e-8, 0.1, False, True,
                        True)
    return cases
