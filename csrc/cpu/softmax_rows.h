// Row primitives of softmax, log_softmax and cross-entropy: a vectorised float32 exp and the
// reductions / elementwise passes over one contiguous row of n values. float32 runs on AVX2+FMA
// when compiled in; float64 (and builds without AVX2) use the scalar templates with std::exp.
//
// NaN semantics rely on plain arithmetic, not on the max: a NaN anywhere in a row makes its
// exp-sum NaN, so every output of the row is NaN whatever max() returned (as the reference, whose
// max is NaN). Likewise +inf (inf - inf) and all -inf rows give NaN rows.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define PYCONV_ROWS_AVX2 1
#else
#define PYCONV_ROWS_AVX2 0
#endif

#include "parallel.h"

namespace pyconv::cpu::rows {

// ---------------------------------------------------------------------------------------------
// the float32 exp: x = n*ln2 + r, |r| <= ln2/2, exp(r) by a degree-7 polynomial (Cephes'
// expf coefficients), 2^n applied as two factors 2^(n/2) so that results down to the smallest
// denormal are rounded once. Inputs are clamped to [-104, 89]: exp(-104) rounds to 0 and
// exp(89) overflows to inf; NaN passes through the clamp.
// ---------------------------------------------------------------------------------------------

#if PYCONV_ROWS_AVX2
// exp(x - n ln2) for integral n with |x - n ln2| <= ln2/2 (a little more is fine): ln2 split so
// that n * hi is exact for |n| <= 150, then Cephes' expf polynomial.
inline __m256 exp8_reduced(__m256 x, __m256 n) {
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    return _mm256_add_ps(p, _mm256_set1_ps(1.0f));
}

inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), x));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 p = exp8_reduced(x, n);
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i half = _mm256_srai_epi32(ni, 1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

// exp(x) for lanes with |x| <= 86 only (the result is then a normal float): the same reduction
// and polynomial as exp8, but n comes from the 1.5 * 2^23 rounding trick and 2^n is added to the
// exponent bits directly, 8 fewer vector instructions. Callers check the range per row.
inline __m256 exp8_normal(__m256 x) {
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    const __m256 nb = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);  // low bits: n
    const __m256 p = exp8_reduced(x, _mm256_sub_ps(nb, magic));
    // nb's bits are 0x4B400000 + n: shifted by 23 only n << 23 is left
    const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(nb), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
}

// Arguments in [-kNormalExp, kNormalExp] may take exp8_normal.
constexpr float kNormalExp = 86.0f;

// Lanes [0, r) set, r in [0, 8].
inline __m256i tail_mask(int64_t r) {
    alignas(32) static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bits + 8 - r));
}

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Applies f(v, mask) to every 8 values of [0, n): full vectors with an all-ones mask, then one
// masked tail whose missing lanes load as 0.
template <class F>
inline void for_vectors(int64_t n, F&& f) {
    const __m256i full = _mm256_set1_epi32(-1);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) f(i, full, true);
    if (i < n) f(i, tail_mask(n - i), false);
}

inline __m256 load(const float* p, __m256i mask, bool full) {
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}

inline void store(float* p, __m256 v, __m256i mask, bool full) {
    if (full) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, mask, v);
}
#endif

// exp of every value of v (n values) in place: the vectorised exp for float32.
template <typename T>
inline void exp_inplace(T* v, int64_t n) {
    for (int64_t i = 0; i < n; ++i) v[i] = std::exp(v[i]);
}

// The largest value of x (-inf for n == 0; NaNs may or may not be skipped).
template <typename T>
inline T max(const T* x, int64_t n) {
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
}

template <typename T>
inline T sum(const T* x, int64_t n) {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) s += x[i];
    return s;
}

template <typename T>
inline T dot(const T* a, const T* b, int64_t n) {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

// y = exp(x - shift); returns sum(y).
template <typename T>
inline T exp_store(const T* x, T shift, T* y, int64_t n) {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) s += (y[i] = std::exp(x[i] - shift));
    return s;
}

// sum(exp(x - shift)).
template <typename T>
inline T exp_sum(const T* x, T shift, int64_t n) {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::exp(x[i] - shift);
    return s;
}

template <typename T>
inline void scale(T* y, T factor, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] *= factor;
}

// y = (x - a) - b: log_softmax with a = max, b = log(sum) (two roundings, exact for +-1e4 logits).
template <typename T>
inline void sub2(const T* x, T a, T b, T* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - a) - b;
}

// softmax backward: gx = y * (g - d), d = sum(g * y).
template <typename T>
inline void softmax_grad(const T* g, const T* y, T d, T* gx, int64_t n) {
    for (int64_t i = 0; i < n; ++i) gx[i] = y[i] * (g[i] - d);
}

// log_softmax backward: gx = g - exp(y) * s, s = sum(g).
template <typename T>
inline void log_softmax_grad(const T* g, const T* y, T s, T* gx, int64_t n) {
    for (int64_t i = 0; i < n; ++i) gx[i] = g[i] - std::exp(y[i]) * s;
}

// cross-entropy backward: gx = (exp(lp) * a - b * w) * rg, w = 1 when null.
template <typename T>
inline void ce_grad(const T* lp, T a, T b, const T* w, T rg, T* gx, int64_t n) {
    for (int64_t i = 0; i < n; ++i) gx[i] = (std::exp(lp[i]) * a - b * (w ? w[i] : T(1))) * rg;
}

#if PYCONV_ROWS_AVX2
template <>
inline void exp_inplace<float>(float* v, int64_t n) {
    for_vectors(n, [&](int64_t i, __m256i m, bool full) { store(v + i, exp8(load(v + i, m, full)), m, full); });
}

template <>
inline float max<float>(const float* x, int64_t n) {
    const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    __m256 m0 = ninf, m1 = ninf;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
        m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
    }
    for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    if (i < n) {
        const __m256i mask = tail_mask(n - i);
        m1 = _mm256_max_ps(m1, _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, mask),
                                                _mm256_castsi256_ps(mask)));
    }
    return hmax(_mm256_max_ps(m0, m1));
}

template <>
inline float sum<float>(const float* x, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    for_vectors(n, [&](int64_t i, __m256i m, bool full) { acc = _mm256_add_ps(acc, load(x + i, m, full)); });
    return hsum(acc);
}

template <>
inline float dot<float>(const float* a, const float* b, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    for_vectors(n, [&](int64_t i, __m256i m, bool full) {
        acc = _mm256_fmadd_ps(load(a + i, m, full), load(b + i, m, full), acc);
    });
    return hsum(acc);
}

template <>
inline float exp_store<float>(const float* x, float shift, float* y, int64_t n) {
    const __m256 s = _mm256_set1_ps(shift);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {  // two independent exps in flight
        const __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
        const __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), s));
        _mm256_storeu_ps(y + i, e0);
        _mm256_storeu_ps(y + i + 8, e1);
        acc0 = _mm256_add_ps(acc0, e0);
        acc1 = _mm256_add_ps(acc1, e1);
    }
    for_vectors(n - i, [&](int64_t j, __m256i m, bool full) {
        // masked-off lanes are zeroed after the exp
        const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(load(x + i + j, m, full), s)), _mm256_castsi256_ps(m));
        store(y + i + j, e, m, full);
        acc0 = _mm256_add_ps(acc0, e);
    });
    return hsum(_mm256_add_ps(acc0, acc1));
}

template <>
inline float exp_sum<float>(const float* x, float shift, int64_t n) {
    const __m256 s = _mm256_set1_ps(shift);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_add_ps(acc0, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), s)));
        acc1 = _mm256_add_ps(acc1, exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), s)));
    }
    for_vectors(n - i, [&](int64_t j, __m256i m, bool full) {
        acc0 = _mm256_add_ps(acc0, _mm256_and_ps(exp8(_mm256_sub_ps(load(x + i + j, m, full), s)),
                                                 _mm256_castsi256_ps(m)));
    });
    return hsum(_mm256_add_ps(acc0, acc1));
}

template <>
inline void scale<float>(float* y, float factor, int64_t n) {
    const __m256 f = _mm256_set1_ps(factor);
    for_vectors(n, [&](int64_t i, __m256i m, bool full) { store(y + i, _mm256_mul_ps(load(y + i, m, full), f), m, full); });
}

template <>
inline void sub2<float>(const float* x, float a, float b, float* y, int64_t n) {
    const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    for_vectors(n, [&](int64_t i, __m256i m, bool full) {
        store(y + i, _mm256_sub_ps(_mm256_sub_ps(load(x + i, m, full), va), vb), m, full);
    });
}

template <>
inline void softmax_grad<float>(const float* g, const float* y, float d, float* gx, int64_t n) {
    const __m256 vd = _mm256_set1_ps(d);
    for_vectors(n, [&](int64_t i, __m256i m, bool full) {
        store(gx + i, _mm256_mul_ps(load(y + i, m, full), _mm256_sub_ps(load(g + i, m, full), vd)), m, full);
    });
}

template <>
inline void log_softmax_grad<float>(const float* g, const float* y, float s, float* gx, int64_t n) {
    const __m256 vs = _mm256_set1_ps(s);
    for_vectors(n, [&](int64_t i, __m256i m, bool full) {
        store(gx + i, _mm256_fnmadd_ps(exp8(load(y + i, m, full)), vs, load(g + i, m, full)), m, full);
    });
}

template <>
inline void ce_grad<float>(const float* lp, float a, float b, const float* w, float rg, float* gx, int64_t n) {
    const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b), vr = _mm256_set1_ps(rg);
    for_vectors(n, [&](int64_t i, __m256i m, bool full) {
        const __m256 bw = w ? _mm256_mul_ps(vb, load(w + i, m, full)) : vb;
        store(gx + i, _mm256_mul_ps(_mm256_fmsub_ps(exp8(load(lp + i, m, full)), va, bw), vr), m, full);
    });
}
#endif

// ---------------------------------------------------------------------------------------------
// Whole-row passes: softmax / log_softmax forward and backward of one contiguous row. With
// `stream`, the output's aligned full vectors are written with non-temporal stores (no read
// for ownership of lines that leave the cache anyway); the arithmetic is the same either way.
// ---------------------------------------------------------------------------------------------

template <typename T>
inline void softmax_row(const T* x, T* y, int64_t n, bool /*stream*/, const T* /*next*/ = nullptr) {
    scale(y, T(1) / exp_store(x, max(x, n), y, n), n);
}

template <typename T>
inline void log_softmax_row(const T* x, T* y, int64_t n, bool /*stream*/, const T* /*next*/ = nullptr) {
    const T m = max(x, n);
    sub2(x, m, std::log(exp_sum(x, m, n)), y, n);
}

template <typename T>
inline void softmax_grad_row(const T* g, const T* y, T* gx, int64_t n, bool /*stream*/,
                             const T* /*next_g*/ = nullptr, const T* /*next_y*/ = nullptr) {
    softmax_grad(g, y, dot(g, y, n), gx, n);
}

// softmax_grad_row over `rows` consecutive rows of n values
template <typename T>
inline void softmax_grad_rows(const T* g, const T* y, T* gx, int64_t rows, int64_t n, bool stream) {
    for (int64_t r = 0; r < rows; ++r) softmax_grad_row(g + r * n, y + r * n, gx + r * n, n, stream);
}

template <typename T>
inline void log_softmax_grad_row(const T* g, const T* y, T* gx, int64_t n, bool /*stream*/,
                                 const T* /*next_g*/ = nullptr, const T* /*next_y*/ = nullptr) {
    log_softmax_grad(g, y, sum(g, n), gx, n);
}

#if PYCONV_ROWS_AVX2
// out[i, i + 8) = f(i, mask, full) over [0, n) (see for_vectors). With `stream`, a masked head
// vector first brings out + i to a 32-byte boundary, then full vectors are streamed (and fenced
// unless `fence` is false: the caller fences after its last row).
template <class F>
inline void write_vectors(float* out, int64_t n, bool stream, F&& f, bool fence = true) {
    if (!stream) {
        for_vectors(n, [&](int64_t i, __m256i m, bool full) { store(out + i, f(i, m, full), m, full); });
        return;
    }
    const int64_t head = std::min<int64_t>(n, ((32 - (reinterpret_cast<uintptr_t>(out) & 31)) & 31) / 4);
    if (head > 0) {
        const __m256i m = tail_mask(head);
        store(out, f(0, m, false), m, false);
    }
    const __m256i full = _mm256_set1_epi32(-1);
    int64_t i = head;
    for (; i + 8 <= n; i += 8) _mm256_stream_ps(out + i, f(i, full, true));
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        store(out + i, f(i, m, false), m, false);
    }
    if (fence) _mm_sfence();
}

// The row's max, and whether every exp(x - max) may take exp8_normal: no NaN or inf (their sum
// would not be finite) and max - min <= kNormalExp.
struct RowMax {
    float max;
    bool normal;
};

inline RowMax max_checked(const float* x, int64_t n) {
    const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    __m256 hi = ninf, lo = _mm256_set1_ps(std::numeric_limits<float>::infinity()), s = _mm256_setzero_ps();
    for_vectors(n, [&](int64_t i, __m256i m, bool full) {
        const __m256 v = load(x + i, m, full);
        const __m256 keep = _mm256_castsi256_ps(m);
        hi = _mm256_max_ps(hi, full ? v : _mm256_blendv_ps(ninf, v, keep));
        lo = _mm256_min_ps(lo, full ? v : _mm256_blendv_ps(_mm256_sub_ps(_mm256_setzero_ps(), ninf), v, keep));
        s = _mm256_add_ps(s, v);
    });
    RowMax r;
    r.max = hmax(hi);
    const float mn = -hmax(_mm256_sub_ps(_mm256_setzero_ps(), lo));
    r.normal = std::isfinite(hsum(s)) && r.max - mn <= kNormalExp;
    return r;
}

template <bool Normal>
inline __m256 exp8_sel(__m256 x) {
    if constexpr (Normal) return exp8_normal(x);
    else return exp8(x);
}

inline void prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }

// exp(x - shift) into y (or only summed when y is null); returns the sum (exp_store's order).
// The pass is compute-bound: it pulls the next row (`next`, n values, may be null) into L1 meanwhile.
template <bool Normal>
inline float exp_rows_pass(const float* x, float shift, float* y, int64_t n, const float* next) {
    const __m256 s = _mm256_set1_ps(shift);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        if (next) prefetch(next + i);
        const __m256 e0 = exp8_sel<Normal>(_mm256_sub_ps(_mm256_loadu_ps(x + i), s));
        const __m256 e1 = exp8_sel<Normal>(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), s));
        if (y) {
            _mm256_storeu_ps(y + i, e0);
            _mm256_storeu_ps(y + i + 8, e1);
        }
        acc0 = _mm256_add_ps(acc0, e0);
        acc1 = _mm256_add_ps(acc1, e1);
    }
    for_vectors(n - i, [&](int64_t j, __m256i m, bool full) {
        const __m256 e = _mm256_and_ps(exp8_sel<Normal>(_mm256_sub_ps(load(x + i + j, m, full), s)),
                                       _mm256_castsi256_ps(m));
        if (y) store(y + i + j, e, m, full);
        acc0 = _mm256_add_ps(acc0, e);
    });
    return hsum(_mm256_add_ps(acc0, acc1));
}

inline float exp_rows(const RowMax& st, const float* x, float* y, int64_t n, const float* next) {
    return st.normal ? exp_rows_pass<true>(x, st.max, y, n, next) : exp_rows_pass<false>(x, st.max, y, n, next);
}

// Rows up to this long are exponentiated into a stack buffer (L1), then scaled into y.
constexpr int64_t kRowBuffer = 4096;

template <>
inline void softmax_row<float>(const float* x, float* y, int64_t n, bool stream, const float* next) {
    const RowMax st = max_checked(x, n);
    if (n > kRowBuffer) {
        scale(y, 1.0f / exp_rows(st, x, y, n, nullptr), n);
        return;
    }
    alignas(32) float e[kRowBuffer];
    const __m256 f = _mm256_set1_ps(1.0f / exp_rows(st, x, e, n, next));
    write_vectors(y, n, stream, [&](int64_t i, __m256i m, bool full) { return _mm256_mul_ps(load(e + i, m, full), f); });
}

template <>
inline void log_softmax_row<float>(const float* x, float* y, int64_t n, bool stream, const float* next) {
    const RowMax st = max_checked(x, n);
    const __m256 a = _mm256_set1_ps(st.max);
    const __m256 b = _mm256_set1_ps(std::log(exp_rows(st, x, nullptr, n, n <= kRowBuffer ? next : nullptr)));
    write_vectors(y, n, stream, [&](int64_t i, __m256i m, bool full) {
        return _mm256_sub_ps(_mm256_sub_ps(load(x + i, m, full), a), b);
    });
}

template <>
inline void softmax_grad_row<float>(const float* g, const float* y, float* gx, int64_t n, bool stream,
                                    const float* next_g, const float* next_y) {
    if (n > kRowBuffer) next_g = next_y = nullptr;
    const __m256 d = _mm256_set1_ps(dot(g, y, n));
    write_vectors(gx, n, stream, [&](int64_t i, __m256i m, bool full) {
        if (next_g && full) {  // keeps memory busy while this row is finished from L1
            prefetch(next_g + i);
            prefetch(next_y + i);
        }
        return _mm256_mul_ps(load(y + i, m, full), _mm256_sub_ps(load(g + i, m, full), d));
    });
}

// Software-pipelined over the rows: one pass per row writes row r's gradient (its g and y in L1
// from the previous pass) while it loads row r + 1 from memory and sums its g . y, so the reads
// and the non-temporal writes overlap instead of alternating row by row (with one fence per
// call, not per row); rows two ahead are prefetched. (4096, 1000) at 1 thread: 2.67 -> 2.47 ms,
// the rate of a bare 2-read + 1-non-temporal-write loop on this machine.
template <>
inline void softmax_grad_rows<float>(const float* g, const float* y, float* gx, int64_t rows, int64_t n,
                                     bool stream) {
    if (rows <= 0) return;
    if (n > kRowBuffer) {  // a row does not stay in L1 between its two passes
        for (int64_t r = 0; r < rows; ++r) softmax_grad_row(g + r * n, y + r * n, gx + r * n, n, stream);
        return;
    }
    float d = dot(g, y, n);
    for (int64_t r = 0; r < rows; ++r) {
        const float *gr = g + r * n, *yr = y + r * n, *gn = gr + n, *yn = yr + n;
        const __m256 vd = _mm256_set1_ps(d);
        const auto grad = [&](int64_t i, __m256i m, bool full) {
            return _mm256_mul_ps(load(yr + i, m, full), _mm256_sub_ps(load(gr + i, m, full), vd));
        };
        if (r + 1 < rows) {
            __m256 acc = _mm256_setzero_ps();
            const bool ahead = r + 2 < rows;
            write_vectors(gx + r * n, n, stream, [&](int64_t i, __m256i m, bool full) {
                if (ahead && full) {  // row r + 2 on its way while r + 1 is loaded
                    prefetch(gn + n + i);
                    prefetch(yn + n + i);
                }
                acc = _mm256_fmadd_ps(load(gn + i, m, full), load(yn + i, m, full), acc);
                return grad(i, m, full);
            }, false);
            d = hsum(acc);
        } else {
            write_vectors(gx + r * n, n, stream, grad, false);
        }
    }
    if (stream) _mm_sfence();
}

template <bool Normal>
inline void log_softmax_grad_pass(const float* g, const float* y, float s, float* gx, int64_t n, bool stream,
                                  const float* next_g, const float* next_y) {
    const __m256 vs = _mm256_set1_ps(s);
    write_vectors(gx, n, stream, [&](int64_t i, __m256i m, bool full) {
        if (next_g && full) {  // each line twice: cheaper than tracking alignment
            prefetch(next_g + i);
            prefetch(next_y + i);
        }
        return _mm256_fnmadd_ps(exp8_sel<Normal>(load(y + i, m, full)), vs, load(g + i, m, full));
    });
}

// sum(g) (sum<float>'s order), and whether every y lies in [-kNormalExp, kNormalExp]
template <>
inline void log_softmax_grad_row<float>(const float* g, const float* y, float* gx, int64_t n, bool stream,
                                        const float* next_g, const float* next_y) {
    if (n > kRowBuffer) next_g = next_y = nullptr;  // the next rows would not fit in L1 with this one
    const float inf = std::numeric_limits<float>::infinity();
    __m256 acc = _mm256_setzero_ps(), hi = _mm256_set1_ps(-inf), lo = _mm256_set1_ps(inf), ys = _mm256_setzero_ps();
    for_vectors(n, [&](int64_t i, __m256i m, bool full) {
        acc = _mm256_add_ps(acc, load(g + i, m, full));
        const __m256 v = load(y + i, m, full);  // missing lanes are 0, inside the range
        hi = _mm256_max_ps(hi, v);
        lo = _mm256_min_ps(lo, v);
        ys = _mm256_add_ps(ys, v);
    });
    const float mx = hmax(hi), mn = -hmax(_mm256_sub_ps(_mm256_setzero_ps(), lo));
    const bool normal = std::isfinite(hsum(ys)) && mx <= kNormalExp && mn >= -kNormalExp;
    if (normal) log_softmax_grad_pass<true>(g, y, hsum(acc), gx, n, stream, next_g, next_y);
    else log_softmax_grad_pass<false>(g, y, hsum(acc), gx, n, stream, next_g, next_y);
}
#endif

// f(begin, end) over chunks of [0, units) on the process's threads, each unit being a row of
// about `unit_elems` values; one thread below 32K values (a fork/join costs more).
template <class F>
inline void for_chunks(int64_t units, int64_t unit_elems, F&& f) {
    if (units <= 0) return;
    const double work = double(units) * double(std::max<int64_t>(unit_elems, 1));
    const int threads = work < 32768.0 ? 1 : max_threads();
    const int64_t per = std::max<int64_t>(1, units / (int64_t(threads) * 8));
    const int64_t tasks = (units + per - 1) / per;
    parallel_for(tasks, threads, [&](int64_t t) { f(t * per, std::min(units, (t + 1) * per)); });
}

}  // namespace pyconv::cpu::rows
