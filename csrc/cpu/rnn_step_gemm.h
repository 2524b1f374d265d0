// The per-step product of a recurrent sequence against a weight packed ONCE per sequence:
//
//   C (m x n) = beta * C + A (m x k) * W (k x n) (+ col_bias on the first k block),
//
// with m = the batch (small), W = W_hh^T forward (k = Hd, n = G*Hd) or W_hh backward (k = G*Hd,
// n = Hd). phase A's driver re-packs its B operand inside every task, which is the weight here;
// this driver instead takes W already cut into the micro-kernel's B panels (pack_weight, once per
// sequence, into the caller's buffer) and packs only the small A operand per step. Each output
// tile is one micro-kernel sum in a fixed k order, so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cstdint>

#include "gemm.h"
#include "microkernel.h"
#include "parallel.h"

namespace pyconv::cpu::rnn_detail {

// W (k x n) as B panels: per KC block of k (at data + k0 * n_pad), ceil(n/NR) panels of kc x NR.
template <typename T>
struct PackedWeight {
    const T* data = nullptr;
    int64_t k = 0, n = 0, n_pad = 0;

    const T* panel(int64_t k0, int64_t jp) const {
        const int64_t kc = std::min(Blocking<T>::KC, k - k0);
        return data + k0 * n_pad + jp * kc * Tile<T>::NR;
    }
};

template <typename T>
int64_t packed_weight_size(int64_t k, int64_t n) {
    return k * round_up(n, Tile<T>::NR);
}

template <typename T>
int64_t packed_rows_size(int64_t m, int64_t k) {
    return round_up(m, Tile<T>::MR) * k;
}

// pack_b(b, k0, kc, j0, nc, dst) as phase A's B packers (MatrixB): W into dst.
template <typename T, class PackB>
PackedWeight<T> pack_weight(int64_t k, int64_t n, const PackB& pack_b, T* dst) {
    PackedWeight<T> w;
    w.data = dst;
    w.k = k;
    w.n = n;
    w.n_pad = round_up(n, Tile<T>::NR);
    for (int64_t k0 = 0; k0 < k; k0 += Blocking<T>::KC)
        pack_b(0, k0, std::min(Blocking<T>::KC, k - k0), 0, n, dst + k0 * w.n_pad);
    return w;
}

// pack_a(g, i0, mc, k0, kc, dst) as phase A's A packers (MatrixA): all of A into dst, in
// PackedA's layout (the caller's buffer instead of the thread's PackedA slot).
template <typename T, class PackA>
PackedA<T> pack_rows(int64_t m, int64_t k, const PackA& pack_a, T* dst) {
    PackedA<T> a;
    a.data = dst;
    a.m = m;
    a.k = k;
    a.m_pad = round_up(m, Tile<T>::MR);
    for (int64_t k0 = 0; k0 < k; k0 += Blocking<T>::KC)
        pack_a(0, 0, m, k0, std::min(Blocking<T>::KC, k - k0), dst + k0 * a.m_pad);
    return a;
}

// C (a.m x w.n, row stride ldc) = beta * C + A W (+ col_bias), tasks over column panels (and
// row chunks when there are fewer panels than threads).
template <typename T>
void step_gemm(const PackedA<T>& a, const PackedWeight<T>& w, T* c, int64_t ldc, T beta, const T* col_bias,
               int threads) {
    constexpr int64_t MR = Tile<T>::MR, NR = Tile<T>::NR, KC = Blocking<T>::KC, MC = Blocking<T>::MC;
    const int64_t m = a.m, n = w.n, k = a.k;
    if (m <= 0 || n <= 0) return;
    if (k == 0) {  // no product: C = beta*C + bias
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
                T& v = c[i * ldc + j];
                v = (beta != T(0) ? beta * v : T(0)) + (col_bias ? col_bias[j] : T(0));
            }
        return;
    }
    const int64_t panels = ceil_div(n, NR), row_panels = ceil_div(m, MR);
    const int64_t col_tasks = std::min<int64_t>(threads, panels);
    const int64_t row_tasks = std::min<int64_t>(row_panels, std::max<int64_t>(1, threads / col_tasks));
    const int64_t per_col = ceil_div(panels, col_tasks), per_row = ceil_div(row_panels, row_tasks) * MR;
    parallel_for(col_tasks * row_tasks, threads, [&](int64_t t) {
        const int64_t p0 = (t / row_tasks) * per_col, p1 = std::min(panels, p0 + per_col);
        const int64_t r0 = (t % row_tasks) * per_row, r1 = std::min(m, r0 + per_row);
        for (int64_t k0 = 0; k0 < k; k0 += KC) {
            const int64_t kc = std::min(KC, k - k0);
            const bool first = k0 == 0;
            for (int64_t ic = r0; ic < r1; ic += MC) {
                const int64_t ic1 = std::min(r1, ic + MC);
                for (int64_t jp = p0; jp < p1; ++jp) {
                    const int64_t col = jp * NR;
                    const int nr = static_cast<int>(std::min(NR, n - col));
                    const T* b_panel = w.panel(k0, jp);
                    for (int64_t row = ic; row < ic1; row += MR) {
                        const int mr = static_cast<int>(std::min(MR, ic1 - row));
                        Epilogue<T> e;
                        e.beta = first ? beta : T(1);
                        if (first && col_bias) e.col_bias = col_bias + col;
                        T* ct = c + row * ldc + col;
                        const T* a_panel = a.block(0, row, k0);
                        if (mr == MR && nr == NR)
                            micro_kernel(kc, a_panel, b_panel, ct, ldc, e);
                        else
                            micro_kernel_edge(mr, nr, kc, a_panel, b_panel, ct, ldc, e);
                    }
                }
            }
        }
    });
}

}  // namespace pyconv::cpu::rnn_detail
