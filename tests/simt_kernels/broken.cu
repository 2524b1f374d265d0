// Deliberately broken kernels: each must fail loudly (SimtError) or give a wrong result under the
// random schedule. Tests look for these line numbers: keep the BUG lines where they are.
#include "compat.cuh"

extern "C" __global__ void divergent_barrier(float* y) {
    if (threadIdx.x < 16) __syncthreads();  // BUG: only half the block reaches this barrier
    y[threadIdx.x] = 1.0f;
    __syncthreads();
}

extern "C" __global__ void barrier_against_shuffle(float* y) {
    if (threadIdx.x == 0) {
        __syncthreads();  // BUG: lane 0 waits here while lanes 1..31 wait for it at the shuffle
    } else {
        y[threadIdx.x] = __shfl_sync(PYCONV_FULL_MASK, 1.0f, 0);
    }
}

// Reads the lower neighbour's element without a barrier: right in order, wrong when reordered.
extern "C" __global__ void missing_barrier(float* y, const float* x) {
    PYCONV_DYNAMIC_SMEM(float, buffer);
    unsigned t = threadIdx.x;
    buffer[t] = x[t];
    y[t] = t > 0 ? buffer[t - 1] : 0.0f;  // BUG: needs __syncthreads() before this read
}

// Full mask in a 40-thread block: lanes 8..31 of warp 1 do not exist.
extern "C" __global__ void mask_names_missing_lanes(float* y) {
    y[threadIdx.x] = __shfl_sync(PYCONV_FULL_MASK, (float)threadIdx.x, 0);
}

// Pre-Volta warp-synchronous reduction: volatile shared memory and no __syncwarp between steps.
extern "C" __global__ void legacy_warp_reduce(float* sums, const float* x) {
    __shared__ float partial[64];
    unsigned t = threadIdx.x;
    partial[t] = x[blockIdx.x * 64 + t];
    __syncthreads();
    if (t < 32) {
        volatile float* v = partial;  // BUG: relies on lockstep execution
        v[t] += v[t + 32];
        v[t] += v[t + 16];
        v[t] += v[t + 8];
        v[t] += v[t + 4];
        v[t] += v[t + 2];
        v[t] += v[t + 1];
    }
    if (t == 0) sums[blockIdx.x] = partial[0];
}

extern "C" __global__ void shuffle_after_exit(float* y) {
    unsigned lane = threadIdx.x % 32;
    if (lane >= 16) return;
    y[threadIdx.x] = __shfl_down_sync(PYCONV_FULL_MASK, (float)lane, 1);  // BUG: lanes 16..31 exited
}

extern "C" __global__ void mismatched_warp_ops(unsigned* y) {
    unsigned lane = threadIdx.x % 32;
    if (lane % 2)
        y[lane] = __ballot_sync(PYCONV_FULL_MASK, 1);  // BUG: odd lanes vote ...
    else
        y[lane] = __shfl_sync(PYCONV_FULL_MASK, lane, 0);  // ... while even lanes shuffle
}

extern "C" __global__ void caller_not_in_mask(float* y) {
    y[threadIdx.x] = __shfl_sync(0x0000ffffu, 1.0f, 0);  // BUG: lanes 16..31 call it too
}

extern "C" __global__ void bad_shuffle_width(float* y) {
    y[threadIdx.x] = __shfl_sync(PYCONV_FULL_MASK, 1.0f, 0, 12);  // BUG: width must be a power of two
}
