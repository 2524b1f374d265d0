"""The kernel contract: every kernel a backend provides, with its signature and shapes.

A backend is a module exposing each function below under the same name and parameter names.
The op layer (``pyconv/ops``) validates arguments, normalises them (ints become tuples, padding
strings become numbers) and calls only these kernels, through ``ctx.backend``. Kernels therefore
receive:

* arrays of the backend's array module (NumPy for ``numpy``/``cpu``/``simt``, CuPy for
  ``cuda``), floating point, all of one dtype (float32 or float64); not necessarily contiguous;
* integer index/target arrays as int64;
* geometry as tuples of Python ints: ``stride=(sh, sw)``, ``dilation=(dh, dw)``,
  ``kernel_size=(kh, kw)``; conv2d padding as ``(top, bottom, left, right)`` (``'same'`` with an
  even kernel pads asymmetrically), pooling and transposed-conv padding as ``(ph, pw)``.

Kernels return new arrays (or a tuple of them) unless documented as in-place, never hold on to
their inputs, and do not validate what the op layer already checked. Shapes use N batch, C input
channels, K output channels, H/W input height/width, P/Q output height/width, R/S kernel
height/width, G groups, M rows, B batch of an RNN step, I input size, Hd hidden size.

Output sizes follow PyTorch (see :mod:`pyconv.shapes`): conv
``P = (H + top + bottom - dh*(R-1) - 1) // sh + 1``; pooling the same with symmetric padding and,
with ``ceil_mode``, rounding up but dropping a last window that would start in the right padding.

This module is documentation that Python can check: ``KERNELS`` lists the names, and
``tests/test_backend_contract.py`` verifies that every backend implements each one with these
parameter names.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# conv2d and conv_transpose2d
# ---------------------------------------------------------------------------------------------


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups):
    """y[n, k, p, q] = bias[k] + sum_{c, r, s} x_pad[n, g*C/G + c, p*sh + r*dh, q*sw + s*dw]
    * weight[k, c, r, s] with g = k // (K/G).

    x (N, C, H, W); weight (K, C/G, R, S); bias (K,) or None; padding (top, bottom, left, right).
    Returns y (N, K, P, Q).
    """


def conv2d_backward_input(grad_y, weight, input_shape, stride, padding, dilation, groups):
    """Gradient of conv2d_forward with respect to x.

    grad_y (N, K, P, Q); weight (K, C/G, R, S); input_shape = (N, C, H, W) (needed because
    several H give the same P). Input pixels no window touches get 0. Returns grad_x (N, C, H, W).
    """


def conv2d_backward_weight(grad_y, x, weight_shape, stride, padding, dilation, groups):
    """Gradient of conv2d_forward with respect to weight (the bias gradient is grad_y summed over
    N, P, Q and is left to the op layer).

    grad_y (N, K, P, Q); x (N, C, H, W); weight_shape = (K, C/G, R, S). Returns (K, C/G, R, S).
    """


def conv_transpose2d_forward(x, weight, bias, stride, padding, output_padding, dilation, groups):
    """The adjoint of conv2d: y = conv2d_backward_input(x, weight, ...) + bias.

    x (N, C, H, W); weight (C, K/G, R, S) (PyTorch's IOHW layout); bias (K,) or None;
    padding (ph, pw); output_padding (oph, opw). Returns y (N, K, P, Q) with
    P = (H - 1)*sh - 2*ph + dh*(R - 1) + oph + 1.
    """


def conv_transpose2d_backward_input(grad_y, weight, input_shape, stride, padding, dilation,
                                    groups):
    """Gradient of conv_transpose2d_forward with respect to x: a conv2d of grad_y.

    grad_y (N, K, P, Q); weight (C, K/G, R, S); input_shape = (N, C, H, W) (needed because with
    output_padding >= stride, allowed when dilation > output_padding, several H give the same
    P). Returns grad_x (N, C, H, W).
    """


def conv_transpose2d_backward_weight(grad_y, x, weight_shape, stride, padding, dilation, groups):
    """Gradient of conv_transpose2d_forward with respect to weight.

    grad_y (N, K, P, Q); x (N, C, H, W); weight_shape = (C, K/G, R, S). Returns (C, K/G, R, S).
    """


# ---------------------------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------------------------


def max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Max over each window; padding counts as -inf.

    x (N, C, H, W). Returns (y, indices): y (N, C, P, Q); indices int64 (N, C, P, Q), the flat
    position h*W + w of the maximum inside its input plane; the first maximum (row-major order of
    the window) wins ties. A NaN in a window is its maximum.
    """


def max_pool2d_backward(grad_y, indices, input_shape, kernel_size, stride, padding, dilation):
    """Scatter-add grad_y (N, C, P, Q) to the positions in indices (N, C, P, Q), summing in
    output order. input_shape = (N, C, H, W); the window geometry is the forward's (pairs), so
    a kernel may gather per input cell instead of scattering. Returns grad_x (N, C, H, W)."""


def avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override):
    """Window sums divided by divisor_override if given, else by the window size clipped to the
    padded input (count_include_pad=True) or to the real input (False), as PyTorch.

    x (N, C, H, W). Returns y (N, C, P, Q).
    """


def avg_pool2d_backward(grad_y, input_shape, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, divisor_override):
    """Gradient of avg_pool2d_forward. grad_y (N, C, P, Q). Returns grad_x of input_shape."""


def adaptive_avg_pool2d_forward(x, output_size):
    """Window i along an axis of length L spans [floor(i*L/O), ceil((i+1)*L/O)).

    x (N, C, H, W); output_size (P, Q) ints. Returns y (N, C, P, Q).
    """


def adaptive_avg_pool2d_backward(grad_y, input_shape):
    """Gradient of adaptive_avg_pool2d_forward. grad_y (N, C, P, Q). Returns grad_x (N, C, H, W)."""


# ---------------------------------------------------------------------------------------------
# softmax and losses
# ---------------------------------------------------------------------------------------------


def softmax_forward(x, dim):
    """exp(x - max) / sum(exp(x - max)) along dim (an int in [0, ndim)). Any shape; returns the
    same shape. Finite for inputs of +-1e4."""


def softmax_backward(grad_y, y, dim):
    """grad_x = y * (grad_y - sum(grad_y * y, dim)). Shapes as y."""


def log_softmax_forward(x, dim):
    """x - max - log(sum(exp(x - max))) along dim. Any shape; returns the same shape."""


def log_softmax_backward(grad_y, y, dim):
    """grad_x = grad_y - exp(y) * sum(grad_y, dim), y being the log-softmax output."""


def cross_entropy_forward(logits, target, weight, reduction, ignore_index, label_smoothing):
    """Fused log-softmax + negative log-likelihood with class-index targets.

    logits (M, C); target int64 (M,) in [0, C) or == ignore_index; weight (C,) or None;
    reduction 'none' | 'mean' | 'sum'; label_smoothing eps in [0, 1]. Per row with t = target,
    w = weight (or ones) and lp = log_softmax(logits):
    loss = (1 - eps) * w[t] * -lp[t] + eps / C * sum_c w[c] * -lp[c]; ignored rows give 0.
    'mean' divides by sum of w[t] over non-ignored rows (NaN when that is 0, as PyTorch).
    Returns (loss, log_probs): loss () or (M,); log_probs (M, C) saved for the backward.
    """


def cross_entropy_backward(grad_loss, log_probs, target, weight, reduction, ignore_index,
                           label_smoothing):
    """Gradient of cross_entropy_forward with respect to logits.

    grad_loss () or (M,) as the forward's loss. Returns grad_logits (M, C).
    """


def nll_loss_forward(log_probs, target, weight, reduction, ignore_index):
    """loss[m] = -w[t] * log_probs[m, t]; reductions and ignore_index as cross_entropy_forward.

    log_probs (M, C); target int64 (M,). Returns loss () or (M,).
    """


def nll_loss_backward(grad_loss, target, weight, input_shape, reduction, ignore_index):
    """Gradient of nll_loss_forward with respect to log_probs. Returns (M, C) = input_shape."""


def mse_loss_forward(input, target, reduction):
    """(input - target)**2, reduced. input and target of one shape. Returns () or input's shape."""


def mse_loss_backward(grad_loss, input, target, reduction):
    """Returns (grad_input, grad_target), each input's shape."""


def binary_cross_entropy_forward(input, target, weight, reduction):
    """-w * (t * log(x) + (1 - t) * log(1 - x)) with each log clamped to >= -100 (as PyTorch).

    input (probabilities), target, and weight (broadcastable to input, or None). Returns () or
    input's shape.
    """


def binary_cross_entropy_backward(grad_loss, input, target, weight, reduction):
    """Gradient with respect to input: w * (x - t) / max(x * (1 - x), 1e-12). Returns input's shape."""


def binary_cross_entropy_with_logits_forward(input, target, weight, pos_weight, reduction):
    """-w * (pw * t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x))), computed stably.

    input (logits) and target of one shape; weight broadcastable to input or None; pos_weight
    broadcastable along the last (class) dim or None. Returns () or input's shape.
    """


def binary_cross_entropy_with_logits_backward(grad_loss, input, target, weight, pos_weight,
                                              reduction):
    """Returns (grad_input, grad_target), each input's shape."""


# ---------------------------------------------------------------------------------------------
# linear
# ---------------------------------------------------------------------------------------------


def linear_forward(x, weight, bias):
    """y = x @ weight.T + bias. x (M, I); weight (O, I); bias (O,) or None. Returns y (M, O)."""


def linear_backward_input(grad_y, weight):
    """grad_x = grad_y @ weight. grad_y (M, O); weight (O, I). Returns (M, I)."""


def linear_backward_weight(grad_y, x):
    """grad_weight = grad_y.T @ x. grad_y (M, O); x (M, I). Returns (O, I)."""


# ---------------------------------------------------------------------------------------------
# activations, dropout, batch norm
# ---------------------------------------------------------------------------------------------


def relu_forward(x):
    """max(x, 0), any shape."""


def relu_backward(grad_y, y):
    """grad_y where y > 0, else 0."""


def leaky_relu_forward(x, negative_slope):
    """x if x > 0 else negative_slope * x."""


def leaky_relu_backward(grad_y, x, negative_slope):
    """grad_y if x > 0 else negative_slope * grad_y."""


def sigmoid_forward(x):
    """1 / (1 + exp(-x)), without overflow for large |x|."""


def sigmoid_backward(grad_y, y):
    """grad_y * y * (1 - y)."""


def tanh_forward(x):
    """tanh(x)."""


def tanh_backward(grad_y, y):
    """grad_y * (1 - y**2)."""


def gelu_forward(x, approximate):
    """x * Phi(x) (approximate='none', erf form) or the tanh approximation ('tanh')."""


def gelu_backward(grad_y, x, approximate):
    """Gradient of gelu_forward with respect to x."""


def dropout_forward(x, p, seed):
    """Zero each element with probability p and scale the rest by 1/(1-p); 0 < p < 1.

    The mask depends only on (seed, element index): same seed, same mask. Returns (y, mask) with
    mask a bool array of x's shape (True = kept).
    """


def dropout_backward(grad_y, mask, p):
    """grad_y * mask / (1 - p)."""


def batch_norm_forward(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """Normalise over every axis but 1 (channels). x (N, C, *); weight, bias (C,) or None;
    running_mean, running_var (C,) or None.

    training=True: use the batch mean and biased variance, and (if running_* are given) update
    them in place: running = (1 - momentum) * running + momentum * batch (unbiased variance).
    training=False: use running_mean / running_var.
    Returns (y, save_mean, save_invstd) with save_invstd = 1/sqrt(var + eps), both (C,).
    """


def batch_norm_backward(grad_y, x, weight, save_mean, save_invstd, training):
    """Gradient of batch_norm_forward. training=True differentiates through the batch
    statistics; training=False treats save_mean/save_invstd as constants.
    Returns (grad_x, grad_weight, grad_bias): grad_x like x, the others (C,)."""


# ---------------------------------------------------------------------------------------------
# recurrent cells (PyTorch equations and gate orders)
# ---------------------------------------------------------------------------------------------


def rnn_tanh_cell_forward(x, h, w_ih, w_hh, b_ih, b_hh):
    """h' = tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh).

    x (B, I); h (B, Hd); w_ih (Hd, I); w_hh (Hd, Hd); b_ih, b_hh (Hd,) or None. Returns h' (B, Hd).
    """


def rnn_tanh_cell_backward(grad_h_new, x, h, w_ih, w_hh, h_new):
    """Returns (grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""


def rnn_relu_cell_forward(x, h, w_ih, w_hh, b_ih, b_hh):
    """h' = relu(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh). Shapes as rnn_tanh_cell_forward."""


def rnn_relu_cell_backward(grad_h_new, x, h, w_ih, w_hh, h_new):
    """Returns (grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""


def lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """Gates i, f, g, o (in that order along w_ih's rows):
    [i f g o] = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh;  i, f, o = sigmoid; g = tanh;
    c' = f * c + i * g;  h' = o * tanh(c').

    x (B, I); h, c (B, Hd); w_ih (4Hd, I); w_hh (4Hd, Hd); b_ih, b_hh (4Hd,) or None.
    Returns (h', c', gates) with gates (B, 4Hd) the activated i, f, g, o, saved for backward.
    """


def lstm_cell_backward(grad_h_new, grad_c_new, x, h, c, w_ih, w_hh, gates, c_new):
    """grad_h_new, grad_c_new (B, Hd) (either may be zeros).
    Returns (grad_x, grad_h, grad_c, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""


def gru_cell_forward(x, h, w_ih, w_hh, b_ih, b_hh):
    """Gates r, z, n (in that order):
    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr);  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz);
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn));  h' = (1 - z) * n + z * h.

    x (B, I); h (B, Hd); w_ih (3Hd, I); w_hh (3Hd, Hd); b_ih, b_hh (3Hd,) or None.
    Returns (h', workspace) with workspace (B, 4Hd) = [r, z, n, W_hn h + b_hn].
    """


def gru_cell_backward(grad_h_new, x, h, w_ih, w_hh, workspace):
    """Returns (grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""


# ---------------------------------------------------------------------------------------------
# recurrent layers: one layer and direction over a whole sequence
# ---------------------------------------------------------------------------------------------
# Time-major: x (L, B, I); states (B, Hd); weights and biases as the cells. Steps run t = 0..L-1,
# or L-1..0 with reverse=True (the backward direction of a bidirectional layer); out[t] is the
# state after step t either way. The results equal the cells applied step by step (the NumPy
# reference does exactly that). Backward kernels take input_grad=False when x needs no gradient
# and then return None for grad_x; they return the bias gradients even without biases.


def rnn_tanh_sequence_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    """rnn_tanh_cell_forward over every step. x (L, B, I); h0 (B, Hd).
    Returns (out (L, B, Hd), h_n (B, Hd)); out is saved for the backward."""


def rnn_tanh_sequence_backward(grad_out, grad_h_n, x, h0, w_ih, w_hh, out, reverse, input_grad):
    """grad_out (L, B, Hd), grad_h_n (B, Hd) (either may be zeros).
    Returns (grad_x (L, B, I) or None, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""


def rnn_relu_sequence_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    """rnn_relu_cell_forward over every step. Shapes and returns as rnn_tanh_sequence_forward."""


def rnn_relu_sequence_backward(grad_out, grad_h_n, x, h0, w_ih, w_hh, out, reverse, input_grad):
    """Returns (grad_x (L, B, I) or None, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""


def lstm_sequence_forward(x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse):
    """lstm_cell_forward over every step. x (L, B, I); h0, c0 (B, Hd); w_ih (4Hd, I).
    Returns (out (L, B, Hd), h_n, c_n, gates (L, B, 4Hd), c_all (L, B, Hd)): the activated
    gates and the cell state after each step, saved for the backward with out."""


def lstm_sequence_backward(grad_out, grad_h_n, grad_c_n, x, h0, c0, w_ih, w_hh, out, gates, c_all,
                           reverse, input_grad):
    """grad_out (L, B, Hd); grad_h_n, grad_c_n (B, Hd) (any may be zeros). Returns (grad_x
    (L, B, I) or None, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""


def gru_sequence_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reverse):
    """gru_cell_forward over every step. x (L, B, I); h0 (B, Hd); w_ih (3Hd, I).
    Returns (out (L, B, Hd), h_n, workspace (L, B, 4Hd)) with workspace[t] the cell's
    [r, z, n, W_hn h + b_hn], saved for the backward with out."""


def gru_sequence_backward(grad_out, grad_h_n, x, h0, w_ih, w_hh, out, workspace, reverse,
                          input_grad):
    """Returns (grad_x (L, B, I) or None, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""


# ---------------------------------------------------------------------------------------------
# optimizer updates (in place)
# ---------------------------------------------------------------------------------------------


def sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, nesterov, weight_decay,
             maximize, first_step):
    """One torch.optim.SGD step for one parameter, in place on param and momentum_buffer.

    d = (-grad if maximize else grad) + weight_decay * param; if momentum:
    buf = d if first_step else momentum * buf + (1 - dampening) * d;
    d = d + momentum * buf if nesterov else buf. param -= lr * d.
    momentum_buffer is an array like param (ignored when momentum == 0, may then be None).
    """


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
              weight_decay, amsgrad, maximize, decoupled_weight_decay):
    """One torch.optim.Adam (decoupled_weight_decay=False) or AdamW (True) step, in place on
    param, exp_avg, exp_avg_sq and (amsgrad) max_exp_avg_sq. step is the 1-based step count
    after this update. Bias corrections 1 - beta**step as PyTorch.
    """


KERNELS = tuple(
    name for name, obj in list(globals().items())
    if callable(obj) and not name.startswith("_") and getattr(obj, "__module__", None) == __name__
)
