// Depthwise 3x3, stride 1, dilation 1 (any padding): the register-reuse kernels of the input and
// weight gradients (conv2d_depthwise.cpp), on zero-padded copies of one plane so that no load
// is ever masked.
//
// Both kernels walk a block of PB output rows one vector column at a time and load each source
// vector (PB + 2 rows x 3 column shifts) once, feeding it to every tap that reads it:
//   rows_3x3      out[j][c..c+L) = bias + sum_{r,s} w[r][s] * src[j + r][c + s ..]   (9 weights
//                 held in registers for the whole plane; PB accumulators)
//   weights_3x3   acc[r][s] += sum_{j,c} gy[j][c..] * src[j + r][c + s ..]          (9
//                 accumulators; PB grad_y vectors)
// i.e. (PB + 2) * 3 loads per 9 * PB FMAs instead of one load per FMA, which on this machine
// (one 256-bit load per cycle) is what bounds the plain tap loop.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "conv2d_depthwise_vec.h"

namespace pyconv::cpu::direct {

// dst (rows x width, row stride width) = src (src_rows x src_cols) moved by (oy, ox):
// dst[i][j] = src[i - oy][j - ox], 0 where that is outside src.
template <typename T>
void padded_copy(const T* src, int64_t src_rows, int64_t src_cols, int64_t oy, int64_t ox, int64_t rows,
                 int64_t width, T* dst) {
    const int64_t j0 = std::clamp<int64_t>(ox, 0, width), j1 = std::clamp<int64_t>(ox + src_cols, j0, width);
    for (int64_t i = 0; i < rows; ++i, dst += width) {
        const int64_t si = i - oy;
        if (si < 0 || si >= src_rows) {
            std::fill(dst, dst + width, T(0));
            continue;
        }
        std::fill(dst, dst + j0, T(0));
        if (j1 > j0) std::memcpy(dst + j0, src + si * src_cols + (j0 - ox), size_t(j1 - j0) * sizeof(T));
        std::fill(dst + j1, dst + width, T(0));
    }
}

// A non-temporal store of one vector to a 32-byte aligned address: the output plane is written
// once and not read here, so its cache lines need not be fetched first.
template <typename T>
inline void stream(T* p, typename Vec<T>::V v) {
#ifdef PYCONV_CPU_AVX2
    if constexpr (std::is_same_v<T, float>)
        _mm256_stream_ps(p, v);
    else
        _mm256_stream_pd(p, v);
#else
    Vec<T>::store(p, v);
#endif
}

// PB output rows of `cols` (>= L) columns: out[j][c] = bias + sum_{r,s} w[3r + s] * src[j + r][c + s].
// The last vector is moved back to end at `cols` (its overlap is recomputed, same values).
template <typename T, int PB, bool Stream>
inline void rows_3x3(const T* src, int64_t ld, const typename Vec<T>::V* w, int64_t cols, T bias, T* out,
                     int64_t ldo) {
    using X = Vec<T>;
    constexpr int64_t L = X::L;
    const typename X::V b = X::set1(bias);
    for (int64_t c0 = 0; c0 < cols; c0 += L) {
        const int64_t c = std::min(c0, cols - L);
        typename X::V acc[PB];
#pragma GCC unroll 8
        for (int j = 0; j < PB; ++j) acc[j] = b;
#pragma GCC unroll 8
        for (int i = 0; i < PB + 2; ++i)
#pragma GCC unroll 3
            for (int s = 0; s < 3; ++s) {
                const typename X::V v = X::load(src + i * ld + c + s);
#pragma GCC unroll 3
                for (int r = 0; r < 3; ++r)
                    if (i - r >= 0 && i - r < PB) acc[i - r] = X::fma(w[3 * r + s], v, acc[i - r]);
            }
#pragma GCC unroll 8
        for (int j = 0; j < PB; ++j) {
            if (Stream)
                stream(out + j * ldo + c, acc[j]);
            else
                X::store(out + j * ldo + c, acc[j]);
        }
    }
}

// A plane of `rows` x `cols` (cols >= L) outputs from a padded source of rows + 2 rows (row
// stride ld >= cols + 2): out = the 3x3 correlation of src with w (9 values) + bias.
template <typename T, bool Stream>
void plane_3x3(const T* src, int64_t ld, const typename Vec<T>::V* wv, int64_t rows, int64_t cols, T bias, T* out) {
    constexpr int PB = 4;
    int64_t i = 0;
    for (; i + PB <= rows; i += PB) rows_3x3<T, PB, Stream>(src + i * ld, ld, wv, cols, bias, out + i * cols, cols);
    switch (rows - i) {
        case 3: rows_3x3<T, 3, Stream>(src + i * ld, ld, wv, cols, bias, out + i * cols, cols); break;
        case 2: rows_3x3<T, 2, Stream>(src + i * ld, ld, wv, cols, bias, out + i * cols, cols); break;
        case 1: rows_3x3<T, 1, Stream>(src + i * ld, ld, wv, cols, bias, out + i * cols, cols); break;
        default: break;
    }
}

// A plane of `rows` x `cols` (cols >= L) outputs from a padded source of rows + 2 rows (row
// stride ld >= cols + 2): out = the 3x3 correlation of src with w (9 values) + bias. Rows of
// whole 32-byte aligned vectors are written with non-temporal stores.
template <typename T>
void plane_3x3(const T* src, int64_t ld, const T* w, int64_t rows, int64_t cols, T bias, T* out) {
    using X = Vec<T>;
    typename X::V wv[9];
    for (int t = 0; t < 9; ++t) wv[t] = X::set1(w[t]);
#ifdef PYCONV_CPU_AVX2
    if (cols % X::L == 0 && reinterpret_cast<uintptr_t>(out) % 32 == 0) {
        plane_3x3<T, true>(src, ld, wv, rows, cols, bias, out);
        _mm_sfence();  // the streamed rows are visible before the plane's task ends
        return;
    }
#endif
    plane_3x3<T, false>(src, ld, wv, rows, cols, bias, out);
}

// acc[3r + s] += sum over PB rows j and the columns of gy[j][c] * src[j + r][c + s], lane-wise.
// gy rows have `cols` values (row stride ldg); src (row stride ld) is zero-padded to at least
// round_up(cols, L) + 2 columns; a last partial vector of gy is loaded masked (`tail`).
template <typename T, int PB>
inline void weights_3x3(const T* gy, int64_t ldg, const T* src, int64_t ld, int64_t cols,
                        typename Vec<T>::V* acc) {
    using X = Vec<T>;
    constexpr int64_t L = X::L;
    typename X::V a[9];
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t) a[t] = acc[t];
    const auto column = [&](int64_t c, const typename X::V* g) {
#pragma GCC unroll 8
        for (int i = 0; i < PB + 2; ++i)
#pragma GCC unroll 3
            for (int s = 0; s < 3; ++s) {
                const typename X::V v = X::load(src + i * ld + c + s);
#pragma GCC unroll 3
                for (int r = 0; r < 3; ++r)
                    if (i - r >= 0 && i - r < PB) a[3 * r + s] = X::fma(g[i - r], v, a[3 * r + s]);
            }
    };
    int64_t c = 0;
    for (; c + L <= cols; c += L) {
        typename X::V g[PB];
#pragma GCC unroll 8
        for (int j = 0; j < PB; ++j) g[j] = X::load(gy + j * ldg + c);
        column(c, g);
    }
    if (c < cols) {
        const typename X::M m = X::mask(0, cols - c);
        typename X::V g[PB];
#pragma GCC unroll 8
        for (int j = 0; j < PB; ++j) g[j] = X::load(gy + j * ldg + c, m);
        column(c, g);
    }
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t) acc[t] = a[t];
}

// acc[9] += the 3x3 weight-gradient sums of one plane: gy (rows x cols) against src, the input
// plane padded to rows + 2 rows of row stride ld >= round_up(cols, L) + 2.
template <typename T>
void plane_weights_3x3(const T* gy, const T* src, int64_t ld, int64_t rows, int64_t cols, typename Vec<T>::V* acc) {
    constexpr int PB = 4;
    int64_t i = 0;
    for (; i + PB <= rows; i += PB) weights_3x3<T, PB>(gy + i * cols, cols, src + i * ld, ld, cols, acc);
    switch (rows - i) {
        case 3: weights_3x3<T, 3>(gy + i * cols, cols, src + i * ld, ld, cols, acc); break;
        case 2: weights_3x3<T, 2>(gy + i * cols, cols, src + i * ld, ld, cols, acc); break;
        case 1: weights_3x3<T, 1>(gy + i * cols, cols, src + i * ld, ld, cols, acc); break;
        default: break;
    }
}

}  // namespace pyconv::cpu::direct
