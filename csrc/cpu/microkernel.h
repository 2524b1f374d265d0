// The register-blocked GEMM micro-kernel: an MR x NR tile of C from a packed A micro-panel
// (kc x MR, k-major) and a packed B micro-panel (kc x NR, k-major, 64-byte aligned).
//
// AVX2 + FMA: 6 rows x 2 vectors = 12 ymm accumulators, 2 for B, 1 for the A broadcast (15 of
// 16 registers); per k step 2 loads, 6 broadcasts and 12 FMAs, so the two FMA ports stay busy.
// float: 6 x 16; double: 6 x 8. Without AVX2/FMA a portable scalar kernel of the same tile
// shape compiles instead, so the packing code is identical on every build.
#pragma once

#include <cstdint>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define PYCONV_CPU_AVX2 1
#endif

namespace pyconv::cpu {

template <typename T>
struct Tile;
template <>
struct Tile<float> {
    static constexpr int MR = 6, NR = 16;
};
template <>
struct Tile<double> {
    static constexpr int MR = 6, NR = 8;
};

// What the kernel does with the product P of the panels: C = alpha*P + beta*C + row_bias[i] +
// col_bias[j]. beta == 0 never reads C (it may hold garbage or NaN); a null bias is skipped.
template <typename T>
struct Epilogue {
    T alpha = 1, beta = 0;
    const T* row_bias = nullptr;  // MR values for this tile's rows
    const T* col_bias = nullptr;  // NR values for this tile's columns
};

#ifdef PYCONV_CPU_AVX2

template <typename T>
struct Ymm;
template <>
struct Ymm<float> {
    using V = __m256;
    static V zero() { return _mm256_setzero_ps(); }
    static V set1(float v) { return _mm256_set1_ps(v); }
    static V load_aligned(const float* p) { return _mm256_load_ps(p); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
};
template <>
struct Ymm<double> {
    using V = __m256d;
    static V zero() { return _mm256_setzero_pd(); }
    static V set1(double v) { return _mm256_set1_pd(v); }
    static V load_aligned(const double* p) { return _mm256_load_pd(p); }
    static V load(const double* p) { return _mm256_loadu_pd(p); }
    static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    static V add(V a, V b) { return _mm256_add_pd(a, b); }
};

// acc[i] = sum over the kc steps of a[i] * (the two vectors of b), for the first ROWS rows of an
// MR-row A micro-panel and an NR-wide B micro-panel: the loop of every register-tile kernel
// (micro_kernel below; the 1x1 kernels' register-streaming variant).
template <typename T, int ROWS>
__attribute__((always_inline)) inline void accumulate_panels(int64_t kc, const T* __restrict a,
                                                             const T* __restrict b,
                                                             typename Ymm<T>::V (&acc)[ROWS][2]) {
    using Y = Ymm<T>;
    using V = typename Y::V;
    constexpr int MR = Tile<T>::MR;
    constexpr int W = Tile<T>::NR / 2;  // lanes per vector
#pragma GCC unroll 6
    for (int i = 0; i < ROWS; ++i) acc[i][0] = acc[i][1] = Y::zero();
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; ++k) {
        const V b0 = Y::load_aligned(b), b1 = Y::load_aligned(b + W);
#pragma GCC unroll 6
        for (int i = 0; i < ROWS; ++i) {
            const V ai = Y::set1(a[i]);
            acc[i][0] = Y::fma(ai, b0, acc[i][0]);
            acc[i][1] = Y::fma(ai, b1, acc[i][1]);
        }
        a += MR;
        b += 2 * W;
    }
}

template <typename T>
inline void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* c, int64_t ldc,
                         const Epilogue<T>& e) {
    using Y = Ymm<T>;
    using V = typename Y::V;
    constexpr int MR = Tile<T>::MR;
    constexpr int W = Tile<T>::NR / 2;  // lanes per vector
    V acc[MR][2];
    accumulate_panels<T, MR>(kc, a, b, acc);
    const V alpha = Y::set1(e.alpha), beta = Y::set1(e.beta);
    const bool scale = e.alpha != T(1), accumulate = e.beta != T(0);
    V cb0 = Y::zero(), cb1 = Y::zero();
    if (e.col_bias) {
        cb0 = Y::load(e.col_bias);
        cb1 = Y::load(e.col_bias + W);
    }
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
        T* ci = c + i * ldc;
        V v0 = acc[i][0], v1 = acc[i][1];
        if (scale) {
            v0 = Y::mul(v0, alpha);
            v1 = Y::mul(v1, alpha);
        }
        if (accumulate) {
            v0 = Y::fma(beta, Y::load(ci), v0);
            v1 = Y::fma(beta, Y::load(ci + W), v1);
        }
        if (e.row_bias) {
            const V r = Y::set1(e.row_bias[i]);
            v0 = Y::add(v0, r);
            v1 = Y::add(v1, r);
        }
        if (e.col_bias) {
            v0 = Y::add(v0, cb0);
            v1 = Y::add(v1, cb1);
        }
        Y::store(ci, v0);
        Y::store(ci + W, v1);
    }
}

#else  // portable fallback

template <typename T>
inline void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* c, int64_t ldc,
                         const Epilogue<T>& e) {
    constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
    T acc[MR][NR] = {};
    for (int64_t k = 0; k < kc; ++k) {
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
        a += MR;
        b += NR;
    }
    for (int i = 0; i < MR; ++i) {
        for (int j = 0; j < NR; ++j) {
            T v = e.alpha * acc[i][j];
            if (e.beta != T(0)) v += e.beta * c[i * ldc + j];
            if (e.row_bias) v += e.row_bias[i];
            if (e.col_bias) v += e.col_bias[j];
            c[i * ldc + j] = v;
        }
    }
}

#endif

// The same for a partial tile (mr <= MR rows, nr <= NR columns): the full tile is computed into
// a local buffer and only the valid part is merged into C.
template <typename T>
inline void micro_kernel_edge(int mr, int nr, int64_t kc, const T* a, const T* b, T* c, int64_t ldc,
                              const Epilogue<T>& e) {
    constexpr int MR = Tile<T>::MR, NR = Tile<T>::NR;
    alignas(64) T tile[MR * NR];
    micro_kernel(kc, a, b, tile, NR, Epilogue<T>{});
    for (int i = 0; i < mr; ++i) {
        for (int j = 0; j < nr; ++j) {
            T v = e.alpha * tile[i * NR + j];
            if (e.beta != T(0)) v += e.beta * c[i * ldc + j];
            if (e.row_bias) v += e.row_bias[i];
            if (e.col_bias) v += e.col_bias[j];
            c[i * ldc + j] = v;
        }
    }
}

}  // namespace pyconv::cpu
