// The tile engine of the implicit-GEMM convolution kernels (kernels/conv2d.cu).
//
// One block computes a BM x BN tile of C (rows x cols) = A (rows x depth) @ B (depth x cols) over
// the depth range [k_begin, k_end), in slices of BK = 8. The operands are never materialised: an
// Op (see conv2d.cu) says how to read element (m, kk) of A and element (kk, j) of B from the
// convolution's tensors (that is where im2col happens, on the fly) and how to store C
// (op.output(j) decodes column j once, op.store(out, m, v) writes row m of it).
//
// Each of the (BM/4) * (BN/4) threads owns a 4 x 4 register tile of C. Slices are
// double-buffered: while a slice is multiplied out of one shared buffer, the next one is loaded
// from global memory into registers and then stored to the other buffer, so one __syncthreads
// per slice suffices. Shared tiles are stored k-major (As[k][m], Bs[k][j]) so that a thread reads
// its 4 rows and its 4 columns with one 16-byte shared load each (two for double).
//
// Every element is a plain sum over kk in ascending order: results do not depend on the
// schedule, and float64 agrees with a sequential reference to rounding.
#pragma once
#include "compat.cuh"

#define CONV_TILE_BK 8
#define CONV_TILE_TM 4
#define CONV_TILE_TN 4

// v[0..3] = p[0..3] from a 16-byte-aligned shared address.
__device__ __forceinline__ void conv_lds4(const float* p, float (&v)[4]) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    v[0] = q.x;
    v[1] = q.y;
    v[2] = q.z;
    v[3] = q.w;
}
__device__ __forceinline__ void conv_lds4(const double* p, double (&v)[4]) {
    const double2 lo = *reinterpret_cast<const double2*>(p);
    const double2 hi = *reinterpret_cast<const double2*>(p + 2);
    v[0] = lo.x;
    v[1] = lo.y;
    v[2] = hi.x;
    v[3] = hi.y;
}

// The next slice of A and B held in registers between its global loads and its shared stores.
// VecA: A is read as float4 along the depth (rows of A contiguous, depth % 4 == 0, 16-byte
// aligned: the glue checks); only the first BM*BK/4 threads load, one float4 each.
template <typename T, int BM, int BN, bool VecA> struct ConvSlice {
    static constexpr int BK = CONV_TILE_BK;
    static constexpr int THREADS = (BM / CONV_TILE_TM) * (BN / CONV_TILE_TN);
    static constexpr int A_LOADS = VecA ? 4 : BM * BK / THREADS;
    static constexpr int B_LOADS = BK * BN / THREADS;
    static_assert(!VecA || BM * BK / 4 <= THREADS, "one float4 of A per thread at most");
    static_assert(BM * BK % THREADS == 0 && BK * BN % THREADS == 0, "loads split evenly");

    T a[A_LOADS];
    T b[B_LOADS];

    // Row and depth offset of the i-th A element this thread loads (scalar path).
    static __device__ __forceinline__ int a_row(int t, int i) {
        return t / BK + i * (THREADS / BK);
    }
    static __device__ __forceinline__ int a_k(int t) { return t % BK; }
    // float4 path: thread t < BM*BK/4 loads depth offsets 4*(t % (BK/4)) .. +3 of row t / (BK/4)
    static __device__ __forceinline__ bool a_vec_loads(int t) { return t < BM * BK / 4; }
    static __device__ __forceinline__ int a_vec_row(int t) { return t / (BK / 4); }
    static __device__ __forceinline__ int a_vec_k(int t) { return 4 * (t % (BK / 4)); }
    // B: column t % BN, depth offsets t / BN + i * (THREADS / BN)
    static __device__ __forceinline__ int b_k(int t, int i) { return t / BN + i * (THREADS / BN); }

    template <class Op>
    __device__ __forceinline__ void load(const Op& op, const typename Op::Column& column,
                                         bool column_ok, int row0, long long k0, long long k_end,
                                         int t) {
        if constexpr (VecA) {
            const int m = row0 + a_vec_row(t);
            const long long kk = k0 + a_vec_k(t);
            // depth % 4 == 0 and kk % 4 == 0: the quad is all inside or all outside
            if (a_vec_loads(t) && m < op.rows && kk < k_end) {
                op.load_a4(m, kk, a);
            } else {
                #pragma unroll
                for (int i = 0; i < 4; ++i) a[i] = T(0);
            }
        } else {
            #pragma unroll
            for (int i = 0; i < A_LOADS; ++i) {
                const int m = row0 + a_row(t, i);
                const long long kk = k0 + a_k(t);
                a[i] = (m < op.rows && kk < k_end) ? op.load_a(m, kk) : T(0);
            }
        }
        #pragma unroll
        for (int i = 0; i < B_LOADS; ++i) {
            const long long kk = k0 + b_k(t, i);
            b[i] = (column_ok && kk < k_end) ? op.load_b(column, kk) : T(0);
        }
    }

    __device__ __forceinline__ void store(T (*As)[BM], T (*Bs)[BN], int t) const {
        if constexpr (VecA) {
            if (a_vec_loads(t)) {
                #pragma unroll
                for (int i = 0; i < 4; ++i) As[a_vec_k(t) + i][a_vec_row(t)] = a[i];
            }
        } else {
            #pragma unroll
            for (int i = 0; i < A_LOADS; ++i) As[a_k(t)][a_row(t, i)] = a[i];
        }
        #pragma unroll
        for (int i = 0; i < B_LOADS; ++i) Bs[b_k(t, i)][t % BN] = b[i];
    }
};

// C tile (blockIdx.y, blockIdx.x) of op over depth [k_begin, k_end). Must be called by every
// thread of a block of (BM/4)*(BN/4) threads, with block-uniform arguments.
template <typename T, int BM, int BN, bool VecA, class Op>
__device__ __forceinline__ void conv_gemm_tile(const Op& op, long long k_begin, long long k_end) {
    typedef ConvSlice<T, BM, BN, VecA> Slice;
    constexpr int BK = CONV_TILE_BK;
    __shared__ __align__(16) T As[2][BK][BM];
    __shared__ __align__(16) T Bs[2][BK][BN];

    const int t = threadIdx.x;
    const int tx = t % (BN / CONV_TILE_TN);
    const int ty = t / (BN / CONV_TILE_TN);
    const int row0 = blockIdx.y * BM;
    const long long col0 = (long long)blockIdx.x * BN;

    // the B column this thread loads is the same in every slice: decode it once
    const long long load_col = col0 + t % BN;
    const bool column_ok = load_col < op.cols;
    const typename Op::Column column = op.column(column_ok ? load_col : 0);

    T acc[CONV_TILE_TM][CONV_TILE_TN];
    #pragma unroll
    for (int i = 0; i < CONV_TILE_TM; ++i) {
        #pragma unroll
        for (int j = 0; j < CONV_TILE_TN; ++j) acc[i][j] = T(0);
    }

    Slice next;
    next.load(op, column, column_ok, row0, k_begin, k_end, t);
    next.store(As[0], Bs[0], t);
    __syncthreads();

    int buffer = 0;
    #pragma unroll 1
    for (long long k0 = k_begin; k0 < k_end; k0 += BK) {
        const bool more = k0 + BK < k_end;  // block-uniform
        if (more) next.load(op, column, column_ok, row0, k0 + BK, k_end, t);
        #pragma unroll
        for (int k = 0; k < BK; ++k) {
            T a[4], b[4];
            conv_lds4(&As[buffer][k][ty * CONV_TILE_TM], a);
            conv_lds4(&Bs[buffer][k][tx * CONV_TILE_TN], b);
            #pragma unroll
            for (int i = 0; i < CONV_TILE_TM; ++i) {
                #pragma unroll
                for (int j = 0; j < CONV_TILE_TN; ++j) acc[i][j] += a[i] * b[j];
            }
        }
        // the other buffer was last read before the previous barrier: safe to overwrite
        if (more) next.store(As[buffer ^ 1], Bs[buffer ^ 1], t);
        __syncthreads();
        buffer ^= 1;
    }

    // decode each output column once (op.output), then store its rows
    #pragma unroll
    for (int j = 0; j < CONV_TILE_TN; ++j) {
        const long long col = col0 + tx * CONV_TILE_TN + j;
        if (col >= op.cols) break;
        const long long out = op.output(col);
        #pragma unroll
        for (int i = 0; i < CONV_TILE_TM; ++i) {
            const int m = row0 + ty * CONV_TILE_TM + i;
            if (m < op.rows) op.store(out, m, acc[i][j]);
        }
    }
}
