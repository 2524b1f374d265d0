// conv2d input gradient for first layers (groups = 1, few input channels) as a direct
// convolution of grad_y with the flipped kernel:
//
//   dx[n, c, h, w] = sum_{k, r, s} W[k, c, r, s] * grad_y[n, k, (h + top - r*dh) / sh, w + left - s*dw]
//
// (terms whose row is not divisible by sh or whose index leaves grad_y are 0). For a column stride
// of 1 this is the forward's register tile (conv2d_small_c_tile.h) with the roles swapped: the
// source rows are the K*R grad_y rows of an output row h (a zero row where (h + top - r*dh) is not
// a multiple of sh or leaves grad_y), the output channels are the C input channels (all of them
// in one tile: C x 4 vectors, or 4 x 3 for C >= 4), the weights W[k, c, r, S-1-s'] packed per
// tap, and each grad_y row is copied once per image with zeros around it (TapRows), shifted so
// tap s' reads column w + s'*dw. Stride 1 (first layers) runs the same tile over one flat
// padded plane per image instead of per row (backward_input_flat). Column strides > 1 use a
// plain gather loop.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <vector>

#include "conv2d_depthwise_args.h"
#include "conv2d_small_c_rows.h"
#include "conv2d_small_c_tile.h"
#include "parallel.h"
#include "register.h"

namespace pyconv::cpu {

namespace {

using direct::Pair;
using direct::Padding;
using direct::Vec;

// floor(a / b) for b > 0
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Column stride > 1: dx rows [h0, h1) of image n, every channel, as a gather over (k, r, s).
template <typename T>
void input_rows_strided(const ConvGeometry& g, const T* gy, const T* w, int64_t n, int64_t h0, int64_t h1, T* gx) {
    for (int64_t c = 0; c < g.c; ++c)
        for (int64_t h = h0; h < h1; ++h) {
            T* out = gx + ((n * g.c + c) * g.h + h) * g.w;
            for (int64_t x = 0; x < g.w; ++x) {
                T acc = T(0);
                for (int64_t r = 0; r < g.r; ++r) {
                    const int64_t ph = h + g.top - r * g.dh;
                    if (ph < 0 || ph % g.sh != 0 || ph / g.sh >= g.p) continue;
                    for (int64_t s = 0; s < g.s; ++s) {
                        const int64_t qw = x + g.left - s * g.dw;
                        if (qw < 0 || qw % g.sw != 0 || qw / g.sw >= g.q) continue;
                        for (int64_t k = 0; k < g.k; ++k)
                            acc += w[((k * g.c + c) * g.r + r) * g.s + s] *
                                   gy[((n * g.k + k) * g.p + ph / g.sh) * g.q + qw / g.sw];
                    }
                }
                out[x] = acc;
            }
        }
}

// packed[b][(k*R + r)*S + s'][kk] = W[k, b*KB + kk, r, S-1-s'] (0 past C), then KB zero biases.
template <typename T, int KB>
std::vector<T> pack_flipped(const ConvGeometry& g, const T* w) {
    const int64_t blocks = (g.c + KB - 1) / KB, krs = g.k * g.r * g.s;
    std::vector<T> packed(size_t(blocks * krs * KB + KB), T(0));
    for (int64_t b = 0; b < blocks; ++b)
        for (int64_t kk = 0; kk < KB && b * KB + kk < g.c; ++kk)
            for (int64_t k = 0; k < g.k; ++k)
                for (int64_t r = 0; r < g.r; ++r)
                    for (int64_t s = 0; s < g.s; ++s)
                        packed[size_t((b * krs + (k * g.r + r) * g.s + (g.s - 1 - s)) * KB + kk)] =
                            w[((k * g.c + b * KB + kk) * g.r + r) * g.s + s];
    return packed;
}

// Column stride 1 with KB channels x NV vectors per tile.
template <typename T, int KB, int NV>
void backward_input_rows(const ConvGeometry& g, const T* gy, const T* w, T* gx) {
    const int64_t blocks = (g.c + KB - 1) / KB, krs = g.k * g.r * g.s;
    const std::vector<T> packed = pack_flipped<T, KB>(g, w);
    const T* bias = packed.data() + blocks * krs * KB;
    // tasks: (image, block of rows); small batches are cut along h for the second thread
    const int64_t h_blocks = g.n >= 4 ? 1 : std::min<int64_t>(g.h, 8);
    const int threads = threads_for(2.0 * double(g.n * g.c) * double(krs) * double(g.hw()));
    const int64_t lanes = small_c::row_width<T, NV>(g.w, g.s, g.dw) - (g.s - 1) * g.dw;
    const int64_t pad_left = (g.s - 1) * g.dw - g.left;  // buffer column b holds grad_y column b - pad_left
    parallel_for(g.n * h_blocks, threads, [&](int64_t task) {
        const int64_t n = task / h_blocks, blk = task % h_blocks;
        const int64_t h0 = g.h * blk / h_blocks, h1 = g.h * (blk + 1) / h_blocks;
        if (h0 == h1) return;
        thread_local small_c::TapRows<T> taps;
        thread_local std::vector<const T*> rows;
        const int64_t j0 = floor_div(h0 + g.top - (g.r - 1) * g.dh, g.sh), j1 = floor_div(h1 - 1 + g.top, g.sh) + 1;
        taps.build(gy + n * g.k * g.pq(), g.k, g.p, g.q, j0, j1, lanes, g.s, 1, g.dw, pad_left);
        rows.resize(size_t(g.k * g.r));
        for (int64_t h = h0; h < h1; ++h) {
            for (int64_t r = 0; r < g.r; ++r) {
                const int64_t ph = h + g.top - r * g.dh;
                // not a multiple of sh: a row outside grad_y (a zero row)
                const int64_t j = ph >= 0 && ph % g.sh == 0 ? ph / g.sh : -1;
                for (int64_t k = 0; k < g.k; ++k) rows[size_t(k * g.r + r)] = taps.tap(k, j, 0);
            }
            for (int64_t b = 0; b < blocks; ++b) {
                const int kvalid = int(std::min<int64_t>(KB, g.c - b * KB));
                T* dst = gx + ((n * g.c + b * KB) * g.h + h) * g.w;
                small_c::channel_row<T, KB, NV>(rows.data(), g.k * g.r, g.s, g.dw, packed.data() + b * krs * KB, bias,
                                                g.w, dst, g.hw(), kvalid);
            }
        }
    });
}

// Stride 1, per image, in the padded input's flat index J = ph * run + pw (run = Q + (S-1)*dw, the
// padded width; ph, pw padded coordinates): grad_y is copied as flat runs of that row stride
// (gy[k][margin + p*run + q], zeros in columns Q.. and around), so
//
//   plane[c][J] = sum_{k, r, s'} W[k, c, r, S-1-s'] * gy[k][margin + J - r*dh*run - (S-1-s')*dw]
//
// is the forward's register tile (C channels x 4 vectors of J, conv2d_small_c_tile.h) over K*R
// flat source rows, with no per-row work and no masked or read-modify-write access (a scatter
// form with 3 kernel columns per tile was 2x slower: its overlapping unaligned adds stall store
// forwarding). dx is the plane's interior: dx[h, x] = plane[(h + top) * run + x + left].
template <typename T, int KB, int NV>
void backward_input_flat(const ConvGeometry& g, const T* gy, const T* w, T* gx) {
    constexpr int64_t L = Vec<T>::L;
    const int64_t blocks = (g.c + KB - 1) / KB, krs = g.k * g.r * g.s;
    const std::vector<T> packed = pack_flipped<T, KB>(g, w);
    const T* bias = packed.data() + blocks * krs * KB;
    const int64_t run = g.q + (g.s - 1) * g.dw, rows = g.p + (g.r - 1) * g.dh;
    const int64_t margin = (g.r - 1) * g.dh * run + (g.s - 1) * g.dw;
    // the planes' rows that hold dx: [top, top + H) within [0, rows)
    const int64_t j0 = std::min(g.top, rows) * run, j1 = std::min(g.top + g.h, rows) * run;
    const int64_t width = std::max<int64_t>(j1 - j0, 0);
    const int64_t stride = margin + rows * run + NV * L + run;  // every tap of every tile inside
    const int threads = threads_for(2.0 * double(g.n * g.c) * double(krs) * double(g.pq()));
    parallel_for(g.n, threads, [&](int64_t n) {
        thread_local std::vector<T> gyb, plane;
        thread_local std::vector<const T*> src;
        // every value written once: zeros before, between and after the rows of grad_y
        gyb.resize(size_t(g.k * stride));
        for (int64_t k = 0; k < g.k; ++k) {
            T* d = gyb.data() + k * stride;
            const T* line = gy + (n * g.k + k) * g.pq();
            for (int64_t i = 0; i < margin; ++i) d[i] = T(0);
            d += margin;
            for (int64_t p = 0; p < g.p; ++p, d += run, line += g.q) {
                for (int64_t q = 0; q < g.q; ++q) d[q] = line[q];
                for (int64_t q = g.q; q < run; ++q) d[q] = T(0);
            }
            for (T* end = gyb.data() + (k + 1) * stride; d < end; ++d) *d = T(0);
        }
        src.resize(size_t(g.k * g.r));
        for (int64_t k = 0; k < g.k; ++k)
            for (int64_t r = 0; r < g.r; ++r)
                src[size_t(k * g.r + r)] = gyb.data() + k * stride + margin + j0 - r * g.dh * run - (g.s - 1) * g.dw;
        plane.resize(size_t(blocks * KB * std::max<int64_t>(width, 1)));
        if (width > 0)
            for (int64_t b = 0; b < blocks; ++b)
                small_c::channel_row<T, KB, NV>(src.data(), g.k * g.r, g.s, g.dw, packed.data() + b * krs * KB, bias,
                                                width, plane.data() + b * KB * width, width,
                                                int(std::min<int64_t>(KB, g.c - b * KB)));
        for (int64_t c = 0; c < g.c; ++c)
            for (int64_t h = 0; h < g.h; ++h) {
                T* out = gx + ((n * g.c + c) * g.h + h) * g.w;
                const int64_t ph = h + g.top;
                const int64_t valid = ph < rows ? std::clamp<int64_t>(run - g.left, 0, g.w) : 0;
                const T* from = plane.data() + c * width + ph * run + g.left - j0;
                std::copy(from, from + valid, out);
                std::fill(out + valid, out + g.w, T(0));
            }
    });
}

template <typename T>
void backward_input(const ConvGeometry& g, const T* gy, const T* w, T* gx) {
    if (g.sw != 1) {
        const int threads = threads_for(2.0 * double(g.n * g.c) * double(g.k * g.r * g.s) * double(g.hw()));
        parallel_for(g.n, threads, [&](int64_t n) { input_rows_strided(g, gy, w, n, 0, g.h, gx); });
        return;
    }
    if (g.sh == 1) {
        switch (g.c) {
            case 1: return backward_input_flat<T, 1, 4>(g, gy, w, gx);
            case 2: return backward_input_flat<T, 2, 4>(g, gy, w, gx);
            case 3: return backward_input_flat<T, 3, 4>(g, gy, w, gx);
            default: return backward_input_flat<T, 4, 3>(g, gy, w, gx);
        }
    }
    switch (g.c) {
        case 1: return backward_input_rows<T, 1, 4>(g, gy, w, gx);
        case 2: return backward_input_rows<T, 2, 4>(g, gy, w, gx);
        case 3: return backward_input_rows<T, 3, 4>(g, gy, w, gx);
        default: return backward_input_rows<T, 4, 3>(g, gy, w, gx);
    }
}

py::array small_c_backward_input(const py::array& grad_y, const py::array& weight, const std::vector<int64_t>& input_shape,
                                 const Pair& stride, const Padding& padding, const Pair& dilation) {
    constexpr const char* op = "conv2d_small_c_backward_input";
    return direct::gradient_call(
        op, grad_y, weight, "weight", input_shape, "input_shape", true,
        [&](const Shape& xs, const Shape& ws, int64_t p, int64_t q) {
            return direct::geometry(op, xs, ws, p, q, stride, padding, dilation, 1);
        },
        [](const ConvGeometry& g, const auto* gy, const auto* w, auto* gx) { backward_input(g, gy, w, gx); });
}

}  // namespace

PYCONV_REGISTER_FAMILY(conv2d_small_c_backward_input) {
    using py::arg;
    m.def("conv2d_small_c_backward_input", &small_c_backward_input, arg("grad_y"), arg("weight"), arg("input_shape"),
          arg("stride"), arg("padding"), arg("dilation"),
          "grad_x (N, C, H, W) of conv2d(x, weight (K, C, R, S)) from grad_y (N, K, P, Q), groups = 1, as a direct "
          "convolution for few input channels (first layers, C <= 4); padding is (top, bottom, left, right).");
}

}  // namespace pyconv::cpu
