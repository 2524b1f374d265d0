// conv2d weight gradient for first layers (groups = 1, few input channels) as a direct
// reduction, with no im2col panel:
//
//   dW[k, c, r, s] = sum_{n, p, q} grad_y[n, k, p, q] * x[n, c, p*sh + r*dh - top, q*sw + s*dw - left]
//
// Vectorised along the output columns: a register tile is 4 output channels x up to 3 kernel
// columns (12 accumulators; the 3 tap vectors of an input row stay in registers while each
// grad_y vector is loaded once and used 3 times), and its lanes are added to a per-chunk vector
// sum in memory after a run of output positions. Stride 1 (first layers): grad_y is read in
// place as one flat run of P*Q values per channel, against S column-shifted copies of the padded
// input with row stride Q (ShiftedRows), so a tile is one dot product over (p, q) with no
// per-row work; it runs in bands of 512 positions so grad_y of 4 channels and the matching
// input rows stay in L1 across the C*R tap groups. (Copying grad_y into padded-width rows
// instead cost 17% of the kernel in copies.) Other
// strides: per output row, input rows copied once per image with their padding (TapRows) and
// the row's last grad_y vector a masked load.
// Determinism: the (image, row) space is cut into chunks that depend on N*P only, each chunk's
// sums are reduced in a fixed order and the chunks are added in chunk order, so the result is
// bit-identical at any thread count.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "conv2d_depthwise_args.h"
#include "conv2d_depthwise_vec.h"
#include "conv2d_small_c_rows.h"
#include "parallel.h"
#include "register.h"

namespace pyconv::cpu {

namespace {

using direct::Pair;
using direct::Padding;
using direct::Vec;

constexpr int kKB = 4;  // output channels per tile
constexpr int kST = 3;  // kernel columns per tile
constexpr int64_t kMaxChunks = 8;

// sums[(k * ld + j) * L ..] += acc[k][j] lane by lane, for k < kKB, j < NS.
template <typename T, int NS>
inline void add_lanes(const typename Vec<T>::V (&acc)[kKB][NS], T* sums, int64_t ld) {
    using X = Vec<T>;
#pragma GCC unroll 16
    for (int k = 0; k < kKB; ++k)
#pragma GCC unroll 16
        for (int j = 0; j < NS; ++j) {
            T* at = sums + (k * ld + j) * X::L;
            X::store(at, X::add(X::load(at), acc[k][j]));
        }
}

// sums[(k * ld + j) * L ..] += lanes of sum over output rows p in [p0, p1) of grad_y row k (gy_rows[k] +
// (p - p0) * gy_step[k]; step 0 for the zero row of channels past K) times tap row (c,
// row_of_p0 + (p - p0) * sh, s0 + j), for k < kKB, j < NS; q output columns, the last vector masked.
template <typename T, int NS>
void weight_tile(const T* const* gy_rows, const int64_t* gy_step, int64_t q, int64_t p0, int64_t p1,
                 const small_c::TapRows<T>& taps, int64_t c, int64_t row_of_p0, int64_t sh, int64_t s0,
                 T* sums, int64_t ld) {
    using X = Vec<T>;
    using V = typename X::V;
    constexpr int64_t L = X::L;
    const int64_t full = q / L, rest = q - full * L;
    const typename X::M tail = X::mask(0, rest);
    V acc[kKB][NS];
#pragma GCC unroll 16
    for (int k = 0; k < kKB; ++k)
#pragma GCC unroll 16
        for (int j = 0; j < NS; ++j) acc[k][j] = X::zero();
    for (int64_t p = p0; p < p1; ++p) {
        const int64_t row = row_of_p0 + (p - p0) * sh;
        const T* xs[NS];
#pragma GCC unroll 16
        for (int j = 0; j < NS; ++j) xs[j] = taps.tap(c, row, s0 + j);
        const T* g[kKB];
#pragma GCC unroll 16
        for (int k = 0; k < kKB; ++k) g[k] = gy_rows[k] + (p - p0) * gy_step[k];
        for (int64_t v = 0; v < full; ++v) {
            V xv[NS];
#pragma GCC unroll 16
            for (int j = 0; j < NS; ++j) xv[j] = X::load(xs[j] + v * L);
#pragma GCC unroll 16
            for (int k = 0; k < kKB; ++k) {
                const V gv = X::load(g[k] + v * L);
#pragma GCC unroll 16
                for (int j = 0; j < NS; ++j) acc[k][j] = X::fma(gv, xv[j], acc[k][j]);
            }
        }
        if (rest) {
            V xv[NS];
#pragma GCC unroll 16
            for (int j = 0; j < NS; ++j) xv[j] = X::load(xs[j] + full * L);
#pragma GCC unroll 16
            for (int k = 0; k < kKB; ++k) {
                const V gv = X::load(g[k] + full * L, tail);
#pragma GCC unroll 16
                for (int j = 0; j < NS; ++j) acc[k][j] = X::fma(gv, xv[j], acc[k][j]);
            }
        }
    }
    add_lanes<T, NS>(acc, sums, ld);
}

// The chunk's rows [row0, row1) of the flattened (n, p) space: per-lane sums of every (k, c, r,
// s) added to `sums` (K rounded up to kKB, times C*R*S vectors, zeroed by the caller).
template <typename T>
void weight_chunk(const ConvGeometry& g, const T* gy, const T* x, int64_t row0, int64_t row1,
                  T* sums, const T* zero_row) {
    constexpr int64_t L = Vec<T>::L;
    const int64_t lanes = (g.q + L - 1) / L * L, crs = g.crs(), blocks = (g.k + kKB - 1) / kKB;
    thread_local small_c::TapRows<T> taps;
    for (int64_t n = row0 / g.p; n * g.p < row1; ++n) {
        const int64_t p0 = std::max(row0 - n * g.p, int64_t(0)), p1 = std::min(row1 - n * g.p, g.p);
        // the input rows output rows [p0, p1) read
        const int64_t h0 = p0 * g.sh - g.top, h1 = (p1 - 1) * g.sh + (g.r - 1) * g.dh - g.top + 1;
        taps.build(x + n * g.c * g.h * g.w, g.c, g.h, g.w, h0, h1, lanes, g.s, g.sw, g.dw, g.left);
        for (int64_t b = 0; b < blocks; ++b) {
            const T* gy_rows[kKB];
            int64_t gy_step[kKB];
            for (int k = 0; k < kKB; ++k) {
                const int64_t kk = b * kKB + k;
                gy_rows[k] = kk < g.k ? gy + ((n * g.k + kk) * g.p + p0) * g.q : zero_row;
                gy_step[k] = kk < g.k ? g.q : 0;
            }
            for (int64_t c = 0; c < g.c; ++c)
                for (int64_t r = 0; r < g.r; ++r) {
                    const int64_t row_of_p0 = p0 * g.sh + r * g.dh - g.top;
                    for (int64_t s = 0; s < g.s; s += kST) {
                        T* at = sums + (b * kKB * crs + (c * g.r + r) * g.s + s) * L;
                        const auto run = [&](auto ns) {
                            weight_tile<T, decltype(ns)::value>(gy_rows, gy_step, g.q, p0, p1, taps, c, row_of_p0,
                                                                g.sh, s, at, crs);
                        };
                        const int64_t ns = std::min<int64_t>(kST, g.s - s);
                        if (ns == 3)
                            run(std::integral_constant<int, 3>{});
                        else if (ns == 2)
                            run(std::integral_constant<int, 2>{});
                        else
                            run(std::integral_constant<int, 1>{});
                    }
                }
        }
    }
}

// Stride 1: output rows [p0, p1) of image n in the flat index j = (p - p0) * Q + q of grad_y
// itself (read in place) against the input's ShiftedRows: tap (c, r, s) at j is one flat run,
// so a tile is one dot product over j with no per-row work and every lane useful but the
// masked last one.
// sums[((k * ld) + j) * L ..] += lanes of sum_{v in [v0, v1)} gy[k][v*L ..] * xs[j][v*L ..], the
// vector at v = masked_at (if in range) with grad_y loaded through `tail`.
template <typename T, int NS>
void flat_tile(const T* const* gy, const T* const* xs, int64_t v0, int64_t v1, int64_t masked_at,
               typename Vec<T>::M tail, T* sums, int64_t ld) {
    using X = Vec<T>;
    using V = typename X::V;
    constexpr int64_t L = X::L;
    V acc[kKB][NS];
#pragma GCC unroll 16
    for (int k = 0; k < kKB; ++k)
#pragma GCC unroll 16
        for (int j = 0; j < NS; ++j) acc[k][j] = X::zero();
    const T* g0 = gy[0];
    const T* g1 = gy[1];
    const T* g2 = gy[2];
    const T* g3 = gy[3];
    const auto step = [&](int64_t v, auto masked) {
        V xv[NS];
#pragma GCC unroll 16
        for (int j = 0; j < NS; ++j) xv[j] = X::load(xs[j] + v * L);
        const T* gk[kKB] = {g0, g1, g2, g3};
#pragma GCC unroll 16
        for (int k = 0; k < kKB; ++k) {
            V gv;
            if constexpr (decltype(masked)::value)
                gv = X::load(gk[k] + v * L, tail);
            else
                gv = X::load(gk[k] + v * L);
#pragma GCC unroll 16
            for (int j = 0; j < NS; ++j) acc[k][j] = X::fma(gv, xv[j], acc[k][j]);
        }
    };
    const int64_t vend = std::min(v1, masked_at);
    for (int64_t v = v0; v < vend; ++v) step(v, std::false_type{});
    if (masked_at >= v0 && masked_at < v1) step(masked_at, std::true_type{});
    add_lanes<T, NS>(acc, sums, ld);
}

// Vectors of j per pass over the tap groups: grad_y of one channel block (4 x 512 values) and
// the matching input rows stay in L1 while every (c, r) group reads them.
constexpr int64_t kFlatBand = 64;

template <typename T>
void weight_chunk_flat(const ConvGeometry& g, const T* gy, const T* x, int64_t row0, int64_t row1, T* sums,
                       const T* zero_plane) {
    constexpr int64_t L = Vec<T>::L;
    static_assert(kKB == 4, "flat_tile names 4 grad_y rows");
    const int64_t crs = g.crs(), blocks = (g.k + kKB - 1) / kKB;
    thread_local small_c::ShiftedRows<T> img;
    for (int64_t n = row0 / g.p; n * g.p < row1; ++n) {
        const int64_t p0 = std::max(row0 - n * g.p, int64_t(0)), p1 = std::min(row1 - n * g.p, g.p);
        img.build(g, x + n * g.c * g.h * g.w, p0, p1, Vec<T>::L);
        const int64_t count = (p1 - p0) * g.q, full = count / L, vectors = (count + L - 1) / L;
        const typename Vec<T>::M tail = Vec<T>::mask(0, count - full * L);
        for (int64_t v0 = 0; v0 < vectors; v0 += kFlatBand) {
            const int64_t v1 = std::min(vectors, v0 + kFlatBand);
            for (int64_t b = 0; b < blocks; ++b) {
                const T* gyb[kKB];
                for (int64_t k = 0; k < kKB; ++k)
                    gyb[k] = b * kKB + k < g.k ? gy + ((n * g.k + b * kKB + k) * g.p + p0) * g.q : zero_plane;
                for (int64_t c = 0; c < g.c; ++c)
                    for (int64_t r = 0; r < g.r; ++r)
                        for (int64_t s = 0; s < g.s; s += kST) {
                            const T* xs[kST];
                            for (int64_t j = 0; j < kST; ++j) xs[j] = img.tap(g, c, r, std::min(s + j, g.s - 1));
                            T* at = sums + (b * kKB * crs + (c * g.r + r) * g.s + s) * L;
                            const int64_t ns = std::min<int64_t>(kST, g.s - s);
                            if (ns == 3)
                                flat_tile<T, 3>(gyb, xs, v0, v1, full, tail, at, crs);
                            else if (ns == 2)
                                flat_tile<T, 2>(gyb, xs, v0, v1, full, tail, at, crs);
                            else
                                flat_tile<T, 1>(gyb, xs, v0, v1, full, tail, at, crs);
                        }
            }
        }
    }
}

template <typename T>
void backward_weight(const ConvGeometry& g, const T* gy, const T* x, T* gw) {
    constexpr int64_t L = Vec<T>::L;
    const int64_t rows = g.n * g.p, crs = g.crs(), blocks = (g.k + kKB - 1) / kKB;
    const int64_t lanes = (g.q + L - 1) / L * L;
    if (rows == 0 || g.q == 0) {
        std::fill(gw, gw + g.k * crs, T(0));
        return;
    }
    // chunks of the (n, p) rows that depend on N*P only: the result is the same at any thread count
    const int64_t chunks = std::min(rows, kMaxChunks);
    const int64_t vectors = blocks * kKB * crs;
    std::vector<T> partial(size_t(chunks * vectors));  // per chunk: lanes summed, (k, c, r, s)
    const bool flat = g.sh == 1 && g.sw == 1;
    // grad_y of channels past K: a zero row (per-row path) or plane (flat path)
    const std::vector<T> zero_row(size_t(flat ? g.pq() + L : lanes), T(0));
    const int threads = threads_for(2.0 * double(g.n * g.k) * double(crs) * double(g.pq()));
    parallel_for(chunks, threads, [&](int64_t chunk) {
        thread_local std::vector<T> sums;  // lanes of each (k, c, r, s)
        sums.assign(size_t(vectors * L), T(0));
        const int64_t row0 = rows * chunk / chunks, row1 = rows * (chunk + 1) / chunks;
        if (flat)
            weight_chunk_flat(g, gy, x, row0, row1, sums.data(), zero_row.data());
        else
            weight_chunk(g, gy, x, row0, row1, sums.data(), zero_row.data());
        T* out = partial.data() + chunk * vectors;
        for (int64_t i = 0; i < vectors; ++i) out[i] = Vec<T>::sum(Vec<T>::load(sums.data() + i * L));
    });
    for (int64_t i = 0; i < g.k * crs; ++i) {
        T total = T(0);
        for (int64_t chunk = 0; chunk < chunks; ++chunk) total += partial[size_t(chunk * vectors + i)];
        gw[i] = total;
    }
}

py::array small_c_backward_weight(const py::array& grad_y, const py::array& x, const std::vector<int64_t>& weight_shape,
                                  const Pair& stride, const Padding& padding, const Pair& dilation) {
    constexpr const char* op = "conv2d_small_c_backward_weight";
    return direct::gradient_call(
        op, grad_y, x, "x", weight_shape, "weight_shape", false,
        [&](const Shape& xs, const Shape& ws, int64_t p, int64_t q) {
            return direct::geometry(op, xs, ws, p, q, stride, padding, dilation, 1);
        },
        [](const ConvGeometry& g, const auto* gy, const auto* xp, auto* gw) { backward_weight(g, gy, xp, gw); });
}

}  // namespace

PYCONV_REGISTER_FAMILY(conv2d_small_c_backward_weight) {
    using py::arg;
    m.def("conv2d_small_c_backward_weight", &small_c_backward_weight, arg("grad_y"), arg("x"), arg("weight_shape"),
          arg("stride"), arg("padding"), arg("dilation"),
          "grad_weight (K, C, R, S) of conv2d(x (N, C, H, W)) from grad_y (N, K, P, Q), groups = 1, as a direct "
          "reduction for few input channels (first layers, C <= 4); padding is (top, bottom, left, right). "
          "Bit-identical at any thread count.");
}

}  // namespace pyconv::cpu
