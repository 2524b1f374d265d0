// Class-index losses on rows (M, C) with int64 targets (M,): the fused cross-entropy
// (log-softmax + negative log-likelihood, class weights, ignore_index, label smoothing) and
// nll_loss, forward and backward; and the elementwise losses mse_loss, binary_cross_entropy and
// binary_cross_entropy_with_logits (end of file). Semantics: pyconv/backends/numpy_ref/loss.py.
//
// The glue (cuda_glue/loss.py) always passes a weight vector (ones when the caller gave none).
// Per-row losses are written to a buffer; 'sum' and 'mean' are then formed by class_loss_sum, a
// single-block reduction in a fixed order: no float atomics, so results are bitwise the same
// under every schedule and on every run.
//
// Targets outside [0, C) that are not ignore_index are rejected by the op layer before any kernel
// runs. The kernels still never index with them: such a row's weight is NaN, which makes its loss
// and gradient NaN instead of reading out of bounds.
#include "compat.cuh"
#include "row_reduce.cuh"

// Row kernels are launched with 32..256 threads (a multiple of 32) per block, class_loss_sum with
// 1024 threads and one block, the elementwise kernels with 256 (cuda_glue/loss.py).

template <typename T> __device__ __forceinline__ T ce_nan() {
    return pyconv_limits<T>::inf() - pyconv_limits<T>::inf();
}

// ---------------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------------

// A row's target as the kernels use it, like the reference's _target_weights: the class to index
// (0 for an ignored or invalid row, so nothing reads out of bounds) and its weight (0 for an
// ignored row, NaN for an invalid one).
template <typename T> struct RowTarget {
    int cls;
    T weight;
    bool ignored;
};

template <typename T>
__device__ __forceinline__ RowTarget<T> ce_row_target(const long long* target, const T* weight,
                                                      long long row, int C,
                                                      long long ignore_index) {
    const long long t = target[row];
    RowTarget<T> r;
    r.ignored = t == ignore_index;
    r.cls = 0;
    if (r.ignored) {
        r.weight = T(0);
    } else if (t < 0 || t >= C) {
        r.weight = ce_nan<T>();
    } else {
        r.cls = (int)t;
        r.weight = weight[t];
    }
    return r;
}

// The gradient reaching row `row`'s loss: row_grad[row * stride] (stride 1 for 'none', 0 for a
// scalar), 0 on ignored rows so that an all-ignored 'mean' (a NaN scale) leaves the inputs alone.
template <typename T>
__device__ __forceinline__ T ce_row_grad(const RowTarget<T>& t, const T* row_grad,
                                         long long stride, long long row) {
    return t.ignored ? T(0) : row_grad[row * stride];
}

// ---------------------------------------------------------------------------------------------
// cross_entropy
// ---------------------------------------------------------------------------------------------

// One block per row, the grid's blocks striding over the M rows. Pass 1 reads the row's logits
// into an online log-sum-exp; pass 2 writes log_probs = (x - max) - log(sum) and, with label
// smoothing, sums w[c] * log_probs[c] (from the rounded values the reference sums too). Thread 0
// then writes the row's loss:
//   (1 - eps) * -w[t] * lp[t] + eps / C * -sum_c w[c] * lp[c]   (0 for an ignored row).
// target_scale = 1 - eps and smooth_scale = eps / C are rounded by the glue as the reference does.
template <typename T>
__device__ void cross_entropy_forward_rows(T* __restrict__ row_loss, T* __restrict__ log_probs,
                                           const T* __restrict__ logits,
                                           const long long* __restrict__ target,
                                           const T* __restrict__ weight, long long M, int C,
                                           long long ignore_index, T target_scale,
                                           T smooth_scale) {
    const bool smoothing = smooth_scale > T(0);  // the same in every thread: barriers stay uniform
    for (long long row = blockIdx.x; row < M; row += gridDim.x) {
        const T* x = logits + row * C;
        T* lp = log_probs + row * C;
        MaxExpSum<T> lse = MaxExpSum<T>::empty();
        for (int c = threadIdx.x; c < C; c += blockDim.x) lse.add(x[c]);
        lse = block_merge(lse);
        const T log_sum = lse.log_sum();

        Sum<T> smooth = Sum<T>::empty();
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            T v = (x[c] - lse.max) - log_sum;
            lp[c] = v;
            if (smoothing) smooth.value += weight[c] * v;
        }
        if (smoothing) smooth = block_merge(smooth);

        if (threadIdx.x == 0) {
            const RowTarget<T> t = ce_row_target(target, weight, row, C, ignore_index);
            T loss = -t.weight * ((x[t.cls] - lse.max) - log_sum);
            if (smoothing) loss = target_scale * loss + smooth_scale * -smooth.value;
            row_loss[row] = t.ignored ? T(0) : loss;
        }
    }
}

// One block per row. A row's loss is -sum_c a_c * lp_c with
// a_c = (1 - eps) * w[t] * [c == t] + eps / C * w[c], so its gradient with respect to the logits
// is (exp(lp_c) * sum_c a_c - a_c) * row_grad, with sum_c a_c = (1 - eps) * w[t] + eps / C * W,
// W = sum_c w[c] being the same for every row (each block computes it once).
template <typename T>
__device__ void cross_entropy_backward_rows(T* __restrict__ grad_logits,
                                            const T* __restrict__ row_grad, long long stride,
                                            const T* __restrict__ log_probs,
                                            const long long* __restrict__ target,
                                            const T* __restrict__ weight, long long M, int C,
                                            long long ignore_index, T target_scale,
                                            T smooth_scale) {
    T weight_sum = T(0);
    if (smooth_scale > T(0)) {  // uniform: every thread of the block takes this branch or none
        Sum<T> w = Sum<T>::empty();
        for (int c = threadIdx.x; c < C; c += blockDim.x) w.value += weight[c];
        weight_sum = block_merge(w).value;
    }
    for (long long row = blockIdx.x; row < M; row += gridDim.x) {
        const RowTarget<T> t = ce_row_target(target, weight, row, C, ignore_index);
        const T scale = ce_row_grad(t, row_grad, stride, row);
        const T target_coeff = target_scale * t.weight;
        const T coeff_sum = target_coeff + smooth_scale * weight_sum;
        const T* lp = log_probs + row * C;
        T* g = grad_logits + row * C;
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            T coeff = (c == t.cls ? target_coeff : T(0)) + smooth_scale * weight[c];
            g[c] = (pyconv_exp(lp[c]) * coeff_sum - coeff) * scale;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// nll_loss
// ---------------------------------------------------------------------------------------------

// One thread per row: loss = -w[t] * log_probs[row, t], 0 for an ignored row.
template <typename T>
__device__ void nll_loss_forward_rows(T* __restrict__ row_loss, const T* __restrict__ log_probs,
                                      const long long* __restrict__ target,
                                      const T* __restrict__ weight, long long M, int C,
                                      long long ignore_index) {
    PYCONV_GRID_STRIDE_LOOP(row, M) {
        const RowTarget<T> t = ce_row_target(target, weight, row, C, ignore_index);
        row_loss[row] = t.ignored ? T(0) : -t.weight * log_probs[row * C + t.cls];
    }
}

// One thread per element of grad (M, C): -w[t] * row_grad at the target's class, 0 elsewhere.
template <typename T>
__device__ void nll_loss_backward_elements(T* __restrict__ grad, const T* __restrict__ row_grad,
                                           long long stride, const long long* __restrict__ target,
                                           const T* __restrict__ weight, long long M, int C,
                                           long long ignore_index) {
    PYCONV_GRID_STRIDE_LOOP(i, M * C) {
        const long long row = i / C;
        const int c = (int)(i - row * C);
        const RowTarget<T> t = ce_row_target(target, weight, row, C, ignore_index);
        grad[i] = c == t.cls ? -t.weight * ce_row_grad(t, row_grad, stride, row) : T(0);
    }
}

// ---------------------------------------------------------------------------------------------
// Reduction over rows
// ---------------------------------------------------------------------------------------------

// out[0] = sum(values[0:n]), divided by sum_m w[target[m]] over the M rows when
// divide_by_weight (ignored rows weigh 0; 0 / 0 gives NaN, as the reference). One block; each
// thread adds a strided share in order, then the block merges in a fixed order. The forward
// passes the per-row losses; the backward of 'mean' passes grad_loss (n = 1) to get the gradient
// reaching every row.
template <typename T>
__device__ void class_loss_sum(T* __restrict__ out, const T* __restrict__ values, long long n,
                               const long long* __restrict__ target, const T* __restrict__ weight,
                               long long M, int C, long long ignore_index,
                               int divide_by_weight) {
    Sum<T> sum = Sum<T>::empty();
    for (long long i = threadIdx.x; i < n; i += blockDim.x) sum.value += values[i];
    sum = block_merge(sum);
    if (divide_by_weight) {  // a kernel argument: uniform, so the barriers inside are too
        Sum<T> total_weight = Sum<T>::empty();
        for (long long row = threadIdx.x; row < M; row += blockDim.x)
            total_weight.value += ce_row_target(target, weight, row, C, ignore_index).weight;
        total_weight = block_merge(total_weight);
        sum.value /= total_weight.value;
    }
    if (threadIdx.x == 0) out[0] = sum.value;
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

extern "C" __global__ void __launch_bounds__(256)
cross_entropy_forward_rows_f32(float* row_loss, float* log_probs, const float* logits,
                               const long long* target, const float* weight, long long M, int C,
                               long long ignore_index, float target_scale, float smooth_scale) {
    cross_entropy_forward_rows(row_loss, log_probs, logits, target, weight, M, C, ignore_index,
                               target_scale, smooth_scale);
}
extern "C" __global__ void __launch_bounds__(256)
cross_entropy_forward_rows_f64(double* row_loss, double* log_probs, const double* logits,
                               const long long* target, const double* weight, long long M, int C,
                               long long ignore_index, double target_scale,
                               double smooth_scale) {
    cross_entropy_forward_rows(row_loss, log_probs, logits, target, weight, M, C, ignore_index,
                               target_scale, smooth_scale);
}

extern "C" __global__ void __launch_bounds__(256)
cross_entropy_backward_rows_f32(float* grad_logits, const float* row_grad, long long stride,
                                const float* log_probs, const long long* target,
                                const float* weight, long long M, int C, long long ignore_index,
                                float target_scale, float smooth_scale) {
    cross_entropy_backward_rows(grad_logits, row_grad, stride, log_probs, target, weight, M, C,
                                ignore_index, target_scale, smooth_scale);
}
extern "C" __global__ void __launch_bounds__(256)
cross_entropy_backward_rows_f64(double* grad_logits, const double* row_grad, long long stride,
                                const double* log_probs, const long long* target,
                                const double* weight, long long M, int C, long long ignore_index,
                                double target_scale, double smooth_scale) {
    cross_entropy_backward_rows(grad_logits, row_grad, stride, log_probs, target, weight, M, C,
                                ignore_index, target_scale, smooth_scale);
}

extern "C" __global__ void __launch_bounds__(256)
nll_loss_forward_rows_f32(float* row_loss, const float* log_probs, const long long* target,
                          const float* weight, long long M, int C, long long ignore_index) {
    nll_loss_forward_rows(row_loss, log_probs, target, weight, M, C, ignore_index);
}
extern "C" __global__ void __launch_bounds__(256)
nll_loss_forward_rows_f64(double* row_loss, const double* log_probs, const long long* target,
                          const double* weight, long long M, int C, long long ignore_index) {
    nll_loss_forward_rows(row_loss, log_probs, target, weight, M, C, ignore_index);
}

extern "C" __global__ void __launch_bounds__(256)
nll_loss_backward_f32(float* grad, const float* row_grad, long long stride,
                      const long long* target, const float* weight, long long M, int C,
                      long long ignore_index) {
    nll_loss_backward_elements(grad, row_grad, stride, target, weight, M, C, ignore_index);
}
extern "C" __global__ void __launch_bounds__(256)
nll_loss_backward_f64(double* grad, const double* row_grad, long long stride,
                      const long long* target, const double* weight, long long M, int C,
                      long long ignore_index) {
    nll_loss_backward_elements(grad, row_grad, stride, target, weight, M, C, ignore_index);
}

extern "C" __global__ void __launch_bounds__(1024)
class_loss_sum_f32(float* out, const float* values, long long n, const long long* target,
                   const float* weight, long long M, int C, long long ignore_index,
                   int divide_by_weight) {
    class_loss_sum(out, values, n, target, weight, M, C, ignore_index, divide_by_weight);
}
extern "C" __global__ void __launch_bounds__(1024)
class_loss_sum_f64(double* out, const double* values, long long n, const long long* target,
                   const double* weight, long long M, int C, long long ignore_index,
                   int divide_by_weight) {
    class_loss_sum(out, values, n, target, weight, M, C, ignore_index, divide_by_weight);
}

// ---------------------------------------------------------------------------------------------
// Elementwise losses: mse_loss, binary_cross_entropy, binary_cross_entropy_with_logits
// ---------------------------------------------------------------------------------------------
//
// One thread per element in a grid-stride loop (256 threads per block). The forward kernels write
// the per-element loss, which is the result for reduction 'none'; 'sum' and 'mean' are then
// formed by elementwise_loss_sum (one block, fixed order, no atomics). weight and pos_weight
// arrive broadcast to the input's shape by the glue (has_weight / has_pos_weight = 0: ignored).
// The backward kernels read the gradient reaching element i as grad_loss[i * stride] / divisor:
// stride 1 and divisor 1 for 'none', stride 0 for a scalar, divisor n for 'mean' (the reference
// divides grad_loss by n once; dividing the same value in every thread rounds identically).

__device__ __forceinline__ float loss_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double loss_log1p(double x) { return log1p(x); }

// PyTorch clamps each log of binary_cross_entropy here ...
#define LOSS_LOG_FLOOR -100.0
// ... and floors the x * (1 - x) denominator of its gradient here.
#define LOSS_BCE_GRAD_EPS 1e-12

// max(a, b) that keeps a NaN in a (as np.maximum does, unlike fmax).
template <typename T> __device__ __forceinline__ T loss_max(T a, T b) { return a < b ? b : a; }

template <typename T>
__device__ __forceinline__ T loss_grad(const T* grad_loss, long long stride, T divisor,
                                       long long i) {
    return grad_loss[i * stride] / divisor;
}

// (softplus(x), softplus(-x)) = (max(x, 0) + log1p(exp(-|x|)), max(-x, 0) + log1p(exp(-|x|))).
template <typename T> struct SoftplusPair {
    T of_x, of_neg_x;
};
template <typename T> __device__ __forceinline__ SoftplusPair<T> loss_softplus_pair(T x) {
    const T tail = loss_log1p(pyconv_exp(x >= T(0) ? -x : x));
    return SoftplusPair<T>{loss_max(x, T(0)) + tail, loss_max(-x, T(0)) + tail};
}

template <typename T>
__device__ void mse_loss_forward_elements(T* __restrict__ loss, const T* __restrict__ input,
                                          const T* __restrict__ target, long long n) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        const T diff = input[i] - target[i];
        loss[i] = diff * diff;
    }
}

template <typename T>
__device__ void mse_loss_backward_elements(T* __restrict__ grad_input, T* __restrict__ grad_target,
                                           const T* __restrict__ grad_loss, long long stride,
                                           T divisor, const T* __restrict__ input,
                                           const T* __restrict__ target, long long n) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        const T g = T(2) * (input[i] - target[i]) * loss_grad(grad_loss, stride, divisor, i);
        grad_input[i] = g;
        grad_target[i] = -g;
    }
}

// -w * (t * max(log x, -100) + (1 - t) * max(log(1 - x), -100))
template <typename T>
__device__ void bce_forward_elements(T* __restrict__ loss, const T* __restrict__ input,
                                     const T* __restrict__ target, const T* __restrict__ weight,
                                     int has_weight, long long n) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        const T x = input[i], t = target[i];
        const T log_x = loss_max(pyconv_log(x), T(LOSS_LOG_FLOOR));
        const T log_1mx = loss_max(loss_log1p(-x), T(LOSS_LOG_FLOOR));
        T l = -(t * log_x + (T(1) - t) * log_1mx);
        if (has_weight) l = l * weight[i];
        loss[i] = l;
    }
}

// g * w * (x - t) / max(x * (1 - x), 1e-12)
template <typename T>
__device__ void bce_backward_elements(T* __restrict__ grad_input, const T* __restrict__ grad_loss,
                                      long long stride, T divisor, const T* __restrict__ input,
                                      const T* __restrict__ target, const T* __restrict__ weight,
                                      int has_weight, long long n) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        const T x = input[i];
        T g = loss_grad(grad_loss, stride, divisor, i);
        if (has_weight) g = g * weight[i];
        const T denominator = loss_max(x * (T(1) - x), T(LOSS_BCE_GRAD_EPS));
        grad_input[i] = g * (x - target[i]) / denominator;
    }
}

// w * (pw * t * softplus(-x) + (1 - t) * softplus(x))
template <typename T>
__device__ void bce_logits_forward_elements(T* __restrict__ loss, const T* __restrict__ input,
                                            const T* __restrict__ target,
                                            const T* __restrict__ weight, int has_weight,
                                            const T* __restrict__ pos_weight, int has_pos_weight,
                                            long long n) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        const T t = target[i];
        const SoftplusPair<T> sp = loss_softplus_pair(input[i]);
        T positive = t * sp.of_neg_x;
        if (has_pos_weight) positive = positive * pos_weight[i];
        T l = positive + (T(1) - t) * sp.of_x;
        if (has_weight) l = l * weight[i];
        loss[i] = l;
    }
}

// d/dx = g * w * ((1 - t) * sigmoid(x) - pw * t * sigmoid(-x));
// d/dt = g * w * (pw * softplus(-x) - softplus(x)).
template <typename T>
__device__ void bce_logits_backward_elements(T* __restrict__ grad_input,
                                             T* __restrict__ grad_target,
                                             const T* __restrict__ grad_loss, long long stride,
                                             T divisor, const T* __restrict__ input,
                                             const T* __restrict__ target,
                                             const T* __restrict__ weight, int has_weight,
                                             const T* __restrict__ pos_weight,
                                             int has_pos_weight, long long n) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        const T x = input[i], t = target[i];
        T g = loss_grad(grad_loss, stride, divisor, i);
        if (has_weight) g = g * weight[i];
        const T positive = has_pos_weight ? t * pos_weight[i] : t;
        // sigmoid(x) and sigmoid(-x) share e = exp(-|x|): one is 1 / (1 + e), the other e / (1 + e)
        const T e = pyconv_exp(x >= T(0) ? -x : x);
        const T near_one = T(1) / (T(1) + e), near_zero = e / (T(1) + e);
        const T sigmoid_x = x >= T(0) ? near_one : near_zero;
        const T sigmoid_neg_x = x >= T(0) ? near_zero : near_one;
        grad_input[i] = g * ((T(1) - t) * sigmoid_x - positive * sigmoid_neg_x);
        const SoftplusPair<T> sp = loss_softplus_pair(x);
        const T of_neg_x = has_pos_weight ? pos_weight[i] * sp.of_neg_x : sp.of_neg_x;
        grad_target[i] = g * (of_neg_x - sp.of_x);
    }
}

// out[0] = sum(values[0:n]) / divisor (n for 'mean': 0 / 0 = NaN when empty, as the reference;
// 1 for 'sum'). One block of 1024 threads: strided per-thread sums, then a fixed-order merge.
template <typename T>
__device__ void elementwise_loss_sum(T* __restrict__ out, const T* __restrict__ values,
                                     long long n, T divisor) {
    Sum<T> sum = Sum<T>::empty();
    for (long long i = threadIdx.x; i < n; i += blockDim.x) sum.value += values[i];
    sum = block_merge(sum);
    if (threadIdx.x == 0) out[0] = sum.value / divisor;
}

extern "C" __global__ void __launch_bounds__(256)
mse_loss_forward_f32(float* loss, const float* input, const float* target, long long n) {
    mse_loss_forward_elements(loss, input, target, n);
}
extern "C" __global__ void __launch_bounds__(256)
mse_loss_forward_f64(double* loss, const double* input, const double* target, long long n) {
    mse_loss_forward_elements(loss, input, target, n);
}

extern "C" __global__ void __launch_bounds__(256)
mse_loss_backward_f32(float* grad_input, float* grad_target, const float* grad_loss,
                      long long stride, float divisor, const float* input, const float* target,
                      long long n) {
    mse_loss_backward_elements(grad_input, grad_target, grad_loss, stride, divisor, input, target,
                               n);
}
extern "C" __global__ void __launch_bounds__(256)
mse_loss_backward_f64(double* grad_input, double* grad_target, const double* grad_loss,
                      long long stride, double divisor, const double* input, const double* target,
                      long long n) {
    mse_loss_backward_elements(grad_input, grad_target, grad_loss, stride, divisor, input, target,
                               n);
}

extern "C" __global__ void __launch_bounds__(256)
binary_cross_entropy_forward_f32(float* loss, const float* input, const float* target,
                                 const float* weight, int has_weight, long long n) {
    bce_forward_elements(loss, input, target, weight, has_weight, n);
}
extern "C" __global__ void __launch_bounds__(256)
binary_cross_entropy_forward_f64(double* loss, const double* input, const double* target,
                                 const double* weight, int has_weight, long long n) {
    bce_forward_elements(loss, input, target, weight, has_weight, n);
}

extern "C" __global__ void __launch_bounds__(256)
binary_cross_entropy_backward_f32(float* grad_input, const float* grad_loss, long long stride,
                                  float divisor, const float* input, const float* target,
                                  const float* weight, int has_weight, long long n) {
    bce_backward_elements(grad_input, grad_loss, stride, divisor, input, target, weight,
                          has_weight, n);
}
extern "C" __global__ void __launch_bounds__(256)
binary_cross_entropy_backward_f64(double* grad_input, const double* grad_loss, long long stride,
                                  double divisor, const double* input, const double* target,
                                  const double* weight, int has_weight, long long n) {
    bce_backward_elements(grad_input, grad_loss, stride, divisor, input, target, weight,
                          has_weight, n);
}

extern "C" __global__ void __launch_bounds__(256)
binary_cross_entropy_with_logits_forward_f32(float* loss, const float* input, const float* target,
                                             const float* weight, int has_weight,
                                             const float* pos_weight, int has_pos_weight,
                                             long long n) {
    bce_logits_forward_elements(loss, input, target, weight, has_weight, pos_weight,
                                has_pos_weight, n);
}
extern "C" __global__ void __launch_bounds__(256)
binary_cross_entropy_with_logits_forward_f64(double* loss, const double* input,
                                             const double* target, const double* weight,
                                             int has_weight, const double* pos_weight,
                                             int has_pos_weight, long long n) {
    bce_logits_forward_elements(loss, input, target, weight, has_weight, pos_weight,
                                has_pos_weight, n);
}

extern "C" __global__ void __launch_bounds__(256)
binary_cross_entropy_with_logits_backward_f32(float* grad_input, float* grad_target,
                                              const float* grad_loss, long long stride,
                                              float divisor, const float* input,
                                              const float* target, const float* weight,
                                              int has_weight, const float* pos_weight,
                                              int has_pos_weight, long long n) {
    bce_logits_backward_elements(grad_input, grad_target, grad_loss, stride, divisor, input,
                                 target, weight, has_weight, pos_weight, has_pos_weight, n);
}
extern "C" __global__ void __launch_bounds__(256)
binary_cross_entropy_with_logits_backward_f64(double* grad_input, double* grad_target,
                                              const double* grad_loss, long long stride,
                                              double divisor, const double* input,
                                              const double* target, const double* weight,
                                              int has_weight, const double* pos_weight,
                                              int has_pos_weight, long long n) {
    bce_logits_backward_elements(grad_input, grad_target, grad_loss, stride, divisor, input,
                                 target, weight, has_weight, pos_weight, has_pos_weight, n);
}

extern "C" __global__ void __launch_bounds__(1024)
elementwise_loss_sum_f32(float* out, const float* values, long long n, float divisor) {
    elementwise_loss_sum(out, values, n, divisor);
}
extern "C" __global__ void __launch_bounds__(1024)
elementwise_loss_sum_f64(double* out, const double* values, long long n, double divisor) {
    elementwise_loss_sum(out, values, n, divisor);
}
