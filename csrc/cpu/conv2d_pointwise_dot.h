// The pointwise weight gradient's register tile without packing (conv2d_pointwise.cpp): both
// operands, grad_y (K x HW per image) and x (C x HW per image), have the reduction (the pixels)
// contiguous, so a tile of O rows of one and I rows of the other is O x I dot products over a
// run of `len` pixels, vectorised along the pixels:
//
//   out[o * so + i * si] += sum_{p < len} u[o * ldu + p] * v[i * ldv + p]     (o < O, i < I)
//
// O = 3, I = 4: 12 accumulators (one vector of lane partial sums each), 3 + 4 vector loads per 12
// FMAs (Zen 1: one 256-bit load and one 256-bit FMA per cycle, so the FMAs stay the bound),
// 12 + 3 + 1 = 16 registers. The lanes are summed (hadd tree) once per call; with the call's
// start (7 fresh load streams) that costs ~150 cycles, so callers pass long runs (a whole image
// of 3136 pixels: ~3% of the tile's 4700 FMA cycles). Lanes past `len` are masked loads (zeros).
// The summation order depends on `len` only, never on the caller's threads.
#pragma once

#include <cstdint>
#include <type_traits>

#include "microkernel.h"

namespace pyconv::cpu::pointwise {

#ifdef PYCONV_CPU_AVX2

constexpr int kDotO = 3, kDotI = 4;

template <typename T>
struct Lanes;
template <>
struct Lanes<float> {
    static constexpr int W = 8;
    // `count` < 8 leading lanes of p, the others 0
    static __m256 load_first(const float* p, int count) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lane));
    }
    // v[t] = sum of the lanes of acc[t], t < 12
    static void sum_lanes(const __m256* acc, float* v) {
        for (int t = 0; t < 12; t += 4) {
            const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(acc[t], acc[t + 1]), _mm256_hadd_ps(acc[t + 2], acc[t + 3]));
            _mm_storeu_ps(v + t, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
        }
    }
};
template <>
struct Lanes<double> {
    static constexpr int W = 4;
    static __m256d load_first(const double* p, int count) {
        const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
        return _mm256_maskload_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), lane));
    }
    static void sum_lanes(const __m256d* acc, double* v) {
        for (int t = 0; t < 12; t += 2) {
            const __m256d h = _mm256_hadd_pd(acc[t], acc[t + 1]);
            _mm_storeu_pd(v + t, _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1)));
        }
    }
};

template <typename T, int O, int I>
void dot_tile(const T* __restrict u, int64_t ldu, const T* __restrict v, int64_t ldv, int64_t len, T* out,
              int64_t so, int64_t si) {
    using Y = Ymm<T>;
    using V = typename Y::V;
    constexpr int W = Lanes<T>::W;
    V acc[kDotO * kDotI];
#pragma GCC unroll 12
    for (int t = 0; t < kDotO * kDotI; ++t) acc[t] = Y::zero();
    const auto step = [&](auto load) {
        V uo[O];
#pragma GCC unroll 3
        for (int o = 0; o < O; ++o) uo[o] = load(u + o * ldu);
#pragma GCC unroll 4
        for (int i = 0; i < I; ++i) {
            const V vi = load(v + i * ldv);
#pragma GCC unroll 3
            for (int o = 0; o < O; ++o) acc[o * kDotI + i] = Y::fma(uo[o], vi, acc[o * kDotI + i]);
        }
    };
    int64_t p = 0;
#pragma GCC unroll 2
    for (; p + W <= len; p += W) {
        step([p](const T* r) { return Y::load(r + p); });
    }
    if (p < len) {
        const int rest = int(len - p);
        step([p, rest](const T* r) { return Lanes<T>::load_first(r + p, rest); });
    }
    alignas(32) T sums[kDotO * kDotI];
    Lanes<T>::sum_lanes(acc, sums);
#pragma GCC unroll 3
    for (int o = 0; o < O; ++o)
#pragma GCC unroll 4
        for (int i = 0; i < I; ++i) out[o * so + i * si] += sums[o * kDotI + i];
}

template <typename T>
using DotTile = void (*)(const T*, int64_t, const T*, int64_t, int64_t, T*, int64_t, int64_t);

// dot_tile<T, o, i> for o in [1, 3], i in [1, 4].
template <typename T>
DotTile<T> dot_tile_for(int o, int i) {
    static constexpr DotTile<T> table[kDotO][kDotI] = {
        {dot_tile<T, 1, 1>, dot_tile<T, 1, 2>, dot_tile<T, 1, 3>, dot_tile<T, 1, 4>},
        {dot_tile<T, 2, 1>, dot_tile<T, 2, 2>, dot_tile<T, 2, 3>, dot_tile<T, 2, 4>},
        {dot_tile<T, 3, 1>, dot_tile<T, 3, 2>, dot_tile<T, 3, 3>, dot_tile<T, 3, 4>}};
    return table[o - 1][i - 1];
}

#endif

}  // namespace pyconv::cpu::pointwise
