// Winograd weight gradient of stride-1, dilation-1 3x3 convolutions (see winograd.h): F(3x3, 4x4),
// the transpose of the forward's F(4x4, 3x3). Per 4x4 tile g of grad_y and the 6x6 input tile d
// under it, the tile's share of grad_w[k, c] is the correlation
//
//   z[r][s] = sum_{i, j < 4} g[i][j] d[i + r][j + s] = (G^T [ (A g A^T) (.) (B^T d B) ] G)[r][s]
//
// because the forward's identity sum_xi A[xi][i] G[xi][j] (B^T d)[xi] = d[i + j] (A^T, G, B^T of
// winograd.cpp) holds for i < 4, j < 3 whichever of i and j is called the output. Summed over
// every tile of every image, the 6x6 middle term is 36 GEMMs with the tiles as the reduction:
//
//   M_xi (K x C) = W_xi (K x T) * V_xi^T (T x C),   W = A g A^T,  V = B^T d B,
//   grad_w[k][c] = G^T M[k][c] G
//
// 36 multiplies per (tile, k, c) instead of the direct weight gradient's 144. The tiles of a chunk
// of images are transformed (V by winograd_tiles.h, W here), multiplied on gemm.h's driver and
// accumulated into M chunk after chunk (the order depends on the shape only, not on threads).
#include <algorithm>
#include <cstdint>

#include "gemm.h"
#include "parallel.h"
#include "winograd.h"
#include "winograd_tiles.h"

namespace pyconv::cpu {

namespace {

using namespace winograd_tiles;

thread_local Buffer grads_buffer, inputs_buffer, sums_buffer;

// o[xi*os + l] = (A g)[xi] for lanes l, g[i*gs + l] the 4 values:
//   A = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1]
template <typename T>
inline void grad_1d(const T* __restrict g, int64_t gs, T* __restrict o, int64_t os) {
#pragma GCC ivdep
    for (int64_t l = 0; l < kLanes; ++l) {
        const T g0 = g[l], g1 = g[gs + l], g2 = g[2 * gs + l], g3 = g[3 * gs + l];
        const T even = g0 + g2, odd = g1 + g3, even4 = g0 + T(4) * g2, odd4 = T(2) * g1 + T(8) * g3;
        o[l] = g0;
        o[os + l] = even + odd;
        o[2 * os + l] = even - odd;
        o[3 * os + l] = even4 + odd4;
        o[4 * os + l] = even4 - odd4;
        o[5 * os + l] = g3;
    }
}

// W[xi][k][t] for output channel k and tiles [t0, t0 + 16) of the chunk (ld = row stride of W):
// A g A^T of each 4x4 tile of grad_y (0 outside the P x Q plane and past the chunk's tiles).
template <typename T>
void transform_grads(const WinogradWeightGrad<T>& wg, const Tiling& tiling, int64_t n0, int64_t tiles,
                     int64_t k, int64_t t0, T* w, int64_t ld) {
    alignas(64) T g[kTile * kTile * kLanes], tmp[kAlpha * kTile * kLanes];
    for (int64_t l = 0; l < kLanes; ++l) {
        const int64_t t = t0 + l;
        const TilePlace tp = t < tiles ? tiling.place(n0, t) : TilePlace{0, wg.p, wg.q};
        const T* plane = wg.grad_y + (tp.n * wg.k + k) * wg.p * wg.q;
        for (int64_t i = 0; i < kTile; ++i)
            for (int64_t j = 0; j < kTile; ++j) {
                const int64_t y = tp.y + i, x = tp.x + j;
                g[(i * kTile + j) * kLanes + l] = (y < wg.p && x < wg.q) ? plane[y * wg.q + x] : T(0);
            }
    }
    for (int64_t j = 0; j < kTile; ++j)  // columns: A g (6 x 4)
        grad_1d(g + j * kLanes, kTile * kLanes, tmp + j * kLanes, kTile * kLanes);
    for (int64_t i = 0; i < kAlpha; ++i)  // rows: (A g) A^T, straight into W
        grad_1d(tmp + i * kTile * kLanes, kLanes, w + (i * kAlpha * wg.k + k) * ld + t0, wg.k * ld);
}

// z[j] = (G^T m)[j] for the 6 values m[a * ms] (G of winograd.cpp, 6 x 3), in double
inline void sum_1d(const double* m, int64_t ms, double* z, int64_t zs) {
    const double m0 = m[0], m1 = m[ms], m2 = m[2 * ms], m3 = m[3 * ms], m4 = m[4 * ms], m5 = m[5 * ms];
    z[0] = m0 / 4 - (m1 + m2) / 6 + (m3 + m4) / 24;
    z[zs] = (m2 - m1) / 6 + (m3 - m4) / 12;
    z[2 * zs] = (m3 + m4 - m1 - m2) / 6 + m5;
}

}  // namespace

template <typename T>
void winograd_weight_grad3x3(const WinogradWeightGrad<T>& wg) {
    if (wg.k <= 0 || wg.c <= 0) return;
    T* sums = sums_buffer.get<T>(size_t(kPos * wg.k * wg.c));  // M[xi][k][c]
    std::fill(sums, sums + kPos * wg.k * wg.c, T(0));
    if (wg.n > 0 && wg.p > 0 && wg.q > 0) {
        const Tiling tiling = Tiling::of(wg.p, wg.q);
        const double flops = 2.0 * double(kPos) * double(wg.n) * double(tiling.per_image) * double(wg.k) * double(wg.c);
        const int threads = threads_for(flops);
        const TileInput<T> in{wg.x, wg.c, wg.h, wg.w, wg.top, wg.left};
        // images per chunk: W (36 x K x tiles) and V (36 x C x tiles)
        const int64_t per_image_bytes = kPos * (wg.c + wg.k) * tiling.per_image * int64_t(sizeof(T));
        const int64_t images = chunk_images(tiling.per_image, per_image_bytes, wg.n);
        const int64_t max_ld = round_up(images * tiling.per_image, kLanes);
        T* w = grads_buffer.get<T>(size_t(kPos * wg.k * max_ld));
        T* v = inputs_buffer.get<T>(size_t(kPos * wg.c * max_ld));
        for (int64_t n0 = 0; n0 < wg.n; n0 += images) {
            const int64_t tiles = std::min(images, wg.n - n0) * tiling.per_image;
            const int64_t ld = round_up(tiles, kLanes);
            // a task per channel row (all its tile blocks): 16-tile tasks cost more in scheduling
            // than they did work at 2 threads (the transforms ran slower than at 1)
            parallel_for(wg.k + wg.c, threads, [&](int64_t row) {
                for (int64_t t0 = 0; t0 < ld; t0 += kLanes) {
                    if (row < wg.k)
                        transform_grads(wg, tiling, n0, tiles, row, t0, w, ld);
                    else
                        transform_tiles(in, tiling, n0, tiles, row - wg.k, t0, v, ld);
                }
            });
            // M_xi += W_xi (K x tiles) * V_xi^T (tiles x C)
            gemm<T>(kPos, kPos, wg.k, wg.c, tiles, MatrixA<T>{w, ld, 1, wg.k * ld}, MatrixB<T>{v, 1, ld, wg.c * ld},
                    [](int64_t xi) { return xi; },
                    [&](int64_t xi) {
                        Output<T> o;
                        o.c = sums + xi * wg.k * wg.c;
                        o.ldc = wg.c;
                        o.beta = T(1);
                        return o;
                    });
        }
    }
    const int64_t kc = wg.k * wg.c;
    parallel_for(wg.k, threads_for(double(kc) * 400.0), [&](int64_t k) {
        for (int64_t c = 0; c < wg.c; ++c) {
            double m[kPos], cols[3 * kAlpha], z[9];
            for (int64_t xi = 0; xi < kPos; ++xi) m[xi] = double(sums[xi * kc + k * wg.c + c]);
            for (int64_t b = 0; b < kAlpha; ++b) sum_1d(m + b, kAlpha, cols + b, kAlpha);  // G^T M: 3 x 6
            for (int64_t r = 0; r < 3; ++r) sum_1d(cols + r * kAlpha, 1, z + r * 3, 1);       // (G^T M) G
            T* out = wg.grad_w + (k * wg.c + c) * 9;
            for (int64_t i = 0; i < 9; ++i) out[i] = T(z[i]);
        }
    });
}

template void winograd_weight_grad3x3<float>(const WinogradWeightGrad<float>&);
template void winograd_weight_grad3x3<double>(const WinogradWeightGrad<double>&);

}  // namespace pyconv::cpu
