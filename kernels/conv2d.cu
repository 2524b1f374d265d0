// conv2d forward, backward-input and backward-weight as implicit GEMM, plus dedicated depthwise
// kernels. Semantics: pyconv/backends/numpy_ref/conv.py (conv_transpose2d is composed from these
// in the glue, cuda_glue/conv.py).
//
// Per group g (G groups, Cg = C/G input and Kg = K/G output channels per group), each pass is one
// GEMM whose operands are read straight from the NCHW tensors (conv2d_tiles.cuh runs the tiles):
//   forward          y (Kg x N*P*Q)        = W (Kg x Cg*R*S)   @ im2col(x) (Cg*R*S x N*P*Q)
//   backward_input   grad_x (Cg x N*H*W)   = W^T (Cg x Kg*R*S) @ taps(grad_y) (Kg*R*S x N*H*W)
//   backward_weight  grad_W (Kg x Cg*R*S)  = grad_y (Kg x N*P*Q) @ im2col(x)^T (N*P*Q x Cg*R*S)
// taps(grad_y)[(k, r, s), (n, h, w)] is grad_y[n, k, p, q] when h = p*sh - top + r*dh and
// w = q*sw - left + s*dw for integer p in [0, P), q in [0, Q), else 0: only the valid taps are
// read (the others contribute zeros). backward_weight splits its N*P*Q depth into chunks, one
// grid z-slice each, whose partial products conv2d_backward_weight_reduce sums in chunk order:
// deterministic, no atomics.
//
// Entry points: <pass>_t64_<dtype> use 64 x 64 tiles and 256 threads, <pass>_t32_<dtype> 32 x 32
// tiles and 64 threads; conv2d_forward_wvec_t*_f32 read the weight as float4 (the glue checks
// C/G*R*S % 4 == 0 and 16-byte alignment). Grid: (column tiles, row tiles, G [* chunks]).
// Geometry: pt/pl are the top/left paddings. Offsets are 64-bit; the GEMM column and depth
// indices N*P*Q, N*H*W, C*R*S and K*R*S (pixels of one channel over the batch, taps of one
// filter) fit in int so that the operand decoding divides in 32 bits (the glue checks).
#include "compat.cuh"
#include "conv2d_tiles.cuh"

// ---------------------------------------------------------------------------------------------
// The three GEMM views of a convolution: rows, cols, column/load_a/load_b (operands) and
// output/store (the epilogue) as conv_gemm_tile wants; indices passed in are in range (the tile
// engine checks).
// ---------------------------------------------------------------------------------------------

struct ConvGeometry {
    int N, C, H, W, K, P, Q, R, S, sh, sw, pt, pl, dh, dw, G;
};

// Offset of out[n, 0, pos] for GEMM column j = n * plane + pos of an (N, channels, plane)
// output; channel c of that column is at offset + c * plane. Decoded once per column by the
// epilogue of the forward and backward-input passes.
__device__ __forceinline__ long long conv_nchw_column(long long j, int channels, int plane) {
    const int n = (int)j / plane;
    return (long long)n * channels * plane + ((int)j - n * plane);
}

// A is W (Kg x Cg*R*S, row-major in memory), B is im2col(x), C is y (+ bias).
template <typename T> struct ConvForwardOp {
    T* __restrict__ y;
    const T* __restrict__ x;
    const T* __restrict__ w;
    const T* __restrict__ bias;
    ConvGeometry d;
    int has_bias, g, rows;
    long long cols, depth;

    struct Column {
        const T* plane;  // x[n, g*Cg]
        int h0, w0;      // window origin in x
    };

    __device__ __forceinline__ Column column(long long j) const {
        const int PQ = d.P * d.Q;
        const int n = (int)j / PQ;
        const int pq = (int)j - n * PQ;
        const int p = pq / d.Q;
        Column c;
        const long long channel = (long long)n * d.C + (long long)g * (d.C / d.G);
        c.plane = x + channel * ((long long)d.H * d.W);
        c.h0 = p * d.sh - d.pt;
        c.w0 = (pq - p * d.Q) * d.sw - d.pl;
        return c;
    }
    __device__ __forceinline__ T load_b(const Column& col, long long kk) const {
        const int RS = d.R * d.S;
        const int c = (int)kk / RS;
        const int rs = (int)kk - c * RS;
        const int r = rs / d.S;
        const int h = col.h0 + r * d.dh;
        const int wi = col.w0 + (rs - r * d.S) * d.dw;
        if ((unsigned)h >= (unsigned)d.H || (unsigned)wi >= (unsigned)d.W) return T(0);
        return col.plane[(long long)c * d.H * d.W + h * d.W + wi];
    }
    __device__ __forceinline__ T load_a(int m, long long kk) const {
        return w[((long long)g * rows + m) * depth + kk];
    }
    __device__ __forceinline__ void load_a4(int m, long long kk, float (&v)[4]) const {
        const float* row = w + ((long long)g * rows + m) * depth;
        const float4 q = *reinterpret_cast<const float4*>(row + kk);
        v[0] = q.x;
        v[1] = q.y;
        v[2] = q.z;
        v[3] = q.w;
    }
    __device__ __forceinline__ long long output(long long j) const {
        return conv_nchw_column(j, d.K, d.P * d.Q);
    }
    __device__ __forceinline__ void store(long long out, int m, T v) const {
        const int k = g * rows + m;
        y[out + (long long)k * (d.P * d.Q)] = has_bias ? v + bias[k] : v;
    }
};

// A is W^T (Cg x Kg*R*S), B is taps(grad_y), C is grad_x (+ bias per input channel, which
// conv_transpose2d_forward uses).
template <typename T> struct ConvBackwardInputOp {
    T* __restrict__ grad_x;
    const T* __restrict__ grad_y;
    const T* __restrict__ w;
    const T* __restrict__ bias;
    ConvGeometry d;
    int has_bias, g, rows;
    long long cols;

    struct Column {
        const T* planes;  // grad_y[n, g*Kg]
        int hp, wp;       // h + top, w + left
    };

    __device__ __forceinline__ Column column(long long j) const {
        const int HW = d.H * d.W;
        const int n = (int)j / HW;
        const int hw = (int)j - n * HW;
        const int h = hw / d.W;
        Column c;
        const long long channel = (long long)n * d.K + (long long)g * (d.K / d.G);
        c.planes = grad_y + channel * ((long long)d.P * d.Q);
        c.hp = h + d.pt;
        c.wp = hw - h * d.W + d.pl;
        return c;
    }
    __device__ __forceinline__ T load_b(const Column& col, long long kk) const {
        const int RS = d.R * d.S;
        const int k = (int)kk / RS;
        const int rs = (int)kk - k * RS;
        const int r = rs / d.S;
        const int ph = col.hp - r * d.dh;
        const int pw = col.wp - (rs - r * d.S) * d.dw;
        if (ph < 0 || pw < 0) return T(0);
        const int p = ph / d.sh;
        const int q = pw / d.sw;
        if (p * d.sh != ph || q * d.sw != pw || p >= d.P || q >= d.Q) return T(0);
        return col.planes[(long long)k * d.P * d.Q + p * d.Q + q];
    }
    __device__ __forceinline__ T load_a(int m, long long kk) const {
        const int RS = d.R * d.S;
        const int k = (int)kk / RS;
        const int rs = (int)kk - k * RS;
        return w[(((long long)g * (d.K / d.G) + k) * rows + m) * RS + rs];
    }
    __device__ __forceinline__ long long output(long long j) const {
        return conv_nchw_column(j, d.C, d.H * d.W);
    }
    __device__ __forceinline__ void store(long long out, int m, T v) const {
        const int c = g * rows + m;
        grad_x[out + (long long)c * (d.H * d.W)] = has_bias ? v + bias[c] : v;
    }
};

// A is grad_y (Kg x N*P*Q), B is im2col(x)^T, C is one chunk's partial grad_W, written to
// partial[chunk] (K x Cg*R*S); with one chunk that is grad_W itself.
template <typename T> struct ConvBackwardWeightOp {
    T* __restrict__ partial;
    const T* __restrict__ grad_y;
    const T* __restrict__ x;
    ConvGeometry d;
    int g, rows;
    long long cols;

    struct Column {
        long long offset;  // (g*Cg + c) * H*W
        int hr, ws;        // r*dh - top, s*dw - left
    };

    __device__ __forceinline__ Column column(long long j) const {
        const int RS = d.R * d.S;
        const int c = (int)j / RS;
        const int rs = (int)j - c * RS;
        const int r = rs / d.S;
        Column col;
        col.offset = ((long long)g * (d.C / d.G) + c) * ((long long)d.H * d.W);
        col.hr = r * d.dh - d.pt;
        col.ws = (rs - r * d.S) * d.dw - d.pl;
        return col;
    }
    __device__ __forceinline__ T load_b(const Column& col, long long kk) const {
        const int PQ = d.P * d.Q;
        const int n = (int)kk / PQ;
        const int pq = (int)kk - n * PQ;
        const int p = pq / d.Q;
        const int h = p * d.sh + col.hr;
        const int wi = (pq - p * d.Q) * d.sw + col.ws;
        if ((unsigned)h >= (unsigned)d.H || (unsigned)wi >= (unsigned)d.W) return T(0);
        return x[(long long)n * d.C * ((long long)d.H * d.W) + col.offset + h * d.W + wi];
    }
    __device__ __forceinline__ T load_a(int m, long long kk) const {
        const int PQ = d.P * d.Q;
        const int n = (int)kk / PQ;
        const long long channel = (long long)n * d.K + (long long)g * rows + m;
        return grad_y[channel * PQ + ((int)kk - n * PQ)];
    }
    __device__ __forceinline__ long long output(long long j) const { return j; }
    __device__ __forceinline__ void store(long long j, int m, T v) const {
        partial[((long long)g * rows + m) * cols + j] = v;
    }
};

// ---------------------------------------------------------------------------------------------
// Pass bodies: build the op for this block's group (and chunk) and run the tile.
// ---------------------------------------------------------------------------------------------

template <typename T, int BM, int BN, bool VecA>
__device__ __forceinline__ void conv2d_forward(T* y, const T* x, const T* w, const T* bias,
                                               int has_bias, ConvGeometry d) {
    ConvForwardOp<T> op{y, x, w, bias, d, has_bias, (int)blockIdx.z, d.K / d.G,
                        (long long)d.N * d.P * d.Q, (long long)(d.C / d.G) * d.R * d.S};
    conv_gemm_tile<T, BM, BN, VecA>(op, 0, op.depth);
}

template <typename T, int BM, int BN>
__device__ __forceinline__ void conv2d_backward_input(T* grad_x, const T* grad_y, const T* w,
                                                      const T* bias, int has_bias,
                                                      ConvGeometry d) {
    ConvBackwardInputOp<T> op{grad_x, grad_y, w, bias, d, has_bias, (int)blockIdx.z, d.C / d.G,
                              (long long)d.N * d.H * d.W};
    conv_gemm_tile<T, BM, BN, false>(op, 0, (long long)(d.K / d.G) * d.R * d.S);
}

// Grid z = G * chunks; chunk c covers depth [c * chunk, (c + 1) * chunk) of N*P*Q and writes
// partial + c * K*Cg*R*S.
template <typename T, int BM, int BN>
__device__ __forceinline__ void conv2d_backward_weight(T* partial, const T* grad_y, const T* x,
                                                       long long chunk, int chunks,
                                                       ConvGeometry d) {
    const int g = (int)blockIdx.z / chunks;
    const int c = (int)blockIdx.z - g * chunks;
    const long long cols = (long long)(d.C / d.G) * d.R * d.S;
    ConvBackwardWeightOp<T> op{partial + c * (long long)d.K * cols, grad_y, x, d, g, d.K / d.G,
                               cols};
    const long long depth = (long long)d.N * d.P * d.Q;
    const long long begin = c * chunk;
    conv_gemm_tile<T, BM, BN, false>(op, begin, begin + chunk < depth ? begin + chunk : depth);
}

// grad_w[i] = sum over chunks c in order of partial[c * n + i].
template <typename T>
__device__ __forceinline__ void conv2d_backward_weight_reduce(T* __restrict__ grad_w,
                                                              const T* __restrict__ partial,
                                                              long long n, int chunks) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        T sum = partial[i];
        for (int c = 1; c < chunks; ++c) sum += partial[c * n + i];
        grad_w[i] = sum;
    }
}

// ---------------------------------------------------------------------------------------------
// Depthwise (G == C == K, weight (C, 1, R, S)): no GEMM, each thread one output of one plane.
// ---------------------------------------------------------------------------------------------

// y[n, c, p, q] = bias[c] + sum_{r, s} x[n, c, p*sh - pt + r*dh, q*sw - pl + s*dw] * w[c, r, s];
// one thread per output element, taps in row-major order (the reference's order).
template <typename T>
__device__ __forceinline__ void conv2d_depthwise_forward(T* __restrict__ y,
                                                         const T* __restrict__ x,
                                                         const T* __restrict__ w,
                                                         const T* __restrict__ bias,
                                                         int has_bias, ConvGeometry d) {
    const int PQ = d.P * d.Q;
    const long long n_out = (long long)d.N * d.C * PQ;
    PYCONV_GRID_STRIDE_LOOP(i, n_out) {
        const long long plane = i / PQ;
        const int pq = (int)(i - plane * PQ);
        const int p = pq / d.Q;
        const int c = (int)(plane % d.C);
        const int h0 = p * d.sh - d.pt;
        const int w0 = (pq - p * d.Q) * d.sw - d.pl;
        const T* xp = x + plane * ((long long)d.H * d.W);
        const T* wc = w + (long long)c * d.R * d.S;
        T sum = T(0);
        #pragma unroll 1
        for (int r = 0; r < d.R; ++r) {
            const int h = h0 + r * d.dh;
            if ((unsigned)h >= (unsigned)d.H) continue;
            #pragma unroll 1
            for (int s = 0; s < d.S; ++s) {
                const int wi = w0 + s * d.dw;
                if ((unsigned)wi < (unsigned)d.W) sum += xp[h * d.W + wi] * wc[r * d.S + s];
            }
        }
        y[i] = has_bias ? sum + bias[c] : sum;
    }
}

// grad_x[n, c, h, w] = bias[c] + sum over the taps (r, s) whose window (p, q) exists of
// grad_y[n, c, p, q] * w[c, r, s]; one thread per input element gathering (no atomics). The
// bias is conv_transpose2d's.
template <typename T>
__device__ __forceinline__ void conv2d_depthwise_backward_input(T* __restrict__ grad_x,
                                                                const T* __restrict__ grad_y,
                                                                const T* __restrict__ w,
                                                                const T* __restrict__ bias,
                                                                int has_bias, ConvGeometry d) {
    const int HW = d.H * d.W;
    const long long n_in = (long long)d.N * d.C * HW;
    PYCONV_GRID_STRIDE_LOOP(i, n_in) {
        const long long plane = i / HW;
        const int hw = (int)(i - plane * HW);
        const int h = hw / d.W;
        const int c = (int)(plane % d.C);
        const int hp = h + d.pt;
        const int wp = hw - h * d.W + d.pl;
        const T* gy = grad_y + plane * ((long long)d.P * d.Q);
        const T* wc = w + (long long)c * d.R * d.S;
        T sum = T(0);
        #pragma unroll 1
        for (int r = 0; r < d.R; ++r) {
            const int ph = hp - r * d.dh;
            const int p = ph / d.sh;
            if (ph < 0 || p * d.sh != ph || p >= d.P) continue;
            #pragma unroll 1
            for (int s = 0; s < d.S; ++s) {
                const int pw = wp - s * d.dw;
                const int q = pw / d.sw;
                if (pw < 0 || q * d.sw != pw || q >= d.Q) continue;
                sum += gy[p * d.Q + q] * wc[r * d.S + s];
            }
        }
        grad_x[i] = has_bias ? sum + bias[c] : sum;
    }
}

// grad_w[c, r, s] = sum_{n, p, q} grad_y[n, c, p, q] * x[n, c, h, w]: one block of
// CONV_DW_THREADS threads per (c, r, s); threads stride over N*P*Q, then a fixed-shape tree in
// shared memory combines them (deterministic).
#define CONV_DW_THREADS 256
template <typename T>
__device__ __forceinline__ void conv2d_depthwise_backward_weight(T* __restrict__ grad_w,
                                                                 const T* __restrict__ grad_y,
                                                                 const T* __restrict__ x,
                                                                 ConvGeometry d) {
    __shared__ T partial[CONV_DW_THREADS];
    const int RS = d.R * d.S;
    const int c = (int)(blockIdx.x / RS);
    const int rs = (int)blockIdx.x - c * RS;
    const int r = rs / d.S;
    const int hr = r * d.dh - d.pt;
    const int ws = (rs - r * d.S) * d.dw - d.pl;
    const int PQ = d.P * d.Q;
    const long long depth = (long long)d.N * PQ;
    T sum = T(0);
    for (long long j = threadIdx.x; j < depth; j += CONV_DW_THREADS) {
        const int n = (int)j / PQ;
        const int pq = (int)j - n * PQ;
        const int p = pq / d.Q;
        const int h = p * d.sh + hr;
        const int wi = (pq - p * d.Q) * d.sw + ws;
        if ((unsigned)h >= (unsigned)d.H || (unsigned)wi >= (unsigned)d.W) continue;
        const long long plane = n * d.C + c;
        sum += grad_y[plane * PQ + pq] * x[plane * ((long long)d.H * d.W) + h * d.W + wi];
    }
    partial[threadIdx.x] = sum;
    __syncthreads();
    #pragma unroll 1
    for (int half = CONV_DW_THREADS / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) grad_w[blockIdx.x] = partial[0];
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

#define CONV_GEOMETRY_PARAMS                                                                    \
    int N, int C, int H, int W, int K, int P, int Q, int R, int S, int sh, int sw, int pt, int pl, \
        int dh, int dw, int G
#define CONV_GEOMETRY ConvGeometry{N, C, H, W, K, P, Q, R, S, sh, sw, pt, pl, dh, dw, G}

#define CONV_GEMM_ENTRIES(TILE, THREADS)                                                         \
    extern "C" __global__ void __launch_bounds__(THREADS) conv2d_forward_t##TILE##_f32(           \
        float* y, const float* x, const float* w, const float* bias, int has_bias,                \
        CONV_GEOMETRY_PARAMS) {                                                                  \
        conv2d_forward<float, TILE, TILE, false>(y, x, w, bias, has_bias, CONV_GEOMETRY);         \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(THREADS) conv2d_forward_t##TILE##_f64(           \
        double* y, const double* x, const double* w, const double* bias, int has_bias,            \
        CONV_GEOMETRY_PARAMS) {                                                                  \
        conv2d_forward<double, TILE, TILE, false>(y, x, w, bias, has_bias, CONV_GEOMETRY);        \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(THREADS) conv2d_forward_wvec_t##TILE##_f32(      \
        float* y, const float* x, const float* w, const float* bias, int has_bias,                \
        CONV_GEOMETRY_PARAMS) {                                                                  \
        conv2d_forward<float, TILE, TILE, true>(y, x, w, bias, has_bias, CONV_GEOMETRY);          \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(THREADS) conv2d_backward_input_t##TILE##_f32(    \
        float* grad_x, const float* grad_y, const float* w, const float* bias, int has_bias,      \
        CONV_GEOMETRY_PARAMS) {                                                                  \
        conv2d_backward_input<float, TILE, TILE>(grad_x, grad_y, w, bias, has_bias,               \
                                                 CONV_GEOMETRY);                                 \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(THREADS) conv2d_backward_input_t##TILE##_f64(    \
        double* grad_x, const double* grad_y, const double* w, const double* bias, int has_bias,  \
        CONV_GEOMETRY_PARAMS) {                                                                  \
        conv2d_backward_input<double, TILE, TILE>(grad_x, grad_y, w, bias, has_bias,              \
                                                  CONV_GEOMETRY);                                \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(THREADS) conv2d_backward_weight_t##TILE##_f32(   \
        float* partial, const float* grad_y, const float* x, long long chunk, int chunks,         \
        CONV_GEOMETRY_PARAMS) {                                                                  \
        conv2d_backward_weight<float, TILE, TILE>(partial, grad_y, x, chunk, chunks,              \
                                                  CONV_GEOMETRY);                                \
    }                                                                                            \
    extern "C" __global__ void __launch_bounds__(THREADS) conv2d_backward_weight_t##TILE##_f64(   \
        double* partial, const double* grad_y, const double* x, long long chunk, int chunks,      \
        CONV_GEOMETRY_PARAMS) {                                                                  \
        conv2d_backward_weight<double, TILE, TILE>(partial, grad_y, x, chunk, chunks,             \
                                                   CONV_GEOMETRY);                               \
    }

CONV_GEMM_ENTRIES(64, 256)
CONV_GEMM_ENTRIES(32, 64)

extern "C" __global__ void __launch_bounds__(256)
conv2d_backward_weight_reduce_f32(float* grad_w, const float* partial, long long n, int chunks) {
    conv2d_backward_weight_reduce(grad_w, partial, n, chunks);
}
extern "C" __global__ void __launch_bounds__(256)
conv2d_backward_weight_reduce_f64(double* grad_w, const double* partial, long long n, int chunks) {
    conv2d_backward_weight_reduce(grad_w, partial, n, chunks);
}

extern "C" __global__ void __launch_bounds__(256)
conv2d_depthwise_forward_f32(float* y, const float* x, const float* w, const float* bias,
                             int has_bias, CONV_GEOMETRY_PARAMS) {
    conv2d_depthwise_forward(y, x, w, bias, has_bias, CONV_GEOMETRY);
}
extern "C" __global__ void __launch_bounds__(256)
conv2d_depthwise_forward_f64(double* y, const double* x, const double* w, const double* bias,
                             int has_bias, CONV_GEOMETRY_PARAMS) {
    conv2d_depthwise_forward(y, x, w, bias, has_bias, CONV_GEOMETRY);
}
extern "C" __global__ void __launch_bounds__(256)
conv2d_depthwise_backward_input_f32(float* grad_x, const float* grad_y, const float* w,
                                    const float* bias, int has_bias, CONV_GEOMETRY_PARAMS) {
    conv2d_depthwise_backward_input(grad_x, grad_y, w, bias, has_bias, CONV_GEOMETRY);
}
extern "C" __global__ void __launch_bounds__(256)
conv2d_depthwise_backward_input_f64(double* grad_x, const double* grad_y, const double* w,
                                    const double* bias, int has_bias, CONV_GEOMETRY_PARAMS) {
    conv2d_depthwise_backward_input(grad_x, grad_y, w, bias, has_bias, CONV_GEOMETRY);
}
extern "C" __global__ void __launch_bounds__(CONV_DW_THREADS)
conv2d_depthwise_backward_weight_f32(float* grad_w, const float* grad_y, const float* x,
                                     CONV_GEOMETRY_PARAMS) {
    conv2d_depthwise_backward_weight(grad_w, grad_y, x, CONV_GEOMETRY);
}
extern "C" __global__ void __launch_bounds__(CONV_DW_THREADS)
conv2d_depthwise_backward_weight_f64(double* grad_w, const double* grad_y, const double* x,
                                     CONV_GEOMETRY_PARAMS) {
    conv2d_depthwise_backward_weight(grad_w, grad_y, x, CONV_GEOMETRY);
}
