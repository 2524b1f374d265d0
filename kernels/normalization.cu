// Batch normalisation over every axis but 1 (channels), forward and backward.
//
// x is viewed as (N, C, S) with S the product of the spatial sizes; one block handles one
// channel (gridDim.x == C). Statistics and the per-element arithmetic are done in double for
// both element types: the NumPy reference computes in float64, so float32 results then differ
// from it only by the final rounding, and a large common offset (x ~ 1e4 +- 1) does not destroy
// the variance. Batch norm is memory-bound; a few double operations per element cost little
// next to the loads (see docs/kernels/normalization.md).
//
// Reductions are deterministic: each thread sums its strided share in a fixed order, then a
// fixed shuffle tree and a fixed order over warps combine them. No atomics.
#include "compat.cuh"

#define BN_MAX_THREADS 512

// Calls f(offset) for every element of channel blockIdx.x of x viewed as (N, C, S), thread
// threadIdx.x taking elements j = threadIdx.x, threadIdx.x + blockDim.x, ... of the channel's
// N * S (element j = n * S + s is at flat offset n * C * S + c * S + s). The step is split once
// into whole rows and a remainder, so no division happens per element.
template <typename F>
__device__ __forceinline__ void for_each_in_channel(int N, int C, long long S, F f) {
    const long long count = (long long)N * S;
    if (count == 0) return;  // also keeps S == 0 out of the divisions below
    const long long plane = (long long)C * S;
    const long long step = blockDim.x;
    const long long step_s = step % S;
    const long long jump = (step / S) * plane + step_s;
    long long s = (long long)threadIdx.x % S;
    long long offset = ((long long)threadIdx.x / S) * plane + (long long)blockIdx.x * S + s;
    for (long long j = threadIdx.x; j < count; j += step) {
        f(offset);
        offset += jump;
        s += step_s;
        if (s >= S) {  // crossed into the next n: skip the other channels' rows
            s -= S;
            offset += plane - S;
        }
    }
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
    for (int delta = 16; delta > 0; delta /= 2) v += __shfl_down_sync(PYCONV_FULL_MASK, v, delta);
    return v;
}

// Sums K per-thread values over the block; every thread receives the K totals.
// blockDim.x must be a multiple of 32 (the glue launches 32..BN_MAX_THREADS threads).
template <int K>
__device__ __forceinline__ void block_sum(double (&v)[K]) {
    __shared__ double warp_totals[K][32];
    __shared__ double totals[K];
    const unsigned lane = threadIdx.x % 32;
    const unsigned warp = threadIdx.x / 32;
#pragma unroll
    for (int k = 0; k < K; ++k) {
        v[k] = warp_sum(v[k]);
        if (lane == 0) warp_totals[k][warp] = v[k];
    }
    __syncthreads();
    if (warp == 0) {
        const unsigned warps = blockDim.x / 32;
#pragma unroll
        for (int k = 0; k < K; ++k) {
            const double t = warp_sum(lane < warps ? warp_totals[k][lane] : 0.0);
            if (lane == 0) totals[k] = t;
        }
    }
    // totals are written only after the next call's first barrier, which every thread reaches
    // after reading them here: consecutive calls need no third barrier.
    __syncthreads();
#pragma unroll
    for (int k = 0; k < K; ++k) v[k] = totals[k];
}

// y = (x - mean) * invstd [* weight] [+ bias] over channel blockIdx.x, in double, rounded once.
template <typename T>
__device__ __forceinline__ void normalize_channel(T* y, const T* x, const T* weight,
                                                  const T* bias, int has_weight, int has_bias,
                                                  double mean, double invstd, int N, int C,
                                                  long long S) {
    const double w = has_weight ? (double)weight[blockIdx.x] : 1.0;
    const double b = has_bias ? (double)bias[blockIdx.x] : 0.0;
    for_each_in_channel(N, C, S, [&](long long i) {
        double v = ((double)x[i] - mean) * invstd;
        if (has_weight) v = v * w;
        if (has_bias) v = v + b;
        y[i] = (T)v;
    });
}

template <typename T>
__device__ __forceinline__ void batch_norm_forward_train(
    T* y, T* save_mean, T* save_invstd, T* running_mean, T* running_var, const T* x,
    const T* weight, const T* bias, int N, int C, long long S, int has_weight, int has_bias,
    int update_mean, int update_var, T momentum, T eps) {
    const int c = blockIdx.x;
    const long long count = (long long)N * S;
    if (count == 0) {  // an empty batch: zero statistics, running stats untouched (uniform exit)
        if (threadIdx.x == 0) save_mean[c] = save_invstd[c] = (T)0;
        return;
    }
    // Two passes over the channel: the mean, then the squared deviations from it.
    double sum[1] = {0.0};
    for_each_in_channel(N, C, S, [&](long long i) { sum[0] += (double)x[i]; });
    block_sum(sum);
    const double mean = sum[0] / (double)count;

    double squares[1] = {0.0};
    for_each_in_channel(N, C, S, [&](long long i) {
        const double d = (double)x[i] - mean;
        squares[0] += d * d;
    });
    block_sum(squares);
    const double var = squares[0] / (double)count;
    const double invstd = 1.0 / sqrt(var + (double)eps);

    if (threadIdx.x == 0) {
        save_mean[c] = (T)mean;
        save_invstd[c] = (T)invstd;
        const double m = (double)momentum;
        if (update_mean) running_mean[c] = (T)((1.0 - m) * (double)running_mean[c] + m * mean);
        if (update_var) {  // the glue guarantees count > 1 here
            const double unbiased = var * ((double)count / (double)(count - 1));
            running_var[c] = (T)((1.0 - m) * (double)running_var[c] + m * unbiased);
        }
    }
    normalize_channel(y, x, weight, bias, has_weight, has_bias, mean, invstd, N, C, S);
}

template <typename T>
__device__ __forceinline__ void batch_norm_forward_eval(
    T* y, T* save_mean, T* save_invstd, const T* x, const T* weight, const T* bias,
    const T* running_mean, const T* running_var, int N, int C, long long S, int has_weight,
    int has_bias, T eps) {
    const int c = blockIdx.x;
    const double mean = (double)running_mean[c];
    const double invstd = 1.0 / sqrt((double)running_var[c] + (double)eps);
    if (threadIdx.x == 0) {
        save_mean[c] = (T)mean;
        save_invstd[c] = (T)invstd;
    }
    normalize_channel(y, x, weight, bias, has_weight, has_bias, mean, invstd, N, C, S);
}

// With xhat = (x - mean) * invstd and M = N * S: grad_bias = sum(g), grad_weight = sum(g * xhat);
// grad_x = w * invstd * g (eval) or w * invstd * (g - grad_bias / M - xhat * grad_weight / M).
template <typename T>
__device__ __forceinline__ void batch_norm_backward(
    T* grad_x, T* grad_weight, T* grad_bias, const T* grad_y, const T* x, const T* weight,
    const T* save_mean, const T* save_invstd, int N, int C, long long S, int has_weight,
    int training) {
    const int c = blockIdx.x;
    const long long count = (long long)N * S;
    const double mean = (double)save_mean[c];
    const double invstd = (double)save_invstd[c];

    double sums[2] = {0.0, 0.0};  // sum(g), sum(g * xhat)
    for_each_in_channel(N, C, S, [&](long long i) {
        const double g = (double)grad_y[i];
        sums[0] += g;
        sums[1] += g * (((double)x[i] - mean) * invstd);
    });
    block_sum(sums);
    if (threadIdx.x == 0) {
        grad_bias[c] = (T)sums[0];
        grad_weight[c] = (T)sums[1];
    }

    const double scale = has_weight ? invstd * (double)weight[c] : invstd;
    if (training && count > 0) {
        const double mean_g = sums[0] / (double)count;
        const double mean_gxhat = sums[1] / (double)count;
        for_each_in_channel(N, C, S, [&](long long i) {
            const double xhat = ((double)x[i] - mean) * invstd;
            grad_x[i] = (T)((((double)grad_y[i] - mean_g) - xhat * mean_gxhat) * scale);
        });
    } else {
        for_each_in_channel(N, C, S,
                            [&](long long i) { grad_x[i] = (T)((double)grad_y[i] * scale); });
    }
}

// Entry points: x (N, C, S) contiguous, gridDim.x == C, blockDim.x a multiple of 32 and at most
// BN_MAX_THREADS. Flags are 0/1 ints; absent weight/bias/running arrays are never read.

extern "C" __global__ void __launch_bounds__(BN_MAX_THREADS) batch_norm_forward_train_f32(
    float* y, float* save_mean, float* save_invstd, float* running_mean, float* running_var,
    const float* x, const float* weight, const float* bias, int N, int C, long long S,
    int has_weight, int has_bias, int update_mean, int update_var, float momentum,
    float eps) {
    batch_norm_forward_train(y, save_mean, save_invstd, running_mean, running_var, x, weight,
                             bias, N, C, S, has_weight, has_bias, update_mean, update_var,
                             momentum, eps);
}

extern "C" __global__ void __launch_bounds__(BN_MAX_THREADS) batch_norm_forward_train_f64(
    double* y, double* save_mean, double* save_invstd, double* running_mean, double* running_var,
    const double* x, const double* weight, const double* bias, int N, int C, long long S,
    int has_weight, int has_bias, int update_mean, int update_var, double momentum,
    double eps) {
    batch_norm_forward_train(y, save_mean, save_invstd, running_mean, running_var, x, weight,
                             bias, N, C, S, has_weight, has_bias, update_mean, update_var,
                             momentum, eps);
}

extern "C" __global__ void __launch_bounds__(BN_MAX_THREADS) batch_norm_forward_eval_f32(
    float* y, float* save_mean, float* save_invstd, const float* x, const float* weight,
    const float* bias, const float* running_mean, const float* running_var, int N, int C,
    long long S, int has_weight, int has_bias, float eps) {
    batch_norm_forward_eval(y, save_mean, save_invstd, x, weight, bias, running_mean,
                            running_var, N, C, S, has_weight, has_bias, eps);
}

extern "C" __global__ void __launch_bounds__(BN_MAX_THREADS) batch_norm_forward_eval_f64(
    double* y, double* save_mean, double* save_invstd, const double* x, const double* weight,
    const double* bias, const double* running_mean, const double* running_var, int N, int C,
    long long S, int has_weight, int has_bias, double eps) {
    batch_norm_forward_eval(y, save_mean, save_invstd, x, weight, bias, running_mean,
                            running_var, N, C, S, has_weight, has_bias, eps);
}

extern "C" __global__ void __launch_bounds__(BN_MAX_THREADS) batch_norm_backward_f32(
    float* grad_x, float* grad_weight, float* grad_bias, const float* grad_y, const float* x,
    const float* weight, const float* save_mean, const float* save_invstd, int N, int C,
    long long S, int has_weight, int training) {
    batch_norm_backward(grad_x, grad_weight, grad_bias, grad_y, x, weight, save_mean,
                        save_invstd, N, C, S, has_weight, training);
}

extern "C" __global__ void __launch_bounds__(BN_MAX_THREADS) batch_norm_backward_f64(
    double* grad_x, double* grad_weight, double* grad_bias, const double* grad_y,
    const double* x, const double* weight, const double* save_mean, const double* save_invstd,
    int N, int C, long long S, int has_weight, int training) {
    batch_norm_backward(grad_x, grad_weight, grad_bias, grad_y, x, weight, save_mean,
                        save_invstd, N, C, S, has_weight, training);
}
