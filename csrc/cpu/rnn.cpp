// Recurrent cells, one time step (contract: pyconv/backends/contract.py; reference:
// pyconv/backends/numpy_ref/rnn.py): Elman RNN (tanh, relu), LSTM (gates i, f, g, o) and GRU
// (gates r, z, n; the reset gate scales W_hn h + b_hn).
//
// Shapes: x (B, I); h, c (B, Hd); w_ih (G*Hd, I); w_hh (G*Hd, Hd); biases (G*Hd,) or None, with
// G = 1, 4, 3.
//
// Forward: the gate pre-activations in one packed GEMM (RNN, LSTM: [x h] @ [W_ih W_hh]^T, written
// straight into the output that keeps them; GRU needs the h-side of n apart, so x and h get one
// GEMM each), then ONE fused pointwise pass (activations and state update) over rows of the
// batch. Backward: one fused pointwise pass producing the gate gradients (B, G*Hd), then GEMMs:
// grad_x and grad_h share one packing of the gate gradients, grad_w_ih and grad_w_hh share one
// packing of their transpose; bias gradients are column sums in a fixed order (results do not
// depend on the thread count).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <vector>

#include "gemm.h"
#include "register.h"
#include "rnn_common.h"
#include "rnn_packers.h"
#include "rnn_pointwise.h"
#include "validate.h"

namespace pyconv::cpu {

namespace {

using namespace rnn_detail;

// pre (B x G*Hd, row stride ldc) = x @ w_ih^T + h @ w_hh^T + bias, as one GEMM over k = I + Hd.
template <typename T>
void gate_preactivations(int64_t batch, int64_t in, int64_t hd, int64_t rows, const T* x, const T* h,
                         const T* w_ih, const T* w_hh, const T* bias, T* pre, int64_t ldc) {
    const SideBySideA<T> a{{x, h, in, hd}};
    const SideBySideB<T> b{{w_ih, w_hh, in, hd}};
    matmul<T>(batch, rows, in + hd, a, b, output_of(pre, ldc, bias));
}

// grad_x = gp @ w_ih, grad_h = gp @ w_hh + beta_h * grad_h, grad_w_ih = gp^T @ x,
// grad_w_hh = gp^T @ h, for gate gradients gp (B x rows) shared by both sides (RNN, LSTM).
template <typename T>
void shared_gate_gemms(int64_t batch, int64_t in, int64_t hd, int64_t rows, const T* gp, const T* x,
                       const T* h, const T* w_ih, const T* w_hh, T* grad_x, T* grad_h, T* grad_w_ih,
                       T* grad_w_hh) {
    if (batch > 0 && rows > 0) {
        const int threads = threads_for(2.0 * double(batch) * double(rows) * double(in + hd));
        const PackedA<T> a = pack_a_all<T>(1, batch, rows, MatrixA<T>{gp, rows, 1, 0}, threads);
        gemm_packed<T>(a, 1, in, MatrixB<T>{w_ih, in, 1, 0}, group_zero,
                       [&](int64_t) { return output_of(grad_x, in); }, threads);
        gemm_packed<T>(a, 1, hd, MatrixB<T>{w_hh, hd, 1, 0}, group_zero,
                       [&](int64_t) { return output_of(grad_h, hd); }, threads);
    } else {  // no gate rows: the input gradients are zero
        std::fill(grad_x, grad_x + batch * in, T(0));
        std::fill(grad_h, grad_h + batch * hd, T(0));
    }
    if (rows > 0) {
        const int threads = threads_for(2.0 * double(batch) * double(rows) * double(in + hd));
        // A = gp^T (rows x B): element (i, k) at gp[k*rows + i]
        const PackedA<T> a = pack_a_all<T>(1, rows, batch, MatrixA<T>{gp, 1, rows, 0}, threads);
        gemm_packed<T>(a, 1, in, MatrixB<T>{x, in, 1, 0}, group_zero,
                       [&](int64_t) { return output_of(grad_w_ih, in); }, threads);
        gemm_packed<T>(a, 1, hd, MatrixB<T>{h, hd, 1, 0}, group_zero,
                       [&](int64_t) { return output_of(grad_w_hh, hd); }, threads);
    }
}

// ---------------------------------------------------------------------------------------------
// Elman RNN
// ---------------------------------------------------------------------------------------------

struct CellShapes {
    int64_t batch, in, hd, rows;
};

// Checks x, h, w_ih, w_hh (and the biases) of a G-gate cell; returns the sizes.
template <typename T>
CellShapes check_cell(const char* op, int64_t gates, const py::array& x, const py::array& h,
                      const py::array& w_ih, const py::array& w_hh, const std::optional<py::array>& b_ih,
                      const std::optional<py::array>& b_hh) {
    const Shape xs = check_array<T>(x, op, "x", 2), hs = check_array<T>(h, op, "h", 2);
    CellShapes s{xs[0], xs[1], hs[1], checked_mul(gates, hs[1], op)};
    expect_shape(op, "h", hs, {s.batch, s.hd});
    expect_shape(op, "w_ih", check_array<T>(w_ih, op, "w_ih", 2), {s.rows, s.in});
    expect_shape(op, "w_hh", check_array<T>(w_hh, op, "w_hh", 2), {s.rows, s.hd});
    if (b_ih) expect_shape(op, "b_ih", check_array<T>(*b_ih, op, "b_ih", 1), {s.rows});
    if (b_hh) expect_shape(op, "b_hh", check_array<T>(*b_hh, op, "b_hh", 1), {s.rows});
    checked_mul(s.batch, checked_mul(s.rows, 2, op), op);
    checked_mul(s.rows, s.in + s.hd, op);
    return s;
}

template <Act A>
py::array rnn_forward(const char* op, const py::array& x, const py::array& h, const py::array& w_ih,
                      const py::array& w_hh, const std::optional<py::array>& b_ih,
                      const std::optional<py::array>& b_hh) {
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const CellShapes s = check_cell<T>(op, 1, x, h, w_ih, w_hh, b_ih, b_hh);
        auto h_new = new_array<T>({s.batch, s.hd});
        T* out = h_new.mutable_data();
        {
            py::gil_scoped_release release;
            std::vector<T> bias_sum;
            const T* bias = combined_bias(optional_data<T>(b_ih), optional_data<T>(b_hh), s.rows, bias_sum);
            gate_preactivations<T>(s.batch, s.in, s.hd, s.rows, data_of<T>(x), data_of<T>(h),
                                   data_of<T>(w_ih), data_of<T>(w_hh), bias, out, s.hd);
            for_rows(s.batch, s.hd, A == Act::Tanh ? kRnnPass : kCheapPass, [&](int64_t r, int64_t j0, int64_t j1) {
                T* row = out + r * s.hd;
                for_lanes<T>(j0, j1, [&](int64_t j, int n) { elman_forward_lanes<A>(row, j, n); });
            });
        }
        return std::move(h_new);
    });
}

template <Act A>
py::tuple rnn_backward(const char* op, const py::array& grad_h_new, const py::array& x, const py::array& h,
                       const py::array& w_ih, const py::array& w_hh, const py::array& h_new) {
    return dispatch_float(float_dtype(grad_h_new, op, "grad_h_new"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const CellShapes s = check_cell<T>(op, 1, x, h, w_ih, w_hh, std::nullopt, std::nullopt);
        expect_shape(op, "grad_h_new", check_array<T>(grad_h_new, op, "grad_h_new", 2), {s.batch, s.hd});
        expect_shape(op, "h_new", check_array<T>(h_new, op, "h_new", 2), {s.batch, s.hd});
        auto grad_x = new_array<T>({s.batch, s.in});
        auto grad_h = new_array<T>({s.batch, s.hd});
        auto grad_w_ih = new_array<T>({s.rows, s.in});
        auto grad_w_hh = new_array<T>({s.rows, s.hd});
        auto grad_b_ih = new_array<T>({s.rows});
        auto grad_b_hh = new_array<T>({s.rows});
        T *gx = grad_x.mutable_data(), *gh = grad_h.mutable_data(), *gwi = grad_w_ih.mutable_data(),
          *gwh = grad_w_hh.mutable_data(), *gbi = grad_b_ih.mutable_data(), *gbh = grad_b_hh.mutable_data();
        {
            py::gil_scoped_release release;
            T* gp = thread_workspace().get<T>(Slot::Columns, size_t(s.batch * s.hd));
            const T* g = data_of<T>(grad_h_new);
            const T* hn = data_of<T>(h_new);
            for_rows(s.batch, s.hd, kCheapPass, [&](int64_t r, int64_t j0, int64_t j1) {
                const int64_t o = r * s.hd;
                for_lanes<T>(j0, j1, [&](int64_t j, int n) {
                    st(gp + o + j, elman_gate_grad<A, T>(ld(g + o + j, n), ld(hn + o + j, n)), n);
                });
            });
            shared_gate_gemms<T>(s.batch, s.in, s.hd, s.rows, gp, data_of<T>(x), data_of<T>(h),
                                 data_of<T>(w_ih), data_of<T>(w_hh), gx, gh, gwi, gwh);
            column_sums(gp, s.batch, s.rows, gbi);
            std::copy(gbi, gbi + s.rows, gbh);
        }
        return py::make_tuple(grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh);
    });
}

py::array rnn_tanh_cell_forward(const py::array& x, const py::array& h, const py::array& w_ih,
                                const py::array& w_hh, const std::optional<py::array>& b_ih,
                                const std::optional<py::array>& b_hh) {
    return rnn_forward<Act::Tanh>("rnn_tanh_cell_forward", x, h, w_ih, w_hh, b_ih, b_hh);
}

py::array rnn_relu_cell_forward(const py::array& x, const py::array& h, const py::array& w_ih,
                                const py::array& w_hh, const std::optional<py::array>& b_ih,
                                const std::optional<py::array>& b_hh) {
    return rnn_forward<Act::Relu>("rnn_relu_cell_forward", x, h, w_ih, w_hh, b_ih, b_hh);
}

py::tuple rnn_tanh_cell_backward(const py::array& grad_h_new, const py::array& x, const py::array& h,
                                 const py::array& w_ih, const py::array& w_hh, const py::array& h_new) {
    return rnn_backward<Act::Tanh>("rnn_tanh_cell_backward", grad_h_new, x, h, w_ih, w_hh, h_new);
}

py::tuple rnn_relu_cell_backward(const py::array& grad_h_new, const py::array& x, const py::array& h,
                                 const py::array& w_ih, const py::array& w_hh, const py::array& h_new) {
    return rnn_backward<Act::Relu>("rnn_relu_cell_backward", grad_h_new, x, h, w_ih, w_hh, h_new);
}

// ---------------------------------------------------------------------------------------------
// LSTM
// ---------------------------------------------------------------------------------------------

py::tuple lstm_cell_forward(const py::array& x, const py::array& h, const py::array& c, const py::array& w_ih,
                            const py::array& w_hh, const std::optional<py::array>& b_ih,
                            const std::optional<py::array>& b_hh) {
    constexpr const char* op = "lstm_cell_forward";
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const CellShapes s = check_cell<T>(op, 4, x, h, w_ih, w_hh, b_ih, b_hh);
        expect_shape(op, "c", check_array<T>(c, op, "c", 2), {s.batch, s.hd});
        auto h_new = new_array<T>({s.batch, s.hd});
        auto c_new = new_array<T>({s.batch, s.hd});
        auto gates = new_array<T>({s.batch, s.rows});
        T *ho = h_new.mutable_data(), *co = c_new.mutable_data(), *go = gates.mutable_data();
        {
            py::gil_scoped_release release;
            std::vector<T> bias_sum;
            const T* bias = combined_bias(optional_data<T>(b_ih), optional_data<T>(b_hh), s.rows, bias_sum);
            gate_preactivations<T>(s.batch, s.in, s.hd, s.rows, data_of<T>(x), data_of<T>(h),
                                   data_of<T>(w_ih), data_of<T>(w_hh), bias, go, s.rows);
            const T* ci = data_of<T>(c);
            const int64_t hd = s.hd;
            for_rows(s.batch, hd, kLstmPass, [&](int64_t r, int64_t j0, int64_t j1) {
                const int64_t o = r * hd;
                for_lanes<T>(j0, j1, [&](int64_t j, int n) {
                    lstm_forward_lanes(go + r * s.rows, ci + o, co + o, ho + o, hd, j, n);
                });
            });
        }
        return py::make_tuple(h_new, c_new, gates);
    });
}

py::tuple lstm_cell_backward(const py::array& grad_h_new, const py::array& grad_c_new, const py::array& x,
                             const py::array& h, const py::array& c, const py::array& w_ih,
                             const py::array& w_hh, const py::array& gates, const py::array& c_new) {
    constexpr const char* op = "lstm_cell_backward";
    return dispatch_float(float_dtype(grad_h_new, op, "grad_h_new"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const CellShapes s = check_cell<T>(op, 4, x, h, w_ih, w_hh, std::nullopt, std::nullopt);
        const Shape state{s.batch, s.hd};
        expect_shape(op, "grad_h_new", check_array<T>(grad_h_new, op, "grad_h_new", 2), state);
        expect_shape(op, "grad_c_new", check_array<T>(grad_c_new, op, "grad_c_new", 2), state);
        expect_shape(op, "c", check_array<T>(c, op, "c", 2), state);
        expect_shape(op, "gates", check_array<T>(gates, op, "gates", 2), {s.batch, s.rows});
        expect_shape(op, "c_new", check_array<T>(c_new, op, "c_new", 2), state);
        auto grad_x = new_array<T>({s.batch, s.in});
        auto grad_h = new_array<T>(state);
        auto grad_c = new_array<T>(state);
        auto grad_w_ih = new_array<T>({s.rows, s.in});
        auto grad_w_hh = new_array<T>({s.rows, s.hd});
        auto grad_b_ih = new_array<T>({s.rows});
        auto grad_b_hh = new_array<T>({s.rows});
        T *gx = grad_x.mutable_data(), *gh = grad_h.mutable_data(), *gc = grad_c.mutable_data(),
          *gwi = grad_w_ih.mutable_data(), *gwh = grad_w_hh.mutable_data(), *gbi = grad_b_ih.mutable_data(),
          *gbh = grad_b_hh.mutable_data();
        {
            py::gil_scoped_release release;
            T* gp = thread_workspace().get<T>(Slot::Columns, size_t(s.batch * s.rows));
            const T *dh = data_of<T>(grad_h_new), *dc = data_of<T>(grad_c_new), *ci = data_of<T>(c),
                    *ga = data_of<T>(gates), *cn = data_of<T>(c_new);
            const int64_t hd = s.hd;
            for_rows(s.batch, hd, kLstmPass / 2, [&](int64_t r, int64_t j0, int64_t j1) {
                const int64_t o = r * hd;
                for_lanes<T>(j0, j1, [&](int64_t j, int n) {
                    lstm_backward_lanes(ld(dh + o + j, n), dc + o, ga + r * s.rows, ci + o, cn + o, gp + r * s.rows,
                                        gc + o, hd, j, n);
                });
            });
            shared_gate_gemms<T>(s.batch, s.in, hd, s.rows, gp, data_of<T>(x), data_of<T>(h),
                                 data_of<T>(w_ih), data_of<T>(w_hh), gx, gh, gwi, gwh);
            column_sums(gp, s.batch, s.rows, gbi);
            std::copy(gbi, gbi + s.rows, gbh);
        }
        return py::make_tuple(grad_x, grad_h, grad_c, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh);
    });
}

// ---------------------------------------------------------------------------------------------
// GRU
// ---------------------------------------------------------------------------------------------

py::tuple gru_cell_forward(const py::array& x, const py::array& h, const py::array& w_ih,
                           const py::array& w_hh, const std::optional<py::array>& b_ih,
                           const std::optional<py::array>& b_hh) {
    constexpr const char* op = "gru_cell_forward";
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const CellShapes s = check_cell<T>(op, 3, x, h, w_ih, w_hh, b_ih, b_hh);
        const int64_t hd = s.hd, ws_cols = checked_mul(4, hd, op);
        auto h_new = new_array<T>({s.batch, hd});
        auto workspace = new_array<T>({s.batch, ws_cols});
        T *ho = h_new.mutable_data(), *wo = workspace.mutable_data();
        {
            py::gil_scoped_release release;
            // x side -> workspace[:, :3Hd]; h side -> pre_hh (B x 3Hd)
            T* pre_hh = thread_workspace().get<T>(Slot::Columns, size_t(s.batch * s.rows));
            const T* hi = data_of<T>(h);
            matmul<T>(s.batch, s.rows, s.in, MatrixA<T>{data_of<T>(x), s.in, 1, 0},
                      MatrixB<T>{data_of<T>(w_ih), 1, s.in, 0}, output_of(wo, ws_cols, optional_data<T>(b_ih)));
            matmul<T>(s.batch, s.rows, hd, MatrixA<T>{hi, hd, 1, 0}, MatrixB<T>{data_of<T>(w_hh), 1, hd, 0},
                      output_of(pre_hh, s.rows, optional_data<T>(b_hh)));
            for_rows(s.batch, hd, kGruPass, [&](int64_t r, int64_t j0, int64_t j1) {
                const int64_t o = r * hd;
                for_lanes<T>(j0, j1, [&](int64_t j, int n) {
                    gru_forward_lanes(wo + r * ws_cols, pre_hh + r * s.rows, hi + o, ho + o, hd, j, n);
                });
            });
        }
        return py::make_tuple(h_new, workspace);
    });
}

py::tuple gru_cell_backward(const py::array& grad_h_new, const py::array& x, const py::array& h,
                            const py::array& w_ih, const py::array& w_hh, const py::array& workspace) {
    constexpr const char* op = "gru_cell_backward";
    return dispatch_float(float_dtype(grad_h_new, op, "grad_h_new"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const CellShapes s = check_cell<T>(op, 3, x, h, w_ih, w_hh, std::nullopt, std::nullopt);
        const int64_t hd = s.hd, ws_cols = checked_mul(4, hd, op);
        expect_shape(op, "grad_h_new", check_array<T>(grad_h_new, op, "grad_h_new", 2), {s.batch, hd});
        expect_shape(op, "workspace", check_array<T>(workspace, op, "workspace", 2), {s.batch, ws_cols});
        auto grad_x = new_array<T>({s.batch, s.in});
        auto grad_h = new_array<T>({s.batch, hd});
        auto grad_w_ih = new_array<T>({s.rows, s.in});
        auto grad_w_hh = new_array<T>({s.rows, hd});
        auto grad_b_ih = new_array<T>({s.rows});
        auto grad_b_hh = new_array<T>({s.rows});
        T *gx = grad_x.mutable_data(), *gh = grad_h.mutable_data(), *gwi = grad_w_ih.mutable_data(),
          *gwh = grad_w_hh.mutable_data(), *gbi = grad_b_ih.mutable_data(), *gbh = grad_b_hh.mutable_data();
        {
            py::gil_scoped_release release;
            // gate gradients of the x side (gpi) and the h side (gph): equal for r and z; n's
            // h side is scaled by r
            T* gpi = thread_workspace().get<T>(Slot::Columns, size_t(2 * s.batch * s.rows));
            T* gph = gpi + s.batch * s.rows;
            const T *dh = data_of<T>(grad_h_new), *hi = data_of<T>(h), *ws = data_of<T>(workspace);
            for_rows(s.batch, hd, kGruPass / 2, [&](int64_t r, int64_t j0, int64_t j1) {
                const int64_t o = r * hd;
                for_lanes<T>(j0, j1, [&](int64_t j, int n) {
                    // h' = ... + z*h: gh = g*z; the GEMM adds the gates' part
                    gru_backward_lanes(ld(dh + o + j, n), ws + r * ws_cols, hi + o, gpi + r * s.rows,
                                       gph + r * s.rows, gh + o, hd, j, n);
                });
            });
            if (s.rows > 0) {
                matmul<T>(s.batch, s.in, s.rows, MatrixA<T>{gpi, s.rows, 1, 0},
                          MatrixB<T>{data_of<T>(w_ih), s.in, 1, 0}, output_of(gx, s.in));
                matmul<T>(s.batch, hd, s.rows, MatrixA<T>{gph, s.rows, 1, 0},
                          MatrixB<T>{data_of<T>(w_hh), hd, 1, 0}, output_of(gh, hd, (const T*)nullptr, T(1)));
                matmul<T>(s.rows, s.in, s.batch, MatrixA<T>{gpi, 1, s.rows, 0},
                          MatrixB<T>{data_of<T>(x), s.in, 1, 0}, output_of(gwi, s.in));
                matmul<T>(s.rows, hd, s.batch, MatrixA<T>{gph, 1, s.rows, 0}, MatrixB<T>{hi, hd, 1, 0},
                          output_of(gwh, hd));
            } else {
                std::fill(gx, gx + s.batch * s.in, T(0));
            }
            column_sums(gpi, s.batch, s.rows, gbi);
            column_sums(gph, s.batch, s.rows, gbh);
        }
        return py::make_tuple(grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh);
    });
}

}  // namespace

PYCONV_REGISTER_FAMILY(rnn) {
    using py::arg;
    m.def("rnn_tanh_cell_forward", &rnn_tanh_cell_forward, arg("x"), arg("h"), arg("w_ih"), arg("w_hh"),
          arg("b_ih").none(true), arg("b_hh").none(true),
          "h' (B, Hd) = tanh(x (B, I) @ w_ih (Hd, I).T + b_ih + h (B, Hd) @ w_hh (Hd, Hd).T + b_hh).");
    m.def("rnn_relu_cell_forward", &rnn_relu_cell_forward, arg("x"), arg("h"), arg("w_ih"), arg("w_hh"),
          arg("b_ih").none(true), arg("b_hh").none(true), "As rnn_tanh_cell_forward with relu.");
    m.def("rnn_tanh_cell_backward", &rnn_tanh_cell_backward, arg("grad_h_new"), arg("x"), arg("h"),
          arg("w_ih"), arg("w_hh"), arg("h_new"),
          "(grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh) of rnn_tanh_cell_forward.");
    m.def("rnn_relu_cell_backward", &rnn_relu_cell_backward, arg("grad_h_new"), arg("x"), arg("h"),
          arg("w_ih"), arg("w_hh"), arg("h_new"),
          "(grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh) of rnn_relu_cell_forward.");
    m.def("lstm_cell_forward", &lstm_cell_forward, arg("x"), arg("h"), arg("c"), arg("w_ih"), arg("w_hh"),
          arg("b_ih").none(true), arg("b_hh").none(true),
          "(h' (B, Hd), c' (B, Hd), gates (B, 4Hd) = activated i, f, g, o).");
    m.def("lstm_cell_backward", &lstm_cell_backward, arg("grad_h_new"), arg("grad_c_new"), arg("x"),
          arg("h"), arg("c"), arg("w_ih"), arg("w_hh"), arg("gates"), arg("c_new"),
          "(grad_x, grad_h, grad_c, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).");
    m.def("gru_cell_forward", &gru_cell_forward, arg("x"), arg("h"), arg("w_ih"), arg("w_hh"),
          arg("b_ih").none(true), arg("b_hh").none(true),
          "(h' (B, Hd), workspace (B, 4Hd) = [r, z, n, W_hn h + b_hn]).");
    m.def("gru_cell_backward", &gru_cell_backward, arg("grad_h_new"), arg("x"), arg("h"), arg("w_ih"),
          arg("w_hh"), arg("workspace"),
          "(grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh) of gru_cell_forward.");
}

}  // namespace pyconv::cpu
