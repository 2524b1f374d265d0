// Depthwise 3x3, stride 1, dilation 1 (any padding): the register-reuse kernel of the weight
// gradient (conv2d_depthwise.cpp), on a zero-padded copy of one plane (a PaddedFrame of
// conv2d_depthwise_3x3_forward.h) so that no load is ever masked, and the non-temporal store
// that the forward / input-gradient kernel of conv2d_depthwise_3x3_forward.h uses.
//
// The kernel walks a block of PB output rows one vector column at a time and loads each source
// vector (PB + 2 rows x 3 column shifts) once, feeding it to every tap that reads it:
//   weights_3x3   acc[r][s] += sum_{j,c} gy[j][c..] * src[j + r][c + s ..]          (9
//                 accumulators; PB grad_y vectors)
// i.e. (PB + 2) * 3 loads per 9 * PB FMAs instead of one load per FMA, which on this machine
// (one 256-bit load per cycle) is what bounds the plain tap loop.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "conv2d_depthwise_vec.h"

namespace pyconv::cpu::direct {

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
