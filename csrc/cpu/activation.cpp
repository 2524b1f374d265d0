// Elementwise activations, forward and backward (contract: pyconv/backends/contract.py;
// semantics: pyconv/backends/numpy_ref/activation.py): relu, leaky_relu, sigmoid, tanh, gelu
// ('none': erf form, 'tanh': the tanh approximation).
//
// float32 runs 8 lanes of AVX2 per step, the ragged end through masked loads and stores so that
// every element takes the same code path (results do not depend on position or thread split).
// float64 follows the reference's formulas with the C library's exp / tanh / erf.
// The float32 gelu forms avoid the cancellation of 1 + erf(x/sqrt2) and 1 + tanh(u) for negative
// x: 0.5 (1 + erf(x/sqrt2)) = 0.5 erfc(-x/sqrt2) and 0.5 (1 + tanh(u)) = sigmoid(2u).
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>

#include "register.h"
#include "validate.h"
#include "vector_math.h"

// float64 follows the reference formula by formula: no a * b + c contracted into one rounding
// (explicit AVX2 FMA intrinsics in the float32 paths are unaffected)
#pragma GCC optimize("fp-contract=off")

namespace pyconv::cpu {

namespace {

constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kGeluCubic = 0.044715;

// Below these sizes one thread runs the op: cheap ops are memory-bound and a fork/join costs
// about as much as 50k of them; the transcendental ones pay off sooner.
constexpr int64_t kCheapParallelMin = 1 << 16;
constexpr int64_t kCostlyParallelMin = 1 << 13;

#if PYCONV_VMATH_AVX2
using vmath::splat;
using V = __m256;
#endif

// ---------------------------------------------------------------------------------------------
// The ops: scalar forms for float64, 8-lane forms for float32. Without AVX2 (the portable
// build) float32 takes the scalar forms, except gelu's: those are evaluated in double in the
// cancellation-free forms of the 8-lane code and rounded once.
// Forward ops take x; backward ops take (grad_y, saved) with saved = y or x as the contract says.
// ---------------------------------------------------------------------------------------------

struct ReluForward {
    static constexpr bool binary = false;
    template <typename T> T operator()(T x) const { return x <= T(0) ? T(0) : x; }  // NaN stays
#if PYCONV_VMATH_AVX2
    V operator()(V x) const { return _mm256_max_ps(_mm256_setzero_ps(), x); }  // NaN: 2nd operand
#endif
};

struct ReluBackward {
    static constexpr bool binary = true;
    // a select, not a product: an infinite gradient where y <= 0 gives 0, not NaN
    template <typename T> T operator()(T g, T y) const { return y > T(0) ? g : T(0); }
#if PYCONV_VMATH_AVX2
    V operator()(V g, V y) const {
        return _mm256_and_ps(g, _mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ));
    }
#endif
};

struct LeakyReluForward {
    static constexpr bool binary = false;
    double slope;
    template <typename T> T operator()(T x) const { return x > T(0) ? x : x * T(slope); }
#if PYCONV_VMATH_AVX2
    V operator()(V x) const {
        const V positive = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
        return _mm256_blendv_ps(_mm256_mul_ps(x, splat(float(slope))), x, positive);
    }
#endif
};

struct LeakyReluBackward {
    static constexpr bool binary = true;
    double slope;
    template <typename T> T operator()(T g, T x) const { return x > T(0) ? g : g * T(slope); }
#if PYCONV_VMATH_AVX2
    V operator()(V g, V x) const {
        const V positive = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
        return _mm256_blendv_ps(_mm256_mul_ps(g, splat(float(slope))), g, positive);
    }
#endif
};

struct SigmoidForward {
    static constexpr bool binary = false;
    template <typename T> T operator()(T x) const {
        const T e = std::exp(-std::fabs(x));  // at most 1: neither form overflows
        return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
    }
#if PYCONV_VMATH_AVX2
    V operator()(V x) const { return vmath::sigmoid8(x); }
#endif
};

struct SigmoidBackward {
    static constexpr bool binary = true;
    template <typename T> T operator()(T g, T y) const { return g * y * (T(1) - y); }
#if PYCONV_VMATH_AVX2
    V operator()(V g, V y) const {
        return _mm256_mul_ps(_mm256_mul_ps(g, y), _mm256_sub_ps(splat(1.0f), y));
    }
#endif
};

struct TanhForward {
    static constexpr bool binary = false;
    template <typename T> T operator()(T x) const { return std::tanh(x); }
#if PYCONV_VMATH_AVX2
    V operator()(V x) const { return vmath::tanh8(x); }
#endif
};

struct TanhBackward {
    static constexpr bool binary = true;
    template <typename T> T operator()(T g, T y) const { return g * (T(1) - y * y); }
#if PYCONV_VMATH_AVX2
    V operator()(V g, V y) const {
        return _mm256_mul_ps(g, _mm256_sub_ps(splat(1.0f), _mm256_mul_ps(y, y)));
    }
#endif
};

struct GeluErfForward {
    static constexpr bool binary = false;
    template <typename T> T operator()(T x) const {
        return T(0.5) * x * (T(1) + std::erf(x * T(kInvSqrt2)));
    }
    float operator()(float x) const { return float(0.5 * double(x) * std::erfc(-double(x) * kInvSqrt2)); }
#if PYCONV_VMATH_AVX2
    V operator()(V x) const {
        return _mm256_mul_ps(_mm256_mul_ps(x, splat(0.5f)), vmath::two_phi8(x));
    }
#endif
};

struct GeluErfBackward {
    static constexpr bool binary = true;
    // d/dx x Phi(x) = Phi(x) + x phi(x)
    template <typename T> T operator()(T g, T x) const {
        const T cdf = T(0.5) * (T(1) + std::erf(x * T(kInvSqrt2)));
        const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
        return g * (cdf + x * pdf);
    }
    float operator()(float g, float x) const {
        const double xd = x, cdf = 0.5 * std::erfc(-xd * kInvSqrt2);
        return float(double(g) * (cdf + xd * (kInvSqrt2Pi * std::exp(-0.5 * xd * xd))));
    }
#if PYCONV_VMATH_AVX2
    V operator()(V g, V x) const {
        const V cdf = _mm256_mul_ps(splat(0.5f), vmath::two_phi8(x));
        const V pdf = _mm256_mul_ps(splat(float(kInvSqrt2Pi)), vmath::gauss8(x));
        return _mm256_mul_ps(g, _mm256_fmadd_ps(x, pdf, cdf));
    }
#endif
};

// u = sqrt(2/pi) (x + 0.044715 x^3)
template <typename T> T gelu_tanh_inner(T x) {
    return T(kSqrt2OverPi) * (x + T(kGeluCubic) * (x * x * x));
}

// (s, 1 - s) with s = sigmoid(2u) = 0.5 (1 + tanh(u)), each without cancellation (u has x's sign)
inline void half_one_plus_tanh(double x, double& s, double& one_minus_s) {
    const double e = std::exp(-2.0 * std::fabs(gelu_tanh_inner(x))), big = 1.0 / (1.0 + e), small = e * big;
    s = x >= 0.0 ? big : small;
    one_minus_s = x >= 0.0 ? small : big;
}

#if PYCONV_VMATH_AVX2
// (s, 1 - s) with s = sigmoid(2u) = 0.5 (1 + tanh(u)), each without cancellation. u is computed
// in double and exp(-2|u|) takes it as a float pair: rounding u to float would cost
// 2|u| * 2^-24 relative in the tail (about 70 ulp at x = -9).
inline void half_one_plus_tanh(V x, V& s, V& one_minus_s) {
    const __m256d k = _mm256_set1_pd(-2.0 * kSqrt2OverPi), c = _mm256_set1_pd(kGeluCubic);
    auto minus_two_abs_u = [&](__m128 half) {
        const __m256d xd = _mm256_cvtps_pd(half);
        const __m256d ad = _mm256_andnot_pd(_mm256_set1_pd(-0.0), xd);
        const __m256d v = _mm256_mul_pd(k, _mm256_fmadd_pd(_mm256_mul_pd(c, ad), _mm256_mul_pd(ad, ad), ad));
        return _mm256_max_pd(_mm256_set1_pd(-300.0), v);  // exp is 0 there; -inf would split to NaN
    };
    V hi, lo;
    vmath::split_pair(minus_two_abs_u(_mm256_castps256_ps128(x)), minus_two_abs_u(_mm256_extractf128_ps(x, 1)),
                      hi, lo);
    const V e = vmath::exp8_pair(hi, lo);
    const V inv = _mm256_div_ps(splat(1.0f), _mm256_add_ps(splat(1.0f), e));
    const V small = _mm256_mul_ps(e, inv);
    const V non_negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);  // u has x's sign
    s = _mm256_blendv_ps(small, inv, non_negative);
    one_minus_s = _mm256_blendv_ps(inv, small, non_negative);
}
#endif

struct GeluTanhForward {
    static constexpr bool binary = false;
    template <typename T> T operator()(T x) const {
        return T(0.5) * x * (T(1) + std::tanh(gelu_tanh_inner(x)));
    }
    float operator()(float x) const {
        double s, one_minus_s;
        half_one_plus_tanh(double(x), s, one_minus_s);
        return float(double(x) * s);
    }
#if PYCONV_VMATH_AVX2
    V operator()(V x) const {
        V s, one_minus_s;
        half_one_plus_tanh(x, s, one_minus_s);
        return _mm256_mul_ps(x, s);
    }
#endif
};

struct GeluTanhBackward {
    static constexpr bool binary = true;
    // 0.5 (1 + t) + 0.5 x (1 - t^2) u'(x) with t = tanh(u)
    template <typename T> T operator()(T g, T x) const {
        const T t = std::tanh(gelu_tanh_inner(x));
        const T d_inner = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluCubic) * x * x);
        return g * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * d_inner);
    }
    // in double, x^3 and x^2 do not overflow for any finite float
    float operator()(float g, float x) const {
        const double xd = x, d_inner = kSqrt2OverPi * (1.0 + 3.0 * kGeluCubic * xd * xd);
        double s, one_minus_s;
        half_one_plus_tanh(xd, s, one_minus_s);
        return float(double(g) * (s + 2.0 * xd * s * one_minus_s * d_inner));
    }
#if PYCONV_VMATH_AVX2
    // with s = 0.5 (1 + t): 0.5 (1 - t^2) = 2 s (1 - s)
    V operator()(V g, V x) const {
        V s, one_minus_s;
        half_one_plus_tanh(x, s, one_minus_s);
        const V d_inner = _mm256_mul_ps(splat(float(kSqrt2OverPi)),
                                        _mm256_fmadd_ps(splat(float(3 * kGeluCubic)), _mm256_mul_ps(x, x), splat(1.0f)));
        V slope = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(splat(2.0f), x), _mm256_mul_ps(s, one_minus_s)), d_inner);
        // finite |x| > 1e3: s (1 - s) is exactly 0 but 2x or x^2 may overflow (inf * 0); the
        // term is 0, as in the reference. Infinite x keeps the reference's NaN.
        const V a = vmath::abs8(x);
        const V huge = _mm256_and_ps(_mm256_cmp_ps(a, splat(1e3f), _CMP_GT_OQ),
                                     _mm256_cmp_ps(a, splat(INFINITY), _CMP_LT_OQ));
        slope = _mm256_andnot_ps(huge, slope);
        return _mm256_mul_ps(g, _mm256_add_ps(s, slope));
    }
#endif
};

// ---------------------------------------------------------------------------------------------
// The loops: out[i] = op(a[i]) or op(a[i], b[i]) over [begin, end)
// ---------------------------------------------------------------------------------------------

#if PYCONV_VMATH_AVX2
// lanes [0, count) set, count in [0, 8]
inline __m256i lane_mask(int64_t count) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)), lanes);
}
#endif

template <typename T, class Op>
void map_range(T* out, const T* a, const T* b, int64_t begin, int64_t end, const Op& op) {
#if PYCONV_VMATH_AVX2
    if constexpr (std::is_same_v<T, float>) {
        int64_t i = begin;
        for (; i + 8 <= end; i += 8) {
            const V va = _mm256_loadu_ps(a + i);
            if constexpr (Op::binary)
                _mm256_storeu_ps(out + i, op(va, _mm256_loadu_ps(b + i)));
            else
                _mm256_storeu_ps(out + i, op(va));
        }
        if (i < end) {  // the ragged end through the same vector code
            const __m256i m = lane_mask(end - i);
            const V va = _mm256_maskload_ps(a + i, m);
            if constexpr (Op::binary)
                _mm256_maskstore_ps(out + i, m, op(va, _mm256_maskload_ps(b + i, m)));
            else
                _mm256_maskstore_ps(out + i, m, op(va));
        }
        return;
    }
#endif
    for (int64_t i = begin; i < end; ++i) {
        if constexpr (Op::binary)
            out[i] = op(a[i], b[i]);
        else
            out[i] = op(a[i]);
    }
}

// Checks one float array of any shape (a) or two of one shape and dtype (grad_y and the saved
// array), then returns fn applied elementwise as a new array.
template <class OpT>
py::array apply(const char* op, int64_t min_parallel, const OpT& fn, const py::array& a,
                const char* a_name, const py::array* b = nullptr, const char* b_name = nullptr) {
    return dispatch_float(float_dtype(a, op, a_name), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape shape = check_array<T>(a, op, a_name, static_cast<int>(a.ndim()));
        if (b) {
            const Shape bs = check_array<T>(*b, op, b_name, static_cast<int>(b->ndim()));
            expect_shape(op, b_name, bs, shape);
        }
        const int64_t n = checked_numel(shape, op);
        auto out = new_array<T>(shape);
        T* o = out.mutable_data();
        const T* pa = data_of<T>(a);
        const T* pb = b ? data_of<T>(*b) : nullptr;
        {
            py::gil_scoped_release release;
            vmath::for_each_range(n, min_parallel, [&](int64_t begin, int64_t end) {
                map_range<T>(o, pa, pb, begin, end, fn);
            });
        }
        return std::move(out);
    });
}

bool gelu_uses_tanh(const std::string& approximate) {
    if (approximate == "none") return false;
    if (approximate == "tanh") return true;
    throw py::value_error("gelu: approximate must be 'none' or 'tanh', got '" + approximate + "'");
}

}  // namespace

PYCONV_REGISTER_FAMILY(activation) {
    using py::arg;
    m.def("relu_forward", [](const py::array& x) {
        return apply("relu_forward", kCheapParallelMin, ReluForward{}, x, "x");
    }, arg("x"), "max(x, 0) (NaN propagates).");
    m.def("relu_backward", [](const py::array& grad_y, const py::array& y) {
        return apply("relu_backward", kCheapParallelMin, ReluBackward{}, grad_y, "grad_y", &y, "y");
    }, arg("grad_y"), arg("y"), "grad_y where y > 0, else 0.");
    m.def("leaky_relu_forward", [](const py::array& x, double slope) {
        return apply("leaky_relu_forward", kCheapParallelMin, LeakyReluForward{slope}, x, "x");
    }, arg("x"), arg("negative_slope"), "x if x > 0 else negative_slope * x.");
    m.def("leaky_relu_backward", [](const py::array& grad_y, const py::array& x, double slope) {
        return apply("leaky_relu_backward", kCheapParallelMin, LeakyReluBackward{slope}, grad_y,
                     "grad_y", &x, "x");
    }, arg("grad_y"), arg("x"), arg("negative_slope"), "grad_y if x > 0 else negative_slope * grad_y.");
    m.def("sigmoid_forward", [](const py::array& x) {
        return apply("sigmoid_forward", kCostlyParallelMin, SigmoidForward{}, x, "x");
    }, arg("x"), "1 / (1 + exp(-x)), no overflow for large |x|.");
    m.def("sigmoid_backward", [](const py::array& grad_y, const py::array& y) {
        return apply("sigmoid_backward", kCheapParallelMin, SigmoidBackward{}, grad_y, "grad_y", &y, "y");
    }, arg("grad_y"), arg("y"), "grad_y * y * (1 - y).");
    m.def("tanh_forward", [](const py::array& x) {
        return apply("tanh_forward", kCostlyParallelMin, TanhForward{}, x, "x");
    }, arg("x"), "tanh(x).");
    m.def("tanh_backward", [](const py::array& grad_y, const py::array& y) {
        return apply("tanh_backward", kCheapParallelMin, TanhBackward{}, grad_y, "grad_y", &y, "y");
    }, arg("grad_y"), arg("y"), "grad_y * (1 - y**2).");
    m.def("gelu_forward", [](const py::array& x, const std::string& approximate) {
        if (gelu_uses_tanh(approximate))
            return apply("gelu_forward", kCostlyParallelMin, GeluTanhForward{}, x, "x");
        return apply("gelu_forward", kCostlyParallelMin, GeluErfForward{}, x, "x");
    }, arg("x"), arg("approximate"), "x * Phi(x) ('none') or its tanh approximation ('tanh').");
    m.def("gelu_backward", [](const py::array& grad_y, const py::array& x, const std::string& approximate) {
        if (gelu_uses_tanh(approximate))
            return apply("gelu_backward", kCostlyParallelMin, GeluTanhBackward{}, grad_y, "grad_y", &x, "x");
        return apply("gelu_backward", kCostlyParallelMin, GeluErfBackward{}, grad_y, "grad_y", &x, "x");
    }, arg("grad_y"), arg("x"), arg("approximate"), "Gradient of gelu_forward with respect to x.");
}

}  // namespace pyconv::cpu
