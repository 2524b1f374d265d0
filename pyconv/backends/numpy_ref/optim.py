"""Reference optimizer updates (torch.optim.SGD, Adam, AdamW), in place on the parameter and its
state arrays.

The arithmetic follows PyTorch's single-tensor CPU path operation by operation, in the
parameter's dtype (Python-float hyperparameters do not upcast float32 arrays), so float64
results agree with PyTorch to rounding and float32 results to float32 rounding. The gradient
array is never modified.
"""

from __future__ import annotations

import numpy as np

__all__ = ["adam_step", "sgd_step"]


def sgd_step(param, grad, momentum_buffer, lr, momentum, dampening, nesterov, weight_decay,
             maximize, first_step):
    """param, grad, momentum_buffer: arrays of one shape (momentum_buffer may be None when
    momentum == 0). See the contract for the update."""
    d = -grad if maximize else grad
    if weight_decay != 0:
        d = d + weight_decay * param
    if momentum != 0:
        if first_step:
            momentum_buffer[...] = d
        else:
            momentum_buffer *= momentum
            momentum_buffer += (1 - dampening) * d
        d = d + momentum * momentum_buffer if nesterov else momentum_buffer
    param -= lr * d


def _lerp_(start, end, weight):
    """start += weight * (end - start), in place, with PyTorch's two-sided formula (it switches
    to end - (end - start) * (1 - weight) for weight >= 0.5 to stay exact near 1)."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
              weight_decay, amsgrad, maximize, decoupled_weight_decay):
    """param, grad, exp_avg, exp_avg_sq (and max_exp_avg_sq when amsgrad, else None): arrays of
    one shape; step: the 1-based step count including this update.

    g = -grad if maximize else grad; weight decay either shrinks param by (1 - lr * weight_decay)
    (decoupled, AdamW) or adds weight_decay * param to g (Adam). Then
    m = lerp(m, g, 1 - beta1); v = beta2 * v + (1 - beta2) * g * g; (amsgrad) v_max = max(v_max, v);
    param -= lr / (1 - beta1**step) * m / (sqrt(v or v_max) / sqrt(1 - beta2**step) + eps).
    """
    g = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay
        else:
            g = g + weight_decay * param
    _lerp_(exp_avg, g, 1 - beta1)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * g * g
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second_moment = max_exp_avg_sq
    else:
        second_moment = exp_avg_sq
    denom = np.sqrt(second_moment) / bias_correction2_sqrt + eps
    param += (-(lr / bias_correction1)) * exp_avg / denom
