// ThreadSanitizer build: each emulated CUDA thread is a TSan fiber, barriers and warp ops are the only
// synchronisation, so a missing barrier is a data race with source lines; correct kernels are silent.
#include "compat.cuh"

extern "C" __global__ void neighbour_without_barrier(float* y, const float* x) {
    __shared__ float buffer[64];
    buffer[threadIdx.x] = x[threadIdx.x];                       // RACE-WRITE
    y[threadIdx.x] = buffer[(threadIdx.x + 1) % blockDim.x];  // RACE-READ: no __syncthreads() before
}

extern "C" __global__ void legacy_warp_reduce(float* y, const float* x) {
    __shared__ float partial[64];
    unsigned t = threadIdx.x;
    partial[t] = x[t];
    __syncthreads();
    if (t < 32) {
        volatile float* v = partial;
        for (unsigned offset = 32; offset > 0; offset >>= 1) v[t] += v[t + offset];  // WARP-RACE
    }
    if (t == 0) y[0] = partial[0];
}

extern "C" __global__ void neighbour_with_barriers(float* y, const float* x) {
    __shared__ float buffer[64];
    unsigned t = threadIdx.x, base = blockIdx.x * blockDim.x;
    buffer[t] = x[base + t];
    __syncthreads();
    float v = buffer[(t + 1) % blockDim.x];
    __syncthreads();
    buffer[t] = 2.0f * v;
    __syncthreads();
    y[base + t] = buffer[(t + 3) % blockDim.x];
}

extern "C" __global__ void warp_exchange(float* y, const float* x) {
    __shared__ float buffer[64];
    unsigned t = threadIdx.x, base = blockIdx.x * blockDim.x;
    buffer[t] = x[base + t];
    __syncwarp();
    float v = buffer[t ^ 1];
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(PYCONV_FULL_MASK, v, offset);
    __syncwarp();
    buffer[t] = v;
    __syncwarp();
    y[base + t] = buffer[t ^ 3];
}
