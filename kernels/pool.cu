// Pooling over (N, C, H, W) planes: max_pool2d, avg_pool2d, adaptive_avg_pool2d, forward and
// backward. The oracle is pyconv/backends/numpy_ref/pool.py; every kernel adds in the order the
// reference does, so float64 results agree to the last bit except where the reference uses
// NumPy's pairwise sum (adaptive pooling with a single window along an axis).
//
// Forward kernels run one thread per output element, backward kernels one thread per input
// element gathering from the windows that contain it (no atomics, so results are deterministic),
// except max_pool2d_backward_scatter, used only for geometries with windows that miss the
// input: it scatters one plane per thread, in output order.
#include "compat.cuh"

template <typename T> __device__ __forceinline__ bool pool_is_nan(T v) {
    return v != v;  // isnan() is not declared under every one of our three compilers
}

// The taps i in [begin, end) of a window starting at `start` (step `dilation`, `kernel` taps)
// that land inside [0, length).
struct TapRange {
    int begin;
    int end;
};

__device__ __forceinline__ TapRange pool_taps_inside(int start, int kernel, int dilation,
                                                      int length) {
    TapRange r;
    r.begin = start < 0 ? (-start + dilation - 1) / dilation : 0;
    int reach = length - start;  // taps with i * dilation < reach are inside
    r.end = reach <= 0 ? 0 : min(kernel, (reach + dilation - 1) / dilation);
    return r;
}

// Split a flat index over (planes, rows, cols) into its plane and the position in the plane.
struct PlanePos {
    long long plane;
    int row;
    int col;
};

__device__ __forceinline__ PlanePos pool_plane_pos(long long i, int rows, int cols) {
    PlanePos pos;
    long long r = i / cols;
    pos.col = (int)(i - r * cols);
    pos.plane = r / rows;
    pos.row = (int)(r - pos.plane * rows);
    return pos;
}

// ---------------------------------------------------------------------------------------------
// max pooling
// ---------------------------------------------------------------------------------------------

// y, indices (N*C, P, Q) from x (N*C, H, W); n = N*C*P*Q. Taps are visited in row-major order and
// replace the running maximum when greater or NaN, as PyTorch's CPU kernel: the first maximum
// wins ties, the last NaN wins among NaNs, and a window without a winner (all -inf, or every tap
// in the padding) reports its first tap at or after (0, 0).
template <typename T>
__device__ void max_pool2d_forward(T* __restrict__ y, long long* __restrict__ indices,
                                   const T* __restrict__ x, long long n, int H, int W, int P,
                                   int Q, int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                                   int dw) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        PlanePos out = pool_plane_pos(i, P, Q);
        int h0 = out.row * sh - ph;
        int w0 = out.col * sw - pw;
        TapRange rows = pool_taps_inside(h0, kh, dh, H);
        TapRange cols = pool_taps_inside(w0, kw, dw, W);
        const T* plane = x + out.plane * ((long long)H * W);
        T best = -pyconv_limits<T>::inf();
        long long best_index = (long long)(h0 + rows.begin * dh) * W + (w0 + cols.begin * dw);
        for (int a = rows.begin; a < rows.end; ++a) {
            long long row = (long long)(h0 + a * dh) * W;
            for (int b = cols.begin; b < cols.end; ++b) {
                long long at = row + w0 + b * dw;
                T v = plane[at];
                if (v > best || pool_is_nan(v)) {
                    best = v;
                    best_index = at;
                }
            }
        }
        y[i] = best;
        indices[i] = best_index;
    }
}

// grad_x (N*C, H, W): each input cell gathers grad_y of the windows whose saved maximum it is.
// The windows containing row h are p = (h + ph - a*dh) / sh for the taps a that divide evenly
// (one window per tap), likewise for columns; visiting taps from the last to the first visits
// windows in output order, the reference's summation order. No atomics, one write per cell.
// Needs every window to contain an input cell (the glue checks; otherwise it uses the plane
// scatter below). n = N*C*H*W.
template <typename T>
__device__ void max_pool2d_backward_gather(T* __restrict__ grad_x, const T* __restrict__ grad_y,
                                           const long long* __restrict__ indices, long long n,
                                           int H, int W, int P, int Q, int kh, int kw, int sh,
                                           int sw, int ph, int pw, int dh, int dw) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        PlanePos in = pool_plane_pos(i, H, W);
        const long long here = (long long)in.row * W + in.col;
        const long long plane_offset = in.plane * ((long long)P * Q);
        const T* gy = grad_y + plane_offset;
        const long long* idx = indices + plane_offset;
        T sum = 0;
        #pragma unroll 1
        for (int a = kh - 1; a >= 0; --a) {
            int row_start = in.row + ph - a * dh;
            int p = row_start / sh;
            if (row_start < 0 || p * sh != row_start || p >= P) continue;
            #pragma unroll 1
            for (int b = kw - 1; b >= 0; --b) {
                int col_start = in.col + pw - b * dw;
                int q = col_start / sw;
                if (col_start < 0 || q * sw != col_start || q >= Q) continue;
                const int o = p * Q + q;  // P*Q < 2^31: the glue checks
                if (idx[o] == here) sum += gy[o];
            }
        }
        grad_x[i] = sum;
    }
}

// grad_x (planes, plane_in) += grad_y (planes, plane_out) scattered to `indices`; grad_x must be
// zeroed by the caller. One thread per plane adds in output order (as the reference). Only for
// geometries with windows that hold no input cell (dilation + padding): their index may wrap
// into a cell outside the window, which the gather cannot see. Indices outside [0, plane_in)
// are skipped.
template <typename T>
__device__ void max_pool2d_backward_scatter(T* __restrict__ grad_x, const T* __restrict__ grad_y,
                                            const long long* __restrict__ indices,
                                            long long planes, long long plane_in,
                                            long long plane_out) {
    PYCONV_GRID_STRIDE_LOOP(plane, planes) {
        T* gx = grad_x + plane * plane_in;
        const T* gy = grad_y + plane * plane_out;
        const long long* idx = indices + plane * plane_out;
        for (long long o = 0; o < plane_out; ++o) {
            long long at = idx[o];
            if (at >= 0 && at < plane_in) gx[at] += gy[o];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// average pooling
// ---------------------------------------------------------------------------------------------

// Cells of window `p` along one axis that the divisor counts: the window clipped to the padded
// axis (a ceil_mode window may reach past it) or, without count_include_pad, to the real axis.
__device__ __forceinline__ int avg_window_cells(int p, int length, int kernel, int stride,
                                                int pad, int count_include_pad) {
    int start = p * stride - pad;
    int end = min(start + kernel, length + pad);
    if (count_include_pad) return end - start;
    return min(end, length) - max(start, 0);
}

// The divisor of window (p, q) given the count of its row cells: divisor_override (0 = none)
// or the product of the clipped row and column cell counts.
template <typename T>
__device__ __forceinline__ T avg_divisor(int row_cells, int q, int W, int kw, int sw, int pw,
                                         int count_include_pad, int divisor_override) {
    if (divisor_override != 0) return (T)divisor_override;
    return (T)((long long)row_cells * avg_window_cells(q, W, kw, sw, pw, count_include_pad));
}

// y (N*C, P, Q) = window sums of x (N*C, H, W), row-major over the taps, divided by
// divisor_override (0 = none) or the clipped window size. n = N*C*P*Q.
template <typename T>
__device__ void avg_pool2d_forward(T* __restrict__ y, const T* __restrict__ x, long long n, int H,
                                   int W, int P, int Q, int kh, int kw, int sh, int sw, int ph,
                                   int pw, int count_include_pad, int divisor_override) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        PlanePos out = pool_plane_pos(i, P, Q);
        int h0 = out.row * sh - ph;
        int w0 = out.col * sw - pw;
        TapRange rows = pool_taps_inside(h0, kh, 1, H);
        TapRange cols = pool_taps_inside(w0, kw, 1, W);
        const T* plane = x + out.plane * ((long long)H * W);
        T sum = 0;
        for (int a = rows.begin; a < rows.end; ++a) {
            const T* row = plane + (long long)(h0 + a) * W + w0;
            for (int b = cols.begin; b < cols.end; ++b) sum += row[b];
        }
        int row_cells = avg_window_cells(out.row, H, kh, sh, ph, count_include_pad);
        y[i] = sum / avg_divisor<T>(row_cells, out.col, W, kw, sw, pw, count_include_pad,
                                    divisor_override);
    }
}

// The windows [first, last] along one axis whose taps cover padded coordinate `at`.
struct WindowRange {
    int first;
    int last;
};

__device__ __forceinline__ WindowRange avg_covering_windows(int at, int kernel, int stride,
                                                            int out_len) {
    WindowRange r;
    int lowest_start = at - kernel + 1;  // windows starting at or after it reach `at`
    r.first = lowest_start <= 0 ? 0 : (lowest_start + stride - 1) / stride;
    r.last = min(at / stride, out_len - 1);
    return r;
}

// share (N*C, P, Q) = grad_y / divisor of each window: the per-window quotient of the backward
// pass, computed once per output rather than once per (input cell, window) pair, which also keeps
// the IEEE division's slow path (and its register spills) out of the gather loop. n = N*C*P*Q.
template <typename T>
__device__ void avg_pool2d_backward_share(T* __restrict__ share, const T* __restrict__ grad_y,
                                          long long n, int H, int W, int P, int Q, int kh, int kw,
                                          int sh, int sw, int ph, int pw, int count_include_pad,
                                          int divisor_override) {
    const long long plane_size = (long long)P * Q;
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        // only the position within the plane matters here: one 64-bit remainder, then 32-bit math
        int within = (int)(i % plane_size);
        int row = within / Q, col = within - row * Q;
        int row_cells = avg_window_cells(row, H, kh, sh, ph, count_include_pad);
        share[i] = grad_y[i] / avg_divisor<T>(row_cells, col, W, kw, sw, pw, count_include_pad,
                                              divisor_override);
    }
}

// grad_x (N*C, H, W): each cell sums the shares of the windows containing it, in the
// reference's order (taps row-major, i.e. windows from the last to the first). n = N*C*H*W.
template <typename T>
__device__ void avg_pool2d_backward(T* __restrict__ grad_x, const T* __restrict__ share,
                                    long long n, int H, int W, int P, int Q, int kh, int kw,
                                    int sh, int sw, int ph, int pw) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        PlanePos in = pool_plane_pos(i, H, W);
        WindowRange rows = avg_covering_windows(in.row + ph, kh, sh, P);
        WindowRange cols = avg_covering_windows(in.col + pw, kw, sw, Q);
        const T* plane = share + in.plane * ((long long)P * Q);
        T sum = 0;
        for (int p = rows.last; p >= rows.first; --p) {
            const T* row = plane + (long long)p * Q;
            for (int q = cols.last; q >= cols.first; --q) sum += row[q];
        }
        grad_x[i] = sum;
    }
}

// ---------------------------------------------------------------------------------------------
// adaptive average pooling
// ---------------------------------------------------------------------------------------------

// Window p of an axis of length L split into O windows spans [floor(p*L/O), ceil((p+1)*L/O)).
// The host guarantees (L + 1) * (O + 1) < 2^31, so 32-bit products suffice (64-bit division is a
// slow subroutine call on the GPU).
__device__ __forceinline__ WindowRange adaptive_window(int p, int length, int out_len) {
    WindowRange r;
    r.first = p * length / out_len;
    r.last = ((p + 1) * length + out_len - 1) / out_len - 1;
    return r;
}

// The windows [first, last] containing cell `at`: exactly those with floor(at*O/L) <= p <
// ceil((at+1)*O/L), from the window bounds above.
__device__ __forceinline__ WindowRange adaptive_covering_windows(int at, int length,
                                                                 int out_len) {
    WindowRange r;
    r.first = at * out_len / length;
    r.last = ((at + 1) * out_len + length - 1) / length - 1;
    return r;
}

// y (N*C, P, Q): means of x (N*C, H, W) over (row window) x (column window). Sums each column
// over the rows first, then the column sums, as the reference. n = N*C*P*Q; P, Q >= 1.
template <typename T>
__device__ void adaptive_avg_pool2d_forward(T* __restrict__ y, const T* __restrict__ x,
                                            long long n, int H, int W, int P, int Q) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        PlanePos out = pool_plane_pos(i, P, Q);
        WindowRange rows = adaptive_window(out.row, H, P);
        WindowRange cols = adaptive_window(out.col, W, Q);
        const T* plane = x + out.plane * ((long long)H * W);
        T sum = 0;
        for (int w = cols.first; w <= cols.last; ++w) {
            T column = plane[(long long)rows.first * W + w];
            for (int h = rows.first + 1; h <= rows.last; ++h) column += plane[(long long)h * W + w];
            sum = w == cols.first ? column : sum + column;  // keeps a lone -0.0, as the reference
        }
        long long cells = (long long)(rows.last - rows.first + 1) * (cols.last - cols.first + 1);
        y[i] = sum / (T)cells;
    }
}

// grad_x (N*C, H, W): each cell sums grad_y / cell count over the windows containing it, over
// the rows first, then the columns, as the reference. n = N*C*H*W; P, Q >= 1.
template <typename T>
__device__ void adaptive_avg_pool2d_backward(T* __restrict__ grad_x, const T* __restrict__ grad_y,
                                             long long n, int H, int W, int P, int Q) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        PlanePos in = pool_plane_pos(i, H, W);
        WindowRange rows = adaptive_covering_windows(in.row, H, P);
        WindowRange cols = adaptive_covering_windows(in.col, W, Q);
        const T* gy = grad_y + in.plane * ((long long)P * Q);
        T sum = 0;
        for (int q = cols.first; q <= cols.last; ++q) {
            WindowRange col_cells = adaptive_window(q, W, Q);
            long long width = col_cells.last - col_cells.first + 1;
            T column = 0;
            #pragma unroll 1  // unrolled, the f64 division calls spill registers
            for (int p = rows.first; p <= rows.last; ++p) {
                WindowRange row_cells = adaptive_window(p, H, P);
                long long cells = (row_cells.last - row_cells.first + 1) * width;
                T share = gy[(long long)p * Q + q] / (T)cells;
                column = p == rows.first ? share : column + share;
            }
            sum = q == cols.first ? column : sum + column;
        }
        grad_x[i] = sum;
    }
}

// ---------------------------------------------------------------------------------------------
// entry points (outputs first, then inputs, then sizes). cuda_glue/pool.py launches 256 threads
// per block; the bound is a literal so that the emulator enforces it too.
// ---------------------------------------------------------------------------------------------

extern "C" __global__ void __launch_bounds__(256)
max_pool2d_forward_f32(float* y, long long* indices, const float* x, long long n, int H, int W,
                       int P, int Q, int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                       int dw) {
    max_pool2d_forward<float>(y, indices, x, n, H, W, P, Q, kh, kw, sh, sw, ph, pw, dh, dw);
}
extern "C" __global__ void __launch_bounds__(256)
max_pool2d_forward_f64(double* y, long long* indices, const double* x, long long n, int H, int W,
                       int P, int Q, int kh, int kw, int sh, int sw, int ph, int pw, int dh,
                       int dw) {
    max_pool2d_forward<double>(y, indices, x, n, H, W, P, Q, kh, kw, sh, sw, ph, pw, dh, dw);
}

extern "C" __global__ void __launch_bounds__(256)
max_pool2d_backward_gather_f32(float* grad_x, const float* grad_y, const long long* indices,
                               long long n, int H, int W, int P, int Q, int kh, int kw, int sh,
                               int sw, int ph, int pw, int dh, int dw) {
    max_pool2d_backward_gather<float>(grad_x, grad_y, indices, n, H, W, P, Q, kh, kw, sh, sw, ph,
                                      pw, dh, dw);
}
extern "C" __global__ void __launch_bounds__(256)
max_pool2d_backward_gather_f64(double* grad_x, const double* grad_y, const long long* indices,
                               long long n, int H, int W, int P, int Q, int kh, int kw, int sh,
                               int sw, int ph, int pw, int dh, int dw) {
    max_pool2d_backward_gather<double>(grad_x, grad_y, indices, n, H, W, P, Q, kh, kw, sh, sw,
                                       ph, pw, dh, dw);
}

extern "C" __global__ void __launch_bounds__(256)
max_pool2d_backward_scatter_f32(float* grad_x, const float* grad_y, const long long* indices,
                                long long planes, long long plane_in, long long plane_out) {
    max_pool2d_backward_scatter<float>(grad_x, grad_y, indices, planes, plane_in, plane_out);
}
extern "C" __global__ void __launch_bounds__(256)
max_pool2d_backward_scatter_f64(double* grad_x, const double* grad_y, const long long* indices,
                                long long planes, long long plane_in, long long plane_out) {
    max_pool2d_backward_scatter<double>(grad_x, grad_y, indices, planes, plane_in, plane_out);
}

extern "C" __global__ void __launch_bounds__(256)
avg_pool2d_forward_f32(float* y, const float* x, long long n, int H, int W, int P, int Q, int kh,
                       int kw, int sh, int sw, int ph, int pw, int count_include_pad,
                       int divisor_override) {
    avg_pool2d_forward<float>(y, x, n, H, W, P, Q, kh, kw, sh, sw, ph, pw, count_include_pad,
                              divisor_override);
}
extern "C" __global__ void __launch_bounds__(256)
avg_pool2d_forward_f64(double* y, const double* x, long long n, int H, int W, int P, int Q,
                       int kh, int kw, int sh, int sw, int ph, int pw, int count_include_pad,
                       int divisor_override) {
    avg_pool2d_forward<double>(y, x, n, H, W, P, Q, kh, kw, sh, sw, ph, pw, count_include_pad,
                               divisor_override);
}

extern "C" __global__ void __launch_bounds__(256)
avg_pool2d_backward_share_f32(float* share, const float* grad_y, long long n, int H, int W, int P,
                              int Q, int kh, int kw, int sh, int sw, int ph, int pw,
                              int count_include_pad, int divisor_override) {
    avg_pool2d_backward_share<float>(share, grad_y, n, H, W, P, Q, kh, kw, sh, sw, ph, pw,
                                     count_include_pad, divisor_override);
}
extern "C" __global__ void __launch_bounds__(256)
avg_pool2d_backward_share_f64(double* share, const double* grad_y, long long n, int H, int W,
                              int P, int Q, int kh, int kw, int sh, int sw, int ph, int pw,
                              int count_include_pad, int divisor_override) {
    avg_pool2d_backward_share<double>(share, grad_y, n, H, W, P, Q, kh, kw, sh, sw, ph, pw,
                                      count_include_pad, divisor_override);
}

extern "C" __global__ void __launch_bounds__(256)
avg_pool2d_backward_f32(float* grad_x, const float* share, long long n, int H, int W, int P,
                        int Q, int kh, int kw, int sh, int sw, int ph, int pw) {
    avg_pool2d_backward<float>(grad_x, share, n, H, W, P, Q, kh, kw, sh, sw, ph, pw);
}
extern "C" __global__ void __launch_bounds__(256)
avg_pool2d_backward_f64(double* grad_x, const double* share, long long n, int H, int W, int P,
                        int Q, int kh, int kw, int sh, int sw, int ph, int pw) {
    avg_pool2d_backward<double>(grad_x, share, n, H, W, P, Q, kh, kw, sh, sw, ph, pw);
}

extern "C" __global__ void __launch_bounds__(256)
adaptive_avg_pool2d_forward_f32(float* y, const float* x, long long n, int H, int W, int P,
                                int Q) {
    adaptive_avg_pool2d_forward<float>(y, x, n, H, W, P, Q);
}
extern "C" __global__ void __launch_bounds__(256)
adaptive_avg_pool2d_forward_f64(double* y, const double* x, long long n, int H, int W, int P,
                                int Q) {
    adaptive_avg_pool2d_forward<double>(y, x, n, H, W, P, Q);
}

extern "C" __global__ void __launch_bounds__(256)
adaptive_avg_pool2d_backward_f32(float* grad_x, const float* grad_y, long long n, int H, int W,
                                 int P, int Q) {
    adaptive_avg_pool2d_backward<float>(grad_x, grad_y, n, H, W, P, Q);
}
extern "C" __global__ void __launch_bounds__(256)
adaptive_avg_pool2d_backward_f64(double* grad_x, const double* grad_y, long long n, int H, int W,
                                 int P, int Q) {
    adaptive_avg_pool2d_backward<double>(grad_x, grad_y, n, H, W, P, Q);
}
