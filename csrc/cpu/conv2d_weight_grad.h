// conv2d's weight gradient as a packed GEMM whose reduction runs over the batch's pixels:
//
//   dW'_g (K/G x R*S*C/G) = sum over (n, p, q) of grad_y[n, g, :, p, q] (x) cols'(x)[(n, p, q), :]
//
// with the columns in (r, s, c) order, read from a zero-padded channels-last copy of x:
// cols'[(n, p, q), (r, s, c)] = xc[n, p*sh + r*dh, q*sw + s*dw, c]. The GEMM's B panel rows are
// pixels and its columns channels, so a channels-last row gives NR consecutive columns with one
// vector copy (the NCHW tensor would need a transpose per packed element, and its 64-bit index
// arithmetic per run cost more than the FMAs it feeds). dW' is permuted to (K, C/G, R, S) at the
// end. Images are processed in chunks (so the copy stays in cache) that accumulate with beta = 1,
// in a fixed order: the result does not depend on the thread count's scheduling.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "conv_packers.h"
#include "gemm.h"

namespace pyconv::cpu {

// The zero-padded channels-last copy of images [n0, n0 + nb): data[i, y, x, c] =
// x[n0 + i, c, y - top, x - left] (0 outside the input), y < hp, x < wp.
template <typename T>
struct ChannelsLastPadded {
    T* data = nullptr;
    int64_t hp = 0, wp = 0, c = 0;

    int64_t image_size() const { return hp * wp * c; }
};

template <typename T>
void to_channels_last_padded(const ConvGeometry& g, const T* x, int64_t n0, int64_t nb,
                             const ChannelsLastPadded<T>& xc, int threads) {
    parallel_for(nb * xc.hp, threads, [&](int64_t t) {
        const int64_t i = t / xc.hp, y = t % xc.hp, iy = y - g.top;
        T* row = xc.data + i * xc.image_size() + y * xc.wp * g.c;  // (wp, c)
        if (iy < 0 || iy >= g.h) {
            std::fill(row, row + xc.wp * g.c, T(0));
            return;
        }
        // columns [x_lo, x_hi) of the padded row come from the input
        const int64_t x_lo = std::min(g.left, xc.wp), x_hi = std::clamp<int64_t>(g.left + g.w, x_lo, xc.wp);
        std::fill(row, row + x_lo * g.c, T(0));
        std::fill(row + x_hi * g.c, row + xc.wp * g.c, T(0));
        const T* src = x + ((n0 + i) * g.c * g.h + iy) * g.w + (x_lo - g.left);
        T* dst = row + x_lo * g.c;
        const int64_t len = x_hi - x_lo;
        // blocks of 8 channels: each input row is read contiguously, the 8 writes per column
        // land in one cache line of the destination
        int64_t c0 = 0;
        for (; c0 + 8 <= g.c; c0 += 8) {
            const T* s = src + c0 * g.h * g.w;
            for (int64_t col = 0; col < len; ++col) {
                T* d = dst + col * g.c + c0;
                for (int64_t cc = 0; cc < 8; ++cc) d[cc] = s[cc * g.h * g.w + col];
            }
        }
        for (; c0 < g.c; ++c0) {
            const T* s = src + c0 * g.h * g.w;
            for (int64_t col = 0; col < len; ++col) dst[col * g.c + c0] = s[col];
        }
    });
}

// B of the weight gradient for group grp: rows (n, p, q) of the chunk, columns (r, s, c) of the
// group: B[(n, p, q), (r, s, c)] = xc[n, p*sh + r*dh, q*sw + s*dw, grp*C/G + c].
template <typename T>
struct ChannelsLastColumnsTransposed {
    ChannelsLastPadded<T> xc;
    ConvGeometry g;

    void operator()(int64_t grp, int64_t k0, int64_t kc, int64_t j0, int64_t nc, T* dst) const {
        constexpr int64_t NR = Tile<T>::NR, KC = Blocking<T>::KC;
        const int64_t pq = g.pq(), cg = g.cg();
        int64_t pixel[KC];  // offset of xc[n, p*sh, q*sw, 0] for each packed row
        {
            int64_t n = k0 / pq, op = (k0 % pq) / g.q, oq = k0 % g.q;
            for (int64_t kk = 0; kk < kc; ++kk) {
                pixel[kk] = ((n * xc.hp + op * g.sh) * xc.wp + oq * g.sw) * g.c;
                if (++oq == g.q) {
                    oq = 0;
                    if (++op == g.p) op = 0, ++n;
                }
            }
        }
        for (int64_t p0 = 0; p0 < nc; p0 += NR, dst += NR * kc) {
            const int64_t cols = std::min(NR, nc - p0);
            int64_t offset[NR];  // of column j0 + p0 + t relative to a row's pixel
            bool contiguous = cols == NR;
            for (int64_t t = 0; t < cols; ++t) {
                const int64_t col = j0 + p0 + t, tap = col / cg, c = col % cg;
                offset[t] = ((tap / g.s) * g.dh * xc.wp + (tap % g.s) * g.dw) * g.c + grp * cg + c;
                contiguous = contiguous && offset[t] == offset[0] + t;
            }
            if (contiguous) {
                const T* src = xc.data + offset[0];
                for (int64_t kk = 0; kk < kc; ++kk) {
                    const T* s = src + pixel[kk];
                    T* d = dst + kk * NR;
#pragma GCC unroll 16
                    for (int64_t t = 0; t < NR; ++t) d[t] = s[t];
                }
                continue;
            }
            for (int64_t kk = 0; kk < kc; ++kk) {
                const T* src = xc.data + pixel[kk];
                T* d = dst + kk * NR;
                for (int64_t t = 0; t < cols; ++t) d[t] = src[offset[t]];
                for (int64_t t = cols; t < NR; ++t) d[t] = T(0);
            }
        }
    }
};

// grad_w (K, C/G, R, S) = the weight gradient of the convolution g, from grad_y (N, K, P, Q)
// and x (N, C, H, W).
template <typename T>
void conv2d_weight_grad(const ConvGeometry& g, const T* grad_y, const T* x, T* grad_w) {
    const int64_t kg = g.kg(), crs = g.crs(), cg = g.cg(), taps = g.taps(), pq = g.pq();
    if (g.n == 0 || pq == 0) {  // an empty reduction
        std::fill(grad_w, grad_w + g.k * crs, T(0));
        return;
    }
    ChannelsLastPadded<T> xc;
    xc.hp = (g.p - 1) * g.sh + (g.r - 1) * g.dh + 1;
    xc.wp = (g.q - 1) * g.sw + (g.s - 1) * g.dw + 1;
    xc.c = g.c;
    // images per chunk: a channels-last chunk of ~512 KiB (this core's L2), at least one image.
    // Measured against 2 MiB (1 / 2 threads): LeNet conv2 -10% / -18%, CIFAR conv2 -8% / -15%,
    // deep 128-channel 3x3 -4% / -7%; 256 KiB was no better.
    const int64_t image_bytes = std::max<int64_t>(1, xc.image_size() * int64_t(sizeof(T)));
    const int64_t chunk = std::clamp<int64_t>((int64_t(512) << 10) / image_bytes, 1, std::max<int64_t>(g.n, 1));
    const int threads = threads_for(2.0 * double(g.n) * double(g.k) * double(crs) * double(pq));
    std::vector<T> dw(size_t(g.groups * kg * crs), T(0));  // (G, K/G, R, S, C/G)
    for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
        const int64_t nb = std::min(chunk, g.n - n0);
        xc.data = thread_workspace().get<T>(Slot::Columns, size_t(nb * xc.image_size()));
        to_channels_last_padded(g, x, n0, nb, xc, threads);
        ConvGeometry gc = g;
        gc.n = nb;
        const OutputRowsOverBatch<T> pack_a{grad_y + n0 * g.k * pq, gc};
        const ChannelsLastColumnsTransposed<T> pack_b{xc, gc};
        const PackedA<T> a = pack_a_all<T>(g.groups, kg, nb * pq, pack_a, threads);
        const bool first = n0 == 0;
        gemm_packed(a, g.groups, crs, pack_b, [](int64_t b) { return b; },
                    [&](int64_t b) {
                        Output<T> o;
                        o.c = dw.data() + b * kg * crs;
                        o.ldc = crs;
                        o.beta = first ? T(0) : T(1);
                        return o;
                    },
                    threads);
    }
    // (G, K/G, R*S, C/G) -> (K, C/G, R*S)
    for (int64_t row = 0; row < g.groups * kg; ++row) {
        const T* src = dw.data() + row * crs;
        T* dst = grad_w + row * crs;
        for (int64_t tap = 0; tap < taps; ++tap)
            for (int64_t c = 0; c < cg; ++c) dst[c * taps + tap] = src[tap * cg + c];
    }
}

}  // namespace pyconv::cpu
