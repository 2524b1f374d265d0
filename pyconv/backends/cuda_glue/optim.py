"""Launch glue for kernels/optim.cu: fused SGD and Adam/AdamW updates, in place.

The contract updates the caller's arrays, so the kernels must run on those very arrays: an
array that is updated in place and is not C-contiguous or not writeable is an error (a copy
would be updated and then thrown away). Inputs that are only read are made contiguous.

The scalars PyTorch computes in Python floats (1 - dampening, bias corrections, the lerp weight,
1 - lr * weight_decay) are computed here the same way as the NumPy reference and passed to the
kernel in the parameter's dtype; the reference's ``if``s become 0/1 flags.
"""

from __future__ import annotations

from . import as_contiguous, elementwise_grid, i32, i64, in_place_operand, operand, real, suffix

__all__ = ["adam_step", "sgd_step"]


def _launch(dev, entry, param, arrays, scalars):
    """Run ``entry`` over param.size elements: (arrays..., n, scalars...)."""
    n = param.size
    if n == 0:
        return
    grid, block = elementwise_grid(dev, n)
    dev.function("optim", f"{entry}_{suffix(param.dtype)}")(
        grid, block, (*arrays, i64(n, "param.size"), *scalars))


def sgd_step(dev, param, grad, momentum_buffer, lr, momentum, dampening, nesterov,
             weight_decay, maximize, first_step):
    """One torch.optim.SGD step, in place on param and (momentum != 0) momentum_buffer."""
    suffix(param.dtype)
    in_place_operand("param", param, param.dtype, param.shape)
    grad = as_contiguous(dev, operand("grad", grad, param.dtype, param.shape))
    use_momentum = momentum != 0
    if use_momentum:
        if momentum_buffer is None:
            raise ValueError("momentum_buffer is required when momentum != 0")
        buffer = in_place_operand("momentum_buffer", momentum_buffer, param.dtype, param.shape)
    else:
        buffer = param  # never touched by the kernel without momentum
    t = param.dtype
    _launch(dev, "sgd_step", param, (param, buffer, grad), (
        real(t, lr), real(t, momentum), real(t, 1 - dampening), real(t, weight_decay),
        i32(weight_decay != 0, "use_weight_decay"), i32(use_momentum, "use_momentum"),
        i32(bool(nesterov), "nesterov"), i32(bool(maximize), "maximize"),
        i32(bool(first_step), "first_step")))


def adam_step(dev, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2,
              eps, weight_decay, amsgrad, maximize, decoupled_weight_decay):
    """One torch.optim.Adam / AdamW step, in place on param and its state arrays."""
    suffix(param.dtype)
    t, shape = param.dtype, param.shape
    in_place_operand("param", param, t, shape)
    grad = as_contiguous(dev, operand("grad", grad, t, shape))
    in_place_operand("exp_avg", exp_avg, t, shape)
    in_place_operand("exp_avg_sq", exp_avg_sq, t, shape)
    if amsgrad:
        if max_exp_avg_sq is None:
            raise ValueError("max_exp_avg_sq is required when amsgrad is True")
        maximum = in_place_operand("max_exp_avg_sq", max_exp_avg_sq, t, shape)
    else:
        maximum = exp_avg_sq  # never touched by the kernel without amsgrad

    if weight_decay == 0:
        weight_decay_mode, decay = 0, 0.0
    elif decoupled_weight_decay:
        weight_decay_mode, decay = 2, 1 - lr * weight_decay
    else:
        weight_decay_mode, decay = 1, weight_decay
    # PyTorch's lerp switches formula at weight 0.5 (see numpy_ref.optim._lerp_)
    lerp_weight = 1 - beta1
    lerp_from_end = lerp_weight >= 0.5
    if lerp_from_end:
        lerp_weight = 1 - lerp_weight
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5

    _launch(dev, "adam_step", param, (param, exp_avg, exp_avg_sq, maximum, grad), (
        real(t, decay), real(t, lerp_weight), real(t, beta2), real(t, 1 - beta2),
        real(t, -(lr / bias_correction1)), real(t, bias_correction2_sqrt), real(t, eps),
        i32(weight_decay_mode, "weight_decay_mode"), i32(lerp_from_end, "lerp_from_end"),
        i32(bool(amsgrad), "amsgrad"), i32(bool(maximize), "maximize")))
