// Depthwise 3x3 forward, stride 1, dilation 1 (any padding), one (image, channel) plane:
//   y[p][q] = bias + sum_{r,s} w[3r + s] * x[p + r - top][q + s - left]   (0 outside x)
// (conv2d_depthwise.cpp also runs it over grad_y with the kernel rotated: the input gradient.)
//
// Each plane is copied into a zero-padded "frame" (so that no load is ever masked), then a
// block of PB = 5 output rows is computed one vector column at a time: the (PB + 2) x 3 source
// vectors are loaded once each and feed every tap that reads them, with the 9 broadcast
// weights and the PB accumulators held in registers (9 + 5 + 1 of the 16 ymm registers).
// Measured on this machine (Zen 1) against the former kernel (4 rows, weights in an array, the
// plane copied with memcpy + fill per row): docs/cpu/conv_special.md. What pays:
//   - the frame's zeros are written once per thread and geometry, each plane copies only its
//     values, with aligned stores (the frame column of the source's first value is
//     vector-aligned); the former copy took as long as a third of the FMAs
//   - the next plane is prefetched while this one computes, a slice per row block
//   - the weights as named values (an array of vectors may alias the output stores, so it was
//     reloaded every column) and each load kept in a register (not folded into up to 3 FMAs)
//   - 5 rows per block: 5 independent chains of 9 FMAs (3% faster than 4; 6 and 7 slower)
#pragma once

#include <algorithm>
#include <cstdint>

#include "conv2d_depthwise_3x3.h"  // stream()
#include "conv2d_depthwise_vec.h"

namespace pyconv::cpu::direct {

// Keeps v in a register: without it the compiler folds a load into every FMA that uses it (up to
// 3 loads of the same vector), and the loads become the bound.
template <typename V>
inline V in_register(V v) {
#ifdef PYCONV_CPU_AVX2
    asm("" : "+x"(v));
#endif
    return v;
}

// The 9 weights of a plane, broadcast, as named values.
template <typename T>
struct Weights3x3 {
    typename Vec<T>::V w0, w1, w2, w3, w4, w5, w6, w7, w8;
    explicit Weights3x3(const T* w)
        : w0(Vec<T>::set1(w[0])), w1(Vec<T>::set1(w[1])), w2(Vec<T>::set1(w[2])), w3(Vec<T>::set1(w[3])),
          w4(Vec<T>::set1(w[4])), w5(Vec<T>::set1(w[5])), w6(Vec<T>::set1(w[6])), w7(Vec<T>::set1(w[7])),
          w8(Vec<T>::set1(w[8])) {}
    // weight of tap (r, s); r and s are compile-time constants after unrolling
    typename Vec<T>::V operator()(int r, int s) const {
        switch (3 * r + s) {
            case 0: return w0;
            case 1: return w1;
            case 2: return w2;
            case 3: return w3;
            case 4: return w4;
            case 5: return w5;
            case 6: return w6;
            case 7: return w7;
            default: return w8;
        }
    }
};

// The zero-padded copy ("frame") of a source plane of src_rows x src_cols moved by (dy, dx):
// frame[i][j] = src[i - dy][j - dx], 0 outside src, for i < rows and j < width (a negative
// move crops the source). Rows are ld apart; the frame starts `lead` values into its buffer so
// that the column of the first copied source value is vector-aligned in a 32-byte aligned buffer.
template <typename T>
struct PaddedFrame {
    static constexpr int64_t L = Vec<T>::L;
    int64_t src_rows, src_cols, rows, width;
    int64_t oy, ox;                // frame row / column of the first copied source value (>= 0)
    int64_t skip_rows, skip_cols;  // source rows / columns before it (cropped)
    int64_t lead, ld;

    PaddedFrame(int64_t src_rows_, int64_t src_cols_, int64_t dy, int64_t dx, int64_t rows_, int64_t width_)
        : src_rows(src_rows_), src_cols(src_cols_), rows(rows_), width(width_), oy(std::max<int64_t>(dy, 0)),
          ox(std::max<int64_t>(dx, 0)), skip_rows(std::max<int64_t>(-dy, 0)), skip_cols(std::max<int64_t>(-dx, 0)),
          lead((L - ox % L) % L),
          ld(round_up_to(lead + std::max(width, ox + round_up_to(copied_cols(), L)), L)) {}
    static int64_t round_up_to(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
    int64_t copied_cols() const { return std::max<int64_t>(src_cols - skip_cols, 0); }
    bool operator==(const PaddedFrame& o) const {
        return src_rows == o.src_rows && src_cols == o.src_cols && rows == o.rows && width == o.width &&
               oy == o.oy && ox == o.ox && skip_rows == o.skip_rows && skip_cols == o.skip_cols;
    }
    // values of one frame buffer
    int64_t size() const { return rows * ld; }
    // zeros everywhere (once per buffer and geometry)
    void clear(T* buf) const { std::fill(buf, buf + size(), T(0)); }
    // src's values into the buffer buf (its frame starts at buf + lead), a last partial vector
    // per row with zeros past the row; the zeros around them are the same for every plane and
    // stay from clear().
    void copy(const T* src, T* buf) const {
        using X = Vec<T>;
        // locals: the vector stores may alias any memory, so members would be reloaded per store
        const int64_t n = copied_cols(), full = n / L * L, src_ld = src_cols, stride = ld;
        const int64_t i1 = std::min(rows, oy + src_rows - skip_rows);
        const T* s = src + skip_rows * src_ld + skip_cols;
        T* row = buf + oy * stride + lead + ox;
        for (int64_t i = oy; i < i1; ++i, row += stride, s += src_ld) {
            for (int64_t k = 0; k < full; k += L) X::store_aligned(row + k, X::load(s + k));
            if (full < n) X::store_aligned(row + full, X::load(s + full, X::mask(0, n - full)));
        }
    }
};

// PB output rows of `cols` (>= L) columns from source rows src[0 .. PB+2) (readable at columns
// [0, cols + 2)): out[j][c] = bias + sum_{r,s} w(r, s) * src[j + r][c + s]. The last vector of a
// row is moved back to end at `cols` (its overlap is recomputed, same values).
template <typename T, int PB, bool Stream>
__attribute__((always_inline)) inline void forward_rows_3x3(const T* const* src, const Weights3x3<T>& w, int64_t cols,
                                                            T bias, T* out, int64_t ldo) {
    using X = Vec<T>;
    constexpr int64_t L = X::L;
    for (int64_t c0 = 0; c0 < cols; c0 += L) {
        const int64_t c = std::min(c0, cols - L);
        typename X::V acc[PB];
#pragma GCC unroll 8
        for (int j = 0; j < PB; ++j) acc[j] = X::set1(bias);
#pragma GCC unroll 8
        for (int i = 0; i < PB + 2; ++i)
#pragma GCC unroll 3
            for (int s = 0; s < 3; ++s) {
                const typename X::V v = in_register(X::load(src[i] + c + s));
#pragma GCC unroll 3
                for (int r = 0; r < 3; ++r)
                    if (i - r >= 0 && i - r < PB) acc[i - r] = X::fma(w(r, s), v, acc[i - r]);
            }
#pragma GCC unroll 8
        for (int j = 0; j < PB; ++j) {
            if (Stream)
                stream(out + j * ldo + c, acc[j]);
            else
                X::store(out + j * ldo + c, acc[j]);
        }
    }
}

// A plane of rows x cols (cols >= L) outputs from a frame (rows + 2 rows of stride ld >= cols + 2).
// The `next_count` values at `next` (the next plane's source, or null) are prefetched meanwhile,
// a slice per row block.
template <typename T, bool Stream>
void forward_plane_3x3(const T* frame, int64_t ld, const T* wp, int64_t rows, int64_t cols, T bias, T* out,
                       const T* next, int64_t next_count) {
    constexpr int PB = 5;
    const Weights3x3<T> w(wp);
    const char* const pf = reinterpret_cast<const char*>(next);
    const int64_t pf_bytes = next ? next_count * int64_t(sizeof(T)) : 0;
    const int64_t pf_step = pf_bytes / std::max<int64_t>(1, rows / PB) + 64;
    int64_t pf_done = 0;  // bytes of the next plane prefetched so far
    const T* s[PB + 2];
    const auto rows_at = [&](int64_t i0, int n) {
        for (int k = 0; k < n + 2; ++k) s[k] = frame + (i0 + k) * ld;
    };
    int64_t i = 0;
    for (; i + PB <= rows; i += PB) {
        rows_at(i, PB);
        for (const int64_t e = std::min(pf_done + pf_step, pf_bytes); pf_done < e; pf_done += 64)
            __builtin_prefetch(pf + pf_done, 0, 3);
        forward_rows_3x3<T, PB, Stream>(s, w, cols, bias, out + i * cols, cols);
    }
    rows_at(i, int(rows - i));
    switch (rows - i) {
        case 4: forward_rows_3x3<T, 4, Stream>(s, w, cols, bias, out + i * cols, cols); break;
        case 3: forward_rows_3x3<T, 3, Stream>(s, w, cols, bias, out + i * cols, cols); break;
        case 2: forward_rows_3x3<T, 2, Stream>(s, w, cols, bias, out + i * cols, cols); break;
        case 1: forward_rows_3x3<T, 1, Stream>(s, w, cols, bias, out + i * cols, cols); break;
        default: break;
    }
}

}  // namespace pyconv::cpu::direct
