// Fused optimizer updates (torch.optim.SGD, Adam, AdamW), in place on the caller's parameter and
// state arrays, one pass over the elements. Contract: pyconv/backends/contract.py.
//
// The arithmetic is the NumPy reference's (pyconv/backends/numpy_ref/optim.py), operation by
// operation in the element type T, which itself follows PyTorch's single-tensor path: the scalars
// PyTorch computes in Python floats (1 - dampening, the bias corrections, the lerp weight,
// 1 - lr * weight_decay) come from the Python side as doubles and are rounded to T once, every
// Python-side `if` is a compile-time flag, and a * b + c is never contracted into an FMA (one
// rounding instead of two would move float64 results off the reference's last bits). With IEEE
// sqrt and division the results are then bit-identical to the reference.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <type_traits>

#include "register.h"
#include "validate.h"
#include "vector_math.h"

// every function below: separate multiply and add roundings, like NumPy
#pragma GCC optimize("fp-contract=off")

namespace pyconv::cpu {

namespace {

constexpr int64_t kParallelMin = 1 << 15;

// g(std::true_type{}) or g(std::false_type{}): a runtime flag as a compile-time one.
template <class G>
void with_flag(bool flag, G&& g) {
    if (flag)
        g(std::true_type{});
    else
        g(std::false_type{});
}

// np.maximum: NaN if either argument is NaN.
template <typename T>
inline T nan_max(T a, T b) {
    return (a != a || a >= b) ? a : b;
}

struct SgdScalars {
    double lr, momentum, one_minus_dampening, weight_decay;
};

// d = (-grad if maximize else grad) [+ weight_decay * param]; with momentum,
// buf = d (first step) or buf * momentum + (1 - dampening) * d, d = d + momentum * buf (nesterov)
// or buf; param = param - lr * d.
template <typename T, bool Maximize, bool Decay, bool Momentum, bool Nesterov, bool First>
void sgd_range(T* __restrict__ param, T* __restrict__ buffer, const T* __restrict__ grad,
               const SgdScalars& s, int64_t begin, int64_t end) {
    const T lr = T(s.lr), momentum = T(s.momentum), omd = T(s.one_minus_dampening),
            wd = T(s.weight_decay);
    for (int64_t i = begin; i < end; ++i) {
        const T p = param[i];
        T d = Maximize ? -grad[i] : grad[i];
        if constexpr (Decay) d = d + wd * p;
        if constexpr (Momentum) {
            T buf = d;
            if constexpr (!First) {
                buf = buffer[i] * momentum;
                buf = buf + omd * d;
            }
            buffer[i] = buf;
            d = Nesterov ? d + momentum * buf : buf;
        }
        param[i] = p - lr * d;
    }
}

struct AdamScalars {
    double decay, lerp_weight, beta2, one_minus_beta2, neg_step_size, bias_correction2_sqrt, eps;
};

// Weight decay (Coupled: g += decay * param; Decoupled, AdamW: param *= decay), then
// m = lerp(m, g, 1 - beta1) in PyTorch's two-sided form (FromEnd: g - (g - m) * lerp_weight with
// lerp_weight = 1 - (1 - beta1); else m + lerp_weight * (g - m)), v = v * beta2 + (1 - beta2) g g,
// (amsgrad) v_max = max(v_max, v), param = param + neg_step_size * m / (sqrt(v) / bc2_sqrt + eps).
template <typename T, bool Maximize, bool Coupled, bool Decoupled, bool FromEnd, bool Amsgrad>
void adam_range(T* __restrict__ param, T* __restrict__ exp_avg, T* __restrict__ exp_avg_sq,
                T* __restrict__ max_exp_avg_sq, const T* __restrict__ grad, const AdamScalars& s,
                int64_t begin, int64_t end) {
    const T decay = T(s.decay), lw = T(s.lerp_weight), beta2 = T(s.beta2), omb2 = T(s.one_minus_beta2),
            step = T(s.neg_step_size), bc2 = T(s.bias_correction2_sqrt), eps = T(s.eps);
    for (int64_t i = begin; i < end; ++i) {
        T p = param[i];
        T g = Maximize ? -grad[i] : grad[i];
        if constexpr (Coupled) g = g + decay * p;
        if constexpr (Decoupled) p = p * decay;
        T m = exp_avg[i];
        m = FromEnd ? g - (g - m) * lw : m + lw * (g - m);
        exp_avg[i] = m;
        T v = exp_avg_sq[i] * beta2;
        v = v + omb2 * g * g;
        exp_avg_sq[i] = v;
        if constexpr (Amsgrad) {
            v = nan_max(max_exp_avg_sq[i], v);
            max_exp_avg_sq[i] = v;
        }
        const T denom = std::sqrt(v) / bc2 + eps;
        param[i] = p + step * m / denom;
    }
}

#if PYCONV_VMATH_AVX2
// Lanes of T on AVX2 with the scalar loop's IEEE operations (no FMA): same bits per element.
template <typename T>
struct Lanes;

template <>
struct Lanes<float> {
    using V = __m256;
    static constexpr int n = 8;
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static V set(float a) { return _mm256_set1_ps(a); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static V div(V a, V b) { return _mm256_div_ps(a, b); }
    static V sqrt(V a) { return _mm256_sqrt_ps(a); }
    static V neg(V a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
    static V nan_max(V a, V b) {  // a if a is NaN or a >= b, else b
        const V keep = _mm256_or_ps(_mm256_cmp_ps(a, a, _CMP_UNORD_Q), _mm256_cmp_ps(a, b, _CMP_GE_OQ));
        return _mm256_blendv_ps(b, a, keep);
    }
};

template <>
struct Lanes<double> {
    using V = __m256d;
    static constexpr int n = 4;
    static V load(const double* p) { return _mm256_loadu_pd(p); }
    static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
    static V set(double a) { return _mm256_set1_pd(a); }
    static V add(V a, V b) { return _mm256_add_pd(a, b); }
    static V sub(V a, V b) { return _mm256_sub_pd(a, b); }
    static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    static V div(V a, V b) { return _mm256_div_pd(a, b); }
    static V sqrt(V a) { return _mm256_sqrt_pd(a); }
    static V neg(V a) { return _mm256_xor_pd(a, _mm256_set1_pd(-0.0)); }
    static V nan_max(V a, V b) {
        const V keep = _mm256_or_pd(_mm256_cmp_pd(a, a, _CMP_UNORD_Q), _mm256_cmp_pd(a, b, _CMP_GE_OQ));
        return _mm256_blendv_pd(b, a, keep);
    }
};

// adam_range on full vectors (g++ does not vectorise the scalar loop: std::sqrt may set errno),
// the scalar loop for the ragged end.
template <typename T, bool Maximize, bool Coupled, bool Decoupled, bool FromEnd, bool Amsgrad>
void adam_range_simd(T* __restrict__ param, T* __restrict__ exp_avg, T* __restrict__ exp_avg_sq,
                     T* __restrict__ max_exp_avg_sq, const T* __restrict__ grad, const AdamScalars& s,
                     int64_t begin, int64_t end) {
    using L = Lanes<T>;
    using V = typename L::V;
    const V decay = L::set(T(s.decay)), lw = L::set(T(s.lerp_weight)), beta2 = L::set(T(s.beta2)),
            omb2 = L::set(T(s.one_minus_beta2)), step = L::set(T(s.neg_step_size)),
            bc2 = L::set(T(s.bias_correction2_sqrt)), eps = L::set(T(s.eps));
    int64_t i = begin;
    for (; i + L::n <= end; i += L::n) {
        V p = L::load(param + i);
        V g = L::load(grad + i);
        if constexpr (Maximize) g = L::neg(g);
        if constexpr (Coupled) g = L::add(g, L::mul(decay, p));
        if constexpr (Decoupled) p = L::mul(p, decay);
        V m = L::load(exp_avg + i);
        m = FromEnd ? L::sub(g, L::mul(L::sub(g, m), lw)) : L::add(m, L::mul(lw, L::sub(g, m)));
        L::store(exp_avg + i, m);
        V v = L::mul(L::load(exp_avg_sq + i), beta2);
        v = L::add(v, L::mul(L::mul(omb2, g), g));
        L::store(exp_avg_sq + i, v);
        if constexpr (Amsgrad) {
            v = L::nan_max(L::load(max_exp_avg_sq + i), v);
            L::store(max_exp_avg_sq + i, v);
        }
        const V denom = L::add(L::div(L::sqrt(v), bc2), eps);
        L::store(param + i, L::add(p, L::div(L::mul(step, m), denom)));
    }
    adam_range<T, Maximize, Coupled, Decoupled, FromEnd, Amsgrad>(param, exp_avg, exp_avg_sq, max_exp_avg_sq,
                                                                   grad, s, i, end);
}
#endif

// An array the kernel writes: x's dtype and shape, C-contiguous, aligned, writeable.
template <typename T>
T* in_place(const py::array& a, const char* op, const char* name, const Shape& shape) {
    expect_shape(op, name, check_array<T>(a, op, name, static_cast<int>(a.ndim())), shape);
    if (!a.writeable())
        throw py::value_error(std::string(name) + " is updated in place and must be writeable");
    return static_cast<T*>(const_cast<void*>(a.data()));
}

template <typename T>
const T* read_only(const py::array& a, const char* op, const char* name, const Shape& shape) {
    expect_shape(op, name, check_array<T>(a, op, name, static_cast<int>(a.ndim())), shape);
    return data_of<T>(a);
}

void sgd_step(const py::array& param, const py::array& grad, const std::optional<py::array>& momentum_buffer,
              double lr, double momentum, double one_minus_dampening, double weight_decay, bool nesterov,
              bool maximize, bool first_step) {
    constexpr const char* op = "sgd_step";
    dispatch_float(float_dtype(param, op, "param"), [&](auto tag) {
        using T = decltype(tag);
        const Shape shape = shape_of(param);
        T* p = in_place<T>(param, op, "param", shape);
        const T* g = read_only<T>(grad, op, "grad", shape);
        const bool use_momentum = momentum != 0;
        T* buf = nullptr;
        if (use_momentum) {
            if (!momentum_buffer) throw py::value_error("momentum_buffer is required when momentum != 0");
            buf = in_place<T>(*momentum_buffer, op, "momentum_buffer", shape);
        }
        const int64_t n = checked_numel(shape, op);
        const SgdScalars s{lr, momentum, one_minus_dampening, weight_decay};
        py::gil_scoped_release release;
        with_flag(maximize, [&](auto mx) {
        with_flag(weight_decay != 0, [&](auto wd) {
        with_flag(use_momentum, [&](auto mom) {
        with_flag(use_momentum && nesterov, [&](auto nest) {
        with_flag(use_momentum && first_step, [&](auto first) {
            vmath::for_each_range(n, kParallelMin, [&](int64_t begin, int64_t end) {
                sgd_range<T, decltype(mx)::value, decltype(wd)::value, decltype(mom)::value,
                          decltype(nest)::value, decltype(first)::value>(p, buf, g, s, begin, end);
            });
        }); }); }); }); });
        return 0;
    });
}

void adam_step(const py::array& param, const py::array& grad, const py::array& exp_avg,
               const py::array& exp_avg_sq, const std::optional<py::array>& max_exp_avg_sq,
               int weight_decay_mode, double decay, double lerp_weight, bool lerp_from_end, double beta2,
               double one_minus_beta2, double neg_step_size, double bias_correction2_sqrt, double eps,
               bool amsgrad, bool maximize) {
    constexpr const char* op = "adam_step";
    if (weight_decay_mode < 0 || weight_decay_mode > 2)
        throw py::value_error("adam_step: weight_decay_mode must be 0, 1 or 2");
    dispatch_float(float_dtype(param, op, "param"), [&](auto tag) {
        using T = decltype(tag);
        const Shape shape = shape_of(param);
        T* p = in_place<T>(param, op, "param", shape);
        const T* g = read_only<T>(grad, op, "grad", shape);
        T* m = in_place<T>(exp_avg, op, "exp_avg", shape);
        T* v = in_place<T>(exp_avg_sq, op, "exp_avg_sq", shape);
        T* vmax = nullptr;
        if (amsgrad) {
            if (!max_exp_avg_sq) throw py::value_error("max_exp_avg_sq is required when amsgrad is True");
            vmax = in_place<T>(*max_exp_avg_sq, op, "max_exp_avg_sq", shape);
        }
        const int64_t n = checked_numel(shape, op);
        const AdamScalars s{decay, lerp_weight, beta2, one_minus_beta2, neg_step_size, bias_correction2_sqrt, eps};
        py::gil_scoped_release release;
        with_flag(maximize, [&](auto mx) {
        with_flag(weight_decay_mode == 1, [&](auto coupled) {
        with_flag(weight_decay_mode == 2, [&](auto decoupled) {
        with_flag(lerp_from_end, [&](auto from_end) {
        with_flag(amsgrad, [&](auto ams) {
            vmath::for_each_range(n, kParallelMin, [&](int64_t begin, int64_t end) {
#if PYCONV_VMATH_AVX2
                adam_range_simd<T, decltype(mx)::value, decltype(coupled)::value, decltype(decoupled)::value,
                                decltype(from_end)::value, decltype(ams)::value>(p, m, v, vmax, g, s, begin, end);
#else
                adam_range<T, decltype(mx)::value, decltype(coupled)::value, decltype(decoupled)::value,
                           decltype(from_end)::value, decltype(ams)::value>(p, m, v, vmax, g, s, begin, end);
#endif
            });
        }); }); }); }); });
        return 0;
    });
}

}  // namespace

PYCONV_REGISTER_FAMILY(optim) {
    using py::arg;
    m.def("sgd_step", &sgd_step, arg("param"), arg("grad"), arg("momentum_buffer"), arg("lr"),
          arg("momentum"), arg("one_minus_dampening"), arg("weight_decay"), arg("nesterov"),
          arg("maximize"), arg("first_step"),
          "One SGD step in place on param and (momentum != 0) momentum_buffer.");
    m.def("adam_step", &adam_step, arg("param"), arg("grad"), arg("exp_avg"), arg("exp_avg_sq"),
          arg("max_exp_avg_sq"), arg("weight_decay_mode"), arg("decay"), arg("lerp_weight"),
          arg("lerp_from_end"), arg("beta2"), arg("one_minus_beta2"), arg("neg_step_size"),
          arg("bias_correction2_sqrt"), arg("eps"), arg("amsgrad"), arg("maximize"),
          "One Adam/AdamW step in place on param, exp_avg, exp_avg_sq and (amsgrad) max_exp_avg_sq.");
}

}  // namespace pyconv::cpu
