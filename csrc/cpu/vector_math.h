// Private helpers of the elementwise families (activation, dropout, normalization, optim):
// AVX2 float32 exp / sigmoid / tanh / 2 Phi(x) on 8 lanes, and the split of a flat range over
// threads.
//
// Accuracy (float32, measured by tests/test_cpu_activation_dropout.py against float64 NumPy):
// exp8 within a few ulp (Cephes polynomial after a Cody-Waite reduction, subnormal results kept by
// scaling in two steps); tanh8 at most a few ulp (odd polynomial below 0.625, else
// 1 - 2 / (exp(2|x|) + 1)); two_phi8 = erfc(-x/sqrt2) a few ulp relative wherever the result is a
// normal float (the Numerical Recipes erfc fit, fractional error 1.2e-7, its exponent carried as
// an exact float pair). NaN propagates and +-inf give the limits.
#pragma once

#include <cstdint>

#include "parallel.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define PYCONV_VMATH_AVX2 1
#else
#define PYCONV_VMATH_AVX2 0
#endif

namespace pyconv::cpu::vmath {

// f(begin, end) over [0, n) split into contiguous ranges; more than one thread only when the
// range holds at least `min_parallel` elements (a fork/join costs a few microseconds). The split
// does not change any element's result: every element is computed on its own.
template <class F>
void for_each_range(int64_t n, int64_t min_parallel, F&& f) {
    if (n <= 0) return;
    const int threads = n < min_parallel ? 1 : max_threads();
    if (threads <= 1) {
        f(int64_t(0), n);
        return;
    }
    // a few tasks per thread so a busy core does not hold the others up; 64-element boundaries
    const int64_t tasks = int64_t(threads) * 4;
    const int64_t chunk = ((n + tasks - 1) / tasks + 63) / 64 * 64;
    const int64_t count = (n + chunk - 1) / chunk;
    parallel_for(count, threads, [&](int64_t t) {
        const int64_t begin = t * chunk;
        f(begin, begin + chunk < n ? begin + chunk : n);
    });
}

#if PYCONV_VMATH_AVX2

inline __m256 splat(float v) { return _mm256_set1_ps(v); }

// 2^n for integer lanes n in [-126, 127].
inline __m256 pow2i(__m256i n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}

// exp(hi + lo) where lo is small next to hi's rounding: the reduction subtracts n*ln2 from hi
// exactly before lo joins, so an argument carried as a float pair keeps its low bits.
inline __m256 exp8_pair(__m256 hi, __m256 lo) {
    // clamp (NaN passes: min/max return their second operand when one is NaN); beyond 89 the
    // result overflows to inf, below -110 it rounds to 0 (exp(-104) is already below half the
    // smallest subnormal)
    __m256 x = _mm256_max_ps(splat(-110.0f), _mm256_min_ps(splat(89.0f), hi));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(_mm256_add_ps(x, lo), splat(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // Cody-Waite: 0.693359375 has 10 significant bits, so n * it is exact
    __m256 r = _mm256_fnmadd_ps(n, splat(0.693359375f), x);
    r = _mm256_add_ps(r, lo);
    r = _mm256_fnmadd_ps(n, splat(-2.12194440e-4f), r);
    // exp(r) on |r| <= ln2/2 (Cephes expf coefficients)
    __m256 p = splat(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, splat(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, splat(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, splat(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, splat(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, splat(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, splat(1.0f)));
    // scale by 2^n in two factors so that n in [-150, 128] (subnormal and overflowing results)
    // never leaves the exponent range of one factor
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i half = _mm256_srai_epi32(ni, 1);
    p = _mm256_mul_ps(p, pow2i(half));
    return _mm256_mul_ps(p, pow2i(_mm256_sub_epi32(ni, half)));
}

inline __m256 exp8(__m256 x) { return exp8_pair(x, _mm256_setzero_ps()); }

inline __m256 abs8(__m256 x) { return _mm256_andnot_ps(splat(-0.0f), x); }

// 1 / (1 + exp(-x)) without overflow: e = exp(-|x|) <= 1, then 1/(1+e) or e/(1+e) by sign.
inline __m256 sigmoid8(__m256 x) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), abs8(x)));
    const __m256 inv = _mm256_div_ps(splat(1.0f), _mm256_add_ps(splat(1.0f), e));
    const __m256 non_negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
    return _mm256_blendv_ps(_mm256_mul_ps(e, inv), inv, non_negative);
}

inline __m256 tanh8(__m256 x) {
    const __m256 sign = _mm256_and_ps(x, splat(-0.0f));
    const __m256 a = abs8(x);
    // |x| < 0.625: x + x^3 P(x^2) (Cephes tanhf coefficients)
    const __m256 z = _mm256_mul_ps(a, a);
    __m256 p = splat(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, z, splat(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, z, splat(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, z, splat(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, z, splat(-3.33332819422e-1f));
    const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), a, a);
    // otherwise 1 - 2 / (exp(2|x|) + 1): exp overflowing to inf gives exactly 1
    const __m256 e = exp8(_mm256_add_ps(a, a));
    const __m256 large = _mm256_sub_ps(splat(1.0f), _mm256_div_ps(splat(2.0f), _mm256_add_ps(e, splat(1.0f))));
    const __m256 is_small = _mm256_cmp_ps(a, splat(0.625f), _CMP_LT_OQ);  // false for NaN
    return _mm256_or_ps(_mm256_blendv_ps(large, small, is_small), sign);
}

// x * x as the exact pair (hi, lo): hi = round(x*x), lo = x*x - hi (an FMA)
inline void square_pair(__m256 x, __m256& hi, __m256& lo) {
    hi = _mm256_mul_ps(x, x);
    lo = _mm256_fmsub_ps(x, x, hi);
}

// 2 Phi(x) = 1 + erf(x / sqrt2) = erfc(-x / sqrt2), relative error a few ulp wherever the result is
// a normal float (Numerical Recipes' erfcc fit: erfc(z) = t exp(-z^2 - 1.26551223 + t P(t)),
// t = 1 / (1 + z/2), for z = |x| / sqrt2; 2 - that for x > 0). The exponent -z^2 = -x^2 / 2 is
// carried as an exact float pair: rounding it would cost z^2 * 2^-24 relative (80 ulp at x = -13).
inline __m256 two_phi8(__m256 x) {
    const __m256 a = _mm256_min_ps(splat(15.5f), abs8(x));  // 2 Phi(-15.5) is 0 in float32; NaN passes
    const __m256 z = _mm256_mul_ps(a, splat(0.70710678118654752f));
    const __m256 t = _mm256_div_ps(splat(1.0f), _mm256_fmadd_ps(splat(0.5f), z, splat(1.0f)));
    __m256 p = splat(0.17087277f);
    p = _mm256_fmadd_ps(p, t, splat(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, splat(1.48851587f));
    p = _mm256_fmadd_ps(p, t, splat(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, splat(0.27886807f));
    p = _mm256_fmadd_ps(p, t, splat(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, splat(0.09678418f));
    p = _mm256_fmadd_ps(p, t, splat(0.37409196f));
    p = _mm256_fmadd_ps(p, t, splat(1.00002368f));
    p = _mm256_fmadd_ps(p, t, splat(-1.26551223f));
    __m256 aa, aa_err;
    square_pair(a, aa, aa_err);
    const __m256 half = splat(-0.5f);  // exact scaling of the pair
    const __m256 tail = _mm256_mul_ps(t, exp8_pair(_mm256_mul_ps(half, aa),
                                                   _mm256_fmadd_ps(half, aa_err, p)));
    const __m256 positive = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
    return _mm256_blendv_ps(tail, _mm256_sub_ps(splat(2.0f), tail), positive);
}

// exp(-x^2 / 2) with the exponent as an exact pair (see two_phi8)
inline __m256 gauss8(__m256 x) {
    __m256 xx, xx_err;
    square_pair(_mm256_min_ps(splat(15.5f), abs8(x)), xx, xx_err);  // 0 beyond; keeps x*x finite
    const __m256 half = splat(-0.5f);
    return exp8_pair(_mm256_mul_ps(half, xx), _mm256_mul_ps(half, xx_err));
}

// log(x) for positive normal finite lanes only (callers check): x = m 2^e with m in
// [sqrt(1/2), sqrt(2)), log(m) by Cephes' logf polynomial, e ln2 added in two parts.
inline __m256 log8_normal(__m256 x) {
    const __m256i bits = _mm256_castps_si256(x);
    __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126)));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)),
                                                   _mm256_set1_epi32(0x3F000000)));  // [0.5, 1)
    const __m256 low = _mm256_cmp_ps(m, splat(0.707106781186547524f), _CMP_LT_OQ);
    e = _mm256_sub_ps(e, _mm256_and_ps(low, splat(1.0f)));
    m = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(low, m)), splat(1.0f));  // 2m - 1 or m - 1
    const __m256 z = _mm256_mul_ps(m, m);
    __m256 y = splat(7.0376836292e-2f);
    y = _mm256_fmadd_ps(y, m, splat(-1.1514610310e-1f));
    y = _mm256_fmadd_ps(y, m, splat(1.1676998740e-1f));
    y = _mm256_fmadd_ps(y, m, splat(-1.2420140846e-1f));
    y = _mm256_fmadd_ps(y, m, splat(1.4249322787e-1f));
    y = _mm256_fmadd_ps(y, m, splat(-1.6668057665e-1f));
    y = _mm256_fmadd_ps(y, m, splat(2.0000714765e-1f));
    y = _mm256_fmadd_ps(y, m, splat(-2.4999993993e-1f));
    y = _mm256_fmadd_ps(y, m, splat(3.3333331174e-1f));
    y = _mm256_mul_ps(_mm256_mul_ps(y, m), z);
    y = _mm256_fmadd_ps(e, splat(-2.12194440e-4f), y);
    y = _mm256_fmadd_ps(z, splat(-0.5f), y);
    return _mm256_fmadd_ps(e, splat(0.693359375f), _mm256_add_ps(m, y));
}

// log(1 + y) for lanes where u = 1 + y is a positive normal float: log(u) * y / (u - 1), which
// corrects the rounding of 1 + y (y itself where u == 1).
inline __m256 log1p8_normal(__m256 y) {
    const __m256 u = _mm256_add_ps(splat(1.0f), y);
    const __m256 d = _mm256_sub_ps(u, splat(1.0f));
    const __m256 one = _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ);
    const __m256 r = _mm256_mul_ps(log8_normal(u), _mm256_div_ps(y, _mm256_blendv_ps(d, splat(1.0f), one)));
    return _mm256_blendv_ps(r, y, one);
}

// v (4 + 4 doubles) as the float pair (hi, lo) with hi + lo = v to about 2^-48 relative
inline void split_pair(__m256d v0, __m256d v1, __m256& hi, __m256& lo) {
    const __m128 h0 = _mm256_cvtpd_ps(v0), h1 = _mm256_cvtpd_ps(v1);
    hi = _mm256_set_m128(h1, h0);
    lo = _mm256_set_m128(_mm256_cvtpd_ps(_mm256_sub_pd(v1, _mm256_cvtps_pd(h1))),
                         _mm256_cvtpd_ps(_mm256_sub_pd(v0, _mm256_cvtps_pd(h0))));  // (high, low)
}

#endif  // PYCONV_VMATH_AVX2

}  // namespace pyconv::cpu::vmath
