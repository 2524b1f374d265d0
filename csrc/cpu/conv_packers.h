// Packers that read conv2d's GEMM operands straight from NCHW tensors (the implicit GEMM: no
// im2col matrix is ever materialised; only the KC x NC panel being computed is).
#pragma once

#include <algorithm>
#include <cstdint>

#include "gemm.h"

namespace pyconv::cpu {

// One conv2d: input (n, c, h, w) -> output (n, k, p, q), kernel (r, s). Output pixel (p, q) and
// tap (r, s) read input row p*sh + r*dh - top, column q*sw + s*dw - left; rows and columns
// outside the input read 0 (the offsets may be negative or beyond the size: the packers clip).
struct ConvGeometry {
    int64_t n, c, h, w, k, r, s, p, q, sh, sw, dh, dw, top, left, groups;

    int64_t cg() const { return c / groups; }
    int64_t kg() const { return k / groups; }
    int64_t taps() const { return r * s; }
    int64_t crs() const { return cg() * r * s; }
    int64_t hw() const { return h * w; }
    int64_t pq() const { return p * q; }
};

// Copies `len` input values starting at column x0 (step `step`) of input row `row` (null when
// the row is outside the input) to d[0], d[stride], ...; columns outside [0, width) give 0.
template <typename T>
inline void copy_clipped(T* d, int64_t stride, const T* row, int64_t x0, int64_t step, int64_t len,
                         int64_t width) {
    if (row == nullptr) {
        for (int64_t t = 0; t < len; ++t) d[t * stride] = T(0);
        return;
    }
    if (step == 1) {
        // valid columns: x0 + t in [0, width)
        const int64_t lo = std::clamp<int64_t>(-x0, 0, len), hi = std::clamp<int64_t>(width - x0, lo, len);
        for (int64_t t = 0; t < lo; ++t) d[t * stride] = T(0);
        for (int64_t t = lo; t < hi; ++t) d[t * stride] = row[x0 + t];
        for (int64_t t = hi; t < len; ++t) d[t * stride] = T(0);
        return;
    }
    for (int64_t t = 0; t < len; ++t) {
        const int64_t x = x0 + t * step;
        d[t * stride] = (x >= 0 && x < width) ? row[x] : T(0);
    }
}

#ifdef PYCONV_CPU_AVX2

// One NR-wide packed row assembled in two ymm registers from masked loads: lanes lo <= t < hi
// of a load take src[t], the others are 0 without touching memory (masked loads never fault on
// masked lanes), so the loads of several runs OR together and the row is stored aligned once.
template <typename T>
struct RowMask;
template <typename T>
struct PackedRow;

template <>
struct RowMask<float> {
    __m256i m0, m1;
    RowMask() = default;
    RowMask(int64_t lo, int64_t hi) {
        const __m256i i0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), i1 = _mm256_add_epi32(i0, _mm256_set1_epi32(8));
        const __m256i below = _mm256_set1_epi32(int(lo) - 1), above = _mm256_set1_epi32(int(hi));
        m0 = _mm256_and_si256(_mm256_cmpgt_epi32(i0, below), _mm256_cmpgt_epi32(above, i0));
        m1 = _mm256_and_si256(_mm256_cmpgt_epi32(i1, below), _mm256_cmpgt_epi32(above, i1));
    }
};

template <>
struct PackedRow<float> {
    __m256 v0 = _mm256_setzero_ps(), v1 = _mm256_setzero_ps();
    void load(const float* src, const RowMask<float>& m) {
        v0 = _mm256_or_ps(v0, _mm256_maskload_ps(src, m.m0));
        v1 = _mm256_or_ps(v1, _mm256_maskload_ps(src + 8, m.m1));
    }
    void store(float* d) const {  // d 32-byte aligned
        _mm256_store_ps(d, v0);
        _mm256_store_ps(d + 8, v1);
    }
};

template <>
struct RowMask<double> {
    __m256i m0, m1;
    RowMask() = default;
    RowMask(int64_t lo, int64_t hi) {
        const __m256i i0 = _mm256_setr_epi64x(0, 1, 2, 3), i1 = _mm256_add_epi64(i0, _mm256_set1_epi64x(4));
        const __m256i below = _mm256_set1_epi64x(lo - 1), above = _mm256_set1_epi64x(hi);
        m0 = _mm256_and_si256(_mm256_cmpgt_epi64(i0, below), _mm256_cmpgt_epi64(above, i0));
        m1 = _mm256_and_si256(_mm256_cmpgt_epi64(i1, below), _mm256_cmpgt_epi64(above, i1));
    }
};

template <>
struct PackedRow<double> {
    __m256d v0 = _mm256_setzero_pd(), v1 = _mm256_setzero_pd();
    void load(const double* src, const RowMask<double>& m) {
        v0 = _mm256_or_pd(v0, _mm256_maskload_pd(src, m.m0));
        v1 = _mm256_or_pd(v1, _mm256_maskload_pd(src + 4, m.m1));
    }
    void store(double* d) const {
        _mm256_store_pd(d, v0);
        _mm256_store_pd(d + 4, v1);
    }
};

#endif

// B of the forward conv for batch item (n, g) = b: rows (c, r, s) of group g, columns (p, q):
// B[(c, r, s), (p, q)] = x[n, g*C/G + c, p*sh + r*dh - top, q*sw + s*dw - left].
// Each NR-column micro-panel is cut into runs of one output row, which read consecutive input
// columns (stride sw) of one input row.
template <typename T>
struct ImplicitColumns {
    const T* x;
    ConvGeometry g;

    void operator()(int64_t b, int64_t k0, int64_t kc, int64_t j0, int64_t nc, T* dst) const {
        constexpr int64_t NR = Tile<T>::NR, KC = Blocking<T>::KC;
        const int64_t n = b / g.groups, grp = b % g.groups;
        const T* image = x + (n * g.c + grp * g.cg()) * g.hw();
        int64_t plane[KC], dy[KC], dx[KC];  // per packed row: channel plane, tap displacement
        for (int64_t kk = 0; kk < kc; ++kk) {
            const int64_t row = k0 + kk, tap = row % g.taps();
            plane[kk] = (row / g.taps()) * g.hw();
            dy[kk] = (tap / g.s) * g.dh - g.top;
            dx[kk] = (tap % g.s) * g.dw - g.left;
        }
        for (int64_t p0 = 0; p0 < nc; p0 += NR, dst += NR * kc) {
            // runs of columns within one output row: (first column in panel, length, p, q)
            int64_t run_t[NR], run_len[NR], run_y[NR], run_x[NR], runs = 0;
            const int64_t cols = std::min(NR, nc - p0);
            for (int64_t t = 0, j = j0 + p0; t < cols; ++runs) {
                const int64_t op = j / g.q, oq = j % g.q, len = std::min(cols - t, g.q - oq);
                run_t[runs] = t;
                run_len[runs] = len;
                run_y[runs] = op * g.sh;
                run_x[runs] = oq * g.sw;
                t += len;
                j += len;
            }
#ifdef PYCONV_CPU_AVX2
            if (g.sw == 1) {
                // Run u fills lanes [run_t, run_t + len) from a source shifted by -run_t. Taps
                // that keep every run inside the input use each run's fixed mask.
                int64_t x_lo = run_x[0], x_hi = 0;  // input columns the strip spans, tap (0, 0)
                RowMask<T> full[NR];
                for (int64_t u = 0; u < runs; ++u) {
                    x_lo = std::min(x_lo, run_x[u]);
                    x_hi = std::max(x_hi, run_x[u] + run_len[u]);
                    full[u] = RowMask<T>(run_t[u], run_t[u] + run_len[u]);
                }
                const int64_t y_lo = run_y[0], y_hi = run_y[runs - 1] + 1;
                for (int64_t kk = 0; kk < kc; ++kk) {
                    const T* chan = image + plane[kk];
                    PackedRow<T> row;
                    if (y_lo + dy[kk] >= 0 && y_hi + dy[kk] <= g.h && x_lo + dx[kk] >= 0 && x_hi + dx[kk] <= g.w) {
                        for (int64_t u = 0; u < runs; ++u)
                            row.load(chan + (run_y[u] + dy[kk]) * g.w + run_x[u] + dx[kk] - run_t[u], full[u]);
                    } else {
                        for (int64_t u = 0; u < runs; ++u) {
                            const int64_t iy = run_y[u] + dy[kk], x0 = run_x[u] + dx[kk];
                            if (iy < 0 || iy >= g.h) continue;
                            // lanes [lo, hi) of the run read input columns x0 + t inside [0, w)
                            const int64_t lo = std::max<int64_t>(0, -x0), hi = std::min(run_len[u], g.w - x0);
                            if (lo < hi)
                                row.load(chan + iy * g.w + x0 - run_t[u], RowMask<T>(run_t[u] + lo, run_t[u] + hi));
                        }
                    }
                    row.store(dst + kk * NR);
                }
                continue;
            }
#endif
            for (int64_t kk = 0; kk < kc; ++kk) {
                T* d = dst + kk * NR;
                const T* chan = image + plane[kk];
                for (int64_t u = 0; u < runs; ++u) {
                    const int64_t iy = run_y[u] + dy[kk];
                    const T* row = (iy >= 0 && iy < g.h) ? chan + iy * g.w : nullptr;
                    copy_clipped(d + run_t[u], 1, row, run_x[u] + dx[kk], g.sw, run_len[u], g.w);
                }
                for (int64_t t = cols; t < NR; ++t) d[t] = T(0);
            }
        }
    }
};

// A of the weight gradient for group g: grad_y rows (k) of group g, columns (n, p, q) over the
// whole batch: A[k, (n, pq)] = grad_y[n, g*K/G + k, pq].
template <typename T>
struct OutputRowsOverBatch {
    const T* grad_y;
    ConvGeometry g;

    void operator()(int64_t grp, int64_t i0, int64_t mc, int64_t k0, int64_t kc, T* dst) const {
        constexpr int64_t MR = Tile<T>::MR;
        for (int64_t p = 0; p < mc; p += MR, dst += MR * kc) {
            const int64_t rows = std::min(MR, mc - p);
            for (int64_t kk = 0, col = k0; kk < kc;) {
                const int64_t n = col / g.pq(), pix = col % g.pq(), len = std::min(kc - kk, g.pq() - pix);
                const T* src = grad_y + (n * g.k + grp * g.kg() + i0 + p) * g.pq() + pix;
                for (int64_t i = 0; i < MR; ++i) {
                    T* d = dst + kk * MR + i;
                    if (i < rows)
                        for (int64_t t = 0; t < len; ++t) d[t * MR] = src[i * g.pq() + t];
                    else
                        for (int64_t t = 0; t < len; ++t) d[t * MR] = T(0);
                }
                kk += len;
                col += len;
            }
        }
    }
};

// A of the input gradient as a stride-1 convolution of grad_y: rows c of group g, columns
// (k, r', s') with the kernel rotated by 180 degrees: A[c, (k, r', s')] = w[g*K/G + k, c,
// R-1-r', S-1-s']. `g` is the geometry of the original conv2d (weight (K, C/G, R, S)).
template <typename T>
struct RotatedWeightTransposed {
    const T* w;
    ConvGeometry g;

    void operator()(int64_t grp, int64_t i0, int64_t mc, int64_t k0, int64_t kc, T* dst) const {
        constexpr int64_t MR = Tile<T>::MR, KC = Blocking<T>::KC;
        int64_t offset[KC];  // of w[g*K/G + k, 0, R-1-r', S-1-s'] for each packed column
        for (int64_t kk = 0; kk < kc; ++kk) {
            const int64_t col = k0 + kk, k = col / g.taps(), tap = col % g.taps();
            offset[kk] = (grp * g.kg() + k) * g.crs() + (g.taps() - 1 - tap);
        }
        for (int64_t p = 0; p < mc; p += MR, dst += MR * kc) {
            const int64_t rows = std::min(MR, mc - p);
            for (int64_t kk = 0; kk < kc; ++kk) {
                const T* src = w + offset[kk] + (i0 + p) * g.taps();
                for (int64_t i = 0; i < MR; ++i) dst[kk * MR + i] = i < rows ? src[i * g.taps()] : T(0);
            }
        }
    }
};

}  // namespace pyconv::cpu
