// Fused optimizer updates (torch.optim.SGD, Adam, AdamW), in place on the parameter and its
// state, one grid-stride pass over the elements.
//
// The arithmetic is the NumPy reference's (pyconv/backends/numpy_ref/optim.py), operation by
// operation in the element type T, which itself follows PyTorch's single-tensor path. The
// scalars that PyTorch computes in Python floats (1 - dampening, the bias corrections, the lerp
// weight, 1 - lr * weight_decay) are computed the same way by the launch glue and passed as T,
// and every Python-side `if` is a 0/1 flag. nvcc may contract a * b + c into one FMA (one
// rounding instead of two); that changes results by at most an ulp per step.
#include "compat.cuh"

__device__ __forceinline__ float square_root(float v) { return sqrtf(v); }
__device__ __forceinline__ double square_root(double v) { return sqrt(v); }

// np.maximum: NaN if either argument is NaN.
template <typename T>
__device__ __forceinline__ T nan_max(T a, T b) {
    return (a != a || a >= b) ? a : b;
}

// d = (-grad if maximize else grad) [+ weight_decay * param]; with momentum,
// buf = d (first step) or buf * momentum + (1 - dampening) * d, and d = d + momentum * buf
// (nesterov) or buf; then param = param - lr * d.
template <typename T>
__device__ __forceinline__ void sgd_step(T* param, T* momentum_buffer, const T* __restrict__ grad,
                                         long long n, T lr, T momentum, T one_minus_dampening,
                                         T weight_decay, int use_weight_decay, int use_momentum,
                                         int nesterov, int maximize, int first_step) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        const T p = param[i];
        T d = maximize ? -grad[i] : grad[i];
        if (use_weight_decay) d = d + weight_decay * p;
        if (use_momentum) {
            T buf = d;
            if (!first_step) {
                buf = momentum_buffer[i] * momentum;
                buf = buf + one_minus_dampening * d;
            }
            momentum_buffer[i] = buf;
            d = nesterov ? d + momentum * buf : buf;
        }
        param[i] = p - lr * d;
    }
}

// Weight decay (weight_decay_mode 1: g += weight_decay * param, `decay` = weight_decay;
// 2, AdamW: param *= decay, `decay` = 1 - lr * weight_decay), then
// m = lerp(m, g, 1 - beta1) in PyTorch's two-sided form (lerp_from_end: g - (g - m) * lerp_weight
// with lerp_weight = beta1 computed as 1 - (1 - beta1); else m + lerp_weight * (g - m)),
// v = v * beta2 + (1 - beta2) * g * g, (amsgrad) v_max = max(v_max, v),
// param = param + neg_step_size * m / (sqrt(v or v_max) / bias_correction2_sqrt + eps).
template <typename T>
__device__ __forceinline__ void adam_step(T* param, T* exp_avg, T* exp_avg_sq, T* max_exp_avg_sq,
                                          const T* __restrict__ grad, long long n, T decay,
                                          T lerp_weight, T beta2, T one_minus_beta2,
                                          T neg_step_size, T bias_correction2_sqrt, T eps,
                                          int weight_decay_mode, int lerp_from_end, int amsgrad,
                                          int maximize) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        T p = param[i];
        T g = maximize ? -grad[i] : grad[i];
        if (weight_decay_mode == 1) g = g + decay * p;
        if (weight_decay_mode == 2) p = p * decay;
        T m = exp_avg[i];
        m = lerp_from_end ? g - (g - m) * lerp_weight : m + lerp_weight * (g - m);
        exp_avg[i] = m;
        T v = exp_avg_sq[i] * beta2;
        v = v + one_minus_beta2 * g * g;
        exp_avg_sq[i] = v;
        if (amsgrad) {
            v = nan_max(max_exp_avg_sq[i], v);
            max_exp_avg_sq[i] = v;
        }
        const T denom = square_root(v) / bias_correction2_sqrt + eps;
        param[i] = p + neg_step_size * m / denom;
    }
}

// Entry points. Arrays are contiguous with n elements; momentum_buffer (SGD without momentum)
// and max_exp_avg_sq (Adam without amsgrad) are never touched when their flag is 0.

extern "C" __global__ void sgd_step_f32(float* param, float* momentum_buffer,
                                        const float* __restrict__ grad, long long n, float lr,
                                        float momentum, float one_minus_dampening,
                                        float weight_decay, int use_weight_decay,
                                        int use_momentum, int nesterov, int maximize,
                                        int first_step) {
    sgd_step(param, momentum_buffer, grad, n, lr, momentum, one_minus_dampening, weight_decay,
             use_weight_decay, use_momentum, nesterov, maximize, first_step);
}

extern "C" __global__ void sgd_step_f64(double* param, double* momentum_buffer,
                                        const double* __restrict__ grad, long long n, double lr,
                                        double momentum, double one_minus_dampening,
                                        double weight_decay, int use_weight_decay,
                                        int use_momentum, int nesterov, int maximize,
                                        int first_step) {
    sgd_step(param, momentum_buffer, grad, n, lr, momentum, one_minus_dampening, weight_decay,
             use_weight_decay, use_momentum, nesterov, maximize, first_step);
}

extern "C" __global__ void adam_step_f32(float* param, float* exp_avg, float* exp_avg_sq,
                                         float* max_exp_avg_sq, const float* __restrict__ grad,
                                         long long n, float decay, float lerp_weight, float beta2,
                                         float one_minus_beta2, float neg_step_size,
                                         float bias_correction2_sqrt, float eps,
                                         int weight_decay_mode, int lerp_from_end, int amsgrad,
                                         int maximize) {
    adam_step(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, n, decay, lerp_weight, beta2,
              one_minus_beta2, neg_step_size, bias_correction2_sqrt, eps, weight_decay_mode,
              lerp_from_end, amsgrad, maximize);
}

extern "C" __global__ void adam_step_f64(double* param, double* exp_avg, double* exp_avg_sq,
                                         double* max_exp_avg_sq, const double* __restrict__ grad,
                                         long long n, double decay, double lerp_weight,
                                         double beta2, double one_minus_beta2,
                                         double neg_step_size, double bias_correction2_sqrt,
                                         double eps, int weight_decay_mode, int lerp_from_end,
                                         int amsgrad, int maximize) {
    adam_step(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, n, decay, lerp_weight, beta2,
              one_minus_beta2, neg_step_size, bias_correction2_sqrt, eps, weight_decay_mode,
              lerp_from_end, amsgrad, maximize);
}
