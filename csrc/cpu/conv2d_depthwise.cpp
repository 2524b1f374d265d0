// Depthwise conv2d (groups = C = K, weight (C, 1, R, S)) as a direct convolution, one (image,
// channel) plane per task:
//
//   forward          y[n, c, p, q]  = bias[c] + sum_{r,s} w[c, r, s] * x[n, c, p*sh + r*dh - top, q*sw + s*dw - left]
//   backward_input   grad_x = the adjoint: with sw = 1 a forward-style pass over grad_y with the
//                    kernel rotated by 180 degrees; otherwise a scatter loop
//   backward_weight  dW[c, r, s] = sum_{n,p,q} grad_y[n, c, p, q] * x[n, c, ...], per-(c, batch
//                    chunk) partial sums added in chunk order (the chunks depend on N only, so
//                    the result does not depend on the thread count)
//
// With column stride 1 the output row is vectorised (conv2d_depthwise_vec.h): a tile of PB
// output rows x NV vectors keeps PB*NV accumulators in registers, and every tap is one broadcast
// weight times unaligned loads of the source rows. Padding is never materialised: a source row
// outside the image is skipped, and tiles whose taps cross the left/right border (or the end of
// the row) use masked loads that read 0 outside. Other column strides take scalar loops.
// 3x3 kernels with stride 1 and dilation 1 (any padding) take the register-reuse kernels of
// conv2d_depthwise_3x3.h (gradients) and conv2d_depthwise_3x3_forward.h (forward) instead, on a
// zero-padded copy of each source plane.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "conv2d_depthwise_3x3.h"
#include "conv2d_depthwise_3x3_forward.h"
#include "conv2d_depthwise_args.h"
#include "conv2d_depthwise_vec.h"
#include "parallel.h"
#include "register.h"

namespace pyconv::cpu {

namespace {

using direct::Pair;
using direct::Padding;
using direct::Vec;

// Output rows per register tile.
constexpr int kRowBlock = 4;

// 3x3, stride 1, dilation 1 (any padding), rows of at least one vector: the register-reuse
// kernels of conv2d_depthwise_3x3.h on a zero-padded copy of the source plane.
template <typename T>
bool unit_3x3(const ConvGeometry& g, int64_t out_width) {
    return g.r == 3 && g.s == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && out_width >= Vec<T>::L;
}

// The taps of one block of output rows: output row j, tap (r, s) reads source row
// rows[j * r_taps + r] (a row of zeros when outside the image: no branch in the tile) at column
// q + s*dw - off.
template <typename T>
struct RowTaps {
    const T* const* rows;
    const T* w;  // r_taps * s_taps weights, row-major
    int64_t r_taps, s_taps, dw, off, width;
};

// dst[j][q0 + t] = bias + the taps, for t < qn (<= NV*L) and j < PB. Edge: some taps cross the
// source row's ends (their loads are masked) or qn < NV*L (masked stores).
template <typename T, int PB, int NV, bool Edge, int RT, int ST>
inline void row_tile(const RowTaps<T>& a, int64_t q0, int64_t qn, T bias, T* const* dst) {
    using X = Vec<T>;
    constexpr int L = X::L;
    // RT, ST: the kernel size when fixed at compile time (3x3: every loop unrolls), else 0
    const int64_t r_taps = RT ? RT : a.r_taps, s_taps = ST ? ST : a.s_taps;
    typename X::V acc[PB][NV];
#pragma GCC unroll 16
    for (int j = 0; j < PB; ++j)
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) acc[j][v] = X::set1(bias);
    for (int64_t s = 0; s < s_taps; ++s) {
        const int64_t col = q0 + s * a.dw - a.off;  // source column of lane 0
        // masked loads (slow) only for taps whose columns cross the source row's ends
        const bool masked = Edge && (col < 0 || col + NV * L > a.width);
        typename X::M m[NV] = {};
        if (masked)
#pragma GCC unroll 16
            for (int v = 0; v < NV; ++v) m[v] = X::mask(-(col + v * L), a.width - col - v * L);
        for (int64_t r = 0; r < r_taps; ++r) {
            const typename X::V wv = X::set1(a.w[r * s_taps + s]);
#pragma GCC unroll 16
            for (int j = 0; j < PB; ++j) {
                const T* row = a.rows[j * r_taps + r];
#pragma GCC unroll 16
                for (int v = 0; v < NV; ++v) {
                    const typename X::V xv = masked ? X::load(row + col + v * L, m[v]) : X::load(row + col + v * L);
                    acc[j][v] = X::fma(wv, xv, acc[j][v]);
                }
            }
        }
    }
#pragma GCC unroll 16
    for (int j = 0; j < PB; ++j)
#pragma GCC unroll 16
        for (int v = 0; v < NV; ++v) {
            if (Edge && qn < NV * L)
                X::store(dst[j] + q0 + v * L, X::mask(0, qn - v * L), acc[j][v]);
            else
                X::store(dst[j] + q0 + v * L, acc[j][v]);
        }
}

// PB output rows of width q_out.
template <typename T, int PB>
void row_block(const RowTaps<T>& a, int64_t q_out, T bias, T* const* dst) {
    const bool three = a.r_taps == 3 && a.s_taps == 3;
    direct::column_tiles<T>(q_out, a.off, a.width, a.s_taps, a.dw, [&](int64_t q, int64_t qn, auto nv, auto edge) {
        constexpr int NV = decltype(nv)::value;
        constexpr bool Edge = decltype(edge)::value;
        if (three)
            row_tile<T, PB, NV, Edge, 3, 3>(a, q, qn, bias, dst);
        else
            row_tile<T, PB, NV, Edge, 0, 0>(a, q, qn, bias, dst);
    });
}

template <typename T>
void row_block(int pb, const RowTaps<T>& a, int64_t q_out, T bias, T* const* dst) {
    switch (pb) {
        case 4: row_block<T, 4>(a, q_out, bias, dst); break;
        case 3: row_block<T, 3>(a, q_out, bias, dst); break;
        case 2: row_block<T, 2>(a, q_out, bias, dst); break;
        default: row_block<T, 1>(a, q_out, bias, dst); break;
    }
}

// out (out_rows x out_width) from a source plane, a block of kRowBlock rows at a time;
// source_row(i, r) is the source row of output row i and tap row r, or null (zeros).
template <typename T, class SourceRow>
void plane_rows(int64_t out_rows, int64_t out_width, const T* w, int64_t r_taps, int64_t s_taps,
                int64_t dw, int64_t off, int64_t width, T bias, T* out, SourceRow&& source_row) {
    thread_local std::vector<const T*> rows;
    thread_local std::vector<T> zeros;
    rows.resize(size_t(kRowBlock * r_taps));
    zeros.assign(size_t(width), T(0));
    const RowTaps<T> a{rows.data(), w, r_taps, s_taps, dw, off, width};
    for (int64_t i0 = 0; i0 < out_rows; i0 += kRowBlock) {
        const int pb = int(std::min<int64_t>(kRowBlock, out_rows - i0));
        T* dst[kRowBlock];
        for (int j = 0; j < pb; ++j) {
            dst[j] = out + (i0 + j) * out_width;
            for (int64_t r = 0; r < r_taps; ++r) {
                const T* row = source_row(i0 + j, r);
                rows[j * r_taps + r] = row ? row : zeros.data();
            }
        }
        row_block(pb, a, out_width, bias, dst);
    }
}

// ---------------------------------------------------------------------------------------------
// forward
// ---------------------------------------------------------------------------------------------

// One plane: x (H, W) -> y (P, Q), w (R, S).
template <typename T>
void forward_plane(const ConvGeometry& g, const T* x, const T* w, T bias, T* y) {
    if (g.sw == 1) {  // (3x3 with stride 1 and dilation 1: forward_planes_3x3)
        plane_rows(g.p, g.q, w, g.r, g.s, g.dw, g.left, g.w, bias, y, [&](int64_t p, int64_t r) -> const T* {
            const int64_t ih = p * g.sh + r * g.dh - g.top;
            return ih >= 0 && ih < g.h ? x + ih * g.w : nullptr;
        });
        return;
    }
    for (int64_t p = 0; p < g.p; ++p)
        for (int64_t q = 0; q < g.q; ++q) {
            T acc = bias;
            for (int64_t r = 0; r < g.r; ++r) {
                const int64_t ih = p * g.sh + r * g.dh - g.top;
                if (ih < 0 || ih >= g.h) continue;
                for (int64_t s = 0; s < g.s; ++s) {
                    const int64_t iw = q * g.sw + s * g.dw - g.left;
                    if (iw >= 0 && iw < g.w) acc += w[r * g.s + s] * x[ih * g.w + iw];
                }
            }
            y[p * g.q + q] = acc;
        }
}

// Outputs at least this large are written with non-temporal stores by the 3x3 kernel: they do
// not fit the 8 MiB L3, so the next layer reads them from memory anyway, and streaming them
// saves their read-for-ownership (measured: 1 ms of 7 on the benchmark's 25.7 MB output).
// Smaller outputs stay in the cache for the next layer.
constexpr int64_t kStreamMinBytes = int64_t(8) << 20;

// This thread's two frame buffers (32-byte aligned), zeroed when the geometry changes.
template <typename T>
T* frame_buffers(const direct::PaddedFrame<T>& f) {
    thread_local std::vector<T> storage;
    thread_local std::optional<direct::PaddedFrame<T>> geometry;
    constexpr int64_t align = 32 / sizeof(T);
    const auto aligned = [] {
        const auto a = reinterpret_cast<uintptr_t>(storage.data());
        return storage.data() + (align - int64_t(a / sizeof(T) % align)) % align;
    };
    if (!geometry || !(*geometry == f)) {
        storage.assign(size_t(2 * f.size() + align), T(0));
        geometry = f;
    }
    return aligned();
}

// 3x3, stride 1, dilation 1, through the frames of conv2d_depthwise_3x3_forward.h:
//   out[plane] (rows x cols) = bias[c] + the 3x3 correlation of frame(src[plane]) with w[c]
// for every plane = n*C + c of `planes` (src planes of f.src_rows x f.src_cols). Runs of
// consecutive planes per task, so that the next plane prefetched while one computes is this
// thread's; each thread alternates between two frame buffers.
template <typename T>
void planes_3x3(const direct::PaddedFrame<T>& f, const T* src, int64_t planes, int64_t channels, const T* w,
                const T* bias, int64_t rows, int64_t cols, T* out, int threads) {
    const int64_t src_size = f.src_rows * f.src_cols, out_size = rows * cols;
    const bool stream = planes * out_size * int64_t(sizeof(T)) >= kStreamMinBytes;
    const int64_t run = std::clamp<int64_t>(planes / (4 * int64_t(threads)), 1, 16);  // >= 4 tasks per thread
    parallel_for((planes + run - 1) / run, threads, [&](int64_t task) {
        T* const buffers = frame_buffers(f);
        for (int64_t plane = task * run; plane < std::min(planes, (task + 1) * run); ++plane) {
            T* buf = buffers + (plane % 2) * f.size();
            f.copy(src + plane * src_size, buf);
            const int64_t c = plane % channels;
            const T* next = plane + 1 < planes ? src + (plane + 1) * src_size : nullptr;
            T* o = out + plane * out_size;
            const T b = bias ? bias[c] : T(0);
            if (stream && reinterpret_cast<uintptr_t>(o) % 32 == 0 && cols % Vec<T>::L == 0)
                direct::forward_plane_3x3<T, true>(buf + f.lead, f.ld, w + c * 9, rows, cols, b, o, next, src_size);
            else
                direct::forward_plane_3x3<T, false>(buf + f.lead, f.ld, w + c * 9, rows, cols, b, o, next, src_size);
        }
#ifdef PYCONV_CPU_AVX2
        if (stream) _mm_sfence();  // the streamed rows are visible before the task ends
#endif
    });
}

template <typename T>
void forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y) {
    const int threads = threads_for(2.0 * double(g.n * g.c) * double(g.taps()) * double(g.pq()));
    if (unit_3x3<T>(g, g.q)) {  // y[p][q] = bias + sum w[r][s] * x[p + r - top][q + s - left]
        planes_3x3(direct::PaddedFrame<T>(g.h, g.w, g.top, g.left, g.p + 2, g.q + 2), x, g.n * g.c, g.c, w, bias,
                   g.p, g.q, y, threads);
        return;
    }
    parallel_for(g.n * g.c, threads, [&](int64_t plane) {
        const int64_t c = plane % g.c;
        forward_plane(g, x + plane * g.hw(), w + c * g.taps(), bias ? bias[c] : T(0), y + plane * g.pq());
    });
}

// ---------------------------------------------------------------------------------------------
// backward_input
// ---------------------------------------------------------------------------------------------

// One plane: grad_y (P, Q) -> grad_x (H, W), w (R, S).
template <typename T>
void backward_input_plane(const ConvGeometry& g, const T* gy, const T* w, T* gx) {
    if (g.sw == 1) {  // (3x3 with stride 1 and dilation 1: planes_3x3)
        // grad_x[h, c] = sum_{r,s} grad_y[(h + top - r*dh) / sh, c + left - s*dw] * w[r, s]: the
        // forward taps with the kernel rotated (tap R-1-r, S-1-s reads column c + s'*dw - off)
        thread_local std::vector<T> rotated;
        rotated.resize(size_t(g.taps()));
        for (int64_t t = 0; t < g.taps(); ++t) rotated[size_t(t)] = w[g.taps() - 1 - t];
        plane_rows(g.h, g.w, rotated.data(), g.r, g.s, g.dw, g.dw * (g.s - 1) - g.left, g.q, T(0), gx,
                   [&](int64_t h, int64_t rr) -> const T* {
                       const int64_t num = h + g.top - (g.r - 1 - rr) * g.dh;
                       if (num < 0 || num % g.sh != 0 || num / g.sh >= g.p) return nullptr;
                       return gy + (num / g.sh) * g.q;
                   });
        return;
    }
    std::fill(gx, gx + g.hw(), T(0));
    for (int64_t p = 0; p < g.p; ++p)
        for (int64_t r = 0; r < g.r; ++r) {
            const int64_t ih = p * g.sh + r * g.dh - g.top;
            if (ih < 0 || ih >= g.h) continue;
            T* dst = gx + ih * g.w;
            for (int64_t q = 0; q < g.q; ++q) {
                const T d = gy[p * g.q + q];
                for (int64_t s = 0; s < g.s; ++s) {
                    const int64_t iw = q * g.sw + s * g.dw - g.left;
                    if (iw >= 0 && iw < g.w) dst[iw] += d * w[r * g.s + s];
                }
            }
        }
}

template <typename T>
void backward_input(const ConvGeometry& g, const T* gy, const T* w, T* gx) {
    const int threads = threads_for(2.0 * double(g.n * g.c) * double(g.taps()) * double(g.pq()));
    if (unit_3x3<T>(g, g.w)) {
        // grad_x[h][c] = sum_{r,s} w[2-r][2-s] * grad_y[h + r - (2 - top)][c + s - (2 - left)]: the
        // forward kernel, rotated, on grad_y's frames (top, left > 2 crop grad_y)
        std::vector<T> rotated(size_t(g.c * 9));
        for (int64_t c = 0; c < g.c; ++c)
            for (int t = 0; t < 9; ++t) rotated[size_t(c * 9 + t)] = w[c * 9 + 8 - t];
        planes_3x3(direct::PaddedFrame<T>(g.p, g.q, 2 - g.top, 2 - g.left, g.h + 2, g.w + 2), gy, g.n * g.c, g.c,
                   rotated.data(), static_cast<const T*>(nullptr), g.h, g.w, gx, threads);
        return;
    }
    parallel_for(g.n * g.c, threads, [&](int64_t plane) {
        backward_input_plane(g, gy + plane * g.pq(), w + (plane % g.c) * g.taps(), gx + plane * g.hw());
    });
}

// ---------------------------------------------------------------------------------------------
// backward_weight
// ---------------------------------------------------------------------------------------------

// acc[t] += sum_{p,q} gy[p, q] * x[p*sh + r_t*dh - top, q + s_t*dw - left] for NT taps (column
// stride 1), lane-wise (the lanes are added at the end of the chunk).
template <typename T, int NT>
void weight_taps(const ConvGeometry& g, const T* gy, const T* x, const int64_t* tap, typename Vec<T>::V* acc) {
    using X = Vec<T>;
    constexpr int64_t L = X::L;
    const int64_t qa = std::clamp<int64_t>(g.left, 0, g.q);
    const int64_t qb = std::clamp<int64_t>(g.w - (g.s - 1) * g.dw + g.left, qa, g.q);
    thread_local std::vector<T> zeros;  // the rows outside the image: no branch per vector
    zeros.assign(size_t(g.w), T(0));
    typename X::V a[NT];
    for (int t = 0; t < NT; ++t) a[t] = acc[t];
    for (int64_t p = 0; p < g.p; ++p) {
        const T* row[NT];
        int64_t shift[NT];
        for (int t = 0; t < NT; ++t) {
            const int64_t ih = p * g.sh + (tap[t] / g.s) * g.dh - g.top;
            row[t] = ih >= 0 && ih < g.h ? x + ih * g.w : zeros.data();
            shift[t] = (tap[t] % g.s) * g.dw - g.left;
        }
        const T* d = gy + p * g.q;
        // masked loads (slow) only where a vector crosses the end of grad_y's row or x's row
        const auto edge = [&](int64_t q) {
            const typename X::V dv = q + L <= g.q ? X::load(d + q) : X::load(d + q, X::mask(0, g.q - q));
            for (int t = 0; t < NT; ++t) {
                const int64_t col = q + shift[t];
                const typename X::V xv = col >= 0 && col + L <= g.w ? X::load(row[t] + col)
                                                                    : X::load(row[t] + col, X::mask(-col, g.w - col));
                a[t] = X::fma(dv, xv, a[t]);
            }
        };
        int64_t q = 0;
        for (; q < qa; q += L) edge(q);
        for (; q + L <= qb; q += L) {
            const typename X::V dv = X::load(d + q);
#pragma GCC unroll 16
            for (int t = 0; t < NT; ++t) a[t] = X::fma(dv, X::load(row[t] + q + shift[t]), a[t]);
        }
        for (; q < g.q; q += L) edge(q);
    }
    for (int t = 0; t < NT; ++t) acc[t] = a[t];
}

template <typename T>
void weight_taps(int nt, const ConvGeometry& g, const T* gy, const T* x, const int64_t* tap, typename Vec<T>::V* acc) {
    switch (nt) {
        case 9: weight_taps<T, 9>(g, gy, x, tap, acc); break;
        case 8: weight_taps<T, 8>(g, gy, x, tap, acc); break;
        case 7: weight_taps<T, 7>(g, gy, x, tap, acc); break;
        case 6: weight_taps<T, 6>(g, gy, x, tap, acc); break;
        case 5: weight_taps<T, 5>(g, gy, x, tap, acc); break;
        case 4: weight_taps<T, 4>(g, gy, x, tap, acc); break;
        case 3: weight_taps<T, 3>(g, gy, x, tap, acc); break;
        case 2: weight_taps<T, 2>(g, gy, x, tap, acc); break;
        default: weight_taps<T, 1>(g, gy, x, tap, acc); break;
    }
}

constexpr int kMaxTapBlock = 9;
constexpr int64_t kMaxBatchChunks = 8;

// out[t] = sum over images [n0, n1) of channel c, for every tap.
template <typename T>
void weight_chunk(const ConvGeometry& g, const T* gy, const T* x, int64_t c, int64_t n0, int64_t n1, T* out) {
    if (unit_3x3<T>(g, g.q)) {  // x[p + r - top][q + s - left] = src[p + r][q + s]
        const direct::PaddedFrame<T> f(g.h, g.w, g.top, g.left, g.p + 2, round_up(g.q, Vec<T>::L) + 2);
        T* const buf = frame_buffers(f);
        typename Vec<T>::V acc[9];
        for (auto& a : acc) a = Vec<T>::zero();
        for (int64_t n = n0; n < n1; ++n) {
            const int64_t plane = n * g.c + c;
            f.copy(x + plane * g.hw(), buf);
            direct::plane_weights_3x3(gy + plane * g.pq(), buf + f.lead, f.ld, g.p, g.q, acc);
        }
        for (int t = 0; t < 9; ++t) out[t] = Vec<T>::sum(acc[t]);
        return;
    }
    if (g.sw == 1) {
        for (int64_t t0 = 0; t0 < g.taps(); t0 += kMaxTapBlock) {
            const int nt = int(std::min<int64_t>(kMaxTapBlock, g.taps() - t0));
            int64_t tap[kMaxTapBlock];
            typename Vec<T>::V acc[kMaxTapBlock];
            for (int t = 0; t < nt; ++t) {
                tap[t] = t0 + t;
                acc[t] = Vec<T>::zero();
            }
            for (int64_t n = n0; n < n1; ++n) {
                const int64_t plane = n * g.c + c;
                weight_taps(nt, g, gy + plane * g.pq(), x + plane * g.hw(), tap, acc);
            }
            for (int t = 0; t < nt; ++t) out[t0 + t] = Vec<T>::sum(acc[t]);
        }
        return;
    }
    std::fill(out, out + g.taps(), T(0));
    for (int64_t n = n0; n < n1; ++n) {
        const T* d = gy + (n * g.c + c) * g.pq();
        const T* xp = x + (n * g.c + c) * g.hw();
        for (int64_t p = 0; p < g.p; ++p)
            for (int64_t r = 0; r < g.r; ++r) {
                const int64_t ih = p * g.sh + r * g.dh - g.top;
                if (ih < 0 || ih >= g.h) continue;
                for (int64_t s = 0; s < g.s; ++s) {
                    T sum = 0;
                    for (int64_t q = 0; q < g.q; ++q) {
                        const int64_t iw = q * g.sw + s * g.dw - g.left;
                        if (iw >= 0 && iw < g.w) sum += d[p * g.q + q] * xp[ih * g.w + iw];
                    }
                    out[r * g.s + s] += sum;
                }
            }
    }
}

template <typename T>
void backward_weight(const ConvGeometry& g, const T* gy, const T* x, T* gw) {
    // the batch is cut into chunks that depend on N only, so the partial sums and the order they
    // are added in do not depend on the thread count
    const int64_t chunks = std::max<int64_t>(1, std::min(g.n, kMaxBatchChunks));
    const int64_t per_chunk = (g.n + chunks - 1) / std::max<int64_t>(chunks, 1);
    const int64_t taps = g.taps();
    std::vector<T> partial(size_t(g.c * chunks * taps), T(0));
    const int threads = threads_for(2.0 * double(g.n * g.c) * double(taps) * double(g.pq()));
    parallel_for(g.c * chunks, threads, [&](int64_t task) {
        const int64_t c = task / chunks, k = task % chunks;
        const int64_t n0 = std::min(g.n, k * per_chunk), n1 = std::min(g.n, n0 + per_chunk);
        weight_chunk(g, gy, x, c, n0, n1, partial.data() + task * taps);
    });
    for (int64_t c = 0; c < g.c; ++c)
        for (int64_t t = 0; t < taps; ++t) {
            T sum = 0;
            for (int64_t k = 0; k < chunks; ++k) sum += partial[size_t((c * chunks + k) * taps + t)];
            gw[c * taps + t] = sum;
        }
}

// ---------------------------------------------------------------------------------------------
// Python boundary
// ---------------------------------------------------------------------------------------------

py::array depthwise_forward(const py::array& x, const py::array& weight, const std::optional<py::array>& bias,
                            const Pair& stride, const Padding& padding, const Pair& dilation) {
    constexpr const char* op = "conv2d_depthwise_forward";
    return direct::forward_call(
        op, x, weight, bias,
        [&](const Shape& xs, const Shape& ws) {
            return direct::depthwise_geometry(op, xs, ws, -1, -1, stride, padding, dilation);
        },
        [](const ConvGeometry& g, const auto* x, const auto* w, const auto* b, auto* y) { forward(g, x, w, b, y); });
}

py::array depthwise_backward_input(const py::array& grad_y, const py::array& weight,
                                   const std::vector<int64_t>& input_shape, const Pair& stride,
                                   const Padding& padding, const Pair& dilation) {
    constexpr const char* op = "conv2d_depthwise_backward_input";
    return direct::gradient_call(
        op, grad_y, weight, "weight", input_shape, "input_shape", true,
        [&](const Shape& xs, const Shape& ws, int64_t p, int64_t q) {
            return direct::depthwise_geometry(op, xs, ws, p, q, stride, padding, dilation);
        },
        [](const ConvGeometry& g, const auto* gy, const auto* w, auto* gx) { backward_input(g, gy, w, gx); });
}

py::array depthwise_backward_weight(const py::array& grad_y, const py::array& x,
                                    const std::vector<int64_t>& weight_shape, const Pair& stride,
                                    const Padding& padding, const Pair& dilation) {
    constexpr const char* op = "conv2d_depthwise_backward_weight";
    return direct::gradient_call(
        op, grad_y, x, "x", weight_shape, "weight_shape", false,
        [&](const Shape& xs, const Shape& ws, int64_t p, int64_t q) {
            return direct::depthwise_geometry(op, xs, ws, p, q, stride, padding, dilation);
        },
        [](const ConvGeometry& g, const auto* gy, const auto* xp, auto* gw) { backward_weight(g, gy, xp, gw); });
}

}  // namespace

PYCONV_REGISTER_FAMILY(conv2d_depthwise) {
    using py::arg;
    m.def("conv2d_depthwise_forward", &depthwise_forward, arg("x"), arg("weight"), arg("bias"),
          arg("stride"), arg("padding"), arg("dilation"),
          "y (N, C, P, Q) = depthwise conv2d(x (N, C, H, W), weight (C, 1, R, S)) + bias (C,) or None; "
          "groups = C; padding is (top, bottom, left, right).");
    m.def("conv2d_depthwise_backward_input", &depthwise_backward_input, arg("grad_y"), arg("weight"),
          arg("input_shape"), arg("stride"), arg("padding"), arg("dilation"),
          "grad_x (input_shape) of the depthwise conv2d from grad_y (N, C, P, Q).");
    m.def("conv2d_depthwise_backward_weight", &depthwise_backward_weight, arg("grad_y"), arg("x"),
          arg("weight_shape"), arg("stride"), arg("padding"), arg("dilation"),
          "grad_weight (C, 1, R, S) of the depthwise conv2d from grad_y (N, C, P, Q) and x (N, C, H, W).");
}

}  // namespace pyconv::cpu
