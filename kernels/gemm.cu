// Tiled GEMM for linear layers and RNN gate projections, and the column sums of bias gradients.
//
//   C (M, N) = alpha * op(A) @ op(B) + beta * C + bias[n]      (row-major, op = identity or ^T)
//
// A is stored (M, K) or, with trans_a, (K, M); B is stored (K, N) or, with trans_b, (N, K). The
// three linear kernels are the three flag combinations: x @ W^T (trans_b), grad_y @ W (none),
// grad_y^T @ x (trans_a). Semantics: pyconv/backends/numpy_ref/linear.py.
//
// Tiling: a block computes a TILE_M x 64 tile of C (TILE_M = 64 with 256 threads, or 32 with 128
// threads for products with few rows), stepping through K 16 at a time. Each k-step stages a
// TILE_M x 16 tile of op(A) and a 16 x 64 tile of op(B) in shared memory, both k-major
// (As[k][m], Bs[k][n]), so that a thread reads its 4 rows of A and 4 columns of B for one k with
// two 16-byte shared loads and does 16 FMAs into its 4 x 4 register tile. Two shared buffers
// alternate (double buffering): the global loads of step t + 1 are issued before the FMAs of
// step t and stored after them, so one barrier per k-step suffices.
//
// Global loads: the threads load the tiles in quads of 4 consecutive elements along the
// dimension that is contiguous in memory (k for A without trans_a, m with it; n for B without
// trans_b, k with it). The vec4 entry points load a quad with one 16-byte load (two for double)
// and read / write C 4 columns at a time; the glue uses them only when A, B, C (and bias) start
// 16-byte aligned and the row lengths of A, B and C are multiples of 4, so that a quad is either
// wholly inside a matrix or wholly outside. The scalar entry points check every element and take
// any shape.
//
// Deterministic: every element of C is summed by one thread in k order; no atomics.
#include "compat.cuh"

// Tile rows TILE_M is a template parameter: 64 (256 threads), or 32 (128 threads) for products
// with few rows such as the gate projections of an RNN step with a small batch.
#define GEMM_TILE_N 64
#define GEMM_TILE_K 16
// each thread computes a GEMM_THREAD_M x GEMM_THREAD_N sub-tile: (TILE_M / 4) x 16 threads
#define GEMM_THREAD_M 4
#define GEMM_THREAD_N 4
#define GEMM_THREADS(TILE_M) ((TILE_M) / GEMM_THREAD_M * (GEMM_TILE_N / GEMM_THREAD_N))

// Fused multiply-add by element type (the float overloads of <cmath> are not available under
// every compiler we use).
__device__ __forceinline__ float gemm_fma(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double gemm_fma(double a, double b, double c) { return fma(a, b, c); }

// Four consecutive elements; a struct (not an array) so that it lives in registers.
template <typename T> struct Quad {
    T v0, v1, v2, v3;
};

// 16-byte accesses of 4 consecutive elements (shared memory, or global memory the glue checked to
// be 16-byte aligned).
__device__ __forceinline__ Quad<float> load_quad(const float* p) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    return Quad<float>{q.x, q.y, q.z, q.w};
}
__device__ __forceinline__ Quad<double> load_quad(const double* p) {
    const double2 a = reinterpret_cast<const double2*>(p)[0];
    const double2 b = reinterpret_cast<const double2*>(p)[1];
    return Quad<double>{a.x, a.y, b.x, b.y};
}
__device__ __forceinline__ void store_quad(float* p, const Quad<float>& q) {
    *reinterpret_cast<float4*>(p) = make_float4(q.v0, q.v1, q.v2, q.v3);
}
__device__ __forceinline__ void store_quad(double* p, const Quad<double>& q) {
    reinterpret_cast<double2*>(p)[0] = make_double2(q.v0, q.v1);
    reinterpret_cast<double2*>(p)[1] = make_double2(q.v2, q.v3);
}

// 16-byte loads through the read-only path, for the inputs A, B and bias.
__device__ __forceinline__ Quad<float> load_quad_ldg(const float* p) {
    const float4 q = __ldg(reinterpret_cast<const float4*>(p));
    return Quad<float>{q.x, q.y, q.z, q.w};
}
__device__ __forceinline__ Quad<double> load_quad_ldg(const double* p) {
    const double2 a = __ldg(reinterpret_cast<const double2*>(p));
    const double2 b = __ldg(reinterpret_cast<const double2*>(p) + 1);
    return Quad<double>{a.x, a.y, b.x, b.y};
}

// One operand of the product seen as op(X) with rows r (m for A, n for B) and the shared k:
// element (r, k) lives at data[r * ld + k] (k contiguous) or data[k * ld + r] (r contiguous).
template <typename T> struct Operand {
    const T* data;
    long long ld;
    int rows;
    int depth;  // K
    bool k_contiguous;
};

// Quad number q of this thread in the ROWS x 16 tile of `op` at (row0, k0) - its elements and
// where they go in the k-major shared tile. The THREADS threads take the tile's ROWS * 4 quads in
// turn (quad index q * THREADS + t): with k contiguous, quad i covers row i / 4 and k (i % 4) * 4
// .. + 3; with rows contiguous, k i / (ROWS / 4) and rows (i % (ROWS / 4)) * 4 .. + 3.
template <int ROWS, int THREADS> struct QuadPlace {
    int r, k;
    __device__ __forceinline__ QuadPlace(bool k_contiguous, int q) {
        const int i = q * THREADS + (int)threadIdx.x;
        if (k_contiguous) {
            r = i / 4;
            k = (i % 4) * 4;
        } else {
            r = (i % (ROWS / 4)) * 4;
            k = i / (ROWS / 4);
        }
    }
};

template <typename T, bool VEC4, int ROWS, int THREADS>
__device__ __forceinline__ Quad<T> load_tile_quad(const Operand<T>& op, int row0, int k0, int q) {
    const QuadPlace<ROWS, THREADS> place(op.k_contiguous, q);
    const int r = row0 + place.r, k = k0 + place.k;
    const T* p = op.data + (op.k_contiguous ? (long long)r * op.ld + k : (long long)k * op.ld + r);
    Quad<T> v{T(0), T(0), T(0), T(0)};
    if (VEC4) {
        // the contiguous length is a multiple of 4: the first element decides for all 4
        if (r < op.rows && k < op.depth) v = load_quad_ldg(p);
    } else if (op.k_contiguous) {
        if (r < op.rows) {
            if (k < op.depth) v.v0 = p[0];
            if (k + 1 < op.depth) v.v1 = p[1];
            if (k + 2 < op.depth) v.v2 = p[2];
            if (k + 3 < op.depth) v.v3 = p[3];
        }
    } else if (k < op.depth) {
        if (r < op.rows) v.v0 = p[0];
        if (r + 1 < op.rows) v.v1 = p[1];
        if (r + 2 < op.rows) v.v2 = p[2];
        if (r + 3 < op.rows) v.v3 = p[3];
    }
    return v;
}

// Store quad q loaded by load_tile_quad into the k-major tile[k][r] (ROWS per k).
template <typename T, int ROWS, int THREADS>
__device__ __forceinline__ void store_tile_quad(T* tile, const Operand<T>& op, const Quad<T>& v,
                                                int q) {
    const QuadPlace<ROWS, THREADS> place(op.k_contiguous, q);
    if (op.k_contiguous) {
        tile[(place.k + 0) * ROWS + place.r] = v.v0;
        tile[(place.k + 1) * ROWS + place.r] = v.v1;
        tile[(place.k + 2) * ROWS + place.r] = v.v2;
        tile[(place.k + 3) * ROWS + place.r] = v.v3;
    } else {
        store_quad(tile + place.k * ROWS + place.r, v);
    }
}

// The QUADS quads of one operand's tile a thread stages per k-step, held in registers between
// the global load and the shared store (double buffering).
template <typename T, bool VEC4, int ROWS, int THREADS> struct TileStage {
    static constexpr int QUADS = ROWS * GEMM_TILE_K / 4 / THREADS;
    Quad<T> quads[QUADS];

    __device__ __forceinline__ void load(const Operand<T>& op, int row0, int k0) {
#pragma unroll
        for (int q = 0; q < QUADS; ++q) quads[q] = load_tile_quad<T, VEC4, ROWS, THREADS>(op, row0, k0, q);
    }
    __device__ __forceinline__ void store(T* tile, const Operand<T>& op) const {
#pragma unroll
        for (int q = 0; q < QUADS; ++q) store_tile_quad<T, ROWS, THREADS>(tile, op, quads[q], q);
    }
};

// The vec4 epilogue of 4 columns: alpha * acc (+ beta * c) (+ bias), each term added in the
// order of the scalar path.
template <typename T>
__device__ __forceinline__ Quad<T> epilogue_quad(const T (&acc)[GEMM_THREAD_N], const T* c,
                                                 const T* bias, T alpha, T beta, int has_bias) {
    Quad<T> v{alpha * acc[0], alpha * acc[1], alpha * acc[2], alpha * acc[3]};
    if (beta != T(0)) {
        const Quad<T> old = load_quad(c);
        v.v0 += beta * old.v0;
        v.v1 += beta * old.v1;
        v.v2 += beta * old.v2;
        v.v3 += beta * old.v3;
    }
    if (has_bias) {
        const Quad<T> add = load_quad_ldg(bias);
        v.v0 += add.v0;
        v.v1 += add.v1;
        v.v2 += add.v2;
        v.v3 += add.v3;
    }
    return v;
}

template <typename T, bool VEC4, int TILE_M>
__device__ void gemm_tiled(T* __restrict__ C, const T* __restrict__ A, const T* __restrict__ B,
                           const T* __restrict__ bias, int M, int N, int K, int trans_a,
                           int trans_b, T alpha, T beta, int has_bias) {
    constexpr int THREADS = GEMM_THREADS(TILE_M);
    __shared__ __align__(16) T As[2][GEMM_TILE_K * TILE_M];
    __shared__ __align__(16) T Bs[2][GEMM_TILE_K * GEMM_TILE_N];

    const Operand<T> a{A, trans_a ? (long long)M : (long long)K, M, K, !trans_a};
    const Operand<T> b{B, trans_b ? (long long)K : (long long)N, N, K, (bool)trans_b};
    const int m0 = blockIdx.y * TILE_M;
    const int n0 = blockIdx.x * GEMM_TILE_N;
    const int tm = (threadIdx.x / 16) * GEMM_THREAD_M;  // this thread's rows within the tile
    const int tn = (threadIdx.x % 16) * GEMM_THREAD_N;  // and columns

    T acc[GEMM_THREAD_M][GEMM_THREAD_N];
#pragma unroll
    for (int i = 0; i < GEMM_THREAD_M; ++i)
#pragma unroll
        for (int j = 0; j < GEMM_THREAD_N; ++j) acc[i][j] = T(0);

    const int steps = (K + GEMM_TILE_K - 1) / GEMM_TILE_K;
    TileStage<T, VEC4, TILE_M, THREADS> stage_a;
    TileStage<T, VEC4, GEMM_TILE_N, THREADS> stage_b;
    if (steps > 0) {  // uniform over the block: the barriers below are reached by all or none
        stage_a.load(a, m0, 0);
        stage_b.load(b, n0, 0);
        stage_a.store(As[0], a);
        stage_b.store(Bs[0], b);
        __syncthreads();
    }
    for (int step = 0; step < steps; ++step) {
        const int cur = step & 1;
        const bool more = step + 1 < steps;
        if (more) {
            stage_a.load(a, m0, (step + 1) * GEMM_TILE_K);
            stage_b.load(b, n0, (step + 1) * GEMM_TILE_K);
        }
#pragma unroll
        for (int k = 0; k < GEMM_TILE_K; ++k) {
            const Quad<T> av = load_quad(&As[cur][k * TILE_M + tm]);
            const Quad<T> bv = load_quad(&Bs[cur][k * GEMM_TILE_N + tn]);
            const T ar[4] = {av.v0, av.v1, av.v2, av.v3};
            const T br[4] = {bv.v0, bv.v1, bv.v2, bv.v3};
#pragma unroll
            for (int i = 0; i < GEMM_THREAD_M; ++i)
#pragma unroll
                for (int j = 0; j < GEMM_THREAD_N; ++j) acc[i][j] = gemm_fma(ar[i], br[j], acc[i][j]);
        }
        // the other buffer was last read in step - 1, which ended with a barrier
        if (more) {
            stage_a.store(As[cur ^ 1], a);
            stage_b.store(Bs[cur ^ 1], b);
        }
        __syncthreads();
    }

    // Epilogue: v = alpha * acc (+ beta * C when beta != 0: C may hold garbage otherwise, as BLAS
    // allows) (+ bias[n]). The vec4 variants read and write 4 columns at a time: the glue also
    // checked C and bias for alignment and N for divisibility by 4.
    const int n = n0 + tn;
#pragma unroll
    for (int i = 0; i < GEMM_THREAD_M; ++i) {
        const int m = m0 + tm + i;
        if (m >= M) continue;
        T* c = C + (long long)m * N + n;
        if (VEC4) {
            if (n < N) store_quad(c, epilogue_quad(acc[i], c, bias + n, alpha, beta, has_bias));
        } else {
#pragma unroll
            for (int j = 0; j < GEMM_THREAD_N; ++j) {
                if (n + j >= N) continue;
                T v = alpha * acc[i][j];
                if (beta != T(0)) v += beta * c[j];
                if (has_bias) v += bias[n + j];
                c[j] = v;
            }
        }
    }
}

// out[n] = sum over m of X[m, n] for X (M, N) row-major: one thread per column adds the rows in
// order (deterministic; consecutive threads read consecutive addresses).
template <typename T>
__device__ void column_sum(T* __restrict__ out, const T* __restrict__ X, int M, int N) {
    PYCONV_GRID_STRIDE_LOOP(n, N) {
        T sum = T(0);
        for (int m = 0; m < M; ++m) sum += X[(long long)m * N + n];
        out[n] = sum;
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points (GEMM: grid (ceil(N / 64), ceil(M / TILE_M)), GEMM_THREADS(TILE_M) threads;
// bias_column_sum: grid-stride, 256 threads)
// ---------------------------------------------------------------------------------------------

// THREADS must equal GEMM_THREADS(TILE_M); it is spelled as a literal because the emulator's
// entry-point scanner reads __launch_bounds__ arguments without nested parentheses.
#define GEMM_ENTRY(name, T, VEC4, TILE_M, THREADS)                                                \
    static_assert(THREADS == GEMM_THREADS(TILE_M), "block size of " #name);                       \
    extern "C" __global__ void __launch_bounds__(THREADS)                                         \
    name(T* C, const T* A, const T* B, const T* bias, int M, int N, int K, int trans_a,           \
         int trans_b, T alpha, T beta, int has_bias) {                                            \
        gemm_tiled<T, VEC4, TILE_M>(C, A, B, bias, M, N, K, trans_a, trans_b, alpha, beta,       \
                                    has_bias);                                                    \
    }

// 64 x 64 tiles, 256 threads
GEMM_ENTRY(gemm_f32, float, false, 64, 256)
GEMM_ENTRY(gemm_f64, double, false, 64, 256)
GEMM_ENTRY(gemm_vec4_f32, float, true, 64, 256)
GEMM_ENTRY(gemm_vec4_f64, double, true, 64, 256)
// 32 x 64 tiles, 128 threads
GEMM_ENTRY(gemm_m32_f32, float, false, 32, 128)
GEMM_ENTRY(gemm_m32_f64, double, false, 32, 128)
GEMM_ENTRY(gemm_vec4_m32_f32, float, true, 32, 128)
GEMM_ENTRY(gemm_vec4_m32_f64, double, true, 32, 128)

extern "C" __global__ void __launch_bounds__(256)
bias_column_sum_f32(float* out, const float* X, int M, int N) {
    column_sum(out, X, M, N);
}
extern "C" __global__ void __launch_bounds__(256)
bias_column_sum_f64(double* out, const double* X, int M, int N) {
    column_sum(out, X, M, N);
}
