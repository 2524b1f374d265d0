// Class-index losses (cross_entropy fused with log_softmax, nll_loss) and mse_loss, forward and
// backward (contract: pyconv/backends/contract.py). Rows (M, C) are independent and threaded;
// per-row losses are reduced afterwards in row order in double, so a result does not depend on
// the thread count. Ignored rows (target == ignore_index) give 0 loss and 0 gradient; 'mean'
// divides by the summed w[t] of the other rows (0 / 0 = NaN when every row is ignored).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "register.h"
#include "softmax_rows.h"
#include "validate.h"

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
                    const T mx = rows::max(xr, C);
                    rows::sub2(xr, mx, std::log(rows::exp_sum(xr, mx, C)), lr, C);
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
}

}  // namespace pyconv::cpu
