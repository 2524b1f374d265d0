// Softmax and log-softmax along one axis, forward and backward. Semantics:
// pyconv/backends/numpy_ref/softmax.py.
//
// The glue (cuda_glue/softmax.py) views the array as (outer, L, inner), L being the reduced axis,
// and picks one of three traversals of the same per-row ops:
//   *_warp    inner == 1 and L <= 1024: one warp per row, lanes combined by shuffle butterflies;
//   *_block   inner == 1 and L > 1024: one block per row, warps combined through shared memory;
//   *_column  inner > 1: one thread per (outer, inner) pair walking the row with stride inner, so
//             consecutive threads read consecutive addresses.
// Every row is reduced once (forward: an online log-sum-exp; backward: a sum), then written in a
// second pass. Reductions run in a fixed order, so results do not depend on scheduling.
#include "compat.cuh"
#include "row_reduce.cuh"

// ---------------------------------------------------------------------------------------------
// Row ops: add(state, i) absorbs flat element i of the row; finish(state) turns the merged state
// into what write(row, i) needs to produce output element i.
// ---------------------------------------------------------------------------------------------

// What the write pass of a forward row needs: y = exp(x - shift) * scale, or with Log
// y = (x - shift) - scale.
template <typename T> struct ShiftScale {
    T shift;
    T scale;
};

// y = exp(x - max) / sum(exp(x - max)), or with Log: y = (x - max) - log(sum(exp(x - max))).
template <typename T, bool Log> struct SoftmaxForward {
    T* __restrict__ y;
    const T* __restrict__ x;
    typedef MaxExpSum<T> State;

    __device__ __forceinline__ void add(State& s, long long i) const { s.add(x[i]); }
    // one log or one division per row instead of one per element
    __device__ __forceinline__ ShiftScale<T> finish(State s) const {
        s.finish();
        ShiftScale<T> row;
        row.shift = s.max;
        row.scale = Log ? pyconv_log(s.sum) : T(1) / s.sum;
        return row;
    }
    __device__ __forceinline__ void write(const ShiftScale<T>& row, long long i) const {
        T shifted = x[i] - row.shift;
        y[i] = Log ? shifted - row.scale : pyconv_exp(shifted) * row.scale;
    }
};

// grad_x = y * (grad_y - sum(grad_y * y)).
template <typename T> struct SoftmaxBackward {
    T* __restrict__ grad_x;
    const T* __restrict__ grad_y;
    const T* __restrict__ y;
    typedef Sum<T> State;

    __device__ __forceinline__ void add(State& s, long long i) const { s.value += grad_y[i] * y[i]; }
    __device__ __forceinline__ State finish(State s) const { return s; }
    __device__ __forceinline__ void write(const State& row, long long i) const {
        grad_x[i] = y[i] * (grad_y[i] - row.value);
    }
};

// grad_x = grad_y - exp(y) * sum(grad_y), y being the log-softmax output.
template <typename T> struct LogSoftmaxBackward {
    T* __restrict__ grad_x;
    const T* __restrict__ grad_y;
    const T* __restrict__ y;
    typedef Sum<T> State;

    __device__ __forceinline__ void add(State& s, long long i) const { s.value += grad_y[i]; }
    __device__ __forceinline__ State finish(State s) const { return s; }
    __device__ __forceinline__ void write(const State& row, long long i) const {
        grad_x[i] = grad_y[i] - pyconv_exp(y[i]) * row.value;
    }
};

// ---------------------------------------------------------------------------------------------
// Traversals
// ---------------------------------------------------------------------------------------------

// rows contiguous rows of L elements; one warp per row, the grid's warps striding over rows.
// A warp's lanes share their row, so the full-mask shuffles are reached by all 32 of them.
template <typename Op> __device__ void sm_rows_by_warp(const Op& op, long long rows, int L) {
    const int lane = threadIdx.x % 32;
    const long long warps_per_block = blockDim.x / 32;
    const long long warps_in_grid = warps_per_block * gridDim.x;
    for (long long row = blockIdx.x * warps_per_block + threadIdx.x / 32; row < rows;
         row += warps_in_grid) {
        const long long base = row * L;
        typename Op::State s = Op::State::empty();
        for (int j = lane; j < L; j += 32) op.add(s, base + j);
        const auto stats = op.finish(warp_merge(s));
        for (int j = lane; j < L; j += 32) op.write(stats, base + j);
    }
}

// rows contiguous rows of L elements; one block per row, the grid's blocks striding over rows
// (the loop bound is the same for the whole block, so every thread reaches the barriers).
template <typename Op> __device__ void sm_rows_by_block(const Op& op, long long rows, int L) {
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const long long base = row * L;
        typename Op::State s = Op::State::empty();
        for (int j = threadIdx.x; j < L; j += blockDim.x) op.add(s, base + j);
        const auto stats = op.finish(block_merge(s));
        for (int j = threadIdx.x; j < L; j += blockDim.x) op.write(stats, base + j);
    }
}

// (outer, L, inner) with inner > 1: one thread per (outer, inner) pair.
template <typename Op>
__device__ void sm_columns(const Op& op, long long outer, int L, long long inner) {
    PYCONV_GRID_STRIDE_LOOP(pair, outer * inner) {
        const long long o = pair / inner;
        const long long base = o * L * inner + (pair - o * inner);
        typename Op::State s = Op::State::empty();
        for (int j = 0; j < L; ++j) op.add(s, base + j * inner);
        const auto stats = op.finish(s);
        for (int j = 0; j < L; ++j) op.write(stats, base + j * inner);
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points. Block sizes are fixed by the glue: 128 threads (4 rows) for *_warp, 512 for
// *_block, 256 for *_column.
// ---------------------------------------------------------------------------------------------

// softmax_forward(y, x)
extern "C" __global__ void __launch_bounds__(128)
softmax_forward_warp_f32(float* y, const float* x, long long rows, int L) {
    sm_rows_by_warp(SoftmaxForward<float, false>{y, x}, rows, L);
}
extern "C" __global__ void __launch_bounds__(128)
softmax_forward_warp_f64(double* y, const double* x, long long rows, int L) {
    sm_rows_by_warp(SoftmaxForward<double, false>{y, x}, rows, L);
}
extern "C" __global__ void __launch_bounds__(512)
softmax_forward_block_f32(float* y, const float* x, long long rows, int L) {
    sm_rows_by_block(SoftmaxForward<float, false>{y, x}, rows, L);
}
extern "C" __global__ void __launch_bounds__(512)
softmax_forward_block_f64(double* y, const double* x, long long rows, int L) {
    sm_rows_by_block(SoftmaxForward<double, false>{y, x}, rows, L);
}
extern "C" __global__ void __launch_bounds__(256)
softmax_forward_column_f32(float* y, const float* x, long long outer, int L, long long inner) {
    sm_columns(SoftmaxForward<float, false>{y, x}, outer, L, inner);
}
extern "C" __global__ void __launch_bounds__(256)
softmax_forward_column_f64(double* y, const double* x, long long outer, int L, long long inner) {
    sm_columns(SoftmaxForward<double, false>{y, x}, outer, L, inner);
}

// log_softmax_forward(y, x)
extern "C" __global__ void __launch_bounds__(128)
log_softmax_forward_warp_f32(float* y, const float* x, long long rows, int L) {
    sm_rows_by_warp(SoftmaxForward<float, true>{y, x}, rows, L);
}
extern "C" __global__ void __launch_bounds__(128)
log_softmax_forward_warp_f64(double* y, const double* x, long long rows, int L) {
    sm_rows_by_warp(SoftmaxForward<double, true>{y, x}, rows, L);
}
extern "C" __global__ void __launch_bounds__(512)
log_softmax_forward_block_f32(float* y, const float* x, long long rows, int L) {
    sm_rows_by_block(SoftmaxForward<float, true>{y, x}, rows, L);
}
extern "C" __global__ void __launch_bounds__(512)
log_softmax_forward_block_f64(double* y, const double* x, long long rows, int L) {
    sm_rows_by_block(SoftmaxForward<double, true>{y, x}, rows, L);
}
extern "C" __global__ void __launch_bounds__(256)
log_softmax_forward_column_f32(float* y, const float* x, long long outer, int L,
                               long long inner) {
    sm_columns(SoftmaxForward<float, true>{y, x}, outer, L, inner);
}
extern "C" __global__ void __launch_bounds__(256)
log_softmax_forward_column_f64(double* y, const double* x, long long outer, int L,
                               long long inner) {
    sm_columns(SoftmaxForward<double, true>{y, x}, outer, L, inner);
}

// softmax_backward(grad_x, grad_y, y)
extern "C" __global__ void __launch_bounds__(128)
softmax_backward_warp_f32(float* grad_x, const float* grad_y, const float* y, long long rows,
                          int L) {
    sm_rows_by_warp(SoftmaxBackward<float>{grad_x, grad_y, y}, rows, L);
}
extern "C" __global__ void __launch_bounds__(128)
softmax_backward_warp_f64(double* grad_x, const double* grad_y, const double* y, long long rows,
                          int L) {
    sm_rows_by_warp(SoftmaxBackward<double>{grad_x, grad_y, y}, rows, L);
}
extern "C" __global__ void __launch_bounds__(512)
softmax_backward_block_f32(float* grad_x, const float* grad_y, const float* y, long long rows,
                           int L) {
    sm_rows_by_block(SoftmaxBackward<float>{grad_x, grad_y, y}, rows, L);
}
extern "C" __global__ void __launch_bounds__(512)
softmax_backward_block_f64(double* grad_x, const double* grad_y, const double* y, long long rows,
                           int L) {
    sm_rows_by_block(SoftmaxBackward<double>{grad_x, grad_y, y}, rows, L);
}
extern "C" __global__ void __launch_bounds__(256)
softmax_backward_column_f32(float* grad_x, const float* grad_y, const float* y, long long outer,
                            int L, long long inner) {
    sm_columns(SoftmaxBackward<float>{grad_x, grad_y, y}, outer, L, inner);
}
extern "C" __global__ void __launch_bounds__(256)
softmax_backward_column_f64(double* grad_x, const double* grad_y, const double* y,
                            long long outer, int L, long long inner) {
    sm_columns(SoftmaxBackward<double>{grad_x, grad_y, y}, outer, L, inner);
}

// log_softmax_backward(grad_x, grad_y, y)
extern "C" __global__ void __launch_bounds__(128)
log_softmax_backward_warp_f32(float* grad_x, const float* grad_y, const float* y, long long rows,
                              int L) {
    sm_rows_by_warp(LogSoftmaxBackward<float>{grad_x, grad_y, y}, rows, L);
}
extern "C" __global__ void __launch_bounds__(128)
log_softmax_backward_warp_f64(double* grad_x, const double* grad_y, const double* y,
                              long long rows, int L) {
    sm_rows_by_warp(LogSoftmaxBackward<double>{grad_x, grad_y, y}, rows, L);
}
extern "C" __global__ void __launch_bounds__(512)
log_softmax_backward_block_f32(float* grad_x, const float* grad_y, const float* y,
                               long long rows, int L) {
    sm_rows_by_block(LogSoftmaxBackward<float>{grad_x, grad_y, y}, rows, L);
}
extern "C" __global__ void __launch_bounds__(512)
log_softmax_backward_block_f64(double* grad_x, const double* grad_y, const double* y,
                               long long rows, int L) {
    sm_rows_by_block(LogSoftmaxBackward<double>{grad_x, grad_y, y}, rows, L);
}
extern "C" __global__ void __launch_bounds__(256)
log_softmax_backward_column_f32(float* grad_x, const float* grad_y, const float* y,
                                long long outer, int L, long long inner) {
    sm_columns(LogSoftmaxBackward<float>{grad_x, grad_y, y}, outer, L, inner);
}
extern "C" __global__ void __launch_bounds__(256)
log_softmax_backward_column_f64(double* grad_x, const double* grad_y, const double* y,
                                long long outer, int L, long long inner) {
    sm_columns(LogSoftmaxBackward<double>{grad_x, grad_y, y}, outer, L, inner);
}
