// The packed GEMM driver every cpu kernel computes with (BLIS's loop structure):
//
//   C_b (m x n) = alpha * A_g(b) (m x k) * B_b (k x n) + beta * C_b + row/column bias
//
// for a batch of b, where A has `groups` distinct matrices (conv groups) and the batch item b
// uses A_{group_of(b)}. A and B are never read directly: a packer copies blocks of them into
// the panel layout of the micro-kernel, so the same driver serves plain strided matrices
// (linear), implicit im2col matrices read straight from an NCHW tensor (conv2d), and so on.
//
// Loop order: all of A is packed once up front (it is the weight in every conv kernel, shared
// by every batch item and every column block) into the caller's workspace; the tasks, one per
// (batch item, block of NC columns, chunk of rows), run in parallel, each packing its own
// KC x NC panel of B into its thread's workspace (L2) and sweeping MC x KC blocks of A (L2)
// with NR-wide micro-panels of B (L1) against MR-row micro-panels of A.
#pragma once

#include <algorithm>
#include <cstdint>

#include "arena.h"
#include "microkernel.h"
#include "parallel.h"

namespace pyconv::cpu {

template <typename T>
struct Blocking {
    // Measured on the conv shapes of bench/bench_cpu_conv.py: KC 128-512, MC 72-258 and NC
    // 256-1024 are all within 5% of each other here.
    static constexpr int64_t KC = 256;   // B micro-panel KC x NR = 16 KiB (float): half of L1
    static constexpr int64_t MC = 144;   // A block MC x KC = 144 KiB (float): a part of L2
    static constexpr int64_t NC = 1024;  // B panel KC x NC = 1 MiB (float): L2/L3
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Where batch item b's C lives and what to add to it. C is row-major with row stride ldc.
template <typename T>
struct Output {
    T* c = nullptr;  // element (i, j) at c[i*ldc + j - first_col]
    int64_t ldc = 0, first_col = 0;
    T alpha = 1, beta = 0;
    const T* row_bias = nullptr;  // m values or null
    const T* col_bias = nullptr;  // n values or null
};

// All of A, packed: per group, per KC block of k, ceil(m/MR) micro-panels of MR x kc.
template <typename T>
struct PackedA {
    const T* data = nullptr;
    int64_t m = 0, k = 0, m_pad = 0;

    // The micro-panels of rows [i0, ...) (i0 a multiple of MR) in the k block starting at k0.
    const T* block(int64_t group, int64_t i0, int64_t k0) const {
        const int64_t kc = std::min(Blocking<T>::KC, k - k0);
        return data + group * m_pad * k + k0 * m_pad + i0 * kc;
    }
};

// Packs A_g (m x k, groups of them) with pack_a(g, i0, mc, k0, kc, dst): rows [i0, i0+mc) and
// k range [k0, k0+kc) into ceil(mc/MR) micro-panels dst[panel][kk][i], zero rows past mc.
template <typename T, class PackA>
PackedA<T> pack_a_all(int64_t groups, int64_t m, int64_t k, const PackA& pack_a, int threads) {
    constexpr int64_t MR = Tile<T>::MR, KC = Blocking<T>::KC;
    PackedA<T> a;
    a.m = m;
    a.k = k;
    a.m_pad = round_up(m, MR);
    T* data = thread_workspace().get<T>(Slot::PackedA, size_t(groups * a.m_pad * k));
    a.data = data;
    const int64_t k_blocks = ceil_div(k, KC);
    parallel_for(groups * k_blocks, threads, [&](int64_t t) {
        const int64_t g = t / k_blocks, k0 = (t % k_blocks) * KC;
        pack_a(g, 0, m, k0, std::min(KC, k - k0), data + g * a.m_pad * k + k0 * a.m_pad);
    });
    return a;
}

// One task: C rows [i0, i0+mc) (i0 a multiple of MR) x columns [j0, j0+nc) of batch item b.
// pack_b(b, k0, kc, j0, nc, dst) packs B_b's block into ceil(nc/NR) micro-panels dst[panel][kk][j],
// zero columns past nc.
template <typename T, class PackB>
void gemm_task(const PackedA<T>& a, int64_t group, const PackB& pack_b, int64_t b, int64_t j0,
               int64_t nc, int64_t i0, int64_t mc, const Output<T>& out) {
    constexpr int64_t MR = Tile<T>::MR, NR = Tile<T>::NR;
    constexpr int64_t KC = Blocking<T>::KC, MC = Blocking<T>::MC;
    const int64_t k = a.k;
    if (k == 0) {  // no product: C = beta*C + biases
        for (int64_t i = i0; i < i0 + mc; ++i) {
            for (int64_t j = j0; j < j0 + nc; ++j) {
                T& c = out.c[i * out.ldc + j - out.first_col];
                T v = out.beta != T(0) ? out.beta * c : T(0);
                if (out.row_bias) v += out.row_bias[i];
                if (out.col_bias) v += out.col_bias[j];
                c = v;
            }
        }
        return;
    }
    T* panel = thread_workspace().get<T>(Slot::PackedB, size_t(std::min(KC, k) * round_up(nc, NR)));
    for (int64_t k0 = 0; k0 < k; k0 += KC) {
        const int64_t kc = std::min(KC, k - k0);
        pack_b(b, k0, kc, j0, nc, panel);
        const bool first = k0 == 0;
        for (int64_t ic = i0; ic < i0 + mc; ic += MC) {
            const int64_t mcb = std::min(MC, i0 + mc - ic);
            const T* a_block = a.block(group, ic, k0);
            for (int64_t jr = 0; jr < nc; jr += NR) {
                const int nr = static_cast<int>(std::min(NR, nc - jr));
                const T* b_panel = panel + (jr / NR) * kc * NR;
                for (int64_t ir = 0; ir < mcb; ir += MR) {
                    const int mr = static_cast<int>(std::min(MR, mcb - ir));
                    const int64_t row = ic + ir, col = j0 + jr;
                    Epilogue<T> e;
                    e.alpha = out.alpha;
                    e.beta = first ? out.beta : T(1);
                    if (first && out.row_bias) e.row_bias = out.row_bias + row;
                    if (first && out.col_bias) e.col_bias = out.col_bias + col;
                    T* c = out.c + row * out.ldc + (col - out.first_col);
                    const T* a_panel = a_block + ir * kc;
                    if (mr == MR && nr == NR)
                        micro_kernel(kc, a_panel, b_panel, c, out.ldc, e);
                    else
                        micro_kernel_edge(mr, nr, kc, a_panel, b_panel, c, out.ldc, e);
                }
            }
        }
    }
}

// How the m x n output of each batch item is cut into tasks.
struct TaskGrid {
    int64_t nc = 0, n_blocks = 1, mc = 0, m_chunks = 1;
};

template <typename T>
TaskGrid task_grid(int64_t batch, int64_t m, int64_t n, int threads) {
    constexpr int64_t MR = Tile<T>::MR, NR = Tile<T>::NR;
    TaskGrid g;
    g.nc = std::max<int64_t>(NR, std::min(Blocking<T>::NC, round_up(n, NR)));
    g.n_blocks = std::max<int64_t>(1, ceil_div(n, g.nc));
    if (threads > 1 && batch * g.n_blocks < 4 * threads) {
        // Few tasks: blocks of equal width, as many as make the task count a multiple of the
        // threads. (A 1152-column weight gradient cut at NC = 1024 gave one thread 1024 columns
        // and the other 128: 1.1x at 2 threads instead of 2x.)
        const int64_t most = std::max<int64_t>(1, ceil_div(n, NR));
        int64_t blocks = std::max(g.n_blocks, ceil_div(threads, std::max<int64_t>(batch, 1)));
        while ((batch * blocks) % threads != 0 && blocks < most) ++blocks;
        g.nc = std::max(NR, round_up(ceil_div(n, std::min(blocks, most)), NR));
        g.n_blocks = std::max<int64_t>(1, ceil_div(n, g.nc));
    }
    g.mc = round_up(std::max<int64_t>(m, 1), MR);
    if (batch * g.n_blocks < threads && m > MR) {  // still too few: split the rows as well
        g.m_chunks = std::min<int64_t>(ceil_div(m, MR), ceil_div(threads, batch * g.n_blocks));
        g.mc = round_up(ceil_div(m, g.m_chunks), MR);
        g.m_chunks = ceil_div(m, g.mc);
    }
    return g;
}

// The whole batched GEMM with A already packed. group_of(b) -> A's group; out_of(b) -> Output.
template <typename T, class PackB, class GroupOf, class OutOf>
void gemm_packed(const PackedA<T>& a, int64_t batch, int64_t n, const PackB& pack_b,
                 const GroupOf& group_of, const OutOf& out_of, int threads) {
    const int64_t m = a.m;
    if (batch <= 0 || m <= 0 || n <= 0) return;
    const TaskGrid g = task_grid<T>(batch, m, n, threads);
    const int64_t per_item = g.n_blocks * g.m_chunks;
    parallel_for(batch * per_item, threads, [&](int64_t t) {
        const int64_t b = t / per_item, jb = (t % per_item) / g.m_chunks, ib = t % g.m_chunks;
        const int64_t j0 = jb * g.nc, i0 = ib * g.mc;
        gemm_task(a, group_of(b), pack_b, b, j0, std::min(g.nc, n - j0), i0, std::min(g.mc, m - i0),
                  out_of(b));
    });
}

// Packs A, then runs gemm_packed; flops decide whether to use more than one thread.
template <typename T, class PackA, class PackB, class GroupOf, class OutOf>
void gemm(int64_t groups, int64_t batch, int64_t m, int64_t n, int64_t k, const PackA& pack_a,
          const PackB& pack_b, const GroupOf& group_of, const OutOf& out_of) {
    if (batch <= 0 || m <= 0 || n <= 0) return;
    const int threads = threads_for(2.0 * double(batch) * double(m) * double(n) * double(k));
    const PackedA<T> a = pack_a_all<T>(groups, m, k, pack_a, threads);
    gemm_packed(a, batch, n, pack_b, group_of, out_of, threads);
}

// ---------------------------------------------------------------------------------------------
// Packers of plain strided matrices: element (i, j) at base[i*rs + j*cs]; `stride` between the
// matrices of consecutive groups / batch items.
// ---------------------------------------------------------------------------------------------

template <typename T>
struct MatrixA {
    const T* base;
    int64_t rs, cs, stride;

    void operator()(int64_t g, int64_t i0, int64_t mc, int64_t k0, int64_t kc, T* dst) const {
        constexpr int64_t MR = Tile<T>::MR;
        const T* a = base + g * stride + k0 * cs;
        for (int64_t p = 0; p < mc; p += MR, dst += MR * kc) {
            const int64_t rows = std::min(MR, mc - p);
            if (rs == 1 && rows == MR) {  // columns of A are contiguous: copy MR at a time
                const T* src = a + i0 + p;
                for (int64_t kk = 0; kk < kc; ++kk)
                    for (int64_t i = 0; i < MR; ++i) dst[kk * MR + i] = src[kk * cs + i];
                continue;
            }
            for (int64_t i = 0; i < MR; ++i) {
                T* d = dst + i;
                if (i >= rows) {
                    for (int64_t kk = 0; kk < kc; ++kk) d[kk * MR] = T(0);
                    continue;
                }
                const T* src = a + (i0 + p + i) * rs;
                for (int64_t kk = 0; kk < kc; ++kk) d[kk * MR] = src[kk * cs];
            }
        }
    }
};

template <typename T>
struct MatrixB {
    const T* base;
    int64_t rs, cs, stride;

    void operator()(int64_t b, int64_t k0, int64_t kc, int64_t j0, int64_t nc, T* dst) const {
        constexpr int64_t NR = Tile<T>::NR;
        const T* m = base + b * stride + k0 * rs;
        for (int64_t p = 0; p < nc; p += NR, dst += NR * kc) {
            const int64_t cols = std::min(NR, nc - p);
            const T* src = m + (j0 + p) * cs;
            if (cs == 1) {  // rows of B are contiguous: copy NR at a time
                for (int64_t kk = 0; kk < kc; ++kk) {
                    const T* s = src + kk * rs;
                    T* d = dst + kk * NR;
                    for (int64_t j = 0; j < cols; ++j) d[j] = s[j];
                    for (int64_t j = cols; j < NR; ++j) d[j] = T(0);
                }
            } else {  // columns are contiguous (B transposed): walk each column
                for (int64_t j = 0; j < NR; ++j) {
                    T* d = dst + j;
                    if (j >= cols) {
                        for (int64_t kk = 0; kk < kc; ++kk) d[kk * NR] = T(0);
                        continue;
                    }
                    const T* s = src + j * cs;
                    for (int64_t kk = 0; kk < kc; ++kk) d[kk * NR] = s[kk * rs];
                }
            }
        }
    }
};

}  // namespace pyconv::cpu
