// Source rows of one image for the small-C kernels. TapRows: for a source plane row `row` of
// channel c and kernel column s, a contiguous run of `lanes` values whose lane q is
//
//   src[c, row, q * sw + s * dw - off]        (0 outside the plane)
//
// With sw = 1 each source row is copied once with `off` zeros in front and zeros behind, and tap
// s starts s * dw into it; with sw > 1 each (row, s) is gathered into its own run. Rows outside
// the plane are a shared zero run. Built per image (and per row range), reused by every output
// channel, so the copies cost O(C * rows * width) against O(K * C * R * S * P * Q) arithmetic.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "conv_packers.h"  // ConvGeometry, copy_clipped

namespace pyconv::cpu::small_c {

template <typename T>
class TapRows {
public:
    // src: the image's (channels, height, width) plane; rows [row0, row1) are built.
    void build(const T* src, int64_t channels, int64_t height, int64_t width, int64_t row0, int64_t row1,
               int64_t lanes, int64_t s_taps, int64_t sw, int64_t dw, int64_t off) {
        channels_ = channels;
        height_ = height;
        row0_ = std::clamp<int64_t>(row0, 0, height);
        row1_ = std::clamp<int64_t>(row1, row0_, height);
        sw_ = sw;
        dw_ = dw;
        runs_ = sw == 1 ? 1 : s_taps;
        run_ = sw == 1 ? lanes + (s_taps - 1) * dw : lanes;
        const int64_t rows = row1_ - row0_;
        buffer_.resize(size_t(channels * rows * runs_ * run_));
        zero_.assign(size_t(run_ + (sw == 1 ? 0 : (s_taps - 1) * dw)), T(0));
        for (int64_t c = 0; c < channels; ++c)
            for (int64_t h = row0_; h < row1_; ++h) {
                const T* line = src + (c * height + h) * width;
                T* d = buffer_.data() + ((c * rows + h - row0_) * runs_) * run_;
                if (sw == 1) {
                    copy_clipped(d, 1, line, -off, 1, run_, width);
                } else {
                    for (int64_t s = 0; s < s_taps; ++s) copy_clipped(d + s * run_, 1, line, s * dw - off, sw, run_, width);
                }
            }
    }

    // lanes values for channel c, source row h (any integer), kernel column s
    const T* tap(int64_t c, int64_t h, int64_t s) const {
        if (h < row0_ || h >= row1_) return zero_.data();
        const T* run = buffer_.data() + ((c * (row1_ - row0_) + h - row0_) * runs_) * run_;
        return sw_ == 1 ? run + s * dw_ : run + s * run_;
    }

private:
    std::vector<T> buffer_, zero_;
    int64_t channels_ = 0, height_ = 0, row0_ = 0, row1_ = 0, sw_ = 1, dw_ = 1, runs_ = 1, run_ = 0;
};

// The input rows output rows [p0, p1) of image n read (stride 1), as S column-shifted copies with
// the output's row stride Q: xs[s][c][i][q] = x[c, p0 - top + i, q + s*dw - left] (0 outside), so
// tap (c, r, s) at the flat output index j = (p - p0) * Q + q is xs[s][c][r*dh*Q + j]: one flat
// run per tap. `slack` zeros at the end let a last vector read past the final run.
template <typename T>
struct ShiftedRows {
    std::vector<T> xs;
    int64_t rows = 0;

    void build(const ConvGeometry& g, const T* x_n, int64_t p0, int64_t p1, int64_t slack) {
        rows = p1 - p0 + (g.r - 1) * g.dh;
        xs.resize(size_t(g.s * g.c * rows * g.q + slack));
        std::fill(xs.end() - slack, xs.end(), T(0));
        for (int64_t s = 0; s < g.s; ++s)
            for (int64_t c = 0; c < g.c; ++c)
                for (int64_t i = 0; i < rows; ++i) {
                    const int64_t h = p0 - g.top + i;
                    T* d = xs.data() + ((s * g.c + c) * rows + i) * g.q;
                    copy_clipped(d, 1, h >= 0 && h < g.h ? x_n + (c * g.h + h) * g.w : nullptr, s * g.dw - g.left, 1,
                                 g.q, g.w);
                }
    }

    const T* tap(const ConvGeometry& g, int64_t c, int64_t r, int64_t s) const {
        return xs.data() + ((s * g.c + c) * rows + r * g.dh) * g.q;
    }
};

}  // namespace pyconv::cpu::small_c
