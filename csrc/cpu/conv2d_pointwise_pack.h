// Transposing packers of the pointwise (1x1) weight gradient (conv2d_pointwise.cpp): both of its
// GEMM operands, grad_y (K x HW per image) and x (C x HW per image), have the reduction (the
// pixels) contiguous, while the micro-kernel wants R rows side by side per reduction step:
//
//   dst[kk * R + i] = src[i * ld + kk]      (i < rows, 0 for rows <= i < R; kk < kc)
//
// AVX2 float: 8x8 register transposes (16 half-row loads, 8 in-lane 4x4 shuffles of 8 + 8
// stores per 64 values); R = 16
// stores two aligned half-rows, R = 6 stores 8 lanes at stride 6, each store overwriting the 2
// spare lanes of the previous one (so the caller leaves 8 values of slack after dst). Doubles
// and the portable build use the plain loop.
#pragma once

#include <cstdint>
#include <type_traits>

#include "microkernel.h"  // PYCONV_CPU_AVX2, <immintrin.h>

namespace pyconv::cpu::pointwise {

template <typename T>
inline void pack_transposed_scalar(const T* src, int64_t ld, int rows, int R, int64_t kc, T* dst) {
    for (int64_t kk = 0; kk < kc; ++kk)
        for (int i = 0; i < R; ++i) dst[kk * R + i] = i < rows ? src[i * ld + kk] : T(0);
}

#ifdef PYCONV_CPU_AVX2

// The 8x8 block of rows src, src + ld, ... (rows >= `rows` read as 0), transposed: r[t] =
// column t. Rows i and i + 4 share a register (128-bit loads into its two halves), so the
// transpose is two in-lane 4x4 transposes, with no lane-crossing shuffle (those cost 8 micro-ops
// each on this machine, Zen 1).
inline void transpose8(const float* src, int64_t ld, int rows, __m256* r) {
    __m256 lo[4], hi[4];  // columns 0-3 and 4-7 of rows (i | i + 4)
    for (int i = 0; i < 4; ++i) {
        const float* top = src + i * ld;
        const float* bottom = src + (i + 4) * ld;
        const __m128 zero = _mm_setzero_ps();
        const __m128 t0 = i < rows ? _mm_loadu_ps(top) : zero, t1 = i < rows ? _mm_loadu_ps(top + 4) : zero;
        const __m128 b0 = i + 4 < rows ? _mm_loadu_ps(bottom) : zero;
        const __m128 b1 = i + 4 < rows ? _mm_loadu_ps(bottom + 4) : zero;
        lo[i] = _mm256_insertf128_ps(_mm256_castps128_ps256(t0), b0, 1);
        hi[i] = _mm256_insertf128_ps(_mm256_castps128_ps256(t1), b1, 1);
    }
    const auto transpose4 = [](const __m256* v, __m256* out) {  // per 128-bit lane
        const __m256 u0 = _mm256_unpacklo_ps(v[0], v[1]), u1 = _mm256_unpackhi_ps(v[0], v[1]);
        const __m256 u2 = _mm256_unpacklo_ps(v[2], v[3]), u3 = _mm256_unpackhi_ps(v[2], v[3]);
        out[0] = _mm256_shuffle_ps(u0, u2, 0x44);
        out[1] = _mm256_shuffle_ps(u0, u2, 0xEE);
        out[2] = _mm256_shuffle_ps(u1, u3, 0x44);
        out[3] = _mm256_shuffle_ps(u1, u3, 0xEE);
    };
    transpose4(lo, r);
    transpose4(hi, r + 4);
}

// R = 16 (the float B panel; dst 32-byte aligned).
inline void pack_transposed16(const float* src, int64_t ld, int rows, int64_t kc, float* dst) {
    int64_t kk = 0;
    const int lo = rows < 8 ? rows : 8, hi = rows > 8 ? rows - 8 : 0;
    for (; kk + 8 <= kc; kk += 8) {
        __m256 a[8], b[8];
        transpose8(src + kk, ld, lo, a);
        transpose8(src + 8 * ld + kk, ld, hi, b);
        float* d = dst + kk * 16;
        for (int t = 0; t < 8; ++t) {
            _mm256_store_ps(d + t * 16, a[t]);
            _mm256_store_ps(d + t * 16 + 8, b[t]);
        }
    }
    if (kk < kc) pack_transposed_scalar(src + kk, ld, rows, 16, kc - kk, dst + kk * 16);
}

// R = 6 (the float A panel); writes up to 2 values past dst[kc * 6].
inline void pack_transposed6(const float* src, int64_t ld, int rows, int64_t kc, float* dst) {
    int64_t kk = 0;
    for (; kk + 8 <= kc; kk += 8) {
        __m256 a[8];
        transpose8(src + kk, ld, rows < 6 ? rows : 6, a);
        float* d = dst + kk * 6;
        for (int t = 0; t < 8; ++t) _mm256_storeu_ps(d + t * 6, a[t]);
    }
    if (kk < kc) pack_transposed_scalar(src + kk, ld, rows, 6, kc - kk, dst + kk * 6);
}

#endif

// R rows (rows <= R valid) of src, kc reduction steps, into dst[kk * R + i].
template <typename T, int R>
inline void pack_transposed(const T* src, int64_t ld, int rows, int64_t kc, T* dst) {
#ifdef PYCONV_CPU_AVX2
    if constexpr (std::is_same_v<T, float> && R == 16) {
        pack_transposed16(src, ld, rows, kc, dst);
        return;
    }
    if constexpr (std::is_same_v<T, float> && R == 6) {
        pack_transposed6(src, ld, rows, kc, dst);
        return;
    }
#endif
    pack_transposed_scalar(src, ld, rows, R, kc, dst);
}

}  // namespace pyconv::cpu::pointwise
