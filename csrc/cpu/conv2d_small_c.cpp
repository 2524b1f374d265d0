// conv2d forward for first layers (groups = 1, few input channels: MNIST C = 1, CIFAR C = 3) as
// a direct convolution. With C*R*S = 9 or 27 a GEMM's reduction is too short to pay for packing
// the im2col panel, so the input rows are read in place:
//
//   y[n, k, p, q] = bias[k] + sum_{c,r,s} w[k, c, r, s] * x[n, c, p*sh + r*dh - top, q*sw + s*dw - left]
//
// A register tile is KB output channels x NV vectors of outputs (KB*NV = 12 accumulators, like
// the GEMM micro-kernel's 6x16): per tap, NV unaligned loads of input are shared by KB broadcast
// weights (conv2d_small_c_tile.h). The weights are packed once per call as [K/KB][C][R][S][KB]
// (zero rows past K). Stride 1: one task is an image, its output plane one flat row of P*Q
// values (forward_flat). Other row strides: one task is an output row (n, p), which first
// copies its C*R input rows into
// zero-padded row buffers (C*R*W values, amortised over K output channels): measured, masked
// loads at the borders made the whole kernel 2x slower, as 32-wide rows are mostly border tiles.
// Column strides other than 1 gather with scalar loops. Correct for any C; meant for C <= 4.
// Float32 3x3 stride-1 layers with C = 2..4 and rows of 28+ outputs (CIFAR layer 1) take the
// Winograd F(4x4, 3x3) kernel of conv2d_small_c_winograd.h instead (use_winograd).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "arena.h"
#include "conv2d_depthwise_args.h"
#include "conv2d_depthwise_vec.h"
#include "conv2d_small_c_rows.h"
#include "conv2d_small_c_tile.h"
#include "conv2d_small_c_winograd.h"
#include "parallel.h"
#include "register.h"

namespace pyconv::cpu {

namespace {

using direct::Pair;
using direct::Padding;
using direct::Vec;


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

// Column stride 1 with register tiles of kKB output channels x kNV vectors (12 accumulators).
// weights [K/KB][C][R][S][KB] then biases [K/KB][KB], zero past K, in the thread's arena
template <typename T, int KB>
T* pack_weights(const ConvGeometry& g, const T* w, const T* bias) {
    const int64_t blocks = (g.k + KB - 1) / KB, crs = g.crs();
    T* packed = thread_workspace().get<T>(Slot::PackedA, size_t(blocks * KB * (crs + 1)));
    T* packed_bias = packed + blocks * KB * crs;
    for (int64_t b = 0; b < blocks; ++b)
        for (int64_t k = 0; k < KB; ++k) {
            const int64_t kk = b * KB + k;
            for (int64_t i = 0; i < crs; ++i) packed[(b * crs + i) * KB + k] = kk < g.k ? w[kk * crs + i] : T(0);
            packed_bias[b * KB + k] = kk < g.k && bias ? bias[kk] : T(0);
        }
    return packed;
}

// Stride 1: y of image n (or a band of its rows) in the flat index j = p * Q + q, which is y's own
// layout, so tiles run over the whole plane (every lane useful, the last tile shifted back) and
// store in place; tap (c, r, s) is one flat run of the input's ShiftedRows (C*R*S rows of 1 tap).
// 4 channels x 3 vectors (K = 32 needs no padded channel). Measured against the per-row tiles
// below, 1 thread: MNIST layer 1 (Q = 26: 81% of the lanes of a row were useful) 2.3 -> 1.2 ms,
// CIFAR layer 1 4.8 -> 3.8 ms (3 x 4 flat tiles: 1.4 and 4.4 ms).
constexpr int64_t kStreamOutputBytes = int64_t(4) << 20;

template <typename T, int KB, int NV>
void forward_flat(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, int threads) {
    const int64_t blocks = (g.k + KB - 1) / KB, crs = g.crs();
    const T* packed = pack_weights<T, KB>(g, w, bias);
    const T* packed_bias = packed + blocks * KB * crs;
    // tasks: images, or bands of rows when the batch is small (results do not depend on the cut)
    const int64_t bands = g.n >= 4 ? 1 : std::min<int64_t>(g.p, 8);
    // Outputs beyond the last-level cache go to memory anyway: storing them non-temporally saves
    // reading each line before it is written (MNIST layer 1, 5.5 MB at batch 64: measured in
    // docs/cpu/conv_small_c.md).
    const bool stream = double(g.n * g.k) * double(g.pq()) * sizeof(T) > double(kStreamOutputBytes);
    parallel_for(g.n * bands, threads, [&](int64_t task) {
        const int64_t n = task / bands, band = task % bands;
        const int64_t p0 = g.p * band / bands, p1 = g.p * (band + 1) / bands;
        if (p0 == p1) return;
        thread_local small_c::ShiftedRows<T> img;
        thread_local std::vector<const T*> rows;
        img.build(g, x + n * g.c * g.h * g.w, p0, p1, NV * Vec<T>::L);
        rows.resize(size_t(crs));
        for (int64_t c = 0; c < g.c; ++c)
            for (int64_t r = 0; r < g.r; ++r)
                for (int64_t s = 0; s < g.s; ++s) rows[size_t((c * g.r + r) * g.s + s)] = img.tap(g, c, r, s);
        for (int64_t b = 0; b < blocks; ++b) {
            T* dst = y + ((n * g.k + b * KB) * g.p + p0) * g.q;
            const int kvalid = int(std::min<int64_t>(KB, g.k - b * KB));
            if (stream)
                small_c::channel_row<T, KB, NV, true>(rows.data(), crs, 1, 1, packed + b * KB * crs,
                                                      packed_bias + b * KB, (p1 - p0) * g.q, dst, g.pq(), kvalid);
            else
                small_c::channel_row<T, KB, NV>(rows.data(), crs, 1, 1, packed + b * KB * crs, packed_bias + b * KB,
                                                (p1 - p0) * g.q, dst, g.pq(), kvalid);
        }
        if (stream) direct::stream_fence();
    });
}

template <typename T, int kKB, int kNV>
void forward_tiles(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, int threads) {
    const int64_t blocks = (g.k + kKB - 1) / kKB, crs = g.crs();
    const T* packed = pack_weights<T, kKB>(g, w, bias);
    const T* packed_bias = packed + blocks * kKB * crs;
    parallel_for(g.n * g.p, threads, [&](int64_t task) {
        const int64_t n = task / g.p, p = task % g.p;
        // the C*R input rows of this output row, padded: buffer column j is input column j - left
        const int64_t width = small_c::row_width<T, kNV>(g.q, g.s, g.dw);
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
            small_c::channel_row<T, kKB, kNV>(rows.data(), g.c * g.r, g.s, g.dw, packed + b * kKB * crs, packed_bias + b * kKB, g.q,
                        dst, g.pq(), kvalid);
        }
    });
}

#ifdef PYCONV_CPU_AVX2
// Winograd F(4x4, 3x3) (conv2d_small_c_winograd.h) for float32 3x3 stride-1 layers with 2..4
// input channels and rows of at least 28 outputs (7 of a vector's 8 tiles). Measured, 1 thread:
// CIFAR layer 1 3.6-3.7 -> 2.7-2.9 ms; MNIST layer 1 (C = 1, Q = 26) 1.0-1.2 -> 2.4-3.0 ms, so
// C = 1 stays direct (9 taps leave the direct kernel little to save, and Q = 26 ends every row in
// a partial vector).
inline bool use_winograd(const ConvGeometry& g) { return small_c::winograd_applies(g) && g.c >= 2 && g.q >= 28; }
#endif

// The direct kernels; `winograd` lets float32 3x3 stride-1 layers take the Winograd path.
template <typename T>
void forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, bool winograd = true) {
    const int threads = threads_for(2.0 * double(g.n * g.k) * double(g.crs()) * double(g.pq()));
    if (g.sw != 1) {
        parallel_for(g.n * g.p, threads, [&](int64_t row) { output_row_strided(g, x, w, bias, row / g.p, row % g.p, y); });
        return;
    }
#ifdef PYCONV_CPU_AVX2
    if constexpr (std::is_same_v<T, float>)
        if (winograd && use_winograd(g)) return small_c::forward_winograd(g, x, w, bias, y, threads);
#endif
    if (g.sh == 1) return forward_flat<T, 4, 3>(g, x, w, bias, y, threads);
    // Row strides > 1, per output row. Rows of at least 4 vectors: 3 channels x 4 vectors (7 loads
    // per 12 FMAs; 16% faster than 6 x 2 on CIFAR layer 1); shorter rows: 6 x 2 wastes fewer lanes.
    if (g.q >= 4 * Vec<T>::L) return forward_tiles<T, 3, 4>(g, x, w, bias, y, threads);
    forward_tiles<T, 6, 2>(g, x, w, bias, y, threads);
}

// The Winograd path alone (float32, 3x3, stride 1, dilation 1, C <= 4), for tests and benchmarks.
py::array small_c_forward_winograd(const py::array& x, const py::array& weight, const std::optional<py::array>& bias,
                                   const Padding& padding) {
    constexpr const char* op = "conv2d_small_c_forward_winograd";
    return direct::forward_call(
        op, x, weight, bias,
        [&](const Shape& xs, const Shape& ws) -> ConvGeometry {
            const ConvGeometry g = direct::geometry(op, xs, ws, -1, -1, {1, 1}, padding, {1, 1}, 1);
#ifdef PYCONV_CPU_AVX2
            if (small_c::winograd_applies(g)) return g;
            throw py::value_error(std::string(op) + ": needs a 3x3 kernel and 1..4 input channels");
#else
            throw py::value_error(std::string(op) + ": this build has no AVX2 (the kernel is AVX2-only; " +
                                  "conv2d_small_c_forward runs the direct kernel)");
#endif
        },
        [](const ConvGeometry& g, const auto* x, const auto* w, const auto* b, auto* y) {
            using T = std::remove_const_t<std::remove_pointer_t<decltype(x)>>;
            if constexpr (std::is_same_v<T, float>) {
#ifdef PYCONV_CPU_AVX2
                small_c::forward_winograd(g, x, w, b, y,
                                          threads_for(2.0 * double(g.n * g.k) * double(g.crs()) * double(g.pq())));
                return;
#endif
            }
            throw std::invalid_argument("conv2d_small_c_forward_winograd: float32 only");
        });
}

template <bool Winograd>
py::array small_c_forward(const py::array& x, const py::array& weight, const std::optional<py::array>& bias,
                          const Pair& stride, const Padding& padding, const Pair& dilation) {
    const char* op = Winograd ? "conv2d_small_c_forward" : "conv2d_small_c_forward_direct";
    return direct::forward_call(
        op, x, weight, bias,
        [&](const Shape& xs, const Shape& ws) { return direct::geometry(op, xs, ws, -1, -1, stride, padding, dilation, 1); },
        [](const ConvGeometry& g, const auto* x, const auto* w, const auto* b, auto* y) {
            forward(g, x, w, b, y, Winograd);
        });
}

}  // namespace

PYCONV_REGISTER_FAMILY(conv2d_small_c) {
    using py::arg;
    m.def("conv2d_small_c_forward", &small_c_forward<true>, arg("x"), arg("weight"), arg("bias"), arg("stride"),
          arg("padding"), arg("dilation"),
          "y (N, K, P, Q) = conv2d(x (N, C, H, W), weight (K, C, R, S)) + bias (K,) or None, groups = 1, "
          "for few input channels (first layers, C <= 4): Winograd F(4x4, 3x3) for float32 3x3 stride-1 "
          "layers with C = 2..4 and at least 28 output columns, else a direct convolution; padding is "
          "(top, bottom, left, right).");
    m.def("conv2d_small_c_forward_direct", &small_c_forward<false>, arg("x"), arg("weight"), arg("bias"),
          arg("stride"), arg("padding"), arg("dilation"),
          "conv2d_small_c_forward without the Winograd path (the direct kernels alone), for tests and "
          "benchmarks.");
    m.def("conv2d_small_c_forward_winograd", &small_c_forward_winograd, arg("x"), arg("weight"), arg("bias"),
          arg("padding"),
          "conv2d_small_c_forward's Winograd F(4x4, 3x3) path alone: float32, 3x3 kernel, stride 1, "
          "dilation 1, C <= 4.");
}

}  // namespace pyconv::cpu
