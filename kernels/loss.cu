// Class-index losses on rows (M, C) with int64 targets (M,): the fused cross-entropy
// (log-softmax + negative log-likelihood, class weights, ignore_index, label smoothing) and
// nll_loss, forward and backward. Semantics: pyconv/backends/numpy_ref/loss.py.
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
