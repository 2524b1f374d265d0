// The tile machinery shared by the Winograd F(4x4, 3x3) kernels (winograd.cpp: forward and
// input gradient; winograd_weight_grad.cpp: weight gradient): the tiling of an output plane into
// 4x4 tiles, the input tile transform V = B^T d B vectorised over 16 tiles, the filter transform
// G g G^T's 1-D step, and grow-only per-thread buffers (also used by the first-layer Winograd,
// conv2d_small_c_winograd.h). Lavin & Gray's matrices: winograd.cpp's header has all three.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "gemm.h"

namespace pyconv::cpu::winograd_tiles {

constexpr int64_t kTile = 4;        // output tile edge (m)
constexpr int64_t kAlpha = 6;       // input tile edge (m + 2)
constexpr int64_t kPos = 36;        // positions of a transformed tile
constexpr int64_t kLanes = 16;      // tiles transformed together (the vectorised dimension)
constexpr int64_t kChunkBytes = 2 << 20;  // the transformed tiles of a chunk of images: in L3
constexpr int64_t kChunkMinTiles = 128;   // ... unless that leaves fewer tiles than this

// Images per chunk of the tile transforms and GEMMs: the transformed tiles of a chunk within
// kChunkBytes, so that the GEMMs' packing reads them back from L3 (a 6 MiB budget spilled:
// CIFAR's 16 x 16 layers ran 15-20% slower), but at least kChunkMinTiles tiles: fewer leave the
// GEMMs' tile dimension mostly padding (one 28 x 28 image is 49 tiles of 64 padded columns)
// or, for the weight gradient, re-read the 36 K x C sums too often.
inline int64_t chunk_images(int64_t per_image_tiles, int64_t per_image_bytes, int64_t n) {
    const int64_t by_bytes = kChunkBytes / std::max<int64_t>(per_image_bytes, 1);
    const int64_t by_tiles = ceil_div(kChunkMinTiles, std::max<int64_t>(per_image_tiles, 1));
    return std::clamp<int64_t>(std::max(by_bytes, by_tiles), 1, std::max<int64_t>(n, 1));
}

// The transformed filters U, tiles V and products M of a thread, kept across calls (grow-only,
// 64-byte aligned) like the arena's slots; V and M belong to the thread running the chunk.
struct Buffer {
    void* data = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(data); }
    template <typename T>
    T* get(size_t count) {
        const size_t bytes = round_up(int64_t(count * sizeof(T)), 64);
        if (bytes > size) {
            std::free(data);
            data = std::aligned_alloc(64, bytes);
            if (!data) {
                size = 0;
                throw std::bad_alloc();
            }
            size = bytes;
        }
        return static_cast<T*>(data);
    }
};

// o[i*os + l] = (B^T d)[i] for lanes l, d[a*ds + l] the 6 inputs.
template <typename T>
inline void input_1d(const T* __restrict d, int64_t ds, T* __restrict o, int64_t os) {
#pragma GCC ivdep
    for (int64_t l = 0; l < kLanes; ++l) {
        const T d0 = d[l], d1 = d[ds + l], d2 = d[2 * ds + l], d3 = d[3 * ds + l], d4 = d[4 * ds + l],
                d5 = d[5 * ds + l];
        o[l] = T(4) * d0 - T(5) * d2 + d4;
        o[os + l] = -T(4) * (d1 + d2) + d3 + d4;
        o[2 * os + l] = T(4) * (d1 - d2) - d3 + d4;
        o[3 * os + l] = T(2) * (d3 - d1) - d2 + d4;
        o[4 * os + l] = T(2) * (d1 - d3) - d2 + d4;
        o[5 * os + l] = T(4) * d1 - T(5) * d3 + d5;
    }
}

// o[i * os] = (G g)[i], G applied to 3 values (in double: filters are transformed once per call).
//   G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
inline void filter_1d(const double* g, int64_t gs, double* o, int64_t os) {
    const double g0 = g[0], g1 = g[gs], g2 = g[2 * gs];
    o[0] = g0 / 4;
    o[os] = -(g0 + g1 + g2) / 6;
    o[2 * os] = -(g0 - g1 + g2) / 6;
    o[3 * os] = g0 / 24 + g1 / 12 + g2 / 6;
    o[4 * os] = g0 / 24 - g1 / 12 + g2 / 6;
    o[5 * os] = g2;
}

// Where tile t of a chunk starting at image n0 sits.
struct TilePlace {
    int64_t n, y, x;  // image, top-left output row and column
};

struct Tiling {
    int64_t rows, cols, per_image;  // tiles per column, per row, per image
    static Tiling of(int64_t p, int64_t q) {
        const int64_t rows = ceil_div(p, kTile), cols = ceil_div(q, kTile);
        return {rows, cols, rows * cols};
    }
    TilePlace place(int64_t n0, int64_t t) const {
        const int64_t rem = t % per_image;
        return {n0 + t / per_image, (rem / cols) * kTile, (rem % cols) * kTile};
    }
};

// What the input transform reads: the (n, c, h, w) tensor under the tiles, the tile at output
// (y, x) starting at input (y - top, x - left); inputs outside it read 0.
template <typename T>
struct TileInput {
    const T* in;
    int64_t c, h, w, top, left;
};

// V[xi][c][t] for channel c and tiles [t0, t0 + 16) of the chunk (ld = row stride of V).
template <typename T>
void transform_tiles(const TileInput<T>& cv, const Tiling& tiling, int64_t n0, int64_t tiles, int64_t c,
                     int64_t t0, T* v, int64_t ld) {
    alignas(64) T d[kPos * kLanes], tmp[kPos * kLanes];
    for (int64_t l = 0; l < kLanes; ++l) {
        const int64_t t = t0 + l;
        if (t >= tiles) {
            for (int64_t i = 0; i < kPos; ++i) d[i * kLanes + l] = T(0);
            continue;
        }
        const TilePlace tp = tiling.place(n0, t);
        const int64_t y0 = tp.y - cv.top, x0 = tp.x - cv.left;
        const T* plane = cv.in + (tp.n * cv.c + c) * cv.h * cv.w;
        if (y0 >= 0 && y0 + kAlpha <= cv.h && x0 >= 0 && x0 + kAlpha <= cv.w) {
            const T* src = plane + y0 * cv.w + x0;
            for (int64_t i = 0; i < kAlpha; ++i)
                for (int64_t j = 0; j < kAlpha; ++j) d[(i * kAlpha + j) * kLanes + l] = src[i * cv.w + j];
            continue;
        }
        for (int64_t i = 0; i < kAlpha; ++i) {
            const int64_t iy = y0 + i;
            for (int64_t j = 0; j < kAlpha; ++j) {
                const int64_t ix = x0 + j;
                d[(i * kAlpha + j) * kLanes + l] =
                    (iy >= 0 && iy < cv.h && ix >= 0 && ix < cv.w) ? plane[iy * cv.w + ix] : T(0);
            }
        }
    }
    for (int64_t j = 0; j < kAlpha; ++j)  // columns: B^T d
        input_1d(d + j * kLanes, kAlpha * kLanes, tmp + j * kLanes, kAlpha * kLanes);
    for (int64_t i = 0; i < kAlpha; ++i)  // rows: (B^T d) B, straight into V
        input_1d(tmp + i * kAlpha * kLanes, kLanes, v + (i * kAlpha * cv.c + c) * ld + t0, cv.c * ld);
}

}  // namespace pyconv::cpu::winograd_tiles
