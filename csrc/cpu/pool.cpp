// max_pool2d, avg_pool2d and adaptive_avg_pool2d, forward and backward (contract:
// pyconv/backends/contract.py), threaded over (n, c) planes.
//
// max_pool2d forward visits a window's taps in row-major order and lets a tap replace the
// running maximum when it is greater or NaN (PyTorch's CPU rule): the first maximum wins ties,
// a NaN wins over numbers, and a window whose taps are all -inf or padding reports its first tap
// at or after 0 (which may lie outside the plane when dilation steps over the whole input).
// The 2x2 / stride 2 windows of a float32 plane without padding take an AVX2 path: two input
// rows are loaded contiguously, de-interleaved into the four taps of 8 outputs by shuffles, and
// the same replace rule runs as compare + blend. Backward passes scatter (or gather) per plane in
// output order, so gradients do not depend on the thread count.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define PYCONV_POOL_AVX2 1
#else
#define PYCONV_POOL_AVX2 0
#endif

#include "parallel.h"
#include "register.h"
#include "validate.h"

namespace pyconv::cpu {

namespace {

using Pair = std::array<int64_t, 2>;

// One axis of a pooling window sweep.
struct Axis {
    int64_t in = 0, out = 0, k = 1, s = 1, p = 0, d = 1;

    int64_t start(int64_t o) const { return o * s - p; }
    // taps [lo, hi) of window o that land inside [0, in)
    int64_t tap_lo(int64_t o) const {
        const int64_t st = start(o);
        return st >= 0 ? 0 : (-st + d - 1) / d;
    }
    int64_t tap_hi(int64_t o) const {
        const int64_t st = start(o);
        if (st >= in) return 0;
        return std::min(k, (in - 1 - st) / d + 1);
    }
};

// PyTorch's pooling output length (pyconv.shapes.pool_output_size).
int64_t pool_out(int64_t length, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    const int64_t span = length + 2 * p - d * (k - 1) - 1;
    auto floordiv = [](int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); };
    int64_t out = (ceil_mode ? -floordiv(-span, s) : floordiv(span, s)) + 1;
    if (ceil_mode && (out - 1) * s >= length + p) --out;
    return out;
}

void check_geometry(const char* op, Pair k, Pair s, Pair p, Pair d) {
    for (int i = 0; i < 2; ++i)
        if (k[i] < 1 || s[i] < 1 || d[i] < 1 || p[i] < 0)
            throw py::value_error(std::string(op) + ": kernel_size, stride and dilation must be >= 1 and "
                                  "padding >= 0, got kernel_size=" + shape_str({k[0], k[1]}) + " stride=" +
                                  shape_str({s[0], s[1]}) + " padding=" + shape_str({p[0], p[1]}) +
                                  " dilation=" + shape_str({d[0], d[1]}));
}

// Row and column axes of a pooling call on an (N, C, H, W) input; every axis needs a window.
std::array<Axis, 2> axes_of(const char* op, const Shape& in, Pair k, Pair s, Pair p, Pair d, bool ceil_mode) {
    check_geometry(op, k, s, p, d);
    std::array<Axis, 2> a;
    for (int i = 0; i < 2; ++i) {
        a[i] = Axis{in[2 + i], pool_out(in[2 + i], k[i], s[i], p[i], d[i], ceil_mode), k[i], s[i], p[i], d[i]};
        if (a[i].out < 1)
            throw py::value_error(std::string(op) + ": the window does not fit the input of shape " + shape_str(in));
    }
    return a;
}

// f(plane) for every plane in [0, planes) on the process's threads (one below 64K values).
template <class F>
void for_planes(int64_t planes, int64_t plane_work, F&& f) {
    const double work = double(planes) * double(std::max<int64_t>(plane_work, 1));
    const int threads = work < 65536.0 ? 1 : max_threads();
    const int64_t per = std::max<int64_t>(1, planes / (int64_t(threads) * 8));
    const int64_t tasks = (planes + per - 1) / per;
    parallel_for(tasks, threads, [&](int64_t t) {
        for (int64_t pl = t * per; pl < std::min(planes, (t + 1) * per); ++pl) f(pl);
    });
}

// ----- max pooling ---------------------------------------------------------------------------------

template <typename T>
void max_plane(const T* x, const Axis& ah, const Axis& aw, T* y, int64_t* ind) {
    const int64_t W = aw.in;
    for (int64_t p = 0; p < ah.out; ++p) {
        const int64_t h0 = ah.start(p), ilo = ah.tap_lo(p), ihi = ah.tap_hi(p);
        for (int64_t q = 0; q < aw.out; ++q) {
            const int64_t w0 = aw.start(q), jlo = aw.tap_lo(q), jhi = aw.tap_hi(q);
            T best = -std::numeric_limits<T>::infinity();
            int64_t at = (h0 + ilo * ah.d) * W + (w0 + jlo * aw.d);
            for (int64_t i = ilo; i < ihi; ++i) {
                const int64_t row = (h0 + i * ah.d) * W;
                for (int64_t j = jlo; j < jhi; ++j) {
                    const T v = x[row + w0 + j * aw.d];
                    if (v > best || std::isnan(v)) {
                        best = v;
                        at = row + w0 + j * aw.d;
                    }
                }
            }
            y[p * aw.out + q] = best;
            ind[p * aw.out + q] = at;
        }
    }
}

#if PYCONV_POOL_AVX2
// 2x2 windows, stride 2, no padding, every window inside the plane (2P <= H, 2Q <= W).
void max_plane_2x2(const float* x, int64_t W, int64_t P, int64_t Q, float* y, int64_t* ind) {
    alignas(32) static const int32_t bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    auto mask = [&](int64_t r) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bits + 8 - r)); };
    auto deinterleave = [](__m256 a, __m256 b, int imm_even) {
        const __m256 s = imm_even ? _mm256_shuffle_ps(a, b, 0x88) : _mm256_shuffle_ps(a, b, 0xDD);
        return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), 0xD8));
    };
    const __m256i lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    const __m256i off1 = _mm256_set1_epi32(1), offW = _mm256_set1_epi32(int32_t(W)),
                  offW1 = _mm256_set1_epi32(int32_t(W + 1));
    for (int64_t p = 0; p < P; ++p) {
        const float* r0 = x + 2 * p * W;
        const float* r1 = r0 + W;
        const __m256i base = _mm256_set1_epi64x(2 * p * W);
        for (int64_t q = 0; q < Q; q += 8) {
            const int64_t r = std::min<int64_t>(8, Q - q);
            __m256 a0, b0, a1, b1;
            if (r == 8) {
                a0 = _mm256_loadu_ps(r0 + 2 * q), b0 = _mm256_loadu_ps(r0 + 2 * q + 8);
                a1 = _mm256_loadu_ps(r1 + 2 * q), b1 = _mm256_loadu_ps(r1 + 2 * q + 8);
            } else {
                const __m256i ma = mask(std::min<int64_t>(2 * r, 8)), mb = mask(std::max<int64_t>(2 * r - 8, 0));
                a0 = _mm256_maskload_ps(r0 + 2 * q, ma), b0 = _mm256_maskload_ps(r0 + 2 * q + 8, mb);
                a1 = _mm256_maskload_ps(r1 + 2 * q, ma), b1 = _mm256_maskload_ps(r1 + 2 * q + 8, mb);
            }
            __m256 best = deinterleave(a0, b0, 1);
            __m256i off = _mm256_setzero_si256();
            auto visit = [&](__m256 v, __m256i tap_off) {
                const __m256 wins = _mm256_or_ps(_mm256_cmp_ps(v, best, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
                best = _mm256_blendv_ps(best, v, wins);
                off = _mm256_blendv_epi8(off, tap_off, _mm256_castps_si256(wins));
            };
            visit(deinterleave(a0, b0, 0), off1);
            visit(deinterleave(a1, b1, 1), offW);
            visit(deinterleave(a1, b1, 0), offW1);
            // plane index = 2p*W + 2(q + lane) + tap offset
            const __m256i rel = _mm256_add_epi32(off, _mm256_add_epi32(lane2, _mm256_set1_epi32(int32_t(2 * q))));
            const __m256i lo = _mm256_add_epi64(base, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(rel)));
            const __m256i hi = _mm256_add_epi64(base, _mm256_cvtepi32_epi64(_mm256_extracti128_si256(rel, 1)));
            float* yq = y + p * Q + q;
            int64_t* iq = ind + p * Q + q;
            if (r == 8) {
                _mm256_storeu_ps(yq, best);
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(iq), lo);
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(iq + 4), hi);
            } else {
                _mm256_maskstore_ps(yq, mask(r), best);
                const __m256i m = mask(r);
                _mm256_maskstore_epi64(reinterpret_cast<long long*>(iq), _mm256_cvtepi32_epi64(_mm256_castsi256_si128(m)), lo);
                _mm256_maskstore_epi64(reinterpret_cast<long long*>(iq + 4),
                                       _mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 1)), hi);
            }
        }
    }
}
#endif

template <typename T>
bool use_2x2(const Axis& ah, const Axis& aw) {
    if (!PYCONV_POOL_AVX2 || !std::is_same<T, float>::value) return false;
    const bool geom = ah.k == 2 && aw.k == 2 && ah.s == 2 && aw.s == 2 && ah.p == 0 && aw.p == 0 && ah.d == 1 &&
                      aw.d == 1;
    return geom && 2 * ah.out <= ah.in && 2 * aw.out <= aw.in && aw.in < (int64_t(1) << 30);
}

py::tuple max_pool2d_forward(const py::array& x, Pair kernel_size, Pair stride, Pair padding, Pair dilation,
                             bool ceil_mode) {
    constexpr const char* op = "max_pool2d_forward";
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const Shape s = check_array<T>(x, op, "x", 4);
        const auto [ah, aw] = axes_of(op, s, kernel_size, stride, padding, dilation, ceil_mode);
        auto y = new_array<T>({s[0], s[1], ah.out, aw.out});
        auto ind = new_array<int64_t>({s[0], s[1], ah.out, aw.out});
        const T* in = data_of<T>(x);
        T* out = y.mutable_data();
        int64_t* idx = ind.mutable_data();
        const int64_t plane = s[2] * s[3], oplane = ah.out * aw.out;
        {
            py::gil_scoped_release release;
            const bool fast = use_2x2<T>(ah, aw);
            for_planes(s[0] * s[1], oplane * ah.k * aw.k + plane, [&](int64_t pl) {
#if PYCONV_POOL_AVX2
                if constexpr (std::is_same<T, float>::value) {
                    if (fast) {
                        max_plane_2x2(in + pl * plane, aw.in, ah.out, aw.out, out + pl * oplane, idx + pl * oplane);
                        return;
                    }
                }
#endif
                (void)fast;
                max_plane<T>(in + pl * plane, ah, aw, out + pl * oplane, idx + pl * oplane);
            });
        }
        return py::make_tuple(y, ind);
    });
}

// grad_x[plane][indices[o]] += grad_y[o] in output order; indices outside the plane (windows
// without any input cell) are skipped.
py::array max_pool2d_backward(const py::array& grad_y, const py::array& indices, const std::vector<int64_t>& input_shape,
                              Pair kernel_size, Pair stride, Pair padding, Pair dilation) {
    constexpr const char* op = "max_pool2d_backward";
    const Shape in = check_dims(input_shape, 4, op, "input_shape");
    check_geometry(op, kernel_size, stride, padding, dilation);
    return dispatch_float(float_dtype(grad_y, op, "grad_y"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape gs = check_array<T>(grad_y, op, "grad_y", 4);
        if (gs[0] != in[0] || gs[1] != in[1])
            throw py::value_error(std::string(op) + ": grad_y of shape " + shape_str(gs) +
                                  " does not match input_shape " + shape_str(in));
        expect_shape(op, "indices", check_array<int64_t>(indices, op, "indices", 4), gs);
        auto grad_x = new_array<T>(in);
        const T* g = data_of<T>(grad_y);
        const int64_t* idx = data_of<int64_t>(indices);
        T* gx = grad_x.mutable_data();
        const int64_t plane = in[2] * in[3], oplane = gs[2] * gs[3];
        {
            py::gil_scoped_release release;
            for_planes(in[0] * in[1], plane + oplane, [&](int64_t pl) {
                T* dst = gx + pl * plane;
                std::fill(dst, dst + plane, T(0));
                const T* src = g + pl * oplane;
                const int64_t* at = idx + pl * oplane;
                for (int64_t o = 0; o < oplane; ++o)
                    if (at[o] >= 0 && at[o] < plane) dst[at[o]] += src[o];
            });
        }
        return std::move(grad_x);
    });
}

// ----- average pooling ----------------------------------------------------------------------------

// Divisor of window o along one axis (PyTorch's rule; the 2-D divisor is the product).
int64_t avg_extent(const Axis& a, int64_t o, bool count_include_pad) {
    const int64_t st = a.start(o), end = std::min(st + a.k, a.in + a.p);
    if (count_include_pad) return end - st;
    return std::min(end, a.in) - std::max<int64_t>(st, 0);
}

// One axis's windows, worked out once per call rather than per output element: window o covers
// input indices [first[o], last[o]) and divides by extent[o] along this axis.
struct AxisWindows {
    std::vector<int64_t> first, last, extent;
};

AxisWindows avg_windows(const Axis& a, bool count_include_pad) {
    AxisWindows w;
    for (int64_t o = 0; o < a.out; ++o) {
        const int64_t lo = a.tap_lo(o), hi = std::max(lo, a.tap_hi(o));
        w.first.push_back(a.start(o) + lo);
        w.last.push_back(a.start(o) + hi);
        w.extent.push_back(avg_extent(a, o, count_include_pad));
    }
    return w;
}

struct AvgGeometry {
    Axis h, w;
    AxisWindows rows, cols;
    std::optional<double> divisor_override;

    template <typename T>
    T divisor(int64_t p, int64_t q) const {
        return divisor_override ? T(*divisor_override) : T(rows.extent[p] * cols.extent[q]);
    }
};

AvgGeometry avg_geometry(const char* op, const Shape& in, Pair k, Pair s, Pair p, bool ceil_mode,
                         bool count_include_pad, std::optional<double> divisor_override) {
    const auto [ah, aw] = axes_of(op, in, k, s, p, {1, 1}, ceil_mode);
    return AvgGeometry{ah, aw, avg_windows(ah, count_include_pad), avg_windows(aw, count_include_pad),
                       divisor_override};
}

// A row of `width` zeros in this thread's scratch, reused across planes and calls.
template <typename T>
T* zeroed_row(int64_t width) {
    thread_local std::vector<T> row;
    row.assign(static_cast<size_t>(width), T(0));
    return row.data();
}

// The sum of x[h * ld + w] over rows [h0, h1) and columns [w0, w1), in 16 independent partial
// sums (vectorisable without reassociating one serial add chain: a 56 x 56 global average pool
// took 4.3x PyTorch's time with a single chain); windows of whole rows are one run.
template <typename T>
T window_sum(const T* x, int64_t ld, int64_t h0, int64_t h1, int64_t w0, int64_t w1) {
    if (w0 == 0 && w1 == ld) {
        w1 = (h1 - h0) * ld;
        h1 = h0 + 1;
    }
    constexpr int kParts = 16;
    T part[kParts] = {};
    T rest = 0;
    for (int64_t h = h0; h < h1; ++h) {
        const T* row = x + h * ld + w0;
        const int64_t len = w1 - w0;
        int64_t i = 0;
        for (; i + kParts <= len; i += kParts)
            for (int k = 0; k < kParts; ++k) part[k] += row[i + k];
        for (; i < len; ++i) rest += row[i];
    }
    for (int k = 0; k < kParts; k += 2) rest += part[k] + part[k + 1];
    return rest;
}

py::array avg_pool2d_forward(const py::array& x, Pair kernel_size, Pair stride, Pair padding, bool ceil_mode,
                             bool count_include_pad, std::optional<double> divisor_override) {
    constexpr const char* op = "avg_pool2d_forward";
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape s = check_array<T>(x, op, "x", 4);
        const AvgGeometry gm = avg_geometry(op, s, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                            divisor_override);
        const Axis &ah = gm.h, &aw = gm.w;
        auto y = new_array<T>({s[0], s[1], ah.out, aw.out});
        const T* in = data_of<T>(x);
        T* out = y.mutable_data();
        const int64_t W = s[3], plane = s[2] * s[3], oplane = ah.out * aw.out;
        const AxisWindows &rows = gm.rows, &cols = gm.cols;
        {
            py::gil_scoped_release release;
            for_planes(s[0] * s[1], oplane * ah.k * aw.k + plane, [&](int64_t pl) {
                const T* xp = in + pl * plane;
                T* yp = out + pl * oplane;
                for (int64_t p = 0; p < ah.out; ++p) {
                    // rows first (contiguous adds across the whole row), then each window's columns
                    T* column_sums = zeroed_row<T>(W);
                    for (int64_t h = rows.first[p]; h < rows.last[p]; ++h)
                        for (int64_t w = 0; w < W; ++w) column_sums[w] += xp[h * W + w];
                    for (int64_t q = 0; q < aw.out; ++q) {
                        T sum = 0;
                        for (int64_t w = cols.first[q]; w < cols.last[q]; ++w) sum += column_sums[w];
                        yp[p * aw.out + q] = sum / gm.divisor<T>(p, q);
                    }
                }
            });
        }
        return std::move(y);
    });
}

py::array avg_pool2d_backward(const py::array& grad_y, const std::vector<int64_t>& input_shape, Pair kernel_size,
                              Pair stride, Pair padding, bool ceil_mode, bool count_include_pad,
                              std::optional<double> divisor_override) {
    constexpr const char* op = "avg_pool2d_backward";
    const Shape in = check_dims(input_shape, 4, op, "input_shape");
    const AvgGeometry gm = avg_geometry(op, in, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                        divisor_override);
    const Axis &ah = gm.h, &aw = gm.w;
    return dispatch_float(float_dtype(grad_y, op, "grad_y"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        expect_shape(op, "grad_y", check_array<T>(grad_y, op, "grad_y", 4), {in[0], in[1], ah.out, aw.out});
        auto grad_x = new_array<T>(in);
        const T* g = data_of<T>(grad_y);
        T* gx = grad_x.mutable_data();
        const int64_t W = in[3], plane = in[2] * in[3], oplane = ah.out * aw.out;
        const AxisWindows &rows = gm.rows, &cols = gm.cols;
        {
            py::gil_scoped_release release;
            for_planes(in[0] * in[1], oplane * ah.k * aw.k + plane, [&](int64_t pl) {
                T* dst = gx + pl * plane;
                std::fill(dst, dst + plane, T(0));
                const T* src = g + pl * oplane;
                for (int64_t p = 0; p < ah.out; ++p) {
                    // the windows' shares along the row first, then added to each of its input rows
                    T* shares = zeroed_row<T>(W);
                    for (int64_t q = 0; q < aw.out; ++q) {
                        const T share = src[p * aw.out + q] / gm.divisor<T>(p, q);
                        for (int64_t w = cols.first[q]; w < cols.last[q]; ++w) shares[w] += share;
                    }
                    for (int64_t h = rows.first[p]; h < rows.last[p]; ++h)
                        for (int64_t w = 0; w < W; ++w) dst[h * W + w] += shares[w];
                }
            });
        }
        return std::move(grad_x);
    });
}

// ----- adaptive average pooling ---------------------------------------------------------------------

// Window o of an axis of length L cut into O: [floor(o*L/O), ceil((o+1)*L/O)).
std::vector<int64_t> adaptive_bounds(int64_t L, int64_t O) {
    std::vector<int64_t> b(2 * O);
    for (int64_t o = 0; o < O; ++o) {
        b[2 * o] = o * L / O;
        b[2 * o + 1] = ((o + 1) * L + O - 1) / O;
    }
    return b;
}

py::array adaptive_avg_pool2d_forward(const py::array& x, Pair output_size) {
    constexpr const char* op = "adaptive_avg_pool2d_forward";
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape s = check_array<T>(x, op, "x", 4);
        const int64_t P = output_size[0], Q = output_size[1], H = s[2], W = s[3];
        if (P < 0 || Q < 0 || ((P > 0 || Q > 0) && (H < 1 || W < 1)))
            throw py::value_error(std::string(op) + ": output_size must be >= 0 and the input non-empty, got " +
                                  shape_str({P, Q}) + " for x of shape " + shape_str(s));
        auto y = new_array<T>({s[0], s[1], P, Q});
        const auto rb = adaptive_bounds(H, P), cb = adaptive_bounds(W, Q);
        const T* in = data_of<T>(x);
        T* out = y.mutable_data();
        {
            py::gil_scoped_release release;
            for_planes(s[0] * s[1], H * W + P * Q, [&](int64_t pl) {
                const T* xp = in + pl * H * W;
                T* yp = out + pl * P * Q;
                for (int64_t p = 0; p < P; ++p)
                    for (int64_t q = 0; q < Q; ++q) {
                        const T sum = window_sum(xp, W, rb[2 * p], rb[2 * p + 1], cb[2 * q], cb[2 * q + 1]);
                        yp[p * Q + q] = sum / T((rb[2 * p + 1] - rb[2 * p]) * (cb[2 * q + 1] - cb[2 * q]));
                    }
            });
        }
        return std::move(y);
    });
}

py::array adaptive_avg_pool2d_backward(const py::array& grad_y, const std::vector<int64_t>& input_shape) {
    constexpr const char* op = "adaptive_avg_pool2d_backward";
    const Shape in = check_dims(input_shape, 4, op, "input_shape");
    return dispatch_float(float_dtype(grad_y, op, "grad_y"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape gs = check_array<T>(grad_y, op, "grad_y", 4);
        const int64_t P = gs[2], Q = gs[3], H = in[2], W = in[3];
        if (gs[0] != in[0] || gs[1] != in[1] || ((P > 0 || Q > 0) && (H < 1 || W < 1)))
            throw py::value_error(std::string(op) + ": grad_y of shape " + shape_str(gs) +
                                  " does not match input_shape " + shape_str(in));
        auto grad_x = new_array<T>(in);
        const auto rb = adaptive_bounds(H, P), cb = adaptive_bounds(W, Q);
        const T* g = data_of<T>(grad_y);
        T* gx = grad_x.mutable_data();
        {
            py::gil_scoped_release release;
            for_planes(in[0] * in[1], H * W + P * Q, [&](int64_t pl) {
                T* dst = gx + pl * H * W;
                std::fill(dst, dst + H * W, T(0));
                const T* src = g + pl * P * Q;
                for (int64_t p = 0; p < P; ++p)
                    for (int64_t q = 0; q < Q; ++q) {
                        const T share =
                            src[p * Q + q] / T((rb[2 * p + 1] - rb[2 * p]) * (cb[2 * q + 1] - cb[2 * q]));
                        for (int64_t h = rb[2 * p]; h < rb[2 * p + 1]; ++h)
                            for (int64_t w = cb[2 * q]; w < cb[2 * q + 1]; ++w) dst[h * W + w] += share;
                    }
            });
        }
        return std::move(grad_x);
    });
}

}  // namespace

PYCONV_REGISTER_FAMILY(pool) {
    using py::arg;
    m.def("max_pool2d_forward", &max_pool2d_forward, arg("x"), arg("kernel_size"), arg("stride"), arg("padding"),
          arg("dilation"), arg("ceil_mode"), "x (N, C, H, W) -> (y, indices int64), each (N, C, P, Q).");
    m.def("max_pool2d_backward", &max_pool2d_backward, arg("grad_y"), arg("indices"), arg("input_shape"),
          arg("kernel_size"), arg("stride"), arg("padding"), arg("dilation"),
          "Scatter-add grad_y (N, C, P, Q) to indices; returns grad_x of input_shape.");
    m.def("avg_pool2d_forward", &avg_pool2d_forward, arg("x"), arg("kernel_size"), arg("stride"), arg("padding"),
          arg("ceil_mode"), arg("count_include_pad"), arg("divisor_override"),
          "Window means, x (N, C, H, W) -> y (N, C, P, Q).");
    m.def("avg_pool2d_backward", &avg_pool2d_backward, arg("grad_y"), arg("input_shape"), arg("kernel_size"),
          arg("stride"), arg("padding"), arg("ceil_mode"), arg("count_include_pad"), arg("divisor_override"),
          "Gradient of avg_pool2d_forward; returns grad_x of input_shape.");
    m.def("adaptive_avg_pool2d_forward", &adaptive_avg_pool2d_forward, arg("x"), arg("output_size"),
          "Adaptive window means, x (N, C, H, W) -> y (N, C, P, Q).");
    m.def("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward, arg("grad_y"), arg("input_shape"),
          "Gradient of adaptive_avg_pool2d_forward; returns grad_x of input_shape.");
}

}  // namespace pyconv::cpu
