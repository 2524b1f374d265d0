"""The baseline: a textbook NumPy LeNet-MNIST training step built on im2col.

This is the implementation most tutorials teach (unrolled patches + one matrix product per
convolution), written here from the math, independent of pyconv:

* im2col copies each of the R*S kernel taps of the padded input into a column matrix
  (N*P*Q, C*R*S); the convolution is then ``cols @ W.reshape(K, -1).T``;
* col2im adds the column gradients back tap by tap;
* 2x2 max pooling stacks the four window taps into (4, N, C, H/2, W/2) and takes the argmax;
* fully connected layers are matrix products; the loss is softmax cross-entropy with a
  max-shifted log-sum-exp; the update is Adam (PyTorch's formulas, no weight decay).

Network (LeNetMNIST in pyconv.models): conv 1->32 3x3, relu, maxpool 2, conv 32->64 3x3, relu,
maxpool 2, flatten (1600), linear 1600->128, relu, linear 128->10. Inputs (N, 1, 28, 28) float32.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TextbookLeNet", "im2col", "col2im"]


def im2col(x, r, s):
    """x (N, C, H, W), stride 1, no padding -> cols (N*P*Q, C*R*S) with P = H-R+1, Q = W-S+1.
    Column order is (c, r, s), matching weight.reshape(K, C*R*S)."""
    n, c, h, w = x.shape
    p, q = h - r + 1, w - s + 1
    cols = np.empty((n, c, r, s, p, q), dtype=x.dtype)
    for i in range(r):
        for j in range(s):
            cols[:, :, i, j] = x[:, :, i:i + p, j:j + q]
    return cols.transpose(0, 4, 5, 1, 2, 3).reshape(n * p * q, c * r * s)


def col2im(cols, x_shape, r, s):
    """Adjoint of im2col: cols (N*P*Q, C*R*S) -> (N, C, H, W), overlapping taps summed."""
    n, c, h, w = x_shape
    p, q = h - r + 1, w - s + 1
    cols = cols.reshape(n, p, q, c, r, s).transpose(0, 3, 4, 5, 1, 2)
    x = np.zeros(x_shape, dtype=cols.dtype)
    for i in range(r):
        for j in range(s):
            x[:, :, i:i + p, j:j + q] += cols[:, :, i, j]
    return x


def conv_forward(x, weight, bias):
    k, _, r, s = weight.shape
    n, _, h, w = x.shape
    cols = im2col(x, r, s)
    y = cols @ weight.reshape(k, -1).T + bias
    y = np.ascontiguousarray(y.reshape(n, h - r + 1, w - s + 1, k).transpose(0, 3, 1, 2))
    return y, cols


def conv_backward(grad_y, cols, x_shape, weight, need_input_grad=True):
    k, _, r, s = weight.shape
    g = grad_y.transpose(0, 2, 3, 1).reshape(-1, k)
    grad_w = (g.T @ cols).reshape(weight.shape)
    grad_b = g.sum(axis=0)
    grad_x = col2im(g @ weight.reshape(k, -1), x_shape, r, s) if need_input_grad else None
    return grad_x, grad_w, grad_b


_POOL_TAPS = ((0, 0), (0, 1), (1, 0), (1, 1))


def maxpool2_forward(x):
    """2x2 windows, stride 2; odd trailing rows/columns are dropped (floor mode).
    Returns y (N, C, H//2, W//2) and the argmax (0..3, row-major in the window) per output."""
    p, q = x.shape[2] // 2, x.shape[3] // 2
    windows = np.stack([x[:, :, i:2 * p:2, j:2 * q:2] for i, j in _POOL_TAPS])  # (4, N, C, P, Q)
    return windows.max(axis=0), windows.argmax(axis=0)


def maxpool2_backward(grad_y, arg, x_shape):
    """Each output gradient goes to the input position its window's argmax names."""
    p, q = grad_y.shape[2:]
    grad_x = np.zeros(x_shape, dtype=grad_y.dtype)
    for k, (i, j) in enumerate(_POOL_TAPS):
        grad_x[:, :, i:2 * p:2, j:2 * q:2] = np.where(arg == k, grad_y, 0)
    return grad_x


def softmax_cross_entropy(logits, labels):
    """Mean loss over the batch and its gradient with respect to logits (M, C)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    m = logits.shape[0]
    loss = -log_probs[np.arange(m), labels].mean()
    grad = np.exp(log_probs)
    grad[np.arange(m), labels] -= 1
    return loss, grad / m


class TextbookLeNet:
    """LeNet-MNIST parameters, one training step, and Adam state.

    Parameters are drawn as PyTorch's default layer initialisation draws them
    (U(-1/sqrt(fan_in), 1/sqrt(fan_in))) from ``np.random.default_rng(seed)``.
    """

    SHAPES = {
        "conv1.weight": (32, 1, 3, 3), "conv1.bias": (32,),
        "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,),
        "fc1.weight": (128, 1600), "fc1.bias": (128,),
        "fc2.weight": (10, 128), "fc2.bias": (10,),
    }

    def __init__(self, seed=0, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, dtype=np.float32):
        rng = np.random.default_rng(seed)
        self.params = {}
        for name, shape in self.SHAPES.items():
            weight_shape = self.SHAPES[name.replace("bias", "weight")]
            bound = 1.0 / np.sqrt(np.prod(weight_shape[1:]))
            self.params[name] = rng.uniform(-bound, bound, shape).astype(dtype)
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.exp_avg = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.exp_avg_sq = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.steps = 0

    def forward_backward(self, x, labels):
        """Loss and the gradient of every parameter for images x (N, 1, 28, 28)."""
        p = self.params
        a1, cols1 = conv_forward(x, p["conv1.weight"], p["conv1.bias"])
        r1 = np.maximum(a1, 0)
        m1, arg1 = maxpool2_forward(r1)
        a2, cols2 = conv_forward(m1, p["conv2.weight"], p["conv2.bias"])
        r2 = np.maximum(a2, 0)
        m2, arg2 = maxpool2_forward(r2)
        flat = m2.reshape(x.shape[0], -1)
        h = flat @ p["fc1.weight"].T + p["fc1.bias"]
        hr = np.maximum(h, 0)
        logits = hr @ p["fc2.weight"].T + p["fc2.bias"]
        loss, g_logits = softmax_cross_entropy(logits, labels)

        grads = {"fc2.weight": g_logits.T @ hr, "fc2.bias": g_logits.sum(axis=0)}
        g_h = (g_logits @ p["fc2.weight"]) * (h > 0)
        grads["fc1.weight"] = g_h.T @ flat
        grads["fc1.bias"] = g_h.sum(axis=0)
        g_m2 = (g_h @ p["fc1.weight"]).reshape(m2.shape)
        g_a2 = maxpool2_backward(g_m2, arg2, r2.shape) * (a2 > 0)
        g_m1, grads["conv2.weight"], grads["conv2.bias"] = conv_backward(
            g_a2, cols2, m1.shape, p["conv2.weight"])
        g_a1 = maxpool2_backward(g_m1, arg1, r1.shape) * (a1 > 0)
        _, grads["conv1.weight"], grads["conv1.bias"] = conv_backward(
            g_a1, cols1, x.shape, p["conv1.weight"], need_input_grad=False)
        return loss, grads

    def adam_update(self, grads):
        self.steps += 1
        c1 = 1 - self.beta1 ** self.steps
        c2 = 1 - self.beta2 ** self.steps
        for name, param in self.params.items():
            g = grads[name]
            m, v = self.exp_avg[name], self.exp_avg_sq[name]
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            param -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)

    def train_step(self, x, labels):
        """One forward, backward and Adam update; returns the loss before the update."""
        loss, grads = self.forward_backward(x, labels)
        self.adam_update(grads)
        return float(loss)
