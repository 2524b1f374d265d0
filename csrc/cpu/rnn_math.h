// Vector math for the fused pointwise passes of the recurrent cells (csrc/cpu/rnn.cpp): a small
// SIMD type Vec<T> (AVX2+FMA: 8 floats / 4 doubles; otherwise one scalar lane, so the cell code is
// the same on every build) and accurate sigmoid and tanh on it.
//
// Accuracy: a few ulp over the whole range, in float64 too (the tests compare with NumPy's
// np.tanh / exp at 1e-12 relative). Both functions only need exp and expm1 of a non-positive
// argument, computed from one range reduction x = n ln2 + r, |r| <= ln2/2:
//   exp(x)   = 2^n (1 + p(r)),   expm1(x) = 2^n p(r) + (2^n - 1),   p(r) = expm1(r) by Taylor.
// The expm1 form keeps tanh accurate near 0, where 1 - 2/(exp(2x)+1) would cancel.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define PYCONV_RNN_AVX2 1
#endif

namespace pyconv::cpu::rnn_math {

template <typename T>
struct Vec;

#ifdef PYCONV_RNN_AVX2

template <>
struct Vec<float> {
    static constexpr int W = 8;
    __m256 v;
    static Vec set1(float a) { return {_mm256_set1_ps(a)}; }
    static Vec load(const float* p) { return {_mm256_loadu_ps(p)}; }
    void store(float* p) const { _mm256_storeu_ps(p, v); }
    // The first `n` (< W) lanes; the others read as 0 without touching memory.
    static __m256i mask(int n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static Vec load(const float* p, int n) { return {_mm256_maskload_ps(p, mask(n))}; }
    void store(float* p, int n) const { _mm256_maskstore_ps(p, mask(n), v); }
};

template <>
struct Vec<double> {
    static constexpr int W = 4;
    __m256d v;
    static Vec set1(double a) { return {_mm256_set1_pd(a)}; }
    static Vec load(const double* p) { return {_mm256_loadu_pd(p)}; }
    void store(double* p) const { _mm256_storeu_pd(p, v); }
    static __m256i mask(int n) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    static Vec load(const double* p, int n) { return {_mm256_maskload_pd(p, mask(n))}; }
    void store(double* p, int n) const { _mm256_maskstore_pd(p, mask(n), v); }
};

using VF = Vec<float>;
using VD = Vec<double>;
inline VF operator+(VF a, VF b) { return {_mm256_add_ps(a.v, b.v)}; }
inline VF operator-(VF a, VF b) { return {_mm256_sub_ps(a.v, b.v)}; }
inline VF operator*(VF a, VF b) { return {_mm256_mul_ps(a.v, b.v)}; }
inline VF operator/(VF a, VF b) { return {_mm256_div_ps(a.v, b.v)}; }
inline VF fma(VF a, VF b, VF c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
inline VD operator+(VD a, VD b) { return {_mm256_add_pd(a.v, b.v)}; }
inline VD operator-(VD a, VD b) { return {_mm256_sub_pd(a.v, b.v)}; }
inline VD operator*(VD a, VD b) { return {_mm256_mul_pd(a.v, b.v)}; }
inline VD operator/(VD a, VD b) { return {_mm256_div_pd(a.v, b.v)}; }
inline VD fma(VD a, VD b, VD c) { return {_mm256_fmadd_pd(a.v, b.v, c.v)}; }

// max(x, 0) that keeps NaN (maxps returns its second operand when either is NaN), as np.maximum.
inline VF relu(VF x) { return {_mm256_max_ps(_mm256_setzero_ps(), x.v)}; }
inline VD relu(VD x) { return {_mm256_max_pd(_mm256_setzero_pd(), x.v)}; }
// x > 0 ? a : 0 (false for NaN x, as np.where(x > 0, a, 0)).
inline VF where_positive(VF x, VF a) { return {_mm256_and_ps(_mm256_cmp_ps(x.v, _mm256_setzero_ps(), _CMP_GT_OQ), a.v)}; }
inline VD where_positive(VD x, VD a) { return {_mm256_and_pd(_mm256_cmp_pd(x.v, _mm256_setzero_pd(), _CMP_GT_OQ), a.v)}; }
inline VF abs(VF x) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x.v)}; }
inline VD abs(VD x) { return {_mm256_andnot_pd(_mm256_set1_pd(-0.0), x.v)}; }
// |m| with the sign of s
inline VF copysign(VF m, VF s) { return {_mm256_or_ps(m.v, _mm256_and_ps(_mm256_set1_ps(-0.0f), s.v))}; }
inline VD copysign(VD m, VD s) { return {_mm256_or_pd(m.v, _mm256_and_pd(_mm256_set1_pd(-0.0), s.v))}; }
// x < 0 ? a : b
inline VF select_negative(VF x, VF a, VF b) { return {_mm256_blendv_ps(b.v, a.v, x.v)}; }
inline VD select_negative(VD x, VD a, VD b) { return {_mm256_blendv_pd(b.v, a.v, x.v)}; }
// max(lo, x) keeping NaN
inline VF clamp_below(VF x, float lo) { return {_mm256_max_ps(_mm256_set1_ps(lo), x.v)}; }
inline VD clamp_below(VD x, double lo) { return {_mm256_max_pd(_mm256_set1_pd(lo), x.v)}; }
inline VF round_nearest(VF x) { return {_mm256_round_ps(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
inline VD round_nearest(VD x) { return {_mm256_round_pd(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
// 2^n for integral n within the normal exponent range, built in the exponent field
inline VF pow2(VF n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(e, 23))};
}
inline VD pow2(VD n) {
    const __m256i e = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n.v)), _mm256_set1_epi64x(1023));
    return {_mm256_castsi256_pd(_mm256_slli_epi64(e, 52))};
}

#else  // portable: one lane

template <typename T>
struct Vec {
    static constexpr int W = 1;
    T v;
    static Vec set1(T a) { return {a}; }
    static Vec load(const T* p) { return {*p}; }
    static Vec load(const T* p, int) { return {*p}; }
    void store(T* p) const { *p = v; }
    void store(T* p, int) const { *p = v; }
};

template <typename T> Vec<T> operator+(Vec<T> a, Vec<T> b) { return {a.v + b.v}; }
template <typename T> Vec<T> operator-(Vec<T> a, Vec<T> b) { return {a.v - b.v}; }
template <typename T> Vec<T> operator*(Vec<T> a, Vec<T> b) { return {a.v * b.v}; }
template <typename T> Vec<T> operator/(Vec<T> a, Vec<T> b) { return {a.v / b.v}; }
template <typename T> Vec<T> fma(Vec<T> a, Vec<T> b, Vec<T> c) { return {std::fma(a.v, b.v, c.v)}; }
template <typename T> Vec<T> relu(Vec<T> x) { return {x.v < T(0) ? T(0) : x.v}; }
template <typename T> Vec<T> where_positive(Vec<T> x, Vec<T> a) { return {x.v > T(0) ? a.v : T(0)}; }
template <typename T> Vec<T> abs(Vec<T> x) { return {std::fabs(x.v)}; }
template <typename T> Vec<T> copysign(Vec<T> m, Vec<T> s) { return {std::copysign(m.v, s.v)}; }
template <typename T> Vec<T> select_negative(Vec<T> x, Vec<T> a, Vec<T> b) { return {std::signbit(x.v) ? a.v : b.v}; }
template <typename T> Vec<T> clamp_below(Vec<T> x, T lo) { return {x.v < lo ? lo : x.v}; }
template <typename T> Vec<T> round_nearest(Vec<T> x) { return {std::nearbyint(x.v)}; }
template <typename T> Vec<T> pow2(Vec<T> n) { return {std::ldexp(T(1), int(n.v))}; }

#endif

// Per-type constants: the two-part ln 2 of the range reduction (hi + lo = ln 2 to twice the
// precision), the Taylor degree of expm1 on |r| <= ln2/2 (truncation below 1/4 ulp), and the
// argument below which exp is treated as that floor (2^n must stay a normal number).
template <typename T>
struct ExpConst;
template <>
struct ExpConst<float> {
    static constexpr float ln2_hi = 0x1.62e430p-1f, ln2_lo = -0x1.05c610p-29f;
    static constexpr int degree = 7;
    static constexpr float floor = -87.0f;
};
template <>
struct ExpConst<double> {
    static constexpr double ln2_hi = 0x1.62e42fefa39efp-1, ln2_lo = 0x1.abc9e3b39803fp-56;
    static constexpr int degree = 13;
    static constexpr double floor = -708.0;
};

// 1/k!, correctly rounded (k! is exact in double for k <= 18)
template <typename T>
constexpr T inverse_factorial(int k) {
    double f = 1;
    for (int i = 2; i <= k; ++i) f *= i;
    return T(1.0 / f);
}

// x <= 0 (NaN propagates): scale = 2^n and p = expm1(r) with x = n ln2 + r.
template <typename T>
inline void exp_parts(Vec<T> x, Vec<T>& scale, Vec<T>& p) {
    using V = Vec<T>;
    using C = ExpConst<T>;
    x = clamp_below(x, C::floor);
    const V n = round_nearest(x * V::set1(T(1.4426950408889634)));
    V r = fma(n, V::set1(-C::ln2_hi), x);
    r = fma(n, V::set1(-C::ln2_lo), r);
    // expm1(r) = r (1 + r (1/2! + r (1/3! + ... + r/d!))), Horner
    V q = V::set1(inverse_factorial<T>(C::degree));
    for (int k = C::degree - 1; k >= 1; --k) q = fma(q, r, V::set1(inverse_factorial<T>(k)));
    p = r * q;
    scale = pow2(n);
}

// 1 / (1 + exp(-x)), from e = exp(-|x|): 1/(1+e) for x >= 0, e/(1+e) for x < 0.
template <typename T>
inline Vec<T> sigmoid(Vec<T> x) {
    using V = Vec<T>;
    V scale, p;
    exp_parts(V::set1(T(0)) - abs(x), scale, p);
    const V e = fma(scale, p, scale);
    const V s = V::set1(T(1)) / (V::set1(T(1)) + e);
    return select_negative(x, e * s, s);
}

// tanh(x) = sign(x) * -u / (u + 2) with u = expm1(-2|x|) in (-1, 0].
template <typename T>
inline Vec<T> tanh(Vec<T> x) {
    using V = Vec<T>;
    V scale, p;
    exp_parts(V::set1(T(-2)) * abs(x), scale, p);
    const V u = fma(scale, p, scale - V::set1(T(1)));
    return copysign((V::set1(T(0)) - u) / (u + V::set1(T(2))), x);
}

}  // namespace pyconv::cpu::rnn_math
