// The vector type of the direct convolutions (conv2d_depthwise.cpp, conv2d_small_c.cpp): L lanes
// of T along an output row, with loads that may be clipped to a lane range [lo, hi) (lanes
// outside read 0 without touching memory, so a tile may straddle the padding or the end of a
// row). AVX2: 8 floats / 4 doubles; without AVX2+FMA a one-lane scalar version of the same
// interface compiles instead, so the kernels are written once.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "microkernel.h"  // PYCONV_CPU_AVX2 and <immintrin.h>

namespace pyconv::cpu::direct {

template <typename T>
struct Vec;

#ifdef PYCONV_CPU_AVX2

template <>
struct Vec<float> {
    static constexpr int L = 8;
    using V = __m256;
    using M = __m256i;
    static V zero() { return _mm256_setzero_ps(); }
    static V set1(float v) { return _mm256_set1_ps(v); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static void store_aligned(float* p, V v) { _mm256_store_ps(p, v); }  // p 32-byte aligned
    // non-temporal where p allows it (two 16-byte halves when p is 16- but not 32-byte aligned)
    static void store_stream(float* p, V v) {
        const auto at = reinterpret_cast<uintptr_t>(p);
        if ((at & 31) == 0) {
            _mm256_stream_ps(p, v);
        } else if ((at & 15) == 0) {
            _mm_stream_ps(p, _mm256_castps256_ps128(v));
            _mm_stream_ps(p + 4, _mm256_extractf128_ps(v, 1));
        } else {
            _mm256_storeu_ps(p, v);
        }
    }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    // lanes t with lo <= t < hi
    static M mask(int64_t lo, int64_t hi) {
        lo = lo < 0 ? 0 : (lo > L ? L : lo);
        hi = hi < lo ? lo : (hi > L ? L : hi);
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        return _mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32(int(lo) - 1)),
                                _mm256_cmpgt_epi32(_mm256_set1_epi32(int(hi)), lane));
    }
    // p[t] for the lanes of m, 0 elsewhere; p + t is dereferenced only for lanes of m
    static V load(const float* p, M m) { return _mm256_maskload_ps(p, m); }
    static void store(float* p, M m, V v) { _mm256_maskstore_ps(p, m, v); }
    static float sum(V v) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_movehdup_ps(s));
        return _mm_cvtss_f32(s);
    }
};

template <>
struct Vec<double> {
    static constexpr int L = 4;
    using V = __m256d;
    using M = __m256i;
    static V zero() { return _mm256_setzero_pd(); }
    static V set1(double v) { return _mm256_set1_pd(v); }
    static V load(const double* p) { return _mm256_loadu_pd(p); }
    static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
    static void store_aligned(double* p, V v) { _mm256_store_pd(p, v); }
    static void store_stream(double* p, V v) {
        const auto at = reinterpret_cast<uintptr_t>(p);
        if ((at & 31) == 0) {
            _mm256_stream_pd(p, v);
        } else if ((at & 15) == 0) {
            _mm_stream_pd(p, _mm256_castpd256_pd128(v));
            _mm_stream_pd(p + 2, _mm256_extractf128_pd(v, 1));
        } else {
            _mm256_storeu_pd(p, v);
        }
    }
    static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static V add(V a, V b) { return _mm256_add_pd(a, b); }
    static M mask(int64_t lo, int64_t hi) {
        lo = lo < 0 ? 0 : (lo > L ? L : lo);
        hi = hi < lo ? lo : (hi > L ? L : hi);
        const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
        return _mm256_and_si256(_mm256_cmpgt_epi64(lane, _mm256_set1_epi64x(lo - 1)),
                                _mm256_cmpgt_epi64(_mm256_set1_epi64x(hi), lane));
    }
    static V load(const double* p, M m) { return _mm256_maskload_pd(p, m); }
    static void store(double* p, M m, V v) { _mm256_maskstore_pd(p, m, v); }
    static double sum(V v) {
        __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
        return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
    }
};

#else  // portable: one lane

template <typename T>
struct Vec {
    static constexpr int L = 1;
    using V = T;
    using M = bool;
    static V zero() { return T(0); }
    static V set1(T v) { return v; }
    static V load(const T* p) { return *p; }
    static void store(T* p, V v) { *p = v; }
    static void store_aligned(T* p, V v) { *p = v; }
    static void store_stream(T* p, V v) { *p = v; }
    static V fma(V a, V b, V c) { return a * b + c; }
    static V add(V a, V b) { return a + b; }
    static M mask(int64_t lo, int64_t hi) { return lo <= 0 && 0 < hi; }
    static V load(const T* p, M m) { return m ? *p : T(0); }
    static void store(T* p, M m, V v) {
        if (m) *p = v;
    }
    static T sum(V v) { return v; }
};

#endif

// Walks an output row of q_out columns in tiles of 2 vectors (1 for rows shorter than 2 vectors)
// and calls f(q0, qn, NV, Edge) per tile (NV, Edge as std::integral_constant / bool_constant):
// qn <= NV*L columns from q0. The last tile is shifted back to end at q_out (its overlap is
// computed twice, same values), so qn < NV*L only for rows shorter than one vector. Edge: some
// tap of the tile reads outside the source row, or qn is short. Tap s of output column q reads
// source column q + s*dw - off of a row of `width` values.
template <typename T, class F>
inline void column_tiles(int64_t q_out, int64_t off, int64_t width, int64_t s_taps, int64_t dw, F&& f) {
    constexpr int64_t L = Vec<T>::L;
    // interior columns: every tap's source column in [0, width)
    const int64_t qa = std::clamp<int64_t>(off, 0, q_out);
    const int64_t qb = std::clamp<int64_t>(width - (s_taps - 1) * dw + off, qa, q_out);
    const auto walk = [&](auto nv) {
        constexpr int64_t n = decltype(nv)::value * L;
        for (int64_t q0 = 0; q0 < q_out; q0 += n) {
            const int64_t q = std::min(q0, q_out - n);
            if (q >= qa && q + n <= qb)
                f(q, n, nv, std::false_type{});
            else
                f(q, n, nv, std::true_type{});
        }
    };
    if (q_out >= 2 * L)
        walk(std::integral_constant<int, 2>{});
    else if (q_out >= L)
        walk(std::integral_constant<int, 1>{});
    else
        f(int64_t(0), q_out, std::integral_constant<int, 1>{}, std::true_type{});
}

// Orders this thread's non-temporal stores (store_stream) before what follows, e.g. the end of
// a parallel task whose output another thread reads next.
inline void stream_fence() {
#ifdef PYCONV_CPU_AVX2
    _mm_sfence();
#endif
}

}  // namespace pyconv::cpu::direct
