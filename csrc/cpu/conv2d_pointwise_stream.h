// The pointwise forward / input-gradient micro-kernel that writes its tile straight from the
// accumulators with non-temporal stores (conv2d_pointwise.cpp): a ROWS x NR tile of C (ROWS <=
// MR, each row 32-byte aligned, row stride ldc) = the packed A micro-panel (kc x MR, k-major)
// times the packed B micro-panel (kc x NR, k-major, 32-byte aligned) + row bias.
//
// Same register blocking as microkernel.h's kernel, but the whole reduction is in one call, so
// no tile buffer and copy (12 stores + 12 reloads per tile, ~5% of a tile at kc = 64) and the
// output is never read for ownership. ROWS < MR (the last rows of a matrix whose height is not
// a multiple of MR) skips the missing rows' FMAs instead of going through the scalar edge path.
#pragma once

#include <cstdint>
#include <type_traits>

#include "microkernel.h"

namespace pyconv::cpu::pointwise {

#ifdef PYCONV_CPU_AVX2

template <typename T, int ROWS>
void stream_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* c, int64_t ldc,
                   const T* row_bias) {
    using Y = Ymm<T>;
    using V = typename Y::V;
    constexpr int W = Tile<T>::NR / 2;
    V acc[ROWS][2];
    accumulate_panels<T, ROWS>(kc, a, b, acc);
#pragma GCC unroll 6
    for (int i = 0; i < ROWS; ++i) {
        V v0 = acc[i][0], v1 = acc[i][1];
        if (row_bias) {
            const V r = Y::set1(row_bias[i]);
            v0 = Y::add(v0, r);
            v1 = Y::add(v1, r);
        }
        T* ci = c + i * ldc;
        if constexpr (std::is_same_v<T, float>) {
            _mm256_stream_ps(ci, v0);
            _mm256_stream_ps(ci + W, v1);
        } else {
            _mm256_stream_pd(ci, v0);
            _mm256_stream_pd(ci + W, v1);
        }
    }
}

template <typename T>
using StreamKernel = void (*)(int64_t, const T*, const T*, T*, int64_t, const T*);

// stream_kernel<T, rows> for rows in [1, MR].
template <typename T>
StreamKernel<T> stream_kernel_for(int rows) {
    static_assert(Tile<T>::MR == 6, "one entry per row count");
    static constexpr StreamKernel<T> table[6] = {stream_kernel<T, 1>, stream_kernel<T, 2>, stream_kernel<T, 3>,
                                                 stream_kernel<T, 4>, stream_kernel<T, 5>, stream_kernel<T, 6>};
    return table[rows - 1];
}

#endif

}  // namespace pyconv::cpu::pointwise
