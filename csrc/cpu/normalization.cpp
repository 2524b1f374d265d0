// Batch normalisation over every axis but 1 (channels), forward (training with the in-place
// running-statistics update, and eval) and backward. Contract: pyconv/backends/contract.py;
// semantics: pyconv/backends/numpy_ref/normalization.py; the GPU twin: kernels/normalization.cu.
//
// x (N, C, *) is viewed as N * C rows of S contiguous elements (S = prod(*)), each row cut into
// segments of at most kSegment elements. Reductions are deterministic: every segment sums its
// elements in a fixed vector order into its own double, then each channel adds its segments in
// (n, segment) order, whatever the thread count. The variance takes two passes (mean first, then
// squared deviations from it). Statistics and per-element arithmetic are in double for both
// element types, as the reference computes, so float32 results differ from it only by the final
// rounding, and a large common offset (x ~ 1e4 +- 1) does not destroy the variance.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <vector>

#include "register.h"
#include "validate.h"
#include "vector_math.h"

namespace pyconv::cpu {

namespace {

constexpr int64_t kSegment = 1 << 15;     // elements per partial sum: rows longer than this split
constexpr int64_t kParallelMin = 1 << 15;  // elements: below, one thread

// Sizes of x viewed as (N, C, S), and its cut into segments.
struct Layout {
    int64_t n, c, s;
    int64_t segments;  // per row
    int64_t count() const { return n * s; }
    int64_t units() const { return n * c * segments; }
    // unit u = (row, segment): its channel and element range in x
    int64_t channel(int64_t u) const { return (u / segments) % c; }
    int64_t begin(int64_t u) const { return (u / segments) * s + (u % segments) * kSegment; }
    int64_t end(int64_t u) const {
        const int64_t seg_end = (u % segments + 1) * kSegment;
        return (u / segments) * s + (seg_end < s ? seg_end : s);
    }
};

Layout layout_of(const Shape& shape, const char* op) {
    Layout l{shape[0], shape[1], 1, 1};
    for (size_t i = 2; i < shape.size(); ++i) l.s = checked_mul(l.s, shape[i], op);
    l.segments = l.s > kSegment ? (l.s + kSegment - 1) / kSegment : 1;
    return l;
}

// f(unit) over every (row, segment) unit, threaded when x is large enough.
template <class F>
void for_each_unit(const Layout& l, F&& f) {
    const int64_t units = l.units();
    const int64_t per_unit = l.s < kSegment ? (l.s > 0 ? l.s : 1) : kSegment;
    const int64_t min_units = (kParallelMin + per_unit - 1) / per_unit;
    vmath::for_each_range(units, min_units, [&](int64_t begin, int64_t end) {
        for (int64_t u = begin; u < end; ++u) f(u);
    });
}

// Per-channel total of per-unit partial sums, in (n, segment) order.
std::vector<double> channel_totals(const Layout& l, const std::vector<double>& partial) {
    std::vector<double> total(l.c, 0.0);
    for (int64_t u = 0; u < l.units(); ++u) total[l.channel(u)] += partial[u];
    return total;
}

// ---------------------------------------------------------------------------------------------
// Row kernels over [i, end) of one channel, in double. Vector body of 8 elements (4 + 4 doubles
// in two accumulators), scalar tail; the order is fixed by the range alone.
// ---------------------------------------------------------------------------------------------

#if PYCONV_VMATH_AVX2
inline __m256d load4(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
inline __m256d load4(const double* p) { return _mm256_loadu_pd(p); }
inline void store4(float* p, __m256d v) { _mm_storeu_ps(p, _mm256_cvtpd_ps(v)); }
inline void store4(double* p, __m256d v) { _mm256_storeu_pd(p, v); }

inline double hsum(__m256d v) {
    const __m128d pair = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(pair, _mm_unpackhi_pd(pair, pair)));
}
#endif

// sum(x) and, with a center, sum((x - center)^2)
template <typename T>
double sum_range(const T* x, int64_t i, int64_t end) {
    double total = 0.0;
#if PYCONV_VMATH_AVX2
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    for (; i + 8 <= end; i += 8) {
        a0 = _mm256_add_pd(a0, load4(x + i));
        a1 = _mm256_add_pd(a1, load4(x + i + 4));
    }
    total = hsum(_mm256_add_pd(a0, a1));
#endif
    for (; i < end; ++i) total += double(x[i]);
    return total;
}

template <typename T>
double squared_deviation_range(const T* x, double center, int64_t i, int64_t end) {
    double total = 0.0;
#if PYCONV_VMATH_AVX2
    const __m256d m = _mm256_set1_pd(center);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    for (; i + 8 <= end; i += 8) {
        const __m256d d0 = _mm256_sub_pd(load4(x + i), m), d1 = _mm256_sub_pd(load4(x + i + 4), m);
        a0 = _mm256_fmadd_pd(d0, d0, a0);
        a1 = _mm256_fmadd_pd(d1, d1, a1);
    }
    total = hsum(_mm256_add_pd(a0, a1));
#endif
    for (; i < end; ++i) {
        const double d = double(x[i]) - center;
        total += d * d;
    }
    return total;
}

// y = (x - mean) * scale + shift
template <typename T>
void affine_range(T* y, const T* x, double mean, double scale, double shift, int64_t i, int64_t end) {
#if PYCONV_VMATH_AVX2
    const __m256d m = _mm256_set1_pd(mean), a = _mm256_set1_pd(scale), b = _mm256_set1_pd(shift);
    for (; i + 8 <= end; i += 8) {
        store4(y + i, _mm256_fmadd_pd(_mm256_sub_pd(load4(x + i), m), a, b));
        store4(y + i + 4, _mm256_fmadd_pd(_mm256_sub_pd(load4(x + i + 4), m), a, b));
    }
#endif
    for (; i < end; ++i) y[i] = T((double(x[i]) - mean) * scale + shift);
}

// (sum(g), sum(g * (x - mean)))
template <typename T>
void grad_sums_range(const T* g, const T* x, double mean, int64_t i, int64_t end, double& sum_g,
                     double& sum_gx) {
    double sg = 0.0, sgx = 0.0;
#if PYCONV_VMATH_AVX2
    const __m256d m = _mm256_set1_pd(mean);
    __m256d g0 = _mm256_setzero_pd(), g1 = _mm256_setzero_pd();
    __m256d p0 = _mm256_setzero_pd(), p1 = _mm256_setzero_pd();
    for (; i + 8 <= end; i += 8) {
        const __m256d a = load4(g + i), b = load4(g + i + 4);
        g0 = _mm256_add_pd(g0, a);
        g1 = _mm256_add_pd(g1, b);
        p0 = _mm256_fmadd_pd(a, _mm256_sub_pd(load4(x + i), m), p0);
        p1 = _mm256_fmadd_pd(b, _mm256_sub_pd(load4(x + i + 4), m), p1);
    }
    sg = hsum(_mm256_add_pd(g0, g1));
    sgx = hsum(_mm256_add_pd(p0, p1));
#endif
    for (; i < end; ++i) {
        sg += double(g[i]);
        sgx += double(g[i]) * (double(x[i]) - mean);
    }
    sum_g = sg;
    sum_gx = sgx;
}

// grad_x = (g - mean_g - (x - mean) * k) * scale   (k = invstd * mean(g * xhat))
template <typename T>
void grad_x_range(T* gx, const T* g, const T* x, double mean, double mean_g, double k, double scale,
                  int64_t i, int64_t end) {
#if PYCONV_VMATH_AVX2
    const __m256d m = _mm256_set1_pd(mean), mg = _mm256_set1_pd(mean_g), kk = _mm256_set1_pd(k),
                  a = _mm256_set1_pd(scale);
    for (; i + 4 <= end; i += 4) {
        const __m256d centered = _mm256_sub_pd(load4(x + i), m);
        const __m256d v = _mm256_fnmadd_pd(centered, kk, _mm256_sub_pd(load4(g + i), mg));
        store4(gx + i, _mm256_mul_pd(v, a));
    }
#endif
    for (; i < end; ++i)
        gx[i] = T(((double(g[i]) - mean_g) - (double(x[i]) - mean) * k) * scale);
}

// ---------------------------------------------------------------------------------------------
// The kernels
// ---------------------------------------------------------------------------------------------

// A (C,) array of x's dtype, or nullptr.
template <typename T>
T* per_channel(const std::optional<py::array>& a, const char* op, const char* name, int64_t c) {
    if (!a) return nullptr;
    expect_shape(op, name, check_array<T>(*a, op, name, 1), {c});
    return static_cast<T*>(const_cast<void*>(a->data()));
}

py::tuple batch_norm_forward(const py::array& x, const std::optional<py::array>& weight,
                             const std::optional<py::array>& bias,
                             const std::optional<py::array>& running_mean,
                             const std::optional<py::array>& running_var, bool training,
                             double momentum, double eps) {
    constexpr const char* op = "batch_norm_forward";
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        if (x.ndim() < 2)
            throw py::value_error(std::string(op) + ": x must have at least 2 dimensions (N, C, *), got shape " +
                                  shape_str(shape_of(x)));
        const Shape shape = check_array<T>(x, op, "x", static_cast<int>(x.ndim()));
        const Layout l = layout_of(shape, op);
        const T* w = per_channel<T>(weight, op, "weight", l.c);
        const T* b = per_channel<T>(bias, op, "bias", l.c);
        T* rm = per_channel<T>(running_mean, op, "running_mean", l.c);
        T* rv = per_channel<T>(running_var, op, "running_var", l.c);
        if (training && rv && l.count() == 1)
            throw py::value_error(std::string(op) + ": updating running_var with the unbiased variance "
                                  "needs more than one value per channel, got 1");
        if (!training && (!rm || !rv))
            throw py::value_error(std::string(op) + ": eval mode needs running_mean and running_var");
        auto y = new_array<T>(shape);
        auto save_mean = new_array<T>({l.c});
        auto save_invstd = new_array<T>({l.c});
        T* py_ = y.mutable_data();
        T* sm = save_mean.mutable_data();
        T* si = save_invstd.mutable_data();
        const T* px = data_of<T>(x);
        if (training && l.count() == 0) {  // empty batch: zero statistics, running stats untouched
            for (int64_t c = 0; c < l.c; ++c) sm[c] = si[c] = T(0);
            return py::make_tuple(std::move(y), std::move(save_mean), std::move(save_invstd));
        }
        {
            py::gil_scoped_release release;
            std::vector<double> mean(l.c), invstd(l.c);
            if (training) {
                const int64_t count = l.count();
                std::vector<double> partial(l.units());
                for_each_unit(l, [&](int64_t u) { partial[u] = sum_range(px, l.begin(u), l.end(u)); });
                mean = channel_totals(l, partial);
                for (double& m : mean) m /= double(count);
                for_each_unit(l, [&](int64_t u) {
                    partial[u] = squared_deviation_range(px, mean[l.channel(u)], l.begin(u), l.end(u));
                });
                const std::vector<double> squares = channel_totals(l, partial);
                for (int64_t c = 0; c < l.c; ++c) {
                    const double var = squares[c] / double(count);
                    invstd[c] = 1.0 / std::sqrt(var + eps);
                    if (rm) rm[c] = T((1.0 - momentum) * double(rm[c]) + momentum * mean[c]);
                    if (rv) {
                        const double unbiased = var * (double(count) / double(count - 1));
                        rv[c] = T((1.0 - momentum) * double(rv[c]) + momentum * unbiased);
                    }
                }
            } else {
                for (int64_t c = 0; c < l.c; ++c) {
                    mean[c] = double(rm[c]);
                    invstd[c] = 1.0 / std::sqrt(double(rv[c]) + eps);
                }
            }
            std::vector<double> scale(l.c), shift(l.c);
            for (int64_t c = 0; c < l.c; ++c) {
                sm[c] = T(mean[c]);
                si[c] = T(invstd[c]);
                scale[c] = w ? invstd[c] * double(w[c]) : invstd[c];
                shift[c] = b ? double(b[c]) : 0.0;
            }
            for_each_unit(l, [&](int64_t u) {
                const int64_t c = l.channel(u);
                affine_range(py_, px, mean[c], scale[c], shift[c], l.begin(u), l.end(u));
            });
        }
        return py::make_tuple(std::move(y), std::move(save_mean), std::move(save_invstd));
    });
}

py::tuple batch_norm_backward(const py::array& grad_y, const py::array& x,
                              const std::optional<py::array>& weight, const py::array& save_mean,
                              const py::array& save_invstd, bool training) {
    constexpr const char* op = "batch_norm_backward";
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        if (x.ndim() < 2)
            throw py::value_error(std::string(op) + ": x must have at least 2 dimensions (N, C, *), got shape " +
                                  shape_str(shape_of(x)));
        const Shape shape = check_array<T>(x, op, "x", static_cast<int>(x.ndim()));
        expect_shape(op, "grad_y", check_array<T>(grad_y, op, "grad_y", static_cast<int>(grad_y.ndim())), shape);
        const Layout l = layout_of(shape, op);
        const T* w = per_channel<T>(weight, op, "weight", l.c);
        const T* sm = per_channel<T>(save_mean, op, "save_mean", l.c);
        const T* si = per_channel<T>(save_invstd, op, "save_invstd", l.c);
        auto grad_x = new_array<T>(shape);
        auto grad_weight = new_array<T>({l.c});
        auto grad_bias = new_array<T>({l.c});
        T* gx = grad_x.mutable_data();
        T* gw = grad_weight.mutable_data();
        T* gb = grad_bias.mutable_data();
        const T* pg = data_of<T>(grad_y);
        const T* px = data_of<T>(x);
        {
            py::gil_scoped_release release;
            const int64_t units = l.units();
            std::vector<double> partial_g(units), partial_gx(units);
            for_each_unit(l, [&](int64_t u) {
                grad_sums_range(pg, px, double(sm[l.channel(u)]), l.begin(u), l.end(u), partial_g[u],
                                partial_gx[u]);
            });
            const std::vector<double> sum_g = channel_totals(l, partial_g);
            std::vector<double> sum_gxhat = channel_totals(l, partial_gx);
            const double count = double(l.count());
            std::vector<double> mean_g(l.c, 0.0), k(l.c, 0.0), scale(l.c);
            for (int64_t c = 0; c < l.c; ++c) {
                const double invstd = double(si[c]);
                sum_gxhat[c] *= invstd;
                gb[c] = T(sum_g[c]);
                gw[c] = T(sum_gxhat[c]);
                scale[c] = w ? invstd * double(w[c]) : invstd;
                if (training && count > 0) {
                    mean_g[c] = sum_g[c] / count;
                    k[c] = invstd * (sum_gxhat[c] / count);
                }
            }
            for_each_unit(l, [&](int64_t u) {
                const int64_t c = l.channel(u);
                grad_x_range(gx, pg, px, double(sm[c]), mean_g[c], k[c], scale[c], l.begin(u), l.end(u));
            });
        }
        return py::make_tuple(std::move(grad_x), std::move(grad_weight), std::move(grad_bias));
    });
}

}  // namespace

PYCONV_REGISTER_FAMILY(normalization) {
    using py::arg;
    m.def("batch_norm_forward", &batch_norm_forward, arg("x"), arg("weight"), arg("bias"),
          arg("running_mean"), arg("running_var"), arg("training"), arg("momentum"), arg("eps"),
          "(y like x (N, C, *), save_mean (C,), save_invstd (C,)); training updates the running "
          "statistics given in place.");
    m.def("batch_norm_backward", &batch_norm_backward, arg("grad_y"), arg("x"), arg("weight"),
          arg("save_mean"), arg("save_invstd"), arg("training"),
          "(grad_x like x, grad_weight (C,), grad_bias (C,)).");
}

}  // namespace pyconv::cpu
