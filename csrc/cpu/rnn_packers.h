// GEMM packers for the recurrent cells (csrc/cpu/rnn.cpp): one GEMM computes the gate
// pre-activations of x and h together,
//
//   pre (B x G*Hd) = [x h] (B x (I+Hd)) * [W_ih W_hh]^T ((I+Hd) x G*Hd),
//
// so both operands are "rows of two matrices placed side by side": row r of A is
// [x[r, :], h[r, :]], column j of B is [W_ih[j, :], W_hh[j, :]]. Neither concatenation is ever
// built; the packers read the two halves in place.
#pragma once

#include <algorithm>
#include <cstdint>

#include "gemm.h"

namespace pyconv::cpu {

// Row r of [P Q] is P[r, 0:np] followed by Q[r, 0:nq] (both row-major, contiguous rows).
template <typename T>
struct SideBySide {
    const T* p;
    const T* q;
    int64_t np, nq;

    // Rows [r0, r0+rows) and k range [k0, k0+kc) into micro-panels of R rows:
    // dst[panel][kk][i]; rows past `rows` (up to a multiple of R) are zero.
    template <int64_t R>
    void pack(int64_t r0, int64_t rows, int64_t k0, int64_t kc, T* dst) const {
        const int64_t split = std::clamp<int64_t>(np - k0, 0, kc);  // kk < split reads P
        for (int64_t base = 0; base < rows; base += R, dst += R * kc) {
            for (int64_t i = 0; i < R; ++i) {
                T* d = dst + i;
                const int64_t r = r0 + base + i;
                if (base + i >= rows) {
                    for (int64_t kk = 0; kk < kc; ++kk) d[kk * R] = T(0);
                    continue;
                }
                const T* ps = p + r * np + k0;
                for (int64_t kk = 0; kk < split; ++kk) d[kk * R] = ps[kk];
                if (split == kc) continue;
                const T* qs = q + r * nq + (k0 + split - np);
                for (int64_t kk = split; kk < kc; ++kk) d[kk * R] = qs[kk - split];
            }
        }
    }
};

// A = [x h] (B x (I+Hd)), rows = batch rows.
template <typename T>
struct SideBySideA {
    SideBySide<T> rows;
    void operator()(int64_t, int64_t i0, int64_t mc, int64_t k0, int64_t kc, T* dst) const {
        rows.template pack<Tile<T>::MR>(i0, mc, k0, kc, dst);
    }
};

// B = [W_ih W_hh]^T ((I+Hd) x G*Hd): B's column j is row j of [W_ih W_hh].
template <typename T>
struct SideBySideB {
    SideBySide<T> rows;
    void operator()(int64_t, int64_t k0, int64_t kc, int64_t j0, int64_t nc, T* dst) const {
        rows.template pack<Tile<T>::NR>(j0, nc, k0, kc, dst);
    }
};

}  // namespace pyconv::cpu
