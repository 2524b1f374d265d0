// Class-index losses (cross_entropy fused with log_softmax, nll_loss) and mse_loss, forward and
// backward (contract: pyconv/backends/contract.py). Rows (M, C) are independent and threaded;
// per-row losses are reduced afterwards in row order in double, so a result does not depend on
// the thread count. Ignored rows (target == ignore_index) give 0 loss and 0 gradient; 'mean'
// divides by the summed w[t] of the other rows (0 / 0 = NaN when every row is ignored).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "register.h"
#include "softmax_rows.h"
#include "validate.h"
#include "vector_math.h"

namespace pyconv::cpu {

namespace {

enum class Reduction { None, Mean, Sum };

Reduction reduction_of(const std::string& r, const char* op) {
    if (r == "none") return Reduction::None;
    if (r == "mean") return Reduction::Mean;
    if (r == "sum") return Reduction::Sum;
    throw py::value_error(std::string(op) + ": reduction must be 'none', 'mean' or 'sum', got '" + r + "'");
}

// The class-index arguments, checked: target (M,) int64 with every value ignore_index or in
// [0, C), weight (C,) or null.
template <typename T>
struct Targets {
    int64_t m = 0, c = 0;
    const int64_t* t = nullptr;
    const T* w = nullptr;
    int64_t ignore = -100;

    bool ignored(int64_t row) const { return t[row] == ignore; }
    // w[t] of a row, 0 when ignored
    T weight_of(int64_t row) const { return ignored(row) ? T(0) : (w ? w[t[row]] : T(1)); }
    // sum of w[t] over the rows (the 'mean' divisor), in double
    double total_weight() const {
        double s = 0;
        for (int64_t r = 0; r < m; ++r) s += double(weight_of(r));
        return s;
    }
};

template <typename T>
Targets<T> check_targets(const char* op, int64_t m, int64_t c, const py::array& target,
                         const std::optional<py::array>& weight, int64_t ignore_index) {
    Targets<T> tg;
    tg.m = m;
    tg.c = c;
    tg.ignore = ignore_index;
    expect_shape(op, "target", check_array<int64_t>(target, op, "target", 1), {m});
    tg.t = data_of<int64_t>(target);
    for (int64_t r = 0; r < m; ++r)
        if (tg.t[r] != ignore_index && (tg.t[r] < 0 || tg.t[r] >= c))
            throw py::value_error(std::string(op) + ": target contains class index " + std::to_string(tg.t[r]) +
                                  ", but input has " + std::to_string(c) + " classes (ignore_index=" +
                                  std::to_string(ignore_index) + ")");
    if (weight) {
        expect_shape(op, "weight", check_array<T>(*weight, op, "weight", 1), {c});
        tg.w = data_of<T>(*weight);
    }
    return tg;
}

template <typename T>
py::array scalar_array(T value) {
    auto a = new_array<T>({});
    *a.mutable_data() = value;
    return std::move(a);
}

// Per-row losses (M,) -> the 'none' array itself, or its sum / mean as a 0-d array.
template <typename T>
py::array reduce_rows(py::array_t<T> loss, Reduction red, double total_weight) {
    if (red == Reduction::None) return std::move(loss);
    const T* l = loss.data();
    double s = 0;
    for (py::ssize_t r = 0; r < loss.size(); ++r) s += double(l[r]);
    return scalar_array<T>(red == Reduction::Sum ? T(s) : T(s) / T(total_weight));
}

// d(reduced loss) / d(row loss) for each row: grad_loss[m] ('none'), grad_loss ('sum') or
// grad_loss / sum(w[t]) ('mean'); 0 on ignored rows.
template <typename T>
struct RowGrad {
    const T* per_row = nullptr;
    T shared = 0;
    T operator()(const Targets<T>& tg, int64_t r) const {
        return tg.ignored(r) ? T(0) : (per_row ? per_row[r] : shared);
    }
};

template <typename T>
RowGrad<T> row_grad(const char* op, const py::array& grad_loss, Reduction red, const Targets<T>& tg) {
    RowGrad<T> rg;
    if (red == Reduction::None) {
        expect_shape(op, "grad_loss", check_array<T>(grad_loss, op, "grad_loss", 1), {tg.m});
        rg.per_row = data_of<T>(grad_loss);
    } else {
        check_array<T>(grad_loss, op, "grad_loss", 0);
        rg.shared = *data_of<T>(grad_loss);
        if (red == Reduction::Mean) rg.shared = rg.shared / T(tg.total_weight());
    }
    return rg;
}

// ----- cross_entropy ---------------------------------------------------------------------------

py::tuple cross_entropy_forward(const py::array& logits, const py::array& target,
                                const std::optional<py::array>& weight, const std::string& reduction,
                                int64_t ignore_index, double label_smoothing) {
    constexpr const char* op = "cross_entropy_forward";
    const Reduction red = reduction_of(reduction, op);
    return dispatch_float(float_dtype(logits, op, "logits"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const Shape s = check_array<T>(logits, op, "logits", 2);
        const int64_t M = s[0], C = s[1];
        const Targets<T> tg = check_targets<T>(op, M, C, target, weight, ignore_index);
        auto log_probs = new_array<T>({M, C});
        auto loss = new_array<T>({M});
        const T* x = data_of<T>(logits);
        T* lp = log_probs.mutable_data();
        T* l = loss.mutable_data();
        const T eps = T(label_smoothing), keep = T(1) - eps, spread = eps / T(C);
        {
            py::gil_scoped_release release;
            rows::for_chunks(M, C, [&](int64_t r0, int64_t r1) {
                for (int64_t r = r0; r < r1; ++r) {
                    const T* xr = x + r * C;
                    T* lr = lp + r * C;
                    rows::log_softmax_row(xr, lr, C, false, r + 1 < r1 ? xr + C : nullptr);
                    if (tg.ignored(r)) {
                        l[r] = 0;
                        continue;
                    }
                    T row = -tg.weight_of(r) * lr[tg.t[r]];
                    if (eps > 0) {
                        const T smooth = -(tg.w ? rows::dot(lr, tg.w, C) : rows::sum(lr, C));
                        row = keep * row + spread * smooth;
                    }
                    l[r] = row;
                }
            });
        }
        const double tw = red == Reduction::Mean ? tg.total_weight() : 0.0;
        return py::make_tuple(reduce_rows<T>(loss, red, tw), log_probs);
    });
}

// A row's loss is -sum_c a_c * lp_c with a_c = (1 - eps) * w[t] * [c == t] + eps / C * w[c], so
// its gradient is (softmax * sum_c a_c - a) * rg.
py::array cross_entropy_backward(const py::array& grad_loss, const py::array& log_probs, const py::array& target,
                                 const std::optional<py::array>& weight, const std::string& reduction,
                                 int64_t ignore_index, double label_smoothing) {
    constexpr const char* op = "cross_entropy_backward";
    const Reduction red = reduction_of(reduction, op);
    return dispatch_float(float_dtype(log_probs, op, "log_probs"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape s = check_array<T>(log_probs, op, "log_probs", 2);
        const int64_t M = s[0], C = s[1];
        const Targets<T> tg = check_targets<T>(op, M, C, target, weight, ignore_index);
        const RowGrad<T> rg = row_grad<T>(op, grad_loss, red, tg);
        double weight_sum = double(C);
        if (tg.w) {
            weight_sum = 0;
            for (int64_t c = 0; c < C; ++c) weight_sum += double(tg.w[c]);
        }
        auto grad = new_array<T>({M, C});
        const T* lp = data_of<T>(log_probs);
        T* gx = grad.mutable_data();
        const T eps = T(label_smoothing), keep = T(1) - eps, spread = eps / T(C);
        const T spread_sum = spread * T(weight_sum);
        {
            py::gil_scoped_release release;
            rows::for_chunks(M, C, [&](int64_t r0, int64_t r1) {
                for (int64_t r = r0; r < r1; ++r) {
                    const T* lr = lp + r * C;
                    T* gr = gx + r * C;
                    const T on_target = keep * tg.weight_of(r);  // a_t without the spread
                    const T a_sum = on_target + spread_sum;
                    const T g = rg(tg, r);
                    rows::ce_grad(lr, a_sum, spread, tg.w, g, gr, C);
                    if (!tg.ignored(r)) {
                        const int64_t t = tg.t[r];
                        const T a_t = on_target + spread * (tg.w ? tg.w[t] : T(1));
                        gr[t] = (std::exp(lr[t]) * a_sum - a_t) * g;
                    }
                }
            });
        }
        return std::move(grad);
    });
}

// ----- nll_loss -----------------------------------------------------------------------------------

py::array nll_loss_forward(const py::array& log_probs, const py::array& target,
                           const std::optional<py::array>& weight, const std::string& reduction,
                           int64_t ignore_index) {
    constexpr const char* op = "nll_loss_forward";
    const Reduction red = reduction_of(reduction, op);
    return dispatch_float(float_dtype(log_probs, op, "log_probs"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape s = check_array<T>(log_probs, op, "log_probs", 2);
        const int64_t M = s[0], C = s[1];
        const Targets<T> tg = check_targets<T>(op, M, C, target, weight, ignore_index);
        auto loss = new_array<T>({M});
        const T* lp = data_of<T>(log_probs);
        T* l = loss.mutable_data();
        for (int64_t r = 0; r < M; ++r) l[r] = tg.ignored(r) ? T(0) : -tg.weight_of(r) * lp[r * C + tg.t[r]];
        const double tw = red == Reduction::Mean ? tg.total_weight() : 0.0;
        return reduce_rows<T>(loss, red, tw);
    });
}

py::array nll_loss_backward(const py::array& grad_loss, const py::array& target, const std::optional<py::array>& weight,
                            const std::vector<int64_t>& input_shape, const std::string& reduction,
                            int64_t ignore_index) {
    constexpr const char* op = "nll_loss_backward";
    const Reduction red = reduction_of(reduction, op);
    const Shape shape = check_dims(input_shape, 2, op, "input_shape");
    return dispatch_float(float_dtype(grad_loss, op, "grad_loss"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const int64_t M = shape[0], C = shape[1];
        const Targets<T> tg = check_targets<T>(op, M, C, target, weight, ignore_index);
        const RowGrad<T> rg = row_grad<T>(op, grad_loss, red, tg);
        auto grad = new_array<T>({M, C});
        T* gx = grad.mutable_data();
        {
            py::gil_scoped_release release;
            rows::for_chunks(M, C, [&](int64_t r0, int64_t r1) {
                std::fill(gx + r0 * C, gx + r1 * C, T(0));
                for (int64_t r = r0; r < r1; ++r)
                    if (!tg.ignored(r)) gx[r * C + tg.t[r]] = -tg.weight_of(r) * rg(tg, r);
            });
        }
        return std::move(grad);
    });
}

// ----- mse_loss -----------------------------------------------------------------------------------

template <typename T>
Shape check_pair(const char* op, const py::array& input, const py::array& target) {
    const Shape s = check_array<T>(input, op, "input", static_cast<int>(input.ndim()));
    check_array<T>(target, op, "target", static_cast<int>(target.ndim()));
    expect_shape(op, "target", shape_of(target), s);
    return s;
}

py::array mse_loss_forward(const py::array& input, const py::array& target, const std::string& reduction) {
    constexpr const char* op = "mse_loss_forward";
    const Reduction red = reduction_of(reduction, op);
    return dispatch_float(float_dtype(input, op, "input"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape s = check_pair<T>(op, input, target);
        const int64_t n = static_cast<int64_t>(input.size());
        const T* x = data_of<T>(input);
        const T* t = data_of<T>(target);
        if (red == Reduction::None) {
            auto out = new_array<T>(s);
            T* o = out.mutable_data();
            {
                py::gil_scoped_release release;
                for (int64_t i = 0; i < n; ++i) o[i] = (x[i] - t[i]) * (x[i] - t[i]);
            }
            return std::move(out);
        }
        double total = 0;
        for (int64_t i = 0; i < n; ++i) total += double((x[i] - t[i]) * (x[i] - t[i]));
        return scalar_array<T>(red == Reduction::Sum ? T(total) : T(total) / T(n));
    });
}

// grad_input = 2 * (input - target) * g, g = grad_loss (elementwise, 'none'), grad_loss ('sum')
// or grad_loss / numel ('mean'); grad_target = -grad_input.
py::tuple mse_loss_backward(const py::array& grad_loss, const py::array& input, const py::array& target,
                            const std::string& reduction) {
    constexpr const char* op = "mse_loss_backward";
    const Reduction red = reduction_of(reduction, op);
    return dispatch_float(float_dtype(input, op, "input"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const Shape s = check_pair<T>(op, input, target);
        const int64_t n = static_cast<int64_t>(input.size());
        const T* g = nullptr;
        T shared = 0;
        if (red == Reduction::None) {
            check_array<T>(grad_loss, op, "grad_loss", static_cast<int>(grad_loss.ndim()));
            expect_shape(op, "grad_loss", shape_of(grad_loss), s);
            g = data_of<T>(grad_loss);
        } else {
            check_array<T>(grad_loss, op, "grad_loss", 0);
            shared = *data_of<T>(grad_loss);
            if (red == Reduction::Mean) shared = shared / T(std::max<int64_t>(n, 1));
        }
        auto gi = new_array<T>(s), gt = new_array<T>(s);
        T* a = gi.mutable_data();
        T* b = gt.mutable_data();
        const T* x = data_of<T>(input);
        const T* t = data_of<T>(target);
        {
            py::gil_scoped_release release;
            for (int64_t i = 0; i < n; ++i) {
                a[i] = T(2) * (x[i] - t[i]) * (g ? g[i] : shared);
                b[i] = -a[i];
            }
        }
        return py::make_tuple(gi, gt);
    });
}


// ----- binary cross-entropy (on probabilities and on logits) ---------------------------------------
// Elementwise, in T with the reference's operations (float32 in float: libm's logf/expf are several
// times cheaper than the double ones). A weight (and pos_weight) comes
// flattened: element i uses w[i % period] (period 1: a scalar, the last dim: per class, numel: a
// full array); the Python wrapper picks the period. Reductions sum fixed blocks of kSumBlock
// elements in double, then the blocks in order: the result does not depend on the thread count.

constexpr int64_t kSumBlock = int64_t(1) << 14;

// A weight of `period` values repeated along the flattened input, or none.
template <typename T>
struct Periodic {
    const T* w = nullptr;
    int64_t period = 1;
    T at(int64_t i) const { return w ? w[period == 1 ? 0 : i % period] : T(1); }
};

template <typename T>
Periodic<T> check_periodic(const char* op, const char* name, const std::optional<py::array>& a, int64_t n) {
    Periodic<T> p;
    if (!a) return p;
    const Shape s = check_array<T>(*a, op, name, 1);
    if (s[0] < 1 || (n % s[0]) != 0)
        throw py::value_error(std::string(op) + ": " + name + " must be a flat array whose length divides the " +
                              "input's size " + std::to_string(n) + ", got length " + std::to_string(s[0]));
    p.w = data_of<T>(*a);
    p.period = s[0];
    return p;
}

#if PYCONV_VMATH_AVX2
// w.at(i .. i + 7) as a vector
inline __m256 periodic8(const Periodic<float>& p, int64_t i) {
    if (!p.w) return _mm256_set1_ps(1.0f);
    if (p.period == 1) return _mm256_set1_ps(p.w[0]);
    const int64_t j = i % p.period;
    if (j + 8 <= p.period) return _mm256_loadu_ps(p.w + j);
    alignas(32) float v[8];
    for (int k = 0; k < 8; ++k) v[k] = p.at(i + k);
    return _mm256_load_ps(v);
}
#endif

// g = d(reduced loss) / d(element loss): grad_loss[i] ('none') or grad_loss ('sum'), / numel ('mean'),
// with the reference's rounding (in T).
template <typename T>
struct ElemGrad {
    const T* each = nullptr;
    T shared = 0;
    T operator()(int64_t i) const { return each ? each[i] : shared; }
};

template <typename T>
ElemGrad<T> elem_grad(const char* op, const py::array& grad_loss, Reduction red, const Shape& s, int64_t n) {
    ElemGrad<T> g;
    if (red == Reduction::None) {
        check_array<T>(grad_loss, op, "grad_loss", static_cast<int>(grad_loss.ndim()));
        expect_shape(op, "grad_loss", shape_of(grad_loss), s);
        g.each = data_of<T>(grad_loss);
    } else {
        check_array<T>(grad_loss, op, "grad_loss", 0);
        g.shared = *data_of<T>(grad_loss);
        if (red == Reduction::Mean) g.shared = g.shared / T(std::max<int64_t>(n, 1));
    }
    return g;
}

// The element losses of [0, n), computed by fill(i0, i1, out) into out[0, i1 - i0): written out
// ('none') or reduced to a 0-d array.
template <typename T, class Fill>
py::array elementwise_loss(const Shape& s, int64_t n, Reduction red, Fill&& fill) {
    if (red == Reduction::None) {
        auto out = new_array<T>(s);
        T* o = out.mutable_data();
        {
            py::gil_scoped_release release;
            rows::for_chunks((n + kSumBlock - 1) / kSumBlock, kSumBlock * 8, [&](int64_t b0, int64_t b1) {
                fill(b0 * kSumBlock, std::min(n, b1 * kSumBlock), o + b0 * kSumBlock);
            });
        }
        return std::move(out);
    }
    const int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
    std::vector<double> partial(blocks, 0.0);
    {
        py::gil_scoped_release release;
        rows::for_chunks(blocks, kSumBlock * 8, [&](int64_t b0, int64_t b1) {
            constexpr int64_t kPiece = 1024;
            T piece[kPiece];
            for (int64_t b = b0; b < b1; ++b) {
                double acc = 0;
                for (int64_t i = b * kSumBlock; i < std::min(n, (b + 1) * kSumBlock); i += kPiece) {
                    const int64_t len = std::min(kPiece, n - i);
                    fill(i, i + len, piece);
                    for (int64_t k = 0; k < len; ++k) acc += double(piece[k]);
                }
                partial[b] = acc;
            }
        });
    }
    double total = 0;
    for (double v : partial) total += v;
    return scalar_array<T>(red == Reduction::Sum ? T(total) : T(total) / T(n));
}

// fill(i0, i1, out) from the element loss f(i)
template <typename T, class F>
auto per_element(F f) {
    return [f](int64_t i0, int64_t i1, T* out) {
        for (int64_t i = i0; i < i1; ++i) out[i - i0] = T(f(i));
    };
}

// Runs f(begin, end) over ranges covering [0, n) on the process's threads, without the GIL
// (elementwise gradients).
template <class F>
void for_ranges(int64_t n, F&& f) {
    py::gil_scoped_release release;
    rows::for_chunks((n + kSumBlock - 1) / kSumBlock, kSumBlock * 8, [&](int64_t b0, int64_t b1) {
        f(b0 * kSumBlock, std::min(n, b1 * kSumBlock));
    });
}

// Runs f(i) for every i of [0, n) (for_ranges).
template <class F>
void for_elements(int64_t n, F&& f) {
    for_ranges(n, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) f(i);
    });
}

// The checked arguments of a binary cross-entropy kernel: input and target of one shape, the
// periodic weights (pos_weight unused by the kernels on probabilities).
template <typename T>
struct BinaryArgs {
    Shape s;
    int64_t n = 0;
    const T* x = nullptr;
    const T* t = nullptr;
    Periodic<T> w, pw;
};

template <typename T>
BinaryArgs<T> binary_args(const char* op, const py::array& input, const py::array& target,
                          const std::optional<py::array>& weight, const std::optional<py::array>& pos_weight) {
    BinaryArgs<T> a;
    a.s = check_pair<T>(op, input, target);
    a.n = static_cast<int64_t>(input.size());
    a.x = data_of<T>(input);
    a.t = data_of<T>(target);
    a.w = check_periodic<T>(op, "weight", weight, a.n);
    a.pw = check_periodic<T>(op, "pos_weight", pos_weight, a.n);
    return a;
}

constexpr double kLogFloor = -100.0;  // PyTorch clamps each log of binary_cross_entropy here
constexpr double kGradFloor = 1e-12;  // ... and floors x (1 - x) in its gradient here

py::array bce_forward(const py::array& input, const py::array& target, const std::optional<py::array>& weight,
                      const std::string& reduction) {
    constexpr const char* op = "binary_cross_entropy_forward";
    const Reduction red = reduction_of(reduction, op);
    return dispatch_float(float_dtype(input, op, "input"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const BinaryArgs<T> a = binary_args<T>(op, input, target, weight, std::nullopt);
        const T* x = a.x;
        const T* t = a.t;
        const Periodic<T>& w = a.w;
        auto f = [&](int64_t i) {
            const T xi = x[i], ti = t[i];
            const T log_x = std::max(std::log(xi), T(kLogFloor));
            const T log_1mx = std::max(std::log1p(-xi), T(kLogFloor));
            return -(ti * log_x + (T(1) - ti) * log_1mx) * w.at(i);
        };
#if PYCONV_VMATH_AVX2
        if constexpr (std::is_same_v<T, float>)
            return elementwise_loss<T>(a.s, a.n, red, [&](int64_t i0, int64_t i1, float* out) {
                int64_t i = i0;
                for (; i + 8 <= i1; i += 8) {
                    const __m256 xv = _mm256_loadu_ps(x + i), tv = _mm256_loadu_ps(t + i);
                    // 8 lanes when every x is in [FLT_MIN, 1): both logs are of normal floats
                    const __m256 ok = _mm256_and_ps(_mm256_cmp_ps(xv, _mm256_set1_ps(1.17549435e-38f), _CMP_GE_OQ),
                                                    _mm256_cmp_ps(xv, _mm256_set1_ps(1.0f), _CMP_LT_OQ));
                    if (_mm256_movemask_ps(ok) != 0xFF) {
                        for (int64_t k = i; k < i + 8; ++k) out[k - i0] = f(k);
                        continue;
                    }
                    const __m256 floor = _mm256_set1_ps(float(kLogFloor));
                    const __m256 lx = _mm256_max_ps(vmath::log8_normal(xv), floor);
                    const __m256 l1mx = _mm256_max_ps(vmath::log1p8_normal(_mm256_sub_ps(_mm256_setzero_ps(), xv)), floor);
                    const __m256 sum = _mm256_add_ps(_mm256_mul_ps(tv, lx),
                                                     _mm256_mul_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), tv), l1mx));
                    _mm256_storeu_ps(out + (i - i0), _mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), sum), periodic8(w, i)));
                }
                for (; i < i1; ++i) out[i - i0] = f(i);
            });
#endif
        return elementwise_loss<T>(a.s, a.n, red, per_element<T>(f));
    });
}

// grad_input = g * w * (x - t) / max(x * (1 - x), 1e-12)
py::array bce_backward(const py::array& grad_loss, const py::array& input, const py::array& target,
                       const std::optional<py::array>& weight, const std::string& reduction) {
    constexpr const char* op = "binary_cross_entropy_backward";
    const Reduction red = reduction_of(reduction, op);
    return dispatch_float(float_dtype(input, op, "input"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const BinaryArgs<T> a = binary_args<T>(op, input, target, weight, std::nullopt);
        const ElemGrad<T> g = elem_grad<T>(op, grad_loss, red, a.s, a.n);
        auto out = new_array<T>(a.s);
        T* gi = out.mutable_data();
        const T* x = a.x;
        const T* t = a.t;
        const Periodic<T>& w = a.w;
        for_elements(a.n, [&](int64_t i) {
            const T xi = x[i];
            const T den = std::max(xi * (T(1) - xi), T(kGradFloor));
            gi[i] = g(i) * w.at(i) * (xi - t[i]) / den;
        });
        return std::move(out);
    });
}

// (softplus(x), softplus(-x)) = max(+-x, 0) + log1p(exp(-|x|)): no overflow for any x
template <typename T>
inline void softplus_pair(T x, T& sp, T& sp_neg) {
    const T tail = std::log1p(std::exp(-std::fabs(x)));
    sp = std::max(x, T(0)) + tail;
    sp_neg = std::max(-x, T(0)) + tail;
}

// w * (pw * t * softplus(-x) + (1 - t) * softplus(x))
py::array bce_logits_forward(const py::array& input, const py::array& target, const std::optional<py::array>& weight,
                             const std::optional<py::array>& pos_weight, const std::string& reduction) {
    constexpr const char* op = "binary_cross_entropy_with_logits_forward";
    const Reduction red = reduction_of(reduction, op);
    return dispatch_float(float_dtype(input, op, "input"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const BinaryArgs<T> a = binary_args<T>(op, input, target, weight, pos_weight);
        const T* x = a.x;
        const T* t = a.t;
        const Periodic<T>& w = a.w;
        const Periodic<T>& pw = a.pw;
        auto f = [&](int64_t i) {
            T sp, sp_neg;
            softplus_pair(x[i], sp, sp_neg);
            const T ti = t[i];
            return (ti * sp_neg * pw.at(i) + (T(1) - ti) * sp) * w.at(i);
        };
#if PYCONV_VMATH_AVX2
        if constexpr (std::is_same_v<T, float>)
            return elementwise_loss<T>(a.s, a.n, red, [&](int64_t i0, int64_t i1, float* out) {
                int64_t i = i0;
                for (; i + 8 <= i1; i += 8) {
                    const __m256 xv = _mm256_loadu_ps(x + i), tv = _mm256_loadu_ps(t + i);
                    const __m256 zero = _mm256_setzero_ps();
                    if (_mm256_movemask_ps(_mm256_cmp_ps(xv, xv, _CMP_UNORD_Q))) {  // NaN: the scalar path
                        for (int64_t k = i; k < i + 8; ++k) out[k - i0] = f(k);
                        continue;
                    }
                    // tail = log1p(exp(-|x|)), exp in (0, 1] so 1 + exp is normal
                    const __m256 tail = vmath::log1p8_normal(vmath::exp8(_mm256_sub_ps(zero, vmath::abs8(xv))));
                    const __m256 sp = _mm256_add_ps(_mm256_max_ps(xv, zero), tail);
                    const __m256 sp_neg = _mm256_add_ps(_mm256_max_ps(_mm256_sub_ps(zero, xv), zero), tail);
                    const __m256 pos = _mm256_mul_ps(_mm256_mul_ps(tv, sp_neg), periodic8(pw, i));
                    const __m256 neg = _mm256_mul_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), tv), sp);
                    _mm256_storeu_ps(out + (i - i0), _mm256_mul_ps(_mm256_add_ps(pos, neg), periodic8(w, i)));
                }
                for (; i < i1; ++i) out[i - i0] = f(i);
            });
#endif
        return elementwise_loss<T>(a.s, a.n, red, per_element<T>(f));
    });
}

// d/dx = g w ((1 - t) sigmoid(x) - pw t sigmoid(-x)); d/dt = g w (pw softplus(-x) - softplus(x))
py::tuple bce_logits_backward(const py::array& grad_loss, const py::array& input, const py::array& target,
                              const std::optional<py::array>& weight, const std::optional<py::array>& pos_weight,
                              const std::string& reduction) {
    constexpr const char* op = "binary_cross_entropy_with_logits_backward";
    const Reduction red = reduction_of(reduction, op);
    return dispatch_float(float_dtype(input, op, "input"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const BinaryArgs<T> args = binary_args<T>(op, input, target, weight, pos_weight);
        const ElemGrad<T> g = elem_grad<T>(op, grad_loss, red, args.s, args.n);
        auto gi = new_array<T>(args.s), gt = new_array<T>(args.s);
        T* a = gi.mutable_data();
        T* b = gt.mutable_data();
        const T* x = args.x;
        const T* t = args.t;
        const Periodic<T>& w = args.w;
        const Periodic<T>& pw = args.pw;
        const auto element = [&](int64_t i) {
            const T xi = x[i], ti = t[i], gw = g(i) * w.at(i), p = pw.at(i);
            const T e = std::exp(-std::fabs(xi));  // sigmoid(+-x) without overflow
            const T big = T(1) / (T(1) + e), small = e / (T(1) + e);
            const T sig = xi >= 0 ? big : small, sig_neg = xi >= 0 ? small : big;
            a[i] = gw * ((T(1) - ti) * sig - p * ti * sig_neg);
            const T tail = std::log1p(e);  // softplus(+-x) = max(+-x, 0) + tail
            b[i] = gw * (p * (std::max(-xi, T(0)) + tail) - (std::max(xi, T(0)) + tail));
        };
#if PYCONV_VMATH_AVX2
        // 8 lanes with the forward's exp8 / log1p8 (the scalar libm calls took 37 ns per element,
        // 2.5x PyTorch's forward + backward); lanes with a NaN take the scalar form
        if constexpr (std::is_same_v<T, float>) {
            for_ranges(args.n, [&](int64_t begin, int64_t end) {
                const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
                int64_t i = begin;
                for (; i + 8 <= end; i += 8) {
                    const __m256 xv = _mm256_loadu_ps(x + i), tv = _mm256_loadu_ps(t + i);
                    if (_mm256_movemask_ps(_mm256_cmp_ps(xv, xv, _CMP_UNORD_Q))) {
                        for (int64_t k = i; k < i + 8; ++k) element(k);
                        continue;
                    }
                    const __m256 gv = g.each ? _mm256_loadu_ps(g.each + i) : _mm256_set1_ps(g.shared);
                    const __m256 gw = _mm256_mul_ps(gv, periodic8(w, i)), p = periodic8(pw, i);
                    const __m256 e = vmath::exp8(_mm256_sub_ps(zero, vmath::abs8(xv)));
                    const __m256 big = _mm256_div_ps(one, _mm256_add_ps(one, e)), small = _mm256_mul_ps(e, big);
                    const __m256 non_negative = _mm256_cmp_ps(xv, zero, _CMP_GE_OQ);
                    const __m256 sig = _mm256_blendv_ps(small, big, non_negative);
                    const __m256 sig_neg = _mm256_blendv_ps(big, small, non_negative);
                    const __m256 da = _mm256_sub_ps(_mm256_mul_ps(_mm256_sub_ps(one, tv), sig),
                                                    _mm256_mul_ps(_mm256_mul_ps(p, tv), sig_neg));
                    _mm256_storeu_ps(a + i, _mm256_mul_ps(gw, da));
                    const __m256 tail = vmath::log1p8_normal(e);  // 1 + e in [1, 2]: normal
                    const __m256 sp = _mm256_add_ps(_mm256_max_ps(xv, zero), tail);
                    const __m256 sp_neg = _mm256_add_ps(_mm256_max_ps(_mm256_sub_ps(zero, xv), zero), tail);
                    _mm256_storeu_ps(b + i, _mm256_mul_ps(gw, _mm256_sub_ps(_mm256_mul_ps(p, sp_neg), sp)));
                }
                for (; i < end; ++i) element(i);
            });
        } else
#endif
            for_elements(args.n, element);
        return py::make_tuple(gi, gt);
    });
}
}  // namespace

PYCONV_REGISTER_FAMILY(loss) {
    using py::arg;
    m.def("cross_entropy_forward", &cross_entropy_forward, arg("logits"), arg("target"), arg("weight"),
          arg("reduction"), arg("ignore_index"), arg("label_smoothing"),
          "Fused log_softmax + NLL over rows: logits (M, C), target (M,) -> (loss, log_probs (M, C)).");
    m.def("cross_entropy_backward", &cross_entropy_backward, arg("grad_loss"), arg("log_probs"), arg("target"),
          arg("weight"), arg("reduction"), arg("ignore_index"), arg("label_smoothing"),
          "Gradient of cross_entropy_forward with respect to the logits, (M, C).");
    m.def("nll_loss_forward", &nll_loss_forward, arg("log_probs"), arg("target"), arg("weight"), arg("reduction"),
          arg("ignore_index"), "-w[t] * log_probs[m, t], reduced.");
    m.def("nll_loss_backward", &nll_loss_backward, arg("grad_loss"), arg("target"), arg("weight"),
          arg("input_shape"), arg("reduction"), arg("ignore_index"), "Gradient of nll_loss_forward, (M, C).");
    m.def("mse_loss_forward", &mse_loss_forward, arg("input"), arg("target"), arg("reduction"),
          "(input - target)**2, reduced.");
    m.def("mse_loss_backward", &mse_loss_backward, arg("grad_loss"), arg("input"), arg("target"), arg("reduction"),
          "(grad_input, grad_target) of mse_loss_forward.");
    m.def("binary_cross_entropy_forward", &bce_forward, arg("input"), arg("target"), arg("weight"), arg("reduction"),
          "-w * (t log x + (1 - t) log(1 - x)), logs clamped to >= -100; weight flat, used periodically.");
    m.def("binary_cross_entropy_backward", &bce_backward, arg("grad_loss"), arg("input"), arg("target"),
          arg("weight"), arg("reduction"), "Gradient of binary_cross_entropy_forward with respect to input.");
    m.def("binary_cross_entropy_with_logits_forward", &bce_logits_forward, arg("input"), arg("target"),
          arg("weight"), arg("pos_weight"), arg("reduction"),
          "w * (pw t softplus(-x) + (1 - t) softplus(x)); weight and pos_weight flat, used periodically.");
    m.def("binary_cross_entropy_with_logits_backward", &bce_logits_backward, arg("grad_loss"), arg("input"),
          arg("target"), arg("weight"), arg("pos_weight"), arg("reduction"),
          "(grad_input, grad_target) of binary_cross_entropy_with_logits_forward.");
}

}  // namespace pyconv::cpu
