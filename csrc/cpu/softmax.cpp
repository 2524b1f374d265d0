// softmax and log_softmax along any dim, forward and backward (contract: pyconv/backends/
// contract.py). An array of any shape is viewed as (outer, len, inner) around `dim`:
// - inner == 1 (the last dim): each row of len values is contiguous and runs through the
//   vectorised row primitives of softmax_rows.h (max, exp + sum, scale), threaded over rows;
// - inner > 1: blocks of up to 64 neighbouring columns (contiguous along inner) are reduced
//   together, one pass over len per step, threaded over (outer, block).
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "register.h"
#include "softmax_rows.h"
#include "validate.h"

namespace pyconv::cpu {

namespace {

enum class Kind { Softmax, LogSoftmax };

struct Layout {
    int64_t outer = 1, len = 1, inner = 1;
};

// Checks `a` as a C-contiguous T array of any rank >= 1 and views it around dim.
template <typename T>
Layout layout_of(const py::array& a, int64_t dim, const char* op, const char* name) {
    const Shape s = check_array<T>(a, op, name, static_cast<int>(a.ndim()));
    if (s.empty() || dim < 0 || dim >= static_cast<int64_t>(s.size()))
        throw py::value_error(std::string(op) + ": dim must be in [0, " + std::to_string(s.size()) +
                              ") for " + name + " of shape " + shape_str(s) + ", got " + std::to_string(dim));
    Layout l;
    for (int64_t i = 0; i < dim; ++i) l.outer *= s[i];
    l.len = s[dim];
    for (size_t i = dim + 1; i < s.size(); ++i) l.inner *= s[i];
    return l;
}

// Outputs of 2M values or more (8 MB in float32, the size of the L3) are written with
// non-temporal stores: they would not stay cached for the next op anyway, and streaming saves
// reading every output line in before overwriting it.
inline bool streams(const Layout& l) { return l.outer * l.len >= (int64_t(1) << 21); }

constexpr int64_t kBlock = 64;  // columns reduced together when dim is not the last

// Runs f(offset of the block's first value, block width) over every (outer, column block).
template <class F>
void for_column_blocks(const Layout& l, F&& f) {
    const int64_t blocks = (l.inner + kBlock - 1) / kBlock;
    rows::for_chunks(l.outer * blocks, l.len * std::min(l.inner, kBlock), [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) {
            const int64_t o = b / blocks, j0 = (b % blocks) * kBlock;
            f(o * l.len * l.inner + j0, std::min(kBlock, l.inner - j0));
        }
    });
}

template <typename T>
void forward(Kind kind, const T* x, T* y, const Layout& l) {
    if (l.len == 0) return;
    if (l.inner == 1) {
        const bool stream = streams(l);
        rows::for_chunks(l.outer, l.len, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const T* next = r + 1 < r1 ? x + (r + 1) * l.len : nullptr;
                if (kind == Kind::Softmax)
                    rows::softmax_row(x + r * l.len, y + r * l.len, l.len, stream, next);
                else
                    rows::log_softmax_row(x + r * l.len, y + r * l.len, l.len, stream, next);
            }
        });
        return;
    }
    const int64_t stride = l.inner;
    for_column_blocks(l, [&](int64_t off, int64_t w) {
        T m[kBlock], s[kBlock], e[kBlock];
        std::fill(m, m + w, -std::numeric_limits<T>::infinity());
        std::fill(s, s + w, T(0));
        for (int64_t i = 0; i < l.len; ++i) {
            const T* xr = x + off + i * stride;
            for (int64_t j = 0; j < w; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];
        }
        for (int64_t i = 0; i < l.len; ++i) {
            const T* xr = x + off + i * stride;
            for (int64_t j = 0; j < w; ++j) e[j] = xr[j] - m[j];
            rows::exp_inplace(e, w);
            for (int64_t j = 0; j < w; ++j) s[j] += e[j];
            if (kind == Kind::Softmax) std::copy(e, e + w, y + off + i * stride);
        }
        if (kind == Kind::Softmax) {
            for (int64_t j = 0; j < w; ++j) s[j] = T(1) / s[j];
            for (int64_t i = 0; i < l.len; ++i) {
                T* yr = y + off + i * stride;
                for (int64_t j = 0; j < w; ++j) yr[j] *= s[j];
            }
        } else {
            for (int64_t j = 0; j < w; ++j) s[j] = std::log(s[j]);
            for (int64_t i = 0; i < l.len; ++i) {
                const T* xr = x + off + i * stride;
                T* yr = y + off + i * stride;
                for (int64_t j = 0; j < w; ++j) yr[j] = (xr[j] - m[j]) - s[j];
            }
        }
    });
}

// softmax: gx = y * (g - sum(g * y)); log_softmax: gx = g - exp(y) * sum(g).
template <typename T>
void backward(Kind kind, const T* g, const T* y, T* gx, const Layout& l) {
    if (l.len == 0) return;
    if (l.inner == 1) {
        const bool stream = streams(l);
        rows::for_chunks(l.outer, l.len, [&](int64_t r0, int64_t r1) {
            if (kind == Kind::Softmax) {
                const int64_t o = r0 * l.len;
                rows::softmax_grad_rows(g + o, y + o, gx + o, r1 - r0, l.len, stream);
                return;
            }
            for (int64_t r = r0; r < r1; ++r) {
                const int64_t o = r * l.len;
                const bool more = r + 1 < r1;
                // no streaming here: measured slower (the exp-bound pass hides the write-backs)
                rows::log_softmax_grad_row(g + o, y + o, gx + o, l.len, false, more ? g + o + l.len : nullptr,
                                           more ? y + o + l.len : nullptr);
            }
        });
        return;
    }
    const int64_t stride = l.inner;
    for_column_blocks(l, [&](int64_t off, int64_t w) {
        T s[kBlock], e[kBlock];
        std::fill(s, s + w, T(0));
        for (int64_t i = 0; i < l.len; ++i) {
            const T* gr = g + off + i * stride;
            const T* yr = y + off + i * stride;
            if (kind == Kind::Softmax)
                for (int64_t j = 0; j < w; ++j) s[j] += gr[j] * yr[j];
            else
                for (int64_t j = 0; j < w; ++j) s[j] += gr[j];
        }
        for (int64_t i = 0; i < l.len; ++i) {
            const int64_t r = off + i * stride;
            if (kind == Kind::Softmax) {
                for (int64_t j = 0; j < w; ++j) gx[r + j] = y[r + j] * (g[r + j] - s[j]);
            } else {
                std::copy(y + r, y + r + w, e);
                rows::exp_inplace(e, w);
                for (int64_t j = 0; j < w; ++j) gx[r + j] = g[r + j] - e[j] * s[j];
            }
        }
    });
}

template <Kind kind>
py::array forward_entry(const py::array& x, int64_t dim) {
    const char* op = kind == Kind::Softmax ? "softmax_forward" : "log_softmax_forward";
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Layout l = layout_of<T>(x, dim, op, "x");
        auto y = new_array<T>(shape_of(x), {x.data()});
        T* out = y.mutable_data();
        {
            py::gil_scoped_release release;
            forward<T>(kind, data_of<T>(x), out, l);
        }
        return std::move(y);
    });
}

template <Kind kind>
py::array backward_entry(const py::array& grad_y, const py::array& y, int64_t dim) {
    const char* op = kind == Kind::Softmax ? "softmax_backward" : "log_softmax_backward";
    return dispatch_float(float_dtype(grad_y, op, "grad_y"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Layout l = layout_of<T>(grad_y, dim, op, "grad_y");
        check_array<T>(y, op, "y", static_cast<int>(y.ndim()));
        expect_shape(op, "y", shape_of(y), shape_of(grad_y));
        auto grad_x = new_array<T>(shape_of(grad_y), {grad_y.data(), y.data()});
        T* out = grad_x.mutable_data();
        {
            py::gil_scoped_release release;
            backward<T>(kind, data_of<T>(grad_y), data_of<T>(y), out, l);
        }
        return std::move(grad_x);
    });
}

// The float32 exp of the row kernels, exposed for its accuracy test and benchmarks.
py::array exp_f32(const py::array& x) {
    check_array<float>(x, "exp_f32", "x", static_cast<int>(x.ndim()));
    auto y = new_array<float>(shape_of(x));
    const int64_t n = static_cast<int64_t>(x.size());
    std::copy(data_of<float>(x), data_of<float>(x) + n, y.mutable_data());
    rows::exp_inplace(y.mutable_data(), n);
    return std::move(y);
}

}  // namespace

PYCONV_REGISTER_FAMILY(softmax) {
    using py::arg;
    m.def("softmax_forward", &forward_entry<Kind::Softmax>, arg("x"), arg("dim"),
          "exp(x - max) / sum(exp(x - max)) along dim; any shape.");
    m.def("softmax_backward", &backward_entry<Kind::Softmax>, arg("grad_y"), arg("y"), arg("dim"),
          "grad_x = y * (grad_y - sum(grad_y * y, dim)).");
    m.def("log_softmax_forward", &forward_entry<Kind::LogSoftmax>, arg("x"), arg("dim"),
          "x - max - log(sum(exp(x - max))) along dim; any shape.");
    m.def("log_softmax_backward", &backward_entry<Kind::LogSoftmax>, arg("grad_y"), arg("y"), arg("dim"),
          "grad_x = grad_y - exp(y) * sum(grad_y, dim).");
    m.def("exp_f32", &exp_f32, arg("x"),
          "The vectorised float32 exp of the softmax kernels (for tests and benchmarks).");
}

}  // namespace pyconv::cpu
