// Dropout forward and backward. Semantics and the random function: see
// pyconv/backends/numpy_ref/dropout.py, which computes the same mask bit for bit.
//
// The keep-mask is counter based: element i of a flat array keeps its value iff
//     k = splitmix64(seed, i) >> 40   (the top 24 bits, u = k / 2^24 in [0, 1))
//     k >= threshold                  (threshold = ceil(p * 2^24), computed by the glue)
// so that it depends on (seed, i) only, never on the launch configuration or the backend.
#include "compat.cuh"

// Output number `index` (0-based) of Vigna's SplitMix64 generator started from state `seed`:
// the state after index + 1 steps, seed + (index + 1) * golden gamma (mod 2^64), through
// Stafford's "Mix13" finaliser.
__device__ __forceinline__ unsigned long long dropout_splitmix64(unsigned long long seed,
                                                                 unsigned long long index) {
    unsigned long long z = seed + (index + 1ull) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// y = x * keep * scale, evaluated in that order like the reference (a dropped inf gives NaN, as
// in PyTorch); mask = keep as 0/1 bytes.
template <typename T>
__device__ __forceinline__ void dropout_forward(T* __restrict__ y, unsigned char* __restrict__ mask,
                                                const T* __restrict__ x, long long n,
                                                unsigned long long seed, unsigned int threshold,
                                                T scale) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        unsigned int k = (unsigned int)(dropout_splitmix64(seed, (unsigned long long)i) >> 40);
        unsigned char keep = k >= threshold ? 1 : 0;
        mask[i] = keep;
        y[i] = x[i] * T(keep) * scale;
    }
}

template <typename T>
__device__ __forceinline__ void dropout_backward(T* __restrict__ grad_x, const T* __restrict__ grad_y,
                                                 const unsigned char* __restrict__ mask, long long n,
                                                 T scale) {
    PYCONV_GRID_STRIDE_LOOP(i, n) { grad_x[i] = grad_y[i] * T(mask[i]) * scale; }
}

// the glue always launches 256 threads per block
extern "C" __global__ void __launch_bounds__(256)
dropout_forward_f32(float* y, unsigned char* mask, const float* x, long long n,
                    unsigned long long seed, unsigned int threshold, float scale) {
    dropout_forward(y, mask, x, n, seed, threshold, scale);
}
extern "C" __global__ void __launch_bounds__(256)
dropout_forward_f64(double* y, unsigned char* mask, const double* x, long long n,
                    unsigned long long seed, unsigned int threshold, double scale) {
    dropout_forward(y, mask, x, n, seed, threshold, scale);
}
extern "C" __global__ void __launch_bounds__(256)
dropout_backward_f32(float* grad_x, const float* grad_y, const unsigned char* mask, long long n,
                     float scale) {
    dropout_backward(grad_x, grad_y, mask, n, scale);
}
extern "C" __global__ void __launch_bounds__(256)
dropout_backward_f64(double* grad_x, const double* grad_y, const unsigned char* mask, long long n,
                     double scale) {
    dropout_backward(grad_x, grad_y, mask, n, scale);
}
