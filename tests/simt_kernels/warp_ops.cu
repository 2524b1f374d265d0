// Emulator test kernels: every _sync warp operation, widths below 32 and a partial last warp.
#include "compat.cuh"

// op 0: __shfl_sync(srcLane = arg), 1: _up(delta = arg), 2: _down(delta = arg), 3: _xor(laneMask = arg).
template <typename T>
__device__ void shuffle_body(T* y, const T* x, int op, int arg, int width) {
    unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    T v = x[t], r;
    switch (op) {
        case 0: r = __shfl_sync(PYCONV_FULL_MASK, v, arg, width); break;
        case 1: r = __shfl_up_sync(PYCONV_FULL_MASK, v, (unsigned)arg, width); break;
        case 2: r = __shfl_down_sync(PYCONV_FULL_MASK, v, (unsigned)arg, width); break;
        default: r = __shfl_xor_sync(PYCONV_FULL_MASK, v, arg, width); break;
    }
    y[t] = r;
}
extern "C" __global__ void shuffle_i32(int* y, const int* x, int op, int arg, int width) {
    shuffle_body(y, x, op, arg, width);
}
extern "C" __global__ void shuffle_f64(double* y, const double* x, int op, int arg, int width) {
    shuffle_body(y, x, op, arg, width);
}
extern "C" __global__ void shuffle_u64(unsigned long long* y, const unsigned long long* x, int op, int arg,
                                       int width) {
    shuffle_body(y, x, op, arg, width);
}

// Per-warp sum by shuffles and per-warp ballot, with a mask naming only the lanes that exist.
extern "C" __global__ void partial_warp_sum(int* sums, unsigned* ballots, const int* x) {
    unsigned t = threadIdx.x, lane = t % 32, warp = t / 32;
    unsigned lanes = min(32u, blockDim.x - warp * 32);
    unsigned mask = lanes == 32 ? PYCONV_FULL_MASK : (1u << lanes) - 1;
    int v = x[t];
    for (unsigned offset = 16; offset > 0; offset >>= 1) {
        int other = __shfl_down_sync(mask, v, offset);
        if (lane + offset < lanes) v += other;
    }
    unsigned vote = __ballot_sync(mask, x[t] > 0);
    __syncwarp(mask);
    if (lane == 0) {
        sums[warp] = v;
        ballots[warp] = vote;
    }
}

// Per thread: ballot, all, any of x > 0 over the full warp, then over the even lanes only.
extern "C" __global__ void votes(unsigned* out, const int* x) {
    unsigned t = threadIdx.x, lane = t % 32;
    int pred = x[t] > 0;
    out[6 * t] = __ballot_sync(PYCONV_FULL_MASK, pred);
    out[6 * t + 1] = __all_sync(PYCONV_FULL_MASK, pred);
    out[6 * t + 2] = __any_sync(PYCONV_FULL_MASK, pred);
    const unsigned even = 0x55555555u;
    if (lane % 2 == 0) {
        out[6 * t + 3] = __ballot_sync(even, pred);
        out[6 * t + 4] = __all_sync(even, pred);
        out[6 * t + 5] = __any_sync(even, pred);
    } else {
        out[6 * t + 3] = out[6 * t + 4] = out[6 * t + 5] = 7;
    }
}

// __reduce_*_sync and __match_any_sync over full warps.
extern "C" __global__ void warp_reductions(int* out, const int* x) {
    unsigned t = threadIdx.x;
    int v = x[t];
    out[4 * t] = __reduce_add_sync(PYCONV_FULL_MASK, v);
    out[4 * t + 1] = __reduce_min_sync(PYCONV_FULL_MASK, v);
    out[4 * t + 2] = __reduce_max_sync(PYCONV_FULL_MASK, v);
    out[4 * t + 3] = (int)__match_any_sync(PYCONV_FULL_MASK, v);
}
