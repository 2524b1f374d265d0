// linear forward and backward (contract: pyconv/backends/contract.py) on the packed GEMM.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include "gemm.h"
#include "register.h"
#include "validate.h"

namespace pyconv::cpu {

namespace {

// C (m x n, row-major) = A * B + col_bias with A and B given by their strides.
template <typename T>
void matmul(int64_t m, int64_t n, int64_t k, const MatrixA<T>& a, const MatrixB<T>& b, const T* col_bias, T* c) {
    Output<T> out;
    out.c = c;
    out.ldc = n;
    out.col_bias = col_bias;
    gemm<T>(1, 1, m, n, k, a, b, [](int64_t) { return int64_t(0); }, [&](int64_t) { return out; });
}

py::array linear_forward(const py::array& x, const py::array& weight, const std::optional<py::array>& bias) {
    constexpr const char* op = "linear_forward";
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape xs = check_array<T>(x, op, "x", 2), ws = check_array<T>(weight, op, "weight", 2);
        const int64_t m = xs[0], in = xs[1], o = ws[0];
        expect_shape(op, "weight", ws, {o, in});
        const T* b = nullptr;
        if (bias) {
            expect_shape(op, "bias", check_array<T>(*bias, op, "bias", 1), {o});
            b = data_of<T>(*bias);
        }
        auto y = new_array<T>({m, o});
        T* out = y.mutable_data();
        {
            py::gil_scoped_release release;
            // y = x @ W^T: B[i, o] = W[o, i]
            matmul<T>(m, o, in, {data_of<T>(x), in, 1, 0}, {data_of<T>(weight), 1, in, 0}, b, out);
        }
        return std::move(y);
    });
}

py::array linear_backward_input(const py::array& grad_y, const py::array& weight) {
    constexpr const char* op = "linear_backward_input";
    return dispatch_float(float_dtype(grad_y, op, "grad_y"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape gs = check_array<T>(grad_y, op, "grad_y", 2), ws = check_array<T>(weight, op, "weight", 2);
        const int64_t m = gs[0], o = gs[1], in = ws[1];
        expect_shape(op, "weight", ws, {o, in});
        auto grad_x = new_array<T>({m, in});
        T* out = grad_x.mutable_data();
        {
            py::gil_scoped_release release;
            matmul<T>(m, in, o, {data_of<T>(grad_y), o, 1, 0}, {data_of<T>(weight), in, 1, 0}, nullptr, out);
        }
        return std::move(grad_x);
    });
}

py::array linear_backward_weight(const py::array& grad_y, const py::array& x) {
    constexpr const char* op = "linear_backward_weight";
    return dispatch_float(float_dtype(grad_y, op, "grad_y"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape gs = check_array<T>(grad_y, op, "grad_y", 2), xs = check_array<T>(x, op, "x", 2);
        const int64_t m = gs[0], o = gs[1], in = xs[1];
        expect_shape(op, "x", xs, {m, in});
        auto grad_w = new_array<T>({o, in});
        T* out = grad_w.mutable_data();
        {
            py::gil_scoped_release release;
            // grad_W = grad_y^T @ x: A[o, m] = grad_y[m, o]
            matmul<T>(o, in, m, {data_of<T>(grad_y), 1, o, 0}, {data_of<T>(x), in, 1, 0}, nullptr, out);
        }
        return std::move(grad_w);
    });
}

}  // namespace

PYCONV_REGISTER_FAMILY(linear) {
    using py::arg;
    m.def("linear_forward", &linear_forward, arg("x"), arg("weight"), arg("bias"),
          "y (M, O) = x (M, I) @ weight (O, I).T + bias (O,).");
    m.def("linear_backward_input", &linear_backward_input, arg("grad_y"), arg("weight"),
          "grad_x (M, I) = grad_y (M, O) @ weight (O, I).");
    m.def("linear_backward_weight", &linear_backward_weight, arg("grad_y"), arg("x"),
          "grad_weight (O, I) = grad_y (M, O).T @ x (M, I).");
}

}  // namespace pyconv::cpu
