// The packed GEMM exposed to Python (for tests and benchmarks): C = alpha*op(A)*op(B) + beta*C.
#include <pybind11/pybind11.h>

#include "gemm.h"
#include "register.h"
#include "validate.h"

namespace pyconv::cpu {

namespace {

void gemm_into(py::array& c, const py::array& a, const py::array& b, double alpha, double beta,
               bool trans_a, bool trans_b) {
    constexpr const char* op = "gemm";
    dispatch_float(float_dtype(c, op, "c"), [&](auto tag) {
        using T = decltype(tag);
        const Shape cs = check_array<T>(c, op, "c", 2), as = check_array<T>(a, op, "a", 2),
                    bs = check_array<T>(b, op, "b", 2);
        if (!c.writeable()) throw py::value_error("gemm: c must be writeable");
        const int64_t m = cs[0], n = cs[1], k = trans_a ? as[0] : as[1];
        expect_shape(op, "a", as, trans_a ? Shape{k, m} : Shape{m, k});
        expect_shape(op, "b", bs, trans_b ? Shape{n, k} : Shape{k, n});
        // op(A)[i, kk] and op(B)[kk, j] by strides of the row-major arrays
        const MatrixA<T> pa{data_of<T>(a), trans_a ? 1 : k, trans_a ? m : 1, 0};
        const MatrixB<T> pb{data_of<T>(b), trans_b ? 1 : n, trans_b ? k : 1, 0};
        Output<T> out;
        out.c = static_cast<T*>(c.mutable_data());
        out.ldc = n;
        out.alpha = T(alpha);
        out.beta = T(beta);
        py::gil_scoped_release release;
        gemm<T>(1, 1, m, n, k, pa, pb, [](int64_t) { return int64_t(0); }, [&](int64_t) { return out; });
        return 0;
    });
}

}  // namespace

PYCONV_REGISTER_FAMILY(gemm) {
    using py::arg;
    m.def("gemm", &gemm_into, arg("c"), arg("a"), arg("b"), arg("alpha") = 1.0, arg("beta") = 0.0,
          arg("trans_a") = false, arg("trans_b") = false,
          "In place: c (M, N) = alpha * op(a) @ op(b) + beta * c, op transposing when trans_* is "
          "set; float32 or float64, C-contiguous, all of one dtype.");
    m.def("workspace_bytes", [] { return thread_workspace().reserved(); },
          "Bytes of packing workspace the calling thread keeps between calls.");
}

}  // namespace pyconv::cpu
