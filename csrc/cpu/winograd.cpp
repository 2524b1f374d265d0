// Winograd F(4x4, 3x3) convolution (see winograd.h): filter transform, then per chunk of images
// an input transform, 36 GEMMs on the packed driver, and an output transform.
//
// Transform matrices (Lavin & Gray, interpolation points 0, +-1, +-2, infinity):
//   B^T = [4  0 -5  0 1 0]   G = [ 1/4    0     0  ]   A^T = [1 1  1 1  1 0]
//         [0 -4 -4  1 1 0]       [-1/6 -1/6  -1/6 ]         [0 1 -1 2 -2 0]
//         [0  4 -4 -1 1 0]       [-1/6  1/6  -1/6 ]         [0 1  1 4  4 0]
//         [0 -2 -1  2 1 0]       [1/24 1/12   1/6 ]         [0 1 -1 8 -8 1]
//         [0  2 -1 -2 1 0]       [1/24 -1/12  1/6 ]
//         [0  4  0 -5 0 1]       [ 0    0     1   ]
#include "winograd.h"

#include <algorithm>
#include <cstdlib>
#include <new>

#include "gemm.h"
#include "winograd_tiles.h"

namespace pyconv::cpu {

namespace {

using namespace winograd_tiles;

thread_local Buffer filters_buffer, tiles_buffer, products_buffer;

// o[i*os + l] = (A^T d)[i] for the 4 outputs.
template <typename T>
inline void output_1d(const T* __restrict d, int64_t ds, T* __restrict o, int64_t os) {
#pragma GCC ivdep
    for (int64_t l = 0; l < kLanes; ++l) {
        const T d0 = d[l], d1 = d[ds + l], d2 = d[2 * ds + l], d3 = d[3 * ds + l], d4 = d[4 * ds + l],
                d5 = d[5 * ds + l];
        const T s12 = d1 + d2, d12 = d1 - d2, s34 = d3 + d4, d34 = d3 - d4;
        o[l] = d0 + s12 + s34;
        o[os + l] = d12 + T(2) * d34;
        o[2 * os + l] = s12 + T(4) * s34;
        o[3 * os + l] = d12 + T(8) * d34 + d5;
    }
}

template <typename T>
void transform_filters(const WinogradConv<T>& cv, T* u, int threads) {
    // u[xi][k][c]
    parallel_for(cv.k, threads, [&](int64_t k) {
        double g[9], tmp[18], v[36];
        for (int64_t c = 0; c < cv.c; ++c) {
            for (int r = 0; r < 3; ++r)
                for (int s = 0; s < 3; ++s)
                    g[r * 3 + s] = cv.rotated ? double(cv.weight[(c * cv.k + k) * 9 + (2 - r) * 3 + (2 - s)])
                                              : double(cv.weight[(k * cv.c + c) * 9 + r * 3 + s]);
            for (int s = 0; s < 3; ++s) filter_1d(g + s, 3, tmp + s, 3);      // G g: 6 x 3
            for (int i = 0; i < 6; ++i) filter_1d(tmp + i * 3, 1, v + i * 6, 1);  // (G g) G^T
            for (int64_t xi = 0; xi < kPos; ++xi) u[(xi * cv.k + k) * cv.c + c] = T(v[xi]);
        }
    });
}

// y for output channel k and tiles [t0, t0 + 16) of the chunk from M[xi][k][t].
template <typename T>
void transform_products(const WinogradConv<T>& cv, const Tiling& tiling, int64_t n0, int64_t tiles, int64_t k,
                        int64_t t0, const T* m, int64_t ld) {
    alignas(64) T tmp[kTile * kAlpha * kLanes], o[kTile * kTile * kLanes];
    const T* src = m + k * ld + t0;  // position xi at src[xi * K * ld]
    const int64_t pos_stride = cv.k * ld;
    for (int64_t j = 0; j < kAlpha; ++j)  // columns: A^T M
        output_1d(src + j * pos_stride, kAlpha * pos_stride, tmp + j * kLanes, kAlpha * kLanes);
    for (int64_t i = 0; i < kTile; ++i)  // rows: (A^T M) A
        output_1d(tmp + i * kAlpha * kLanes, kLanes, o + i * kTile * kLanes, kLanes);
    const T b = cv.bias ? cv.bias[k] : T(0);
    const int64_t lanes = std::min(kLanes, tiles - t0);
    for (int64_t l = 0; l < lanes; ++l) {
        const TilePlace tp = tiling.place(n0, t0 + l);
        T* plane = cv.out + (tp.n * cv.k + k) * cv.p * cv.q;
        const int64_t rows = std::min(kTile, cv.p - tp.y), cols = std::min(kTile, cv.q - tp.x);
        for (int64_t i = 0; i < rows; ++i) {
            T* dst = plane + (tp.y + i) * cv.q + tp.x;
            for (int64_t j = 0; j < cols; ++j) dst[j] = o[(i * kTile + j) * kLanes + l] + b;
        }
    }
}

}  // namespace

template <typename T>
void winograd_conv3x3(const WinogradConv<T>& cv) {
    if (cv.n <= 0 || cv.k <= 0 || cv.p <= 0 || cv.q <= 0) return;
    const Tiling tiling = Tiling::of(cv.p, cv.q);
    const TileInput<T> input{cv.in, cv.c, cv.h, cv.w, cv.top, cv.left};
    const double flops = 2.0 * double(kPos) * double(cv.n) * double(tiling.per_image) * double(cv.k) * double(cv.c);
    const int threads = threads_for(flops);

    T* u = filters_buffer.get<T>(size_t(kPos * cv.k * std::max<int64_t>(cv.c, 1)));
    if (cv.c > 0) transform_filters(cv, u, threads);
    const PackedA<T> a = pack_a_all<T>(kPos, cv.k, cv.c, MatrixA<T>{u, cv.c, 1, cv.k * cv.c}, threads);

    // images per chunk: V (36 x C x tiles) and M (36 x K x tiles)
    const int64_t per_image_bytes = kPos * (cv.c + cv.k) * tiling.per_image * int64_t(sizeof(T));
    int64_t images = chunk_images(tiling.per_image, per_image_bytes, cv.n);
    // With several threads, whole chunks are the tasks (each thread transforms, multiplies and
    // transforms back its own chunk: no barrier between the phases, which matters when a core
    // is shared), as long as there are enough chunks to balance: at least 4 per thread.
    const bool chunk_tasks = threads > 1 && cv.n >= 4 * threads;
    if (chunk_tasks) images = std::min(images, cv.n / (4 * threads));
    const int64_t chunks = ceil_div(cv.n, images), max_ld = round_up(images * tiling.per_image, kLanes);

    const auto run_chunk = [&](int64_t n0, int inner_threads) {
        T* v = tiles_buffer.get<T>(size_t(kPos * std::max<int64_t>(cv.c, 1) * max_ld));
        T* m = products_buffer.get<T>(size_t(kPos * cv.k * max_ld));
        const int64_t tiles = std::min(images, cv.n - n0) * tiling.per_image;
        const int64_t ld = round_up(tiles, kLanes), blocks = ld / kLanes;
        parallel_for(cv.c * blocks, inner_threads, [&](int64_t task) {
            transform_tiles(input, tiling, n0, tiles, task / blocks, (task % blocks) * kLanes, v, ld);
        });
        gemm_packed(a, kPos, tiles, MatrixB<T>{v, ld, 1, cv.c * ld}, [](int64_t xi) { return xi; },
                    [&](int64_t xi) {
                        Output<T> o;
                        o.c = m + xi * cv.k * ld;
                        o.ldc = ld;
                        return o;
                    },
                    inner_threads);
        parallel_for(cv.k * blocks, inner_threads, [&](int64_t task) {
            transform_products(cv, tiling, n0, tiles, task / blocks, (task % blocks) * kLanes, m, ld);
        });
    };
    if (chunk_tasks)
        parallel_for(chunks, threads, [&](int64_t chunk) { run_chunk(chunk * images, 1); });
    else
        for (int64_t chunk = 0; chunk < chunks; ++chunk) run_chunk(chunk * images, threads);
}

template void winograd_conv3x3<float>(const WinogradConv<float>&);
template void winograd_conv3x3<double>(const WinogradConv<double>&);

}  // namespace pyconv::cpu
