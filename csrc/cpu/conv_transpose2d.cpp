// conv_transpose2d (contract: pyconv/backends/contract.py) as conv2d's adjoint on conv2d.cpp's
// kernels, with the roles of input and output swapped (the weight (C, K/G, R, S) is the OIHW
// weight of the conv2d mapping y (N, K, P, Q) to x (N, C, H, W)):
//
//   forward          y       = conv2d_backward_input(x, weight, (N, K, P, Q)) + bias
//   backward_input   grad_x  = conv2d_forward(grad_y, weight), cropped to (H, W)
//   backward_weight  grad_w  = conv2d_backward_weight(x, grad_y, weight_shape)
//
// so each runs on the implicit GEMM or Winograd exactly as the conv2d kernel it is.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "parallel.h"
#include "register.h"
#include "validate.h"

namespace pyconv::cpu {

using Pair = std::array<int64_t, 2>;
using Padding = std::array<int64_t, 4>;

// conv2d.cpp
py::array conv2d_forward(const py::array& x, const py::array& weight, const std::optional<py::array>& bias,
                         const Pair& stride, const Padding& padding, const Pair& dilation, int64_t groups,
                         const std::string& algorithm);
py::array conv2d_backward_input(const py::array& grad_y, const py::array& weight,
                                const std::vector<int64_t>& input_shape, const Pair& stride,
                                const Padding& padding, const Pair& dilation, int64_t groups,
                                const std::string& algorithm);
py::array conv2d_backward_weight(const py::array& grad_y, const py::array& x,
                                 const std::vector<int64_t>& weight_shape, const Pair& stride,
                                 const Padding& padding, const Pair& dilation, int64_t groups,
                                 const std::string& algorithm);

namespace {

Padding symmetric(const Pair& p) { return {p[0], p[0], p[1], p[1]}; }

py::array conv_transpose2d_forward(const py::array& x, const py::array& weight,
                                   const std::optional<py::array>& bias, const Pair& stride,
                                   const Pair& padding, const Pair& output_padding, const Pair& dilation,
                                   int64_t groups) {
    constexpr const char* op = "conv_transpose2d_forward";
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape xs = check_array<T>(x, op, "x", 4), ws = check_array<T>(weight, op, "weight", 4);
        if (groups < 1) throw py::value_error(std::string(op) + ": groups must be >= 1");
        const int64_t k = ws[1] * groups;
        const int64_t p = (xs[2] - 1) * stride[0] - 2 * padding[0] + dilation[0] * (ws[2] - 1) + output_padding[0] + 1;
        const int64_t q = (xs[3] - 1) * stride[1] - 2 * padding[1] + dilation[1] * (ws[3] - 1) + output_padding[1] + 1;
        if (p < 1 || q < 1)
            throw py::value_error(std::string(op) + ": the output would be " + shape_str({p, q}) +
                                  " (padding crops more than the transposed convolution produces)");
        const T* b = nullptr;
        if (bias) {
            expect_shape(op, "bias", check_array<T>(*bias, op, "bias", 1), {k});
            b = data_of<T>(*bias);
        }
        py::array y = conv2d_backward_input(x, weight, {xs[0], k, p, q}, stride, symmetric(padding), dilation,
                                            groups, "auto");
        if (b) {
            T* out = static_cast<T*>(y.mutable_data());
            const int64_t n = xs[0], pq = p * q;
            py::gil_scoped_release release;
            parallel_for(n * k, threads_for(double(n * k * pq)), [&](int64_t plane) {
                T* o = out + plane * pq;
                const T v = b[plane % k];
                for (int64_t i = 0; i < pq; ++i) o[i] += v;
            });
        }
        return y;
    });
}

py::array conv_transpose2d_backward_input(const py::array& grad_y, const py::array& weight,
                                          const std::vector<int64_t>& input_shape, const Pair& stride,
                                          const Pair& padding, const Pair& dilation, int64_t groups) {
    constexpr const char* op = "conv_transpose2d_backward_input";
    const Shape xs = check_dims(input_shape, 4, op, "input_shape");
    py::array grad_x = conv2d_forward(grad_y, weight, std::nullopt, stride, symmetric(padding), dilation, groups,
                                      "auto");
    const Shape got = shape_of(grad_x);
    if (got == xs) return grad_x;
    if (got[0] != xs[0] || got[1] != xs[1] || got[2] < xs[2] || got[3] < xs[3])
        throw py::value_error(std::string(op) + ": grad_y gives an input gradient of shape " + shape_str(got) +
                              ", which does not cover input_shape " + shape_str(xs));
    // output_padding >= stride: the trailing rows/columns of the strided conv2d belong to no x
    return dispatch_float(float_dtype(grad_x, op, "grad_x"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        auto out = new_array<T>(xs);
        const T* src = static_cast<const T*>(grad_x.data());
        T* dst = out.mutable_data();
        py::gil_scoped_release release;
        for (int64_t plane = 0; plane < xs[0] * xs[1]; ++plane)
            for (int64_t i = 0; i < xs[2]; ++i)
                std::copy(src + (plane * got[2] + i) * got[3], src + (plane * got[2] + i) * got[3] + xs[3],
                          dst + (plane * xs[2] + i) * xs[3]);
        return std::move(out);
    });
}

py::array conv_transpose2d_backward_weight(const py::array& grad_y, const py::array& x,
                                           const std::vector<int64_t>& weight_shape, const Pair& stride,
                                           const Pair& padding, const Pair& dilation, int64_t groups) {
    return conv2d_backward_weight(x, grad_y, weight_shape, stride, symmetric(padding), dilation, groups, "auto");
}

}  // namespace

PYCONV_REGISTER_FAMILY(conv_transpose2d) {
    using py::arg;
    m.def("conv_transpose2d_forward", &conv_transpose2d_forward, arg("x"), arg("weight"), arg("bias"),
          arg("stride"), arg("padding"), arg("output_padding"), arg("dilation"), arg("groups"),
          "y (N, K, P, Q) = conv_transpose2d(x (N, C, H, W), weight (C, K/groups, R, S)) + bias; "
          "padding (ph, pw).");
    m.def("conv_transpose2d_backward_input", &conv_transpose2d_backward_input, arg("grad_y"), arg("weight"),
          arg("input_shape"), arg("stride"), arg("padding"), arg("dilation"), arg("groups"),
          "grad_x (input_shape) of conv_transpose2d from grad_y (N, K, P, Q).");
    m.def("conv_transpose2d_backward_weight", &conv_transpose2d_backward_weight, arg("grad_y"), arg("x"),
          arg("weight_shape"), arg("stride"), arg("padding"), arg("dilation"), arg("groups"),
          "grad_weight (weight_shape) of conv_transpose2d from grad_y (N, K, P, Q) and x (N, C, H, W).");
}

}  // namespace pyconv::cpu
