// The register tile shared by the small-C forward (conv2d_small_c.cpp) and input gradient
// (conv2d_small_c_backward_input.cpp): KB output channels x NV vectors of one output row,
//
//   dst[kk * ldk + q0 + t] = bias[kk] + sum_{i, s} wp[(i * S + s) * KB + kk] * rows[i][q0 + t + s * dw]
//
// for kk < KB, t < NV * L: the NV loads of a source row per tap are shared by KB broadcast
// weights. rows[i] are copies of source rows with their padding in place (zeros), so no load is
// masked; the caller makes every row at least max(q_out, NV*L) + (S-1)*dw values long.
#pragma once

#include <algorithm>
#include <cstdint>

#include "conv2d_depthwise_vec.h"

namespace pyconv::cpu::small_c {

using direct::Vec;

template <typename T, int KB, int NV, bool Stream = false>
inline void channel_tile(const T* const* rows, int64_t n_rows, int64_t s_taps, int64_t dw, const T* wp,
                         const T* bias, int64_t q0, T* dst, int64_t ldk, int kvalid) {
    using X = Vec<T>;
    constexpr int L = X::L;
    typename X::V acc[KB][NV];
#pragma GCC unroll 16
    for (int k = 0; k < KB; ++k)
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[k][v] = X::set1(bias[k]);
    for (int64_t i = 0; i < n_rows; ++i) {
        const T* row = rows[i] + q0;
        const T* w = wp + i * s_taps * KB;
        for (int64_t s = 0; s < s_taps; ++s, w += KB) {
            typename X::V xv[NV];
#pragma GCC unroll 16
            for (int v = 0; v < NV; ++v) xv[v] = X::load(row + s * dw + v * L);
#pragma GCC unroll 16
            for (int k = 0; k < KB; ++k) {
                const typename X::V wv = X::set1(w[k]);
#pragma GCC unroll 16
                for (int v = 0; v < NV; ++v) acc[k][v] = X::fma(wv, xv[v], acc[k][v]);
            }
        }
    }
    // a constant trip count keeps acc in registers (a runtime bound would index it in memory)
#pragma GCC unroll 16
    for (int k = 0; k < KB; ++k)
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v)
            if (k < kvalid) {
                if constexpr (Stream)
                    X::store_stream(dst + k * ldk + q0 + v * L, acc[k][v]);
                else
                    X::store(dst + k * ldk + q0 + v * L, acc[k][v]);
            }
}

// One output row of q_out columns for KB channels at dst, dst + ldk, ...: tiles of NV vectors,
// then one narrower tile of just enough vectors shifted back to end at q_out (its overlap with
// the previous tile is written twice with the same values), so no store is masked; rows
// shorter than a vector go through a local tile. With Stream, the tiles' stores are non-temporal
// (outputs far larger than the caches: no read of each line before it is written); the caller
// fences (_mm_sfence) before other threads read dst.
template <typename T, int KB, int NV, bool Stream = false>
void channel_row(const T* const* rows, int64_t n_rows, int64_t s_taps, int64_t dw, const T* wp, const T* bias,
                 int64_t q_out, T* dst, int64_t ldk, int kvalid) {
    static_assert(NV >= 1 && NV <= 4, "tiles of 1 to 4 vectors");
    constexpr int64_t L = Vec<T>::L;
    if (q_out < L) {
        T tile[KB * L];
        channel_tile<T, KB, 1>(rows, n_rows, s_taps, dw, wp, bias, 0, tile, L, kvalid);
        for (int k = 0; k < kvalid; ++k) std::copy(tile + k * L, tile + k * L + q_out, dst + k * ldk);
        return;
    }
    // a tile of nv (1 .. NV) vectors at column q
    const auto tile_at = [&](int64_t nv, int64_t q) {
        if constexpr (NV >= 4)
            if (nv == 4) return channel_tile<T, KB, 4, Stream>(rows, n_rows, s_taps, dw, wp, bias, q, dst, ldk, kvalid);
        if constexpr (NV >= 3)
            if (nv == 3) return channel_tile<T, KB, 3, Stream>(rows, n_rows, s_taps, dw, wp, bias, q, dst, ldk, kvalid);
        if constexpr (NV >= 2)
            if (nv == 2) return channel_tile<T, KB, 2, Stream>(rows, n_rows, s_taps, dw, wp, bias, q, dst, ldk, kvalid);
        channel_tile<T, KB, 1, Stream>(rows, n_rows, s_taps, dw, wp, bias, q, dst, ldk, kvalid);
    };
    int64_t q = 0;
    for (; q + NV * L <= q_out; q += NV * L) channel_tile<T, KB, NV, Stream>(rows, n_rows, s_taps, dw, wp, bias, q, dst, ldk, kvalid);
    if (q == q_out) return;
    if (q == 0) {  // a row shorter than one full tile: its whole vectors first
        tile_at(q_out / L, 0);
        q = q_out / L * L;
        if (q == q_out) return;
    }
    const int64_t need = (q_out - q + L - 1) / L;  // < NV vectors ending at q_out, never before column 0
    tile_at(need, q_out - need * L);
}

// Row width a channel_row call with NV vectors reads: every tap of every tile stays inside.
template <typename T, int NV>
inline int64_t row_width(int64_t q_out, int64_t s_taps, int64_t dw) {
    return std::max<int64_t>(q_out, NV * Vec<T>::L) + (s_taps - 1) * dw;
}

}  // namespace pyconv::cpu::small_c
