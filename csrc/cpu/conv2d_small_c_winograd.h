// Winograd F(4x4, 3x3) forward for first layers (conv2d_small_c.cpp): float32, 3x3 kernel,
// stride 1, dilation 1, 1 <= C <= 4 input channels. Each 4x4 output tile of channel k is
//
//   Y = A^T [ sum_c (G g_kc G^T) (.) (B^T d_c B) ] A     (d_c: the tile's 6x6 padded input)
//
// with the matrices of Lavin & Gray (interpolation points 0, +-1, +-2, infinity):
//   B^T = [4  0 -5  0 1 0]   G = [ 1/4    0     0  ]   A^T = [1 1  1 1  1 0]
//         [0 -4 -4  1 1 0]       [-1/6 -1/6  -1/6 ]         [0 1 -1 2 -2 0]
//         [0  4 -4 -1 1 0]       [-1/6  1/6  -1/6 ]         [0 1  1 4  4 0]
//         [0 -2 -1  2 1 0]       [1/24 1/12   1/6 ]         [0 1 -1 8 -8 1]
//         [0  2 -1 -2 1 0]       [1/24 -1/12  1/6 ]
//         [0  4  0 -5 0 1]       [ 0    0     1   ]
// 36*C multiplies per 16 outputs and channel instead of 144*C (the direct kernel); the output
// transform (~10 adds / FMAs per 6 -> 4 values, 10 such per tile and channel) costs back part of
// it. F(2x2, 3x3) was measured first and dropped: its 24 adds and 16 loads + 16 stores of products
// per 4 outputs left it no faster than the direct kernel on CIFAR layer 1 (Zen 1: 256-bit
// instructions issue as two 128-bit halves; FMAs are only half of the issued work).
//
// Vectors run over 8 tiles of a tile row: tile vector (band, v) covers output rows 4*band .. +3
// and columns 32v .. 32v + 31, its lanes holding tiles (0 2 4 6 | 1 3 5 7) so that a 4x4
// transpose per 128-bit half turns (tile, column) lanes into 8 consecutive outputs. Per group of
// tile rows (about 3 tile vectors: their transformed input stays in L1):
//   1. each padded input row times B (split_rows: a 4x4 transpose per half of 32 values gives
//      the tiles' columns), then B^T over each tile's 6 rows into U[xi][c][J] (36 x C vectors),
//   2. per block of KB = 4 output channels x NV = 3 tile vectors: the 36 element-wise products
//      M[xi] = sum_c V[xi][c][k] * U[xi][c] (V = G g G^T, transformed once per call; the bias
//      is folded into M[1][1], which adds to all 16 outputs) into a 13.5 KB L1 block,
//   3. the output transform of the block (A^T M for two output rows at a time, in registers,
//      then (A^T M) A per row), stored straight into y: non-temporally when y is far larger than
//      the caches (no read of each line before writing it), through a row buffer at the right edge.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "arena.h"
#include "conv_packers.h"
#include "microkernel.h"  // PYCONV_CPU_AVX2, <immintrin.h>
#include "parallel.h"
#include "winograd_tiles.h"

#ifdef PYCONV_CPU_AVX2

namespace pyconv::cpu::small_c {

// 3x3, stride 1, dilation 1, 1..4 input channels (the products unroll over C)
inline bool winograd_applies(const ConvGeometry& g) {
    return g.r == 3 && g.s == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.c >= 1 && g.c <= 4 &&
           g.groups == 1;
}

namespace winograd_f4 {

constexpr int kKB = 4;   // output channels per block
constexpr int kNV = 3;   // tile vectors per block (4 x 3 = 12 accumulators)
constexpr int kL = 8;    // floats per vector = tiles per tile vector
constexpr int kXi = 36;  // positions of a transformed 6x6 tile
constexpr int kBias = 7; // position (1, 1): A^T's column 1 is all ones
constexpr int64_t kStreamBytes = int64_t(4) << 20;  // outputs above this are stored non-temporally

// V[xi][b][c][kk] = (G g G^T)[xi] of w[b*KB + kk, c] (0 past K), then the bias [b][kk]; in the
// calling thread's arena. Computed in double.
inline float* transform_weights(const ConvGeometry& g, const float* w, const float* bias, int64_t blocks) {
    const int64_t c_n = g.c, kp = blocks * kKB;
    float* v = thread_workspace().get<float>(Slot::PackedA, size_t(kXi * kp * c_n + kp));
    float* vb = v + kXi * kp * c_n;
    for (int64_t k = 0; k < kp; ++k) {
        vb[k] = k < g.k && bias ? bias[k] : 0.0f;
        for (int64_t c = 0; c < c_n; ++c) {
            double u[6][6] = {};
            if (k < g.k) {
                double f[9], t[6][3];  // f[r * 3 + s]; t = G f, column by column
                std::copy_n(w + (k * c_n + c) * 9, 9, f);
                for (int s = 0; s < 3; ++s) winograd_tiles::filter_1d(f + s, 3, &t[0][s], 3);
                for (int i = 0; i < 6; ++i) winograd_tiles::filter_1d(t[i], 1, u[i], 1);  // (G f) G^T
            }
            const int64_t b = k / kKB, kk = k % kKB;
            for (int xi = 0; xi < kXi; ++xi) v[((xi * blocks + b) * c_n + c) * kKB + kk] = float(u[xi / 6][xi % 6]);
        }
    }
    return v;
}

// B^T x of 6 vectors: o_i = sum_j B^T[i][j] x_j
inline void input_1d(const __m256* x, __m256* o) {
    const __m256 four = _mm256_set1_ps(4.0f), five = _mm256_set1_ps(5.0f), two = _mm256_set1_ps(2.0f);
    o[0] = _mm256_fmadd_ps(four, x[0], _mm256_fnmadd_ps(five, x[2], x[4]));
    const __m256 t1 = _mm256_fnmadd_ps(four, x[2], x[4]), t2 = _mm256_fnmadd_ps(four, x[1], x[3]);
    o[1] = _mm256_add_ps(t1, t2);
    o[2] = _mm256_sub_ps(t1, t2);
    const __m256 t3 = _mm256_sub_ps(x[4], x[2]), t4 = _mm256_mul_ps(two, _mm256_sub_ps(x[3], x[1]));
    o[3] = _mm256_add_ps(t3, t4);
    o[4] = _mm256_sub_ps(t3, t4);
    o[5] = _mm256_fmadd_ps(four, x[1], _mm256_fnmadd_ps(five, x[3], x[5]));
}

// A^T m of 6 vectors: 4 outputs
inline void output_1d(const __m256* m, __m256* o) {
    const __m256 s1 = _mm256_add_ps(m[1], m[2]), d1 = _mm256_sub_ps(m[1], m[2]);
    const __m256 s2 = _mm256_add_ps(m[3], m[4]), d2 = _mm256_sub_ps(m[3], m[4]);
    o[0] = _mm256_add_ps(_mm256_add_ps(m[0], s1), s2);
    o[1] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d2, d1);
    o[2] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), s2, s1);
    o[3] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d2, d1), m[5]);
}

// Padded rows pr0 .. pr0 + rows - 1 of every channel of image xn times B (the row half of the input
// transform, once per row although 6-row tiles overlap by 2), lanes in tile order (0 2 4 6 |
// 1 3 5 7) within each vector of 8 tiles:
// out[((c * rows + i) * 6 + j) * cw + 8v + l] = (d B)[j] of the 6 values xpad[pr0 + i][4 * (8v + tile(l)) + 0..5],
// cw = 8 * nvec; pad holds one padded row, cw * 4 + 8 floats.
inline void split_rows(const ConvGeometry& g, const float* xn, int64_t pr0, int64_t rows, int64_t cw, float* rows_db,
                       float* pad) {
    const int64_t width = 4 * cw + 8, lo = std::min(g.left, width), hi = std::clamp(g.left + g.w, lo, width);
    std::fill(pad, pad + lo, 0.0f);
    std::fill(pad + hi, pad + width, 0.0f);
    for (int64_t c = 0; c < g.c; ++c)
        for (int64_t i = 0; i < rows; ++i) {
            float* out = rows_db + (c * rows + i) * 6 * cw;
            const int64_t ih = pr0 + i - g.top;
            if (ih < 0 || ih >= g.h) {
                std::fill(out, out + 6 * cw, 0.0f);
                continue;
            }
            std::copy_n(xn + (c * g.h + ih) * g.w, hi - lo, pad + lo);
            for (int64_t m = 0; m < cw; m += kL) {
                // 32 values (8 tiles of 4 columns): a 4x4 transpose per 128-bit half of 4 vectors
                // gives column r of tiles (0 2 4 6 | 1 3 5 7); from 4 values on, columns 4 and 5
                const auto transpose = [](const float* src, __m256* r) {
                    const __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + 8);
                    const __m256 c2 = _mm256_loadu_ps(src + 16), d = _mm256_loadu_ps(src + 24);
                    const __m256 t0 = _mm256_unpacklo_ps(a, b), t1 = _mm256_unpackhi_ps(a, b);
                    const __m256 t2 = _mm256_unpacklo_ps(c2, d), t3 = _mm256_unpackhi_ps(c2, d);
                    r[0] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
                    r[1] = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
                    r[2] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
                    r[3] = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
                };
                __m256 d[8], e[6];
                transpose(pad + 4 * m, d);
                transpose(pad + 4 * m + 4, d + 4);
                input_1d(d, e);  // d B of this row (columns 4, 5 of the tiles are d[4], d[5])
                for (int j = 0; j < 6; ++j) _mm256_store_ps(out + j * cw + m, e[j]);
            }
        }
}

// U[xi][c][J] (vectors) of tile vectors J = band * nvec + vv of `bands` tile rows: B^T over the 6
// rows of each tile of (d B) from split_rows (row 0 of rows_db is padded row 4 * first band).
inline void transform_input(int64_t c_n, int64_t bands, int64_t nvec, int64_t rows, int64_t cw, const float* rows_db,
                            float* u) {
    const int64_t jn = bands * nvec;
    for (int64_t c = 0; c < c_n; ++c)
        for (int64_t band = 0; band < bands; ++band)
            for (int64_t vv = 0; vv < nvec; ++vv) {
                const float* first = rows_db + (c * rows + 4 * band) * 6 * cw + vv * kL;
                const int64_t jj = band * nvec + vv;
                for (int j = 0; j < 6; ++j) {
                    __m256 d[6], e[6];
                    for (int i = 0; i < 6; ++i) d[i] = _mm256_load_ps(first + (i * 6 + j) * cw);
                    input_1d(d, e);
                    for (int i = 0; i < 6; ++i) _mm256_store_ps(u + (((i * 6 + j) * c_n + c) * jn + jj) * kL, e[i]);
                }
            }
}

// Where the outputs of (channel, tile vector) go: its first output, the row stride (Q), its output
// rows inside the plane (1..4) and columns (1..32), whether to store around the caches.
struct Place {
    float* dst;
    int64_t ld;
    int rows, cols;
    bool stream;  // non-temporal stores (y much larger than the caches)
};

// The products of NV tile vectors j0 .. j0 + NV - 1 for the KB channels of block b, then their
// output transform into y at place(kk, j) (a Place) for tile vector j.
template <int C, int NV, class PlaceOf>
inline void block(const float* u, int64_t jn, int64_t j0, const float* v, const float* vb, int64_t blocks,
                  int64_t b, int kvalid, PlaceOf&& place) {
    alignas(32) float m[kXi][kKB][NV][kL];
    for (int xi = 0; xi < kXi; ++xi) {
        __m256 acc[kKB][NV];
#pragma GCC unroll 16
        for (int kk = 0; kk < kKB; ++kk) {
            const __m256 init = xi == kBias ? _mm256_set1_ps(vb[b * kKB + kk]) : _mm256_setzero_ps();
#pragma GCC unroll 16
            for (int t = 0; t < NV; ++t) acc[kk][t] = init;
        }
        const float* wx = v + (xi * blocks + b) * C * kKB;
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
            __m256 x[NV];
            const float* ux = u + ((xi * C + c) * jn + j0) * kL;
#pragma GCC unroll 16
            for (int t = 0; t < NV; ++t) x[t] = _mm256_load_ps(ux + t * kL);
#pragma GCC unroll 16
            for (int kk = 0; kk < kKB; ++kk) {
                const __m256 wv = _mm256_broadcast_ss(wx + c * kKB + kk);
#pragma GCC unroll 16
                for (int t = 0; t < NV; ++t) acc[kk][t] = _mm256_fmadd_ps(wv, x[t], acc[kk][t]);
            }
        }
#pragma GCC unroll 16
        for (int kk = 0; kk < kKB; ++kk)
#pragma GCC unroll 16
            for (int t = 0; t < NV; ++t) _mm256_store_ps(m[xi][kk][t], acc[kk][t]);
    }
    for (int kk = 0; kk < kvalid; ++kk)
        for (int t = 0; t < NV; ++t) {
            const Place at = place(kk, j0 + t);
            // (A^T M) rows i = half, half + 2 straight from M's columns (even rows use M's rows
            // 0..4, odd rows 1..5): 12 vectors that stay in registers, so only outputs are
            // stored (writing A^T M back over M first stored 24 more vectors per (kk, t) and
            // took 6% longer on CIFAR layer 1; Zen 1 stores a 256-bit vector in two halves)
            for (int half = 0; half < 2; ++half) {
                __m256 ta[6], tb[6];
                for (int col = 0; col < 6; ++col) {
                    if (half == 0) {
                        const __m256 m0 = _mm256_load_ps(m[col][kk][t]), m1 = _mm256_load_ps(m[6 + col][kk][t]);
                        const __m256 m2 = _mm256_load_ps(m[12 + col][kk][t]), m3 = _mm256_load_ps(m[18 + col][kk][t]);
                        const __m256 m4 = _mm256_load_ps(m[24 + col][kk][t]);
                        const __m256 s1 = _mm256_add_ps(m1, m2), s2 = _mm256_add_ps(m3, m4);
                        ta[col] = _mm256_add_ps(_mm256_add_ps(m0, s1), s2);
                        tb[col] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), s2, s1);
                    } else {
                        const __m256 m1 = _mm256_load_ps(m[6 + col][kk][t]), m2 = _mm256_load_ps(m[12 + col][kk][t]);
                        const __m256 m3 = _mm256_load_ps(m[18 + col][kk][t]), m4 = _mm256_load_ps(m[24 + col][kk][t]);
                        const __m256 m5 = _mm256_load_ps(m[30 + col][kk][t]);
                        const __m256 d1 = _mm256_sub_ps(m1, m2), d2 = _mm256_sub_ps(m3, m4);
                        ta[col] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d2, d1);
                        tb[col] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d2, d1), m5);
                    }
                }
                const auto emit = [&](int i, __m256 x0, __m256 x1, __m256 x2, __m256 x3, __m256 x4, __m256 x5) {
                    if (i >= at.rows) return;
                    const __m256 xs[6] = {x0, x1, x2, x3, x4, x5};
                    __m256 y[4];
                    output_1d(xs, y);  // (A^T M) A of row i
                    // lanes hold tiles (0 2 4 6 | 1 3 5 7): a 4x4 transpose per 128-bit half
                    // gives tiles (2s | 2s + 1) = output columns 8s .. 8s + 7
                    const __m256 t0 = _mm256_unpacklo_ps(y[0], y[1]), t1 = _mm256_unpackhi_ps(y[0], y[1]);
                    const __m256 t2 = _mm256_unpacklo_ps(y[2], y[3]), t3 = _mm256_unpackhi_ps(y[2], y[3]);
                    const __m256 q[4] = {_mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)),
                                         _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)),
                                         _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)),
                                         _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2))};
                    float* dst = at.dst + i * at.ld;
                    if (at.cols == 32 && at.stream && (reinterpret_cast<uintptr_t>(dst) & 31) == 0) {
                        for (int s = 0; s < 4; ++s) _mm256_stream_ps(dst + 8 * s, q[s]);
                    } else if (at.cols == 32) {
                        for (int s = 0; s < 4; ++s) _mm256_storeu_ps(dst + 8 * s, q[s]);
                    } else {
                        alignas(32) float row[32];
                        for (int s = 0; s < 4; ++s) _mm256_store_ps(row + 8 * s, q[s]);
                        std::memcpy(dst, row, size_t(at.cols) * sizeof(float));
                    }
                };
                emit(half, ta[0], ta[1], ta[2], ta[3], ta[4], ta[5]);
                emit(half + 2, tb[0], tb[1], tb[2], tb[3], tb[4], tb[5]);
            }
        }
}


template <int C>
void forward(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y, int threads) {
    const int64_t tp = (g.p + 3) / 4, tq = (g.q + 3) / 4, nvec = (tq + kL - 1) / kL;
    const int64_t blocks = (g.k + kKB - 1) / kKB;
    const float* v = transform_weights(g, w, bias, blocks);
    const float* vb = v + kXi * blocks * kKB * C;
    const int64_t cw = nvec * kL;  // tile columns of a row
    const int64_t group = std::max<int64_t>(1, kNV / nvec);  // tile rows per group: ~NV vectors
    const int64_t parts = g.n >= 4 ? 1 : std::min<int64_t>(tp, 8);  // small batches: bands of tile rows
    // Outputs larger than the L2 caches go to memory anyway: storing them non-temporally skips
    // reading each line before writing it (measured on CIFAR layer 1, 8 MB: 3.4 -> 2.7 ms)
    const bool stream = double(g.n * g.k) * double(g.pq()) * sizeof(float) > double(kStreamBytes);
    parallel_for(g.n * parts, threads, [&](int64_t task) {
        const int64_t n = task / parts, part = task % parts;
        const int64_t t0 = tp * part / parts, t1 = tp * (part + 1) / parts;
        thread_local winograd_tiles::Buffer rows_buffer, u_buffer;
        const float* xn = x + n * g.c * g.h * g.w;
        float* yn = y + n * g.k * g.pq();
        for (int64_t b0 = t0; b0 < t1; b0 += group) {
            const int64_t bands = std::min(group, t1 - b0), rows = 4 * bands + 2, jn = bands * nvec;
            float* rows_db = rows_buffer.get<float>(size_t(C * rows * 6 * cw + 4 * cw + 8));
            float* u = u_buffer.get<float>(size_t(kXi * C * jn * kL));
            split_rows(g, xn, 4 * b0, rows, cw, rows_db, rows_db + C * rows * 6 * cw);
            transform_input(C, bands, nvec, rows, cw, rows_db, u);
            for (int64_t b = 0; b < blocks; ++b) {
                const int kvalid = int(std::min<int64_t>(kKB, g.k - b * kKB));
                const auto place = [&](int kk, int64_t j) {
                    const int64_t vv = nvec == 1 ? 0 : j % nvec, p = 4 * (b0 + (nvec == 1 ? j : j / nvec)), q = 32 * vv;
                    return Place{yn + ((b * kKB + kk) * g.p + p) * g.q + q, g.q, int(std::min<int64_t>(4, g.p - p)),
                                 int(std::min<int64_t>(32, g.q - q)), stream};
                };
                // NV vectors at a time; a last partial block shifted back (its overlap rewritten
                // with the same values), or narrower when there are fewer than NV vectors
                int64_t j = 0;
                for (; j + kNV <= jn; j += kNV) block<C, kNV>(u, jn, j, v, vb, blocks, b, kvalid, place);
                if (j < jn) {
                    if (jn >= kNV)
                        block<C, kNV>(u, jn, jn - kNV, v, vb, blocks, b, kvalid, place);
                    else if (jn == 2)
                        block<C, 2>(u, jn, 0, v, vb, blocks, b, kvalid, place);
                    else
                        block<C, 1>(u, jn, 0, v, vb, blocks, b, kvalid, place);
                }
            }
        }
        if (stream) _mm_sfence();  // order the non-temporal stores before the task ends
    });
}

}  // namespace winograd_f4

// y = conv2d(x, w) + bias for winograd_applies(g)
inline void forward_winograd(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y,
                             int threads) {
    switch (g.c) {
        case 1: return winograd_f4::forward<1>(g, x, w, bias, y, threads);
        case 2: return winograd_f4::forward<2>(g, x, w, bias, y, threads);
        case 3: return winograd_f4::forward<3>(g, x, w, bias, y, threads);
        default: return winograd_f4::forward<4>(g, x, w, bias, y, threads);
    }
}

}  // namespace pyconv::cpu::small_c

#endif  // PYCONV_CPU_AVX2
