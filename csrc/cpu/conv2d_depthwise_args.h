// Boundary checks shared by the direct conv2d kernels (depthwise and small-C): the geometry of a
// call from its shapes and hyperparameters, validated with the same rules and messages as
// _C.conv2d_forward (conv2d.cpp), padding given as (top, bottom, left, right).
#pragma once

#include <pybind11/pybind11.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "conv_packers.h"  // ConvGeometry
#include "validate.h"

namespace pyconv::cpu::direct {

using Pair = std::array<int64_t, 2>;
using Padding = std::array<int64_t, 4>;  // top, bottom, left, right

// x (N, C, H, W) and weight (K, C/groups, R, S); the output size (p, q) is taken from grad_y
// in the backward kernels and derived with PyTorch's rule when negative.
inline ConvGeometry geometry(const char* op, const Shape& x, const Shape& w, int64_t p, int64_t q,
                             const Pair& stride, const Padding& padding, const Pair& dilation,
                             int64_t groups) {
    const auto fail = [op](const std::string& msg) { throw py::value_error(std::string(op) + ": " + msg); };
    if (stride[0] < 1 || stride[1] < 1 || dilation[0] < 1 || dilation[1] < 1)
        fail("stride and dilation must be >= 1, got stride " + shape_str({stride[0], stride[1]}) +
             ", dilation " + shape_str({dilation[0], dilation[1]}));
    for (int64_t v : padding)
        if (v < 0) fail("padding must be >= 0, got " + shape_str({padding.begin(), padding.end()}));
    const int64_t c = x[1], k = w[0];
    if (groups < 1 || c % groups != 0 || k % groups != 0 || w[1] * groups != c)
        fail("weight " + shape_str(w) + " does not fit input " + shape_str(x) + " with groups=" +
             std::to_string(groups) + " (expected (K, C/groups, R, S) with K divisible by groups)");
    if (w[2] < 1 || w[3] < 1) fail("kernel size must be >= 1, got weight " + shape_str(w));
    ConvGeometry g{x[0], c, x[2], x[3], k, w[2], w[3], p, q, stride[0], stride[1],
                   dilation[0], dilation[1], padding[0], padding[2], groups};
    // padded sizes and dilated kernel extents, each checked against int64 overflow
    const auto add = [op](int64_t a, int64_t b) {
        int64_t r;
        if (__builtin_add_overflow(a, b, &r))
            throw py::value_error(std::string(op) + ": size sum overflows 64 bits (" + std::to_string(a) +
                                  " + " + std::to_string(b) + ")");
        return r;
    };
    const int64_t padded_h = add(add(g.h, padding[0]), padding[1]), padded_w = add(add(g.w, padding[2]), padding[3]);
    const int64_t extent_h = add(checked_mul(g.dh, g.r - 1, op), 1), extent_w = add(checked_mul(g.dw, g.s - 1, op), 1);
    if (p < 0) {
        if (padded_h < extent_h || padded_w < extent_w)
            fail("the kernel (dilated) does not fit the padded input: padded input " +
                 shape_str({padded_h, padded_w}) + ", kernel extent " + shape_str({extent_h, extent_w}));
        g.p = (padded_h - extent_h) / g.sh + 1;
        g.q = (padded_w - extent_w) / g.sw + 1;
    }
    // every index product the kernels form must fit in int64
    checked_numel({g.n, g.k, g.p, g.q}, op);
    checked_numel({g.n, g.c, g.h, g.w}, op);
    checked_numel({g.k, g.crs(), 16}, op);
    checked_numel({g.p, g.sh}, op);
    checked_numel({g.q, g.sw}, op);
    checked_numel({g.r, g.dh}, op);
    checked_numel({g.s, g.dw}, op);
    return g;
}

// A depthwise weight (C, 1, R, S) for an input of C channels (groups = C = K).
inline ConvGeometry depthwise_geometry(const char* op, const Shape& x, const Shape& w, int64_t p,
                                       int64_t q, const Pair& stride, const Padding& padding,
                                       const Pair& dilation) {
    if (w[0] != x[1] || w[1] != 1)
        throw py::value_error(std::string(op) + ": weight must have shape (C, 1, R, S) with C=" +
                              std::to_string(x[1]) + " (the input's channels), got " + shape_str(w));
    return geometry(op, x, w, p, q, stride, padding, dilation, x[1]);
}

// The boundary of a forward kernel: x (N, C, H, W) and weight checked, bias (K,) or None, y
// (N, K, P, Q) allocated with the GIL held; geometry_of(x shape, weight shape) validates, and
// run(g, x, weight, bias or null, y) computes with the GIL released.
template <class GeometryOf, class Run>
py::array forward_call(const char* op, const py::array& x, const py::array& weight,
                       const std::optional<py::array>& bias, GeometryOf&& geometry_of, Run&& run) {
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape xs = check_array<T>(x, op, "x", 4), ws = check_array<T>(weight, op, "weight", 4);
        const ConvGeometry g = geometry_of(xs, ws);
        const T* b = nullptr;
        if (bias) {
            expect_shape(op, "bias", check_array<T>(*bias, op, "bias", 1), {g.k});
            b = data_of<T>(*bias);
        }
        auto y = new_array<T>({g.n, g.k, g.p, g.q});
        T* out = y.mutable_data();
        {
            py::gil_scoped_release release;
            run(g, data_of<T>(x), data_of<T>(weight), b, out);
        }
        return std::move(y);
    });
}

// The boundary of a gradient kernel: grad_y (N, K, P, Q) and `other` (the weight for the input
// gradient, x for the weight gradient) checked; the result has shape `dims` (input_shape or
// weight_shape); geometry_of(x shape, weight shape, P, Q) validates; run(g, grad_y, other,
// result) computes with the GIL released.
template <class GeometryOf, class Run>
py::array gradient_call(const char* op, const py::array& grad_y, const py::array& other, const char* other_name,
                        const std::vector<int64_t>& dims, const char* dims_name, bool dims_are_input,
                        GeometryOf&& geometry_of, Run&& run) {
    return dispatch_float(float_dtype(grad_y, op, "grad_y"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape gs = check_array<T>(grad_y, op, "grad_y", 4), os = check_array<T>(other, op, other_name, 4);
        const Shape ds = check_dims(dims, 4, op, dims_name);
        const ConvGeometry g = dims_are_input ? geometry_of(ds, os, gs[2], gs[3]) : geometry_of(os, ds, gs[2], gs[3]);
        expect_shape(op, "grad_y", gs, {g.n, g.k, g.p, g.q});
        auto result = new_array<T>(ds);
        T* out = result.mutable_data();
        {
            py::gil_scoped_release release;
            run(g, data_of<T>(grad_y), data_of<T>(other), out);
        }
        return std::move(result);
    });
}

}  // namespace pyconv::cpu::direct
