// conv2d forward and backward (contract: pyconv/backends/contract.py) as packed implicit GEMMs
// on the micro-kernel of microkernel.h; the packers of conv_packers.h read the NCHW tensors.
//
//   forward          y[n, g] (K/G x PQ)  = W_g (K/G x CRS) * cols(x[n, g]) (CRS x PQ)
//   backward_weight  dW_g (K/G x CRS)   = sum_n grad_y[n, g] (K/G x PQ) * cols(x[n, g])^T, the
//                    columns read from a channels-last copy of x (conv2d_weight_grad.h)
//   backward_input   stride 1 and C/G >= 64: a forward conv of grad_y with the rotated,
//                    transposed kernel; otherwise cols = W_g^T * grad_y[n, g] per (image, group),
//                    a block of columns at a time, each scattered back (col2im) while in cache.
// Stride-1 3x3 layers with many channels run forward and backward_input as Winograd F(4x4, 3x3)
// and backward_weight as its transpose F(3x3, 4x4) (winograd.h) instead; `algorithm` ("auto",
// "gemm", "winograd") overrides the choice for tests.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "conv2d_weight_grad.h"
#include "conv_packers.h"
#include "register.h"
#include "validate.h"
#include "winograd.h"

namespace pyconv::cpu {

namespace {

using Pair = std::array<int64_t, 2>;
using Padding = std::array<int64_t, 4>;  // top, bottom, left, right

// y (N, K, P, Q) = conv of x with the A matrices of pack_a (rows: output channels of a group,
// columns: (input channel, tap) of the group) plus bias.
template <typename T, class PackA>
void conv_as_gemm(const ConvGeometry& g, const T* x, const PackA& pack_a, const T* bias, T* y) {
    const int64_t kg = g.kg(), pq = g.pq(), groups = g.groups;
    const auto group_of = [groups](int64_t b) { return b % groups; };
    const auto out_of = [=](int64_t b) {
        Output<T> o;
        o.c = y + b * kg * pq;
        o.ldc = pq;
        if (bias) o.row_bias = bias + (b % groups) * kg;
        return o;
    };
    const bool pointwise = g.r == 1 && g.s == 1 && g.sh == 1 && g.sw == 1 && g.top == 0 &&
                           g.left == 0 && g.p == g.h && g.q == g.w;
    if (pointwise)  // the input image is the B matrix itself
        gemm<T>(groups, g.n * groups, kg, pq, g.crs(), pack_a, MatrixB<T>{x, g.hw(), 1, g.cg() * g.hw()},
                group_of, out_of);
    else
        gemm<T>(groups, g.n * groups, kg, pq, g.crs(), pack_a, ImplicitColumns<T>{x, g}, group_of, out_of);
}

enum class Algorithm { Auto, Gemm, Winograd };

Algorithm parse_algorithm(const char* op, const std::string& name) {
    if (name == "auto") return Algorithm::Auto;
    if (name == "gemm") return Algorithm::Gemm;
    if (name == "winograd") return Algorithm::Winograd;
    throw py::value_error(std::string(op) + ": algorithm must be 'auto', 'gemm' or 'winograd', got '" + name + "'");
}

// Winograd F(4x4, 3x3) computes stride-1, dilation-1, ungrouped 3x3 convolutions.
bool winograd_fits(const ConvGeometry& g) {
    return g.groups == 1 && g.r == 3 && g.s == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1;
}

// Whether to run Winograd (`pays_off`: Algorithm::Auto's measured choice for the shape).
bool use_winograd(const char* op, Algorithm algorithm, const ConvGeometry& g, bool pays_off) {
    if (algorithm == Algorithm::Winograd && !winograd_fits(g))
        throw py::value_error(std::string(op) +
                              ": algorithm='winograd' needs a 3x3 kernel, stride 1, dilation 1 and groups=1");
    if (algorithm == Algorithm::Auto) return winograd_fits(g) && pays_off;
    return algorithm == Algorithm::Winograd;
}

template <typename T>
void forward(const ConvGeometry& g, const T* x, const T* w, const T* bias, T* y, bool winograd) {
    if (winograd) {
        WinogradConv<T> cv;
        cv.in = x;
        cv.weight = w;
        cv.bias = bias;
        cv.out = y;
        cv.n = g.n, cv.c = g.c, cv.h = g.h, cv.w = g.w, cv.k = g.k, cv.p = g.p, cv.q = g.q;
        cv.top = g.top, cv.left = g.left;
        winograd_conv3x3(cv);
        return;
    }
    conv_as_gemm(g, x, MatrixA<T>{w, g.crs(), 1, g.kg() * g.crs()}, bias, y);
}

// Columns [j, j + len) of a block lie in output row op, from output column oq on.
struct OutputRun {
    int64_t j, len, op, oq;
};

// grad_x[n, g] += columns [j0, j0 + nc) of one (image, group)'s column matrix (rows (c, r, s),
// row stride nc), scattered back to the pixels they were gathered from.
template <typename T>
void col2im_add(const ConvGeometry& g, const T* cols, int64_t j0, int64_t nc, T* grad_x) {
    // the block's runs of columns within one output row, the same for every (c, r, s) row
    thread_local std::vector<OutputRun> runs;
    runs.clear();
    for (int64_t j = 0; j < nc;) {
        const int64_t op = (j0 + j) / g.q, oq = (j0 + j) % g.q, len = std::min(nc - j, g.q - oq);
        runs.push_back({j, len, op, oq});
        j += len;
    }
    for (int64_t row = 0; row < g.crs(); ++row, cols += nc) {
        const int64_t tap = row % g.taps(), r = tap / g.s, s = tap % g.s;
        T* plane = grad_x + (row / g.taps()) * g.hw();
        const int64_t dx = s * g.dw - g.left;
        for (const OutputRun& u : runs) {
            const int64_t iy = u.op * g.sh + r * g.dh - g.top;
            if (iy < 0 || iy >= g.h) continue;
            T* dst = plane + iy * g.w;
            const T* src = cols + u.j;
            if (g.sw == 1) {  // input columns oq + t + dx, t in [lo, hi) inside [0, w): contiguous
                const int64_t x0 = u.oq + dx;
                const int64_t lo = std::clamp<int64_t>(-x0, 0, u.len), hi = std::clamp<int64_t>(g.w - x0, lo, u.len);
                for (int64_t t = lo; t < hi; ++t) dst[x0 + t] += src[t];
                continue;
            }
            for (int64_t t = 0; t < u.len; ++t) {
                const int64_t ix = (u.oq + t) * g.sw + dx;
                if (ix >= 0 && ix < g.w) dst[ix] += src[t];
            }
        }
    }
}

// Below this many input channels per group the input gradient goes through column blocks and
// col2im: the rotated-kernel convolution would pack K*R*S rows per pixel for only C/G output rows.
constexpr int64_t kRotatedMinChannels = 64;

template <typename T>
void backward_input(const ConvGeometry& g, const T* grad_y, const T* w, T* grad_x, bool winograd) {
    if (winograd) {
        // grad_x[n, c, h, w] = sum_{k, r, s} grad_y[n, k, h + top - 2 + r', ...] * W[k, c, 2 - r', 2 - s']
        WinogradConv<T> cv;
        cv.in = grad_y;
        cv.weight = w;
        cv.out = grad_x;
        cv.rotated = true;
        cv.n = g.n, cv.c = g.k, cv.h = g.p, cv.w = g.q, cv.k = g.c, cv.p = g.h, cv.q = g.w;
        cv.top = 2 - g.top, cv.left = 2 - g.left;
        winograd_conv3x3(cv);
        return;
    }
    if (g.sh == 1 && g.sw == 1 && g.cg() >= kRotatedMinChannels) {
        // grad_x[n, c, h, w] = sum_{k, r, s} grad_y[n, k, h + top - r*dh, w + left - s*dw] * W[k, c, r, s]
        ConvGeometry t = g;
        t.c = g.k;
        t.h = g.p;
        t.w = g.q;
        t.k = g.c;
        t.p = g.h;
        t.q = g.w;
        t.top = g.dh * (g.r - 1) - g.top;
        t.left = g.dw * (g.s - 1) - g.left;
        conv_as_gemm(t, grad_y, RotatedWeightTransposed<T>{w, g}, static_cast<const T*>(nullptr), grad_x);
        return;
    }
    const int64_t crs = g.crs(), kg = g.kg(), pq = g.pq(), groups = g.groups;
    const int threads = threads_for(2.0 * double(g.n) * double(g.k) * double(crs) * double(pq));
    const PackedA<T> a = pack_a_all<T>(groups, crs, kg, MatrixA<T>{w, 1, crs, kg * crs}, threads);
    const MatrixB<T> dy{grad_y, pq, 1, kg * pq};
    // blocks of columns small enough for the column buffer to stay in L2
    const int64_t block = std::max<int64_t>(Tile<T>::NR, round_up(std::max<int64_t>(1, 65536 / std::max<int64_t>(crs, 1)), Tile<T>::NR));
    parallel_for(g.n * groups, threads, [&](int64_t b) {
        T* out = grad_x + b * g.cg() * g.hw();
        std::fill(out, out + g.cg() * g.hw(), T(0));
        T* cols = thread_workspace().get<T>(Slot::Columns, size_t(crs * std::min(block, pq)));
        for (int64_t j0 = 0; j0 < pq; j0 += block) {
            const int64_t nc = std::min(block, pq - j0);
            Output<T> o;
            o.c = cols;
            o.ldc = nc;
            o.first_col = j0;
            gemm_task(a, b % groups, dy, b, j0, nc, 0, crs, o);
            col2im_add(g, cols, j0, nc, out);
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Python boundary
// ---------------------------------------------------------------------------------------------

// The geometry from the shapes and hyperparameters, validated. Output size (p, q) is given for
// the backward kernels (taken from grad_y) and derived (PyTorch's rule) when negative.
ConvGeometry geometry(const char* op, const Shape& x, const Shape& w, int64_t p, int64_t q,
                      const Pair& stride, const Padding& padding, const Pair& dilation, int64_t groups) {
    const auto fail = [op](const std::string& msg) { throw py::value_error(std::string(op) + ": " + msg); };
    if (groups < 1) fail("groups must be >= 1, got " + std::to_string(groups));
    if (stride[0] < 1 || stride[1] < 1 || dilation[0] < 1 || dilation[1] < 1)
        fail("stride and dilation must be >= 1, got stride " + shape_str({stride[0], stride[1]}) +
             ", dilation " + shape_str({dilation[0], dilation[1]}));
    for (int64_t v : padding)
        if (v < 0) fail("padding must be >= 0, got " + shape_str({padding.begin(), padding.end()}));
    const int64_t c = x[1], k = w[0];
    if (c % groups != 0 || k % groups != 0 || w[1] * groups != c)
        fail("weight " + shape_str(w) + " does not fit input " + shape_str(x) + " with groups=" +
             std::to_string(groups) + " (expected (K, C/groups, R, S) with K divisible by groups)");
    if (w[2] < 1 || w[3] < 1) fail("kernel size must be >= 1, got weight " + shape_str(w));
    ConvGeometry g{x[0], c, x[2], x[3], k, w[2], w[3], p, q, stride[0], stride[1],
                   dilation[0], dilation[1], padding[0], padding[2], groups};
    // C++ division truncates toward zero, so a kernel one row larger than the padded input
    // would give (-1) / stride + 1 = 1: check the span before dividing.
    const int64_t rows_left = g.h + padding[0] + padding[1] - g.dh * (g.r - 1) - 1;
    const int64_t cols_left = g.w + padding[2] + padding[3] - g.dw * (g.s - 1) - 1;
    if (rows_left < 0 || cols_left < 0)
        fail("the kernel (dilated) " + shape_str({g.dh * (g.r - 1) + 1, g.dw * (g.s - 1) + 1}) +
             " is larger than the padded input " +
             shape_str({g.h + padding[0] + padding[1], g.w + padding[2] + padding[3]}));
    const int64_t out_p = rows_left / g.sh + 1, out_q = cols_left / g.sw + 1;
    if (p < 0) {
        g.p = out_p;
        g.q = out_q;
    } else if (p > out_p || q > out_q) {
        // smaller is fine (conv_transpose2d's output_padding leaves trailing input rows that no
        // output row reads); larger would read the input out of bounds
        fail("grad_y has spatial size " + shape_str({p, q}) + " but the convolution's output is " +
             "at most " + shape_str({out_p, out_q}));
    }
    // every product the kernels form (including the per-thread workspaces) must fit in int64
    checked_numel({g.n, g.k, g.p, g.q}, op);
    checked_numel({g.n, g.c, g.h, g.w}, op);
    checked_numel({g.crs(), g.pq(), 2}, op);
    checked_numel({g.groups, round_up(std::max(g.crs(), g.k), 8), std::max(g.crs(), g.n * g.pq())}, op);
    return g;
}

}  // namespace

// The Python entry points (also called by conv_transpose2d.cpp, conv2d's adjoint).
py::array conv2d_forward(const py::array& x, const py::array& weight, const std::optional<py::array>& bias,
                         const Pair& stride, const Padding& padding, const Pair& dilation, int64_t groups,
                         const std::string& algorithm) {
    constexpr const char* op = "conv2d_forward";
    const Algorithm algo = parse_algorithm(op, algorithm);
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape xs = check_array<T>(x, op, "x", 4), ws = check_array<T>(weight, op, "weight", 4);
        const ConvGeometry g = geometry(op, xs, ws, -1, -1, stride, padding, dilation, groups);
        const T* b = nullptr;
        if (bias) {
            expect_shape(op, "bias", check_array<T>(*bias, op, "bias", 1), {g.k});
            b = data_of<T>(*bias);
        }
        const bool winograd = use_winograd(op, algo, g, winograd_pays_off(g.c, g.k, g.p, g.q));
        auto y = new_array<T>({g.n, g.k, g.p, g.q});
        T* out = y.mutable_data();
        {
            py::gil_scoped_release release;
            forward(g, data_of<T>(x), data_of<T>(weight), b, out, winograd);
        }
        return std::move(y);
    });
}

py::array conv2d_backward_input(const py::array& grad_y, const py::array& weight,
                                const std::vector<int64_t>& input_shape, const Pair& stride,
                                const Padding& padding, const Pair& dilation, int64_t groups,
                                const std::string& algorithm) {
    constexpr const char* op = "conv2d_backward_input";
    const Algorithm algo = parse_algorithm(op, algorithm);
    return dispatch_float(float_dtype(grad_y, op, "grad_y"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape gs = check_array<T>(grad_y, op, "grad_y", 4), ws = check_array<T>(weight, op, "weight", 4);
        const Shape xs = check_dims(input_shape, 4, op, "input_shape");
        const ConvGeometry g = geometry(op, xs, ws, gs[2], gs[3], stride, padding, dilation, groups);
        expect_shape(op, "grad_y", gs, {g.n, g.k, g.p, g.q});
        const bool winograd = use_winograd(op, algo, g, winograd_pays_off(g.k, g.c, g.h, g.w));
        auto grad_x = new_array<T>(xs);
        T* out = grad_x.mutable_data();
        {
            py::gil_scoped_release release;
            backward_input(g, data_of<T>(grad_y), data_of<T>(weight), out, winograd);
        }
        return std::move(grad_x);
    });
}

py::array conv2d_backward_weight(const py::array& grad_y, const py::array& x,
                                 const std::vector<int64_t>& weight_shape, const Pair& stride,
                                 const Padding& padding, const Pair& dilation, int64_t groups,
                                 const std::string& algorithm) {
    constexpr const char* op = "conv2d_backward_weight";
    const Algorithm algo = parse_algorithm(op, algorithm);
    return dispatch_float(float_dtype(grad_y, op, "grad_y"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape gs = check_array<T>(grad_y, op, "grad_y", 4), xs = check_array<T>(x, op, "x", 4);
        const Shape ws = check_dims(weight_shape, 4, op, "weight_shape");
        const ConvGeometry g = geometry(op, xs, ws, gs[2], gs[3], stride, padding, dilation, groups);
        expect_shape(op, "grad_y", gs, {g.n, g.k, g.p, g.q});
        const bool winograd =
            use_winograd(op, algo, g, winograd_weight_grad_pays_off(g.n, g.c, g.k, g.p, g.q));
        auto grad_w = new_array<T>(ws);
        T* out = grad_w.mutable_data();
        {
            py::gil_scoped_release release;
            if (winograd) {
                WinogradWeightGrad<T> wg;
                wg.x = data_of<T>(x), wg.grad_y = data_of<T>(grad_y), wg.grad_w = out;
                wg.n = g.n, wg.c = g.c, wg.h = g.h, wg.w = g.w, wg.k = g.k, wg.p = g.p, wg.q = g.q;
                wg.top = g.top, wg.left = g.left;
                winograd_weight_grad3x3(wg);
            } else {
                conv2d_weight_grad(g, data_of<T>(grad_y), data_of<T>(x), out);
            }
        }
        return std::move(grad_w);
    });
}

PYCONV_REGISTER_FAMILY(conv2d) {
    using py::arg;
    m.def("conv2d_forward", &conv2d_forward, arg("x"), arg("weight"), arg("bias"), arg("stride"),
          arg("padding"), arg("dilation"), arg("groups"), arg("algorithm") = "auto",
          "y (N, K, P, Q) = conv2d(x (N, C, H, W), weight (K, C/groups, R, S)) + bias; padding is "
          "(top, bottom, left, right); algorithm 'auto', 'gemm' (implicit GEMM) or 'winograd'.");
    m.def("conv2d_backward_input", &conv2d_backward_input, arg("grad_y"), arg("weight"), arg("input_shape"),
          arg("stride"), arg("padding"), arg("dilation"), arg("groups"), arg("algorithm") = "auto",
          "grad_x (input_shape) of conv2d from grad_y (N, K, P, Q); algorithm as conv2d_forward.");
    m.def("conv2d_backward_weight", &conv2d_backward_weight, arg("grad_y"), arg("x"), arg("weight_shape"),
          arg("stride"), arg("padding"), arg("dilation"), arg("groups"), arg("algorithm") = "auto",
          "grad_weight (weight_shape) of conv2d from grad_y (N, K, P, Q) and x (N, C, H, W); "
          "algorithm as conv2d_forward (Winograd F(3x3, 4x4) for stride-1 3x3 layers).");
}

}  // namespace pyconv::cpu
