// conv2d forward for first layers (groups = 1, few input channels: MNIST C = 1, CIFAR C = 3) as
// a direct convolution. With C*R*S = 9 or 27 a GEMM's reduction is too short to pay for packing
// the im2col panel, so the input rows are read in place:
//
//   y[n, k, p, q] = bias[k] + sum_{c,r,s} w[k, c, r, s] * x[n, c, p*sh + r*dh - top, q*sw + s*dw - left]
//
// One task is one output row (n, p). A register tile is KB output channels x NV vectors of
// output columns (KB*NV accumulators, like the GEMM micro-kernel's 6x16): per tap, NV unaligned
// loads of an input row are shared by KB broadcast weights. The weights are packed once per call
// as [K/KB][C][R][S][KB] (zero rows past K). The task first copies its C*R input rows into
// zero-padded row buffers (C*R*W values, amortised over K output channels): measured, masked
// loads at the borders made the whole kernel 2x slower, as 32-wide rows are mostly border tiles.
// Column strides other than 1 gather with scalar loops. Correct for any C; meant for C <= 4.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "arena.h"
#include "conv2d_depthwise_args.h"
#include "conv2d_depthwise_vec.h"
#include "parallel.h"
#include "register.h"

namespace pyconv::cpu {

namespace {

using direct::Pair;
using direct::Padding;
using direct::Vec;

// Output channels per register tile.
constexpr int kKB = 6;

// dst[k * ldk + q0 + t] for k < kvalid, t < NV*L. Tap (i = c*R + r, s) of output column q reads
// rows[i][q + s*dw]: rows are copies of the input rows with the padding in place (row buffers).
template <typename T, int NV>
inline void channel_tile(const T* const* rows, int64_t cr, int64_t s_taps, int64_t dw, const T* wp,
                         const T* bias, int64_t q0, T* dst, int64_t ldk, int kvalid) {
    using X = Vec<T>;
    constexpr int L = X::L;
    typename X::V acc[kKB][NV];
#pragma GCC unroll 16
    for (int k = 0; k < kKB; ++k)
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[k][v] = X::set1(bias[k]);
    for (int64_t i = 0; i < cr; ++i) {
        const T* row = rows[i] + q0;
        for (int64_t s = 0; s < s_taps; ++s) {
            typename X::V xv[NV];
#pragma GCC unroll 16
            for (int v = 0; v < NV; ++v) xv[v] = X::load(row + s * dw + v * L);
            const T* w = wp + (i * s_taps + s) * kKB;
#pragma GCC unroll 16
            for (int k = 0; k < kKB; ++k) {
                const typename X::V wv = X::set1(w[k]);
#pragma GCC unroll 16
                for (int v = 0; v < NV; ++v) acc[k][v] = X::fma(wv, xv[v], acc[k][v]);
            }
        }
    }
    // a constant trip count keeps acc in registers (a runtime bound would index it in memory)
#pragma GCC unroll 16
    for (int k = 0; k < kKB; ++k)
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v)
            if (k < kvalid) X::store(dst + k * ldk + q0 + v * L, acc[k][v]);
}

// One output row (q_out columns) of kKB channels at dst, dst + ldk, ...: tiles of 2 vectors, the
// last one shifted back to end at q_out (its overlap is written twice with the same values), so
// no store is masked; rows shorter than a vector go through a local tile.
template <typename T>
void channel_row(const T* const* rows, int64_t cr, int64_t s_taps, int64_t dw, const T* wp, const T* bias,
                 int64_t q_out, T* dst, int64_t ldk, int kvalid) {
    constexpr int64_t L = Vec<T>::L;
    if (q_out >= 2 * L) {
        for (int64_t q = 0; q < q_out; q += 2 * L)
            channel_tile<T, 2>(rows, cr, s_taps, dw, wp, bias, std::min(q, q_out - 2 * L), dst, ldk, kvalid);
    } else if (q_out >= L) {
        for (int64_t q = 0; q < q_out; q += L)
            channel_tile<T, 1>(rows, cr, s_taps, dw, wp, bias, std::min(q, q_out - L), dst, ldk, kvalid);
    } else {
        T tile[kKB * L];
        channel_tile<T, 1>(rows, cr, s_taps, dw, wp, bias, 0, tile, L, kvalid);
        for (int k = 0; k < kvalid; ++k) std::copy(tile + k * L, tile + k * L + q_out, dst + k * ldk);
    }
}

// The scalar loop for column strides other than 1: y row (n, p) of every channel.
template <typename T>
void output_row_strided(const ConvGeometry& g, const T* x, const T* w, const T* bias, int64_t n, int64_t p, T* y) {
    for (int64_t k = 0; k < g.k; ++k) {
        T* out = y + ((n * g.k + k) * g.p + p) * g.q;
        for (int64_t q = 0; q < g.q; ++q) {
            T acc = bias ? bias[k] : T(0);
            for (int64_t c = 0; c < g.c; ++c)
                for (int64_t r = 0; r < g.r; ++r) {
                    const int64_t ih = p * g.sh + r * g.dh - g.top;
                    if (ih < 0 || ih >= g.h) continue;
                    const T* row = x + ((n * g.c + c) * g.h + ih) * g.w;
                    for (int64_t s = 0; s < g.s; ++s) {
                        const int64_t iw = q * g.sw + s * g.dw - g.left;
                        if (iw >= 0 && iw < g.w) acc += w[((k * g.c + c) * g.r + r) * g.s + s] * row[iw];
                    }
                }
            out[q] = acc;
        }
    }
}

template <typename T>
void forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y) {
    const int threads = threads_for(2.0 * double(g.n * g.k) * double(g.crs()) * double(g.pq()));
    if (g.sw != 1) {
        parallel_for(g.n * g.p, threads, [&](int64_t row) { output_row_strided(g, x, w, bias, row / g.p, row % g.p, y); });
        return;
    }
    // weights [K/kKB][C][R][S][kKB] then biases [K/kKB][kKB], zero past K
    const int64_t blocks = (g.k + kKB - 1) / kKB, crs = g.crs();
    T* packed = thread_workspace().get<T>(Slot::PackedA, size_t(blocks * kKB * (crs + 1)));
    T* packed_bias = packed + blocks * kKB * crs;
    for (int64_t b = 0; b < blocks; ++b)
        for (int64_t k = 0; k < kKB; ++k) {
            const int64_t kk = b * kKB + k;
            for (int64_t i = 0; i < crs; ++i) packed[(b * crs + i) * kKB + k] = kk < g.k ? w[kk * crs + i] : T(0);
            packed_bias[b * kKB + k] = kk < g.k && bias ? bias[kk] : T(0);
        }
    parallel_for(g.n * g.p, threads, [&](int64_t task) {
        const int64_t n = task / g.p, p = task % g.p;
        // the C*R input rows of this output row, padded: buffer column j is input column j - left
        constexpr int64_t L = Vec<T>::L;
        const int64_t width = std::max(g.q, 2 * L) + (g.s - 1) * g.dw;
        const int64_t lo = std::min(g.left, width), hi = std::clamp(g.left + g.w, lo, width);
        thread_local std::vector<T> buffer;
        thread_local std::vector<const T*> rows;
        buffer.resize(size_t(g.c * g.r * width));
        rows.resize(size_t(g.c * g.r));
        for (int64_t c = 0; c < g.c; ++c)
            for (int64_t r = 0; r < g.r; ++r) {
                T* d = buffer.data() + (c * g.r + r) * width;
                rows[size_t(c * g.r + r)] = d;
                const int64_t ih = p * g.sh + r * g.dh - g.top;
                if (ih < 0 || ih >= g.h) {
                    std::fill(d, d + width, T(0));
                    continue;
                }
                const T* src = x + ((n * g.c + c) * g.h + ih) * g.w;
                std::fill(d, d + lo, T(0));
                std::copy(src, src + (hi - lo), d + lo);
                std::fill(d + hi, d + width, T(0));
            }
        for (int64_t b = 0; b < blocks; ++b) {
            const int kvalid = int(std::min<int64_t>(kKB, g.k - b * kKB));
            T* dst = y + ((n * g.k + b * kKB) * g.p + p) * g.q;
            channel_row(rows.data(), g.c * g.r, g.s, g.dw, packed + b * kKB * crs, packed_bias + b * kKB, g.q,
                        dst, g.pq(), kvalid);
        }
    });
}

py::array small_c_forward(const py::array& x, const py::array& weight, const std::optional<py::array>& bias,
                          const Pair& stride, const Padding& padding, const Pair& dilation) {
    constexpr const char* op = "conv2d_small_c_forward";
    return direct::forward_call(
        op, x, weight, bias,
        [&](const Shape& xs, const Shape& ws) { return direct::geometry(op, xs, ws, -1, -1, stride, padding, dilation, 1); },
        [](const ConvGeometry& g, const auto* x, const auto* w, const auto* b, auto* y) { forward(g, x, w, b, y); });
}

}  // namespace

PYCONV_REGISTER_FAMILY(conv2d_small_c) {
    using py::arg;
    m.def("conv2d_small_c_forward", &small_c_forward, arg("x"), arg("weight"), arg("bias"), arg("stride"),
          arg("padding"), arg("dilation"),
          "y (N, K, P, Q) = conv2d(x (N, C, H, W), weight (K, C, R, S)) + bias (K,) or None, groups = 1, "
          "as a direct convolution for few input channels (first layers, C <= 4); padding is "
          "(top, bottom, left, right).");
}

}  // namespace pyconv::cpu
