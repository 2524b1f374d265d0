// Row reductions shared by kernels/softmax.cu and kernels/loss.cu: an online log-sum-exp
// state, a plain sum, and their warp- and block-wide merges in a fixed order (no atomics, so
// results do not depend on scheduling). Device code only; included after compat.cuh.
#pragma once

// Overloads resolved by element type (the global float overloads of <cmath> are not available
// under every compiler we use).
__device__ __forceinline__ float pyconv_exp(float x) { return expf(x); }
__device__ __forceinline__ double pyconv_exp(double x) { return exp(x); }
__device__ __forceinline__ float pyconv_log(float x) { return logf(x); }
__device__ __forceinline__ double pyconv_log(double x) { return log(x); }

// ---------------------------------------------------------------------------------------------
// Reduction states: each can absorb values, merge with another state and cross a warp shuffle.
// ---------------------------------------------------------------------------------------------

// Running max of the values seen and the sum of exp(value - max): the log-sum-exp in one pass.
// Adding x above the max rescales the sum by exp(old max - x) instead of re-reading the row.
template <typename T> struct MaxExpSum {
    T max;
    T sum;

    static __device__ __forceinline__ MaxExpSum empty() {
        MaxExpSum s;
        s.max = -pyconv_limits<T>::inf();
        s.sum = T(0);
        return s;
    }

    __device__ __forceinline__ void add(T x) {
        if (x > max) {
            sum = sum * pyconv_exp(max - x) + T(1);
            max = x;
        } else if (x != -pyconv_limits<T>::inf()) {
            // -inf adds exp(-inf) = 0; skipping it avoids exp(-inf - -inf) = NaN while max is -inf
            sum += pyconv_exp(x - max);
        }
    }

    __device__ __forceinline__ void merge(const MaxExpSum& other) {
        T m = other.max > max ? other.max : max;
        // an equal max (both -inf included) scales by exactly 1, never by exp(-inf - -inf)
        T mine = max == m ? sum : sum * pyconv_exp(max - m);
        T theirs = other.max == m ? other.sum : other.sum * pyconv_exp(other.max - m);
        max = m;
        sum = mine + theirs;
    }

    __device__ __forceinline__ MaxExpSum shfl_xor(int lane_mask) const {
        MaxExpSum s;
        s.max = __shfl_xor_sync(PYCONV_FULL_MASK, max, lane_mask);
        s.sum = __shfl_xor_sync(PYCONV_FULL_MASK, sum, lane_mask);
        return s;
    }

    // The reference computes exp(inf - inf) = NaN for a +inf entry, which makes the whole row NaN;
    // add() counted exp(0) = 1 for it instead.
    __device__ __forceinline__ void finish() {
        if (max == pyconv_limits<T>::inf()) sum = max - max;
    }    // log(sum(exp(x - max))), NaN for a row holding +inf (as finish() makes the sum)
    __device__ __forceinline__ T log_sum() const {
        return max == pyconv_limits<T>::inf() ? max - max : pyconv_log(sum);
    }
};

template <typename T> struct Sum {
    T value;

    static __device__ __forceinline__ Sum empty() {
        Sum s;
        s.value = T(0);
        return s;
    }
    __device__ __forceinline__ void merge(const Sum& other) { value += other.value; }
    __device__ __forceinline__ Sum shfl_xor(int lane_mask) const {
        Sum s;
        s.value = __shfl_xor_sync(PYCONV_FULL_MASK, value, lane_mask);
        return s;
    }
    __device__ __forceinline__ void finish() {}
};

// Merge the states of the 32 lanes of a warp; every lane gets the same result (merge is symmetric).
template <typename State> __device__ __forceinline__ State warp_merge(State s) {
#pragma unroll
    for (int lane_mask = 16; lane_mask > 0; lane_mask >>= 1) s.merge(s.shfl_xor(lane_mask));
    return s;
}

// Merge the states of a whole block (blockDim.x a multiple of 32); every thread gets the same
// result. Called by all threads of the block.
template <typename State> __device__ State block_merge(State s) {
    __shared__ State per_warp[32];
    const unsigned warp = threadIdx.x / 32;
    const unsigned lane = threadIdx.x % 32;
    s = warp_merge(s);
    if (lane == 0) per_warp[warp] = s;
    __syncthreads();
    s = lane < blockDim.x / 32 ? per_warp[lane] : State::empty();
    s = warp_merge(s);
    __syncthreads();  // per_warp is overwritten by the next call
    return s;
}
