// Recurrent layers over a whole sequence, one layer and direction per call (contract:
// pyconv/backends/contract.py, "recurrent layers"; reference: pyconv/backends/numpy_ref/rnn.py,
// which loops over the cells). Elman RNN (tanh, relu), LSTM and GRU, time-major.
//
// Shapes: x (L, B, I); h0, c0 (B, Hd); w_ih (G*Hd, I); w_hh (G*Hd, Hd); biases (G*Hd,) or None;
// out (L, B, Hd) with out[t] the state after step t (steps run L-1..0 when reverse).
//
// Forward: the x side of every step in ONE GEMM (L*B x G*Hd = X W_ih^T + biases, written into
// the array that keeps the pre-activations: out for RNN, gates for LSTM, the workspace for GRU);
// W_hh^T is packed once, and each step only adds h_prev W_hh^T (m = B) to its rows before the
// fused pointwise pass of the cell (rnn_pointwise.h). Backward: per step the fused pointwise
// backward into the gate gradients GP (L*B x G*Hd) and grad_h = GP_t W_hh (W_hh packed once);
// after the loop grad_x = GP W_ih, grad_w_ih = GP^T X and grad_w_hh = GP^T H_prev as GEMMs with
// k = L*B (H_prev read in place from h0 and out), bias gradients as column sums. Results do not depend on the thread count.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <initializer_list>
#include <optional>
#include <vector>

#include "arena.h"
#include "gemm.h"
#include "register.h"
#include "rnn_common.h"
#include "rnn_pointwise.h"
#include "rnn_step_gemm.h"
#include "validate.h"

namespace pyconv::cpu {

namespace {

using namespace rnn_detail;
using OptArray = std::optional<py::array>;

struct SeqShapes {
    int64_t len, batch, in, hd, rows;
    int64_t steps_rows() const { return len * batch; }  // rows of the all-steps matrices
};

// Checks x (L, B, I), h0 (B, Hd), the weights (and biases) of a G-gate layer; returns the sizes.
template <typename T>
SeqShapes check_sequence(const char* op, int64_t gates, const py::array& x, const py::array& h0,
                         const py::array& w_ih, const py::array& w_hh, const OptArray& b_ih,
                         const OptArray& b_hh) {
    const Shape xs = check_array<T>(x, op, "x", 3), hs = check_array<T>(h0, op, "h0", 2);
    SeqShapes s{xs[0], xs[1], xs[2], hs[1], checked_mul(gates, hs[1], op)};
    expect_shape(op, "h0", hs, {s.batch, s.hd});
    expect_shape(op, "w_ih", check_array<T>(w_ih, op, "w_ih", 2), {s.rows, s.in});
    expect_shape(op, "w_hh", check_array<T>(w_hh, op, "w_hh", 2), {s.rows, s.hd});
    if (b_ih) expect_shape(op, "b_ih", check_array<T>(*b_ih, op, "b_ih", 1), {s.rows});
    if (b_hh) expect_shape(op, "b_hh", check_array<T>(*b_hh, op, "b_hh", 1), {s.rows});
    const int64_t lb = checked_mul(s.len, s.batch, op);
    checked_mul(lb, checked_mul(s.rows, 4, op), op);
    checked_mul(lb, s.in + 1, op);
    checked_mul(s.rows, checked_mul(s.in + s.hd + 16, 2, op), op);
    return s;
}

template <typename T>
void expect(const char* op, const char* name, const py::array& a, const Shape& want) {
    expect_shape(op, name, check_array<T>(a, op, name, int(want.size())), want);
}

// Scratch buffers of the calling thread (its Columns slot: the GEMM drivers use the PackedA /
// PackedB slots), each 64-byte aligned.
template <typename T>
std::vector<T*> scratch(std::initializer_list<int64_t> sizes) {
    constexpr int64_t align = 64 / sizeof(T);
    int64_t total = 0;
    for (int64_t n : sizes) total += round_up(std::max<int64_t>(n, 1), align);
    T* p = thread_workspace().get<T>(Slot::Columns, size_t(total));
    std::vector<T*> out;
    for (int64_t n : sizes) {
        out.push_back(p);
        p += round_up(std::max<int64_t>(n, 1), align);
    }
    return out;
}

// Processing order: the i-th step run is step at(i).
struct Order {
    int64_t len;
    bool reverse;
    int64_t at(int64_t i) const { return reverse ? len - 1 - i : i; }
};

// The state a step starts from: the initial one for the first step run, else the previous
// step's (rows of `all`, each (B, width)).
template <typename T>
const T* state_before(const Order& o, int64_t i, const T* initial, const T* all, int64_t size) {
    return i == 0 ? initial : all + o.at(i - 1) * size;
}

// The x side of every step: pre (L*B x n, row stride ldc) = X W_ih^T (+ bias).
template <typename T>
void input_projection(const SeqShapes& s, const T* x, const T* w_ih, const T* bias, T* pre, int64_t ldc) {
    matmul<T>(s.steps_rows(), s.rows, s.in, MatrixA<T>{x, s.in, 1, 0}, MatrixB<T>{w_ih, 1, s.in, 0},
              output_of(pre, ldc, bias));
}

// Per step forward: rows (B x G*Hd, stride ldc) = beta * rows + h W_hh^T (+ bias).
template <typename T>
struct HiddenProduct {
    PackedWeight<T> w;
    T* a_buf;
    int threads;

    HiddenProduct(const SeqShapes& s, const T* w_hh, T* w_buf, T* a_buf_)
        : w(pack_weight<T>(s.hd, s.rows, MatrixB<T>{w_hh, 1, s.hd, 0}, w_buf)), a_buf(a_buf_),
          threads(threads_for(2.0 * double(s.batch) * double(s.rows) * double(s.hd))) {}

    void operator()(int64_t batch, const T* h, T* c, int64_t ldc, T beta, const T* bias) const {
        const PackedA<T> a = pack_rows<T>(batch, w.k, MatrixA<T>{h, w.k, 1, 0}, a_buf);
        step_gemm(a, w, c, ldc, beta, bias, threads);
    }
};

// Per step backward: grad_h (B x Hd) = beta * grad_h + GP_t W_hh.
template <typename T>
struct HiddenGradient {
    PackedWeight<T> w;
    T* a_buf;
    int threads;

    HiddenGradient(const SeqShapes& s, const T* w_hh, T* w_buf, T* a_buf_)
        : w(pack_weight<T>(s.rows, s.hd, MatrixB<T>{w_hh, s.hd, 1, 0}, w_buf)), a_buf(a_buf_),
          threads(threads_for(2.0 * double(s.batch) * double(s.rows) * double(s.hd))) {}

    void operator()(int64_t batch, const T* gp, T* grad_h, T beta) const {
        const PackedA<T> a = pack_rows<T>(batch, w.k, MatrixA<T>{gp, w.k, 1, 0}, a_buf);
        step_gemm(a, w, grad_h, w.n, beta, static_cast<const T*>(nullptr), threads);
    }
};

template <typename T>
std::vector<T*> forward_scratch(const SeqShapes& s, int64_t extra = 0) {
    return scratch<T>({packed_weight_size<T>(s.hd, s.rows), packed_rows_size<T>(s.batch, s.hd), extra});
}

template <typename T>
std::vector<T*> backward_scratch(const SeqShapes& s, int64_t gp_arrays) {
    const int64_t gp = s.steps_rows() * s.rows;
    return scratch<T>({packed_weight_size<T>(s.rows, s.hd), packed_rows_size<T>(s.batch, s.rows), gp,
                       gp_arrays > 1 ? gp : 0});
}

// H_prev (L*B x Hd) as a GEMM B operand: row t*B + b is the state step t starts from, row b of h0
// for the first step run, else of out at the previous step (out shifted by one step).
template <typename T>
struct PreviousStates {
    const T* h0;
    const T* out;
    int64_t batch, hd;
    Order order;

    const T* row(int64_t r) const {
        const int64_t t = r / batch;
        if (t == order.at(0)) return h0 + (r - t * batch) * hd;
        return out + (order.reverse ? r + batch : r - batch) * hd;
    }

    void operator()(int64_t, int64_t k0, int64_t kc, int64_t j0, int64_t nc, T* dst) const {
        constexpr int64_t NR = Tile<T>::NR;
        for (int64_t p = 0; p < nc; p += NR, dst += NR * kc) {
            const int64_t cols = std::min(NR, nc - p);
            for (int64_t kk = 0; kk < kc; ++kk) {
                const T* src = row(k0 + kk) + j0 + p;
                T* d = dst + kk * NR;
                for (int64_t j = 0; j < cols; ++j) d[j] = src[j];
                for (int64_t j = cols; j < NR; ++j) d[j] = T(0);
            }
        }
    }
};

// After the backward loop: grad_x = GPI W_ih (if wanted), grad_w_ih = GPI^T X,
// grad_w_hh = GPH^T H_prev (k = L*B; one packing of GP^T serves both when GPI = GPH),
// grad_b_ih / grad_b_hh = column sums of GPI / GPH.
template <typename T>
void weight_gradients(const SeqShapes& s, const Order& o, const T* gpi, const T* gph, const T* x,
                      const T* h0, const T* out, const T* w_ih, T* gx, T* gwi, T* gwh, T* gbi, T* gbh) {
    const int64_t lb = s.steps_rows(), rows = s.rows, hd = s.hd;
    if (gx) {
        if (rows > 0)
            matmul<T>(lb, s.in, rows, MatrixA<T>{gpi, rows, 1, 0}, MatrixB<T>{w_ih, s.in, 1, 0},
                      output_of(gx, s.in));
        else
            std::fill(gx, gx + lb * s.in, T(0));
    }
    if (rows > 0) {
        const int threads = threads_for(2.0 * double(rows) * double(lb) * double(s.in + hd));
        // A = GPI^T (rows x L*B): element (i, k) at gpi[k*rows + i]
        const PackedA<T> a = pack_a_all<T>(1, rows, lb, MatrixA<T>{gpi, 1, rows, 0}, threads);
        gemm_packed<T>(a, 1, s.in, MatrixB<T>{x, s.in, 1, 0}, group_zero,
                       [&](int64_t) { return output_of(gwi, s.in); }, threads);
        const PreviousStates<T> previous{h0, out, s.batch, hd, o};
        if (gph == gpi)
            gemm_packed<T>(a, 1, hd, previous, group_zero, [&](int64_t) { return output_of(gwh, hd); }, threads);
        else
            matmul<T>(rows, hd, lb, MatrixA<T>{gph, 1, rows, 0}, previous, output_of(gwh, hd));
    }
    column_sums(gpi, lb, rows, gbi);
    if (gph == gpi)
        std::copy(gbi, gbi + rows, gbh);
    else
        column_sums(gph, lb, rows, gbh);
}

template <typename T>
void copy_rows(const T* src, int64_t n, T* dst) {
    std::copy(src, src + n, dst);
}

// Outputs of a backward: grad_x (optional), grad_h0 (and grad_c0), weight and bias gradients.
template <typename T>
struct BackwardOutputs {
    py::object grad_x = py::none();
    T* gx = nullptr;
    py::array_t<T> grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh;

    BackwardOutputs(const SeqShapes& s, bool input_grad)
        : grad_w_ih(new_array<T>({s.rows, s.in})), grad_w_hh(new_array<T>({s.rows, s.hd})),
          grad_b_ih(new_array<T>({s.rows})), grad_b_hh(new_array<T>({s.rows})) {
        if (input_grad) {
            auto a = new_array<T>({s.len, s.batch, s.in});
            gx = a.mutable_data();
            grad_x = std::move(a);
        }
    }
};

// ---------------------------------------------------------------------------------------------
// Elman RNN
// ---------------------------------------------------------------------------------------------

template <Act A>
py::tuple elman_forward(const char* op, const py::array& x, const py::array& h0, const py::array& w_ih,
                        const py::array& w_hh, const OptArray& b_ih, const OptArray& b_hh, bool reverse) {
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const SeqShapes s = check_sequence<T>(op, 1, x, h0, w_ih, w_hh, b_ih, b_hh);
        const int64_t state = s.batch * s.hd;
        auto out = new_array<T>({s.len, s.batch, s.hd});
        auto h_n = new_array<T>({s.batch, s.hd});
        T *po = out.mutable_data(), *hn = h_n.mutable_data();
        {
            py::gil_scoped_release release;
            const Order o{s.len, reverse};
            const T* hi = data_of<T>(h0);
            std::vector<T> bias_sum;
            const T* bias = combined_bias(optional_data<T>(b_ih), optional_data<T>(b_hh), s.rows, bias_sum);
            input_projection<T>(s, data_of<T>(x), data_of<T>(w_ih), bias, po, s.rows);
            const std::vector<T*> buf = forward_scratch<T>(s);
            const HiddenProduct<T> product(s, data_of<T>(w_hh), buf[0], buf[1]);
            for (int64_t i = 0; i < s.len; ++i) {
                T* pre = po + o.at(i) * state;
                product(s.batch, state_before(o, i, hi, po, state), pre, s.hd, T(1), nullptr);
                for_rows(s.batch, s.hd, A == Act::Tanh ? kRnnPass : kCheapPass, [&](int64_t r, int64_t j0, int64_t j1) {
                    for_lanes<T>(j0, j1, [&](int64_t j, int n) { elman_forward_lanes<A>(pre + r * s.hd, j, n); });
                });
            }
            copy_rows(s.len > 0 ? po + o.at(s.len - 1) * state : hi, state, hn);
        }
        return py::make_tuple(out, h_n);
    });
}

template <Act A>
py::tuple elman_backward(const char* op, const py::array& grad_out, const py::array& grad_h_n, const py::array& x,
                         const py::array& h0, const py::array& w_ih, const py::array& w_hh, const py::array& out,
                         bool reverse, bool input_grad) {
    return dispatch_float(float_dtype(grad_out, op, "grad_out"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const SeqShapes s = check_sequence<T>(op, 1, x, h0, w_ih, w_hh, std::nullopt, std::nullopt);
        const int64_t state = s.batch * s.hd;
        expect<T>(op, "grad_out", grad_out, {s.len, s.batch, s.hd});
        expect<T>(op, "grad_h_n", grad_h_n, {s.batch, s.hd});
        expect<T>(op, "out", out, {s.len, s.batch, s.hd});
        BackwardOutputs<T> r(s, input_grad);
        auto grad_h0 = new_array<T>({s.batch, s.hd});
        T* carry = grad_h0.mutable_data();
        T *gwi = r.grad_w_ih.mutable_data(), *gwh = r.grad_w_hh.mutable_data(), *gbi = r.grad_b_ih.mutable_data(),
          *gbh = r.grad_b_hh.mutable_data();
        {
            py::gil_scoped_release release;
            const Order o{s.len, reverse};
            const T *dout = data_of<T>(grad_out), *po = data_of<T>(out);
            copy_rows(data_of<T>(grad_h_n), state, carry);
            const std::vector<T*> buf = backward_scratch<T>(s, 1);
            T* gp = buf[2];
            const HiddenGradient<T> gradient(s, data_of<T>(w_hh), buf[0], buf[1]);
            for (int64_t i = s.len - 1; i >= 0; --i) {
                const int64_t t0 = o.at(i) * state;
                for_rows(s.batch, s.hd, kCheapPass, [&](int64_t row, int64_t j0, int64_t j1) {
                    const int64_t k = row * s.hd;
                    for_lanes<T>(j0, j1, [&](int64_t j, int n) {
                        const auto g = ld(carry + k + j, n) + ld(dout + t0 + k + j, n);
                        st(gp + t0 + k + j, elman_gate_grad<A, T>(g, ld(po + t0 + k + j, n)), n);
                    });
                });
                gradient(s.batch, gp + t0, carry, T(0));
            }
            weight_gradients<T>(s, o, gp, gp, data_of<T>(x), data_of<T>(h0), po, data_of<T>(w_ih), r.gx, gwi, gwh,
                                gbi, gbh);
        }
        return py::make_tuple(r.grad_x, grad_h0, r.grad_w_ih, r.grad_w_hh, r.grad_b_ih, r.grad_b_hh);
    });
}

py::tuple rnn_tanh_sequence_forward(const py::array& x, const py::array& h0, const py::array& w_ih,
                                    const py::array& w_hh, const OptArray& b_ih, const OptArray& b_hh, bool reverse) {
    return elman_forward<Act::Tanh>("rnn_tanh_sequence_forward", x, h0, w_ih, w_hh, b_ih, b_hh, reverse);
}

py::tuple rnn_relu_sequence_forward(const py::array& x, const py::array& h0, const py::array& w_ih,
                                    const py::array& w_hh, const OptArray& b_ih, const OptArray& b_hh, bool reverse) {
    return elman_forward<Act::Relu>("rnn_relu_sequence_forward", x, h0, w_ih, w_hh, b_ih, b_hh, reverse);
}

py::tuple rnn_tanh_sequence_backward(const py::array& grad_out, const py::array& grad_h_n, const py::array& x,
                                     const py::array& h0, const py::array& w_ih, const py::array& w_hh,
                                     const py::array& out, bool reverse, bool input_grad) {
    return elman_backward<Act::Tanh>("rnn_tanh_sequence_backward", grad_out, grad_h_n, x, h0, w_ih, w_hh, out,
                                     reverse, input_grad);
}

py::tuple rnn_relu_sequence_backward(const py::array& grad_out, const py::array& grad_h_n, const py::array& x,
                                     const py::array& h0, const py::array& w_ih, const py::array& w_hh,
                                     const py::array& out, bool reverse, bool input_grad) {
    return elman_backward<Act::Relu>("rnn_relu_sequence_backward", grad_out, grad_h_n, x, h0, w_ih, w_hh, out,
                                     reverse, input_grad);
}

// ---------------------------------------------------------------------------------------------
// LSTM
// ---------------------------------------------------------------------------------------------

py::tuple lstm_sequence_forward(const py::array& x, const py::array& h0, const py::array& c0,
                                const py::array& w_ih, const py::array& w_hh, const OptArray& b_ih,
                                const OptArray& b_hh, bool reverse) {
    constexpr const char* op = "lstm_sequence_forward";
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const SeqShapes s = check_sequence<T>(op, 4, x, h0, w_ih, w_hh, b_ih, b_hh);
        expect<T>(op, "c0", c0, {s.batch, s.hd});
        const int64_t state = s.batch * s.hd, hd = s.hd;
        auto out = new_array<T>({s.len, s.batch, hd});
        auto c_all = new_array<T>({s.len, s.batch, hd});
        auto gates = new_array<T>({s.len, s.batch, s.rows});
        auto h_n = new_array<T>({s.batch, hd});
        auto c_n = new_array<T>({s.batch, hd});
        T *po = out.mutable_data(), *pc = c_all.mutable_data(), *pg = gates.mutable_data();
        T *hn = h_n.mutable_data(), *cn = c_n.mutable_data();
        {
            py::gil_scoped_release release;
            const Order o{s.len, reverse};
            const T *hi = data_of<T>(h0), *ci = data_of<T>(c0);
            std::vector<T> bias_sum;
            const T* bias = combined_bias(optional_data<T>(b_ih), optional_data<T>(b_hh), s.rows, bias_sum);
            input_projection<T>(s, data_of<T>(x), data_of<T>(w_ih), bias, pg, s.rows);
            const std::vector<T*> buf = forward_scratch<T>(s);
            const HiddenProduct<T> product(s, data_of<T>(w_hh), buf[0], buf[1]);
            for (int64_t i = 0; i < s.len; ++i) {
                const int64_t t = o.at(i);
                T* g = pg + t * s.batch * s.rows;
                const T* c_prev = state_before(o, i, ci, pc, state);
                product(s.batch, state_before(o, i, hi, po, state), g, s.rows, T(1), nullptr);
                T *c_new = pc + t * state, *h_new = po + t * state;
                for_rows(s.batch, hd, kLstmPass, [&](int64_t r, int64_t j0, int64_t j1) {
                    const int64_t k = r * hd;
                    for_lanes<T>(j0, j1, [&](int64_t j, int n) {
                        lstm_forward_lanes(g + r * s.rows, c_prev + k, c_new + k, h_new + k, hd, j, n);
                    });
                });
            }
            const int64_t last = s.len > 0 ? o.at(s.len - 1) * state : 0;
            copy_rows(s.len > 0 ? po + last : hi, state, hn);
            copy_rows(s.len > 0 ? pc + last : ci, state, cn);
        }
        return py::make_tuple(out, h_n, c_n, gates, c_all);
    });
}

py::tuple lstm_sequence_backward(const py::array& grad_out, const py::array& grad_h_n, const py::array& grad_c_n,
                                 const py::array& x, const py::array& h0, const py::array& c0,
                                 const py::array& w_ih, const py::array& w_hh, const py::array& out,
                                 const py::array& gates, const py::array& c_all, bool reverse, bool input_grad) {
    constexpr const char* op = "lstm_sequence_backward";
    return dispatch_float(float_dtype(grad_out, op, "grad_out"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const SeqShapes s = check_sequence<T>(op, 4, x, h0, w_ih, w_hh, std::nullopt, std::nullopt);
        const int64_t state = s.batch * s.hd, hd = s.hd;
        const Shape seq{s.len, s.batch, hd}, st_shape{s.batch, hd};
        expect<T>(op, "grad_out", grad_out, seq);
        expect<T>(op, "grad_h_n", grad_h_n, st_shape);
        expect<T>(op, "grad_c_n", grad_c_n, st_shape);
        expect<T>(op, "c0", c0, st_shape);
        expect<T>(op, "out", out, seq);
        expect<T>(op, "gates", gates, {s.len, s.batch, s.rows});
        expect<T>(op, "c_all", c_all, seq);
        BackwardOutputs<T> r(s, input_grad);
        auto grad_h0 = new_array<T>(st_shape);
        auto grad_c0 = new_array<T>(st_shape);
        T *carry_h = grad_h0.mutable_data(), *carry_c = grad_c0.mutable_data();
        T *gwi = r.grad_w_ih.mutable_data(), *gwh = r.grad_w_hh.mutable_data(), *gbi = r.grad_b_ih.mutable_data(),
          *gbh = r.grad_b_hh.mutable_data();
        {
            py::gil_scoped_release release;
            const Order o{s.len, reverse};
            const T *dout = data_of<T>(grad_out), *po = data_of<T>(out), *pg = data_of<T>(gates),
                    *pc = data_of<T>(c_all), *ci = data_of<T>(c0);
            copy_rows(data_of<T>(grad_h_n), state, carry_h);
            copy_rows(data_of<T>(grad_c_n), state, carry_c);
            const std::vector<T*> buf = backward_scratch<T>(s, 1);
            T* gp = buf[2];
            const HiddenGradient<T> gradient(s, data_of<T>(w_hh), buf[0], buf[1]);
            for (int64_t i = s.len - 1; i >= 0; --i) {
                const int64_t t = o.at(i), gate0 = t * s.batch * s.rows;
                const T* c_prev = state_before(o, i, ci, pc, state);
                const T *dt = dout + t * state, *c_new = pc + t * state;
                for_rows(s.batch, hd, kLstmPass / 2, [&](int64_t row, int64_t j0, int64_t j1) {
                    const int64_t k = row * hd, g = gate0 + row * s.rows;
                    for_lanes<T>(j0, j1, [&](int64_t j, int n) {
                        lstm_backward_lanes(ld(carry_h + k + j, n) + ld(dt + k + j, n), carry_c + k, pg + g,
                                            c_prev + k, c_new + k, gp + g, carry_c + k, hd, j, n);
                    });
                });
                gradient(s.batch, gp + gate0, carry_h, T(0));
            }
            weight_gradients<T>(s, o, gp, gp, data_of<T>(x), data_of<T>(h0), po, data_of<T>(w_ih), r.gx, gwi, gwh,
                                gbi, gbh);
        }
        return py::make_tuple(r.grad_x, grad_h0, grad_c0, r.grad_w_ih, r.grad_w_hh, r.grad_b_ih, r.grad_b_hh);
    });
}

// ---------------------------------------------------------------------------------------------
// GRU
// ---------------------------------------------------------------------------------------------

py::tuple gru_sequence_forward(const py::array& x, const py::array& h0, const py::array& w_ih,
                               const py::array& w_hh, const OptArray& b_ih, const OptArray& b_hh, bool reverse) {
    constexpr const char* op = "gru_sequence_forward";
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const SeqShapes s = check_sequence<T>(op, 3, x, h0, w_ih, w_hh, b_ih, b_hh);
        const int64_t state = s.batch * s.hd, hd = s.hd, ws_cols = checked_mul(4, hd, op);
        auto out = new_array<T>({s.len, s.batch, hd});
        auto workspace = new_array<T>({s.len, s.batch, ws_cols});
        auto h_n = new_array<T>({s.batch, hd});
        T *po = out.mutable_data(), *pw = workspace.mutable_data(), *hn = h_n.mutable_data();
        {
            py::gil_scoped_release release;
            const Order o{s.len, reverse};
            const T *hi = data_of<T>(h0), *b_h = optional_data<T>(b_hh);
            // x side (with b_ih) -> workspace[:, :, :3Hd]; per step h side (with b_hh) -> pre_hh
            input_projection<T>(s, data_of<T>(x), data_of<T>(w_ih), optional_data<T>(b_ih), pw, ws_cols);
            const std::vector<T*> buf = forward_scratch<T>(s, s.batch * s.rows);
            T* pre_hh = buf[2];
            const HiddenProduct<T> product(s, data_of<T>(w_hh), buf[0], buf[1]);
            for (int64_t i = 0; i < s.len; ++i) {
                const int64_t t = o.at(i);
                const T* h_prev = state_before(o, i, hi, po, state);
                product(s.batch, h_prev, pre_hh, s.rows, T(0), b_h);
                T *w = pw + t * s.batch * ws_cols, *h_new = po + t * state;
                for_rows(s.batch, hd, kGruPass, [&](int64_t r, int64_t j0, int64_t j1) {
                    const int64_t k = r * hd;
                    for_lanes<T>(j0, j1, [&](int64_t j, int n) {
                        gru_forward_lanes(w + r * ws_cols, pre_hh + r * s.rows, h_prev + k, h_new + k, hd, j, n);
                    });
                });
            }
            copy_rows(s.len > 0 ? po + o.at(s.len - 1) * state : hi, state, hn);
        }
        return py::make_tuple(out, h_n, workspace);
    });
}

py::tuple gru_sequence_backward(const py::array& grad_out, const py::array& grad_h_n, const py::array& x,
                                const py::array& h0, const py::array& w_ih, const py::array& w_hh,
                                const py::array& out, const py::array& workspace, bool reverse, bool input_grad) {
    constexpr const char* op = "gru_sequence_backward";
    return dispatch_float(float_dtype(grad_out, op, "grad_out"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const SeqShapes s = check_sequence<T>(op, 3, x, h0, w_ih, w_hh, std::nullopt, std::nullopt);
        const int64_t state = s.batch * s.hd, hd = s.hd, ws_cols = checked_mul(4, hd, op);
        expect<T>(op, "grad_out", grad_out, {s.len, s.batch, hd});
        expect<T>(op, "grad_h_n", grad_h_n, {s.batch, hd});
        expect<T>(op, "out", out, {s.len, s.batch, hd});
        expect<T>(op, "workspace", workspace, {s.len, s.batch, ws_cols});
        BackwardOutputs<T> r(s, input_grad);
        auto grad_h0 = new_array<T>({s.batch, hd});
        T* carry = grad_h0.mutable_data();
        T *gwi = r.grad_w_ih.mutable_data(), *gwh = r.grad_w_hh.mutable_data(), *gbi = r.grad_b_ih.mutable_data(),
          *gbh = r.grad_b_hh.mutable_data();
        {
            py::gil_scoped_release release;
            const Order o{s.len, reverse};
            const T *dout = data_of<T>(grad_out), *po = data_of<T>(out), *pw = data_of<T>(workspace),
                    *hi = data_of<T>(h0);
            copy_rows(data_of<T>(grad_h_n), state, carry);
            const std::vector<T*> buf = backward_scratch<T>(s, 2);
            T *gpi = buf[2], *gph = buf[3];
            const HiddenGradient<T> gradient(s, data_of<T>(w_hh), buf[0], buf[1]);
            for (int64_t i = s.len - 1; i >= 0; --i) {
                const int64_t t = o.at(i), gate0 = t * s.batch * s.rows;
                const T *h_prev = state_before(o, i, hi, po, state), *dt = dout + t * state,
                        *w = pw + t * s.batch * ws_cols;
                for_rows(s.batch, hd, kGruPass / 2, [&](int64_t row, int64_t j0, int64_t j1) {
                    const int64_t k = row * hd, g = gate0 + row * s.rows;
                    for_lanes<T>(j0, j1, [&](int64_t j, int n) {
                        // h' = ... + z*h: carry = g*z; the GEMM adds the gates' part
                        gru_backward_lanes(ld(carry + k + j, n) + ld(dt + k + j, n), w + row * ws_cols, h_prev + k,
                                           gpi + g, gph + g, carry + k, hd, j, n);
                    });
                });
                gradient(s.batch, gph + gate0, carry, T(1));
            }
            weight_gradients<T>(s, o, gpi, gph, data_of<T>(x), hi, po, data_of<T>(w_ih), r.gx, gwi, gwh, gbi, gbh);
        }
        return py::make_tuple(r.grad_x, grad_h0, r.grad_w_ih, r.grad_w_hh, r.grad_b_ih, r.grad_b_hh);
    });
}

}  // namespace

PYCONV_REGISTER_FAMILY(rnn_sequence) {
    using py::arg;
    m.def("rnn_tanh_sequence_forward", &rnn_tanh_sequence_forward, arg("x"), arg("h0"), arg("w_ih"), arg("w_hh"),
          arg("b_ih").none(true), arg("b_hh").none(true), arg("reverse"),
          "(out (L, B, Hd), h_n (B, Hd)): rnn_tanh_cell_forward over the steps of x (L, B, I).");
    m.def("rnn_relu_sequence_forward", &rnn_relu_sequence_forward, arg("x"), arg("h0"), arg("w_ih"), arg("w_hh"),
          arg("b_ih").none(true), arg("b_hh").none(true), arg("reverse"),
          "As rnn_tanh_sequence_forward with relu.");
    m.def("rnn_tanh_sequence_backward", &rnn_tanh_sequence_backward, arg("grad_out"), arg("grad_h_n"), arg("x"),
          arg("h0"), arg("w_ih"), arg("w_hh"), arg("out"), arg("reverse"), arg("input_grad"),
          "(grad_x or None, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).");
    m.def("rnn_relu_sequence_backward", &rnn_relu_sequence_backward, arg("grad_out"), arg("grad_h_n"), arg("x"),
          arg("h0"), arg("w_ih"), arg("w_hh"), arg("out"), arg("reverse"), arg("input_grad"),
          "(grad_x or None, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).");
    m.def("lstm_sequence_forward", &lstm_sequence_forward, arg("x"), arg("h0"), arg("c0"), arg("w_ih"),
          arg("w_hh"), arg("b_ih").none(true), arg("b_hh").none(true), arg("reverse"),
          "(out, h_n, c_n, gates (L, B, 4Hd), c_all (L, B, Hd)).");
    m.def("lstm_sequence_backward", &lstm_sequence_backward, arg("grad_out"), arg("grad_h_n"), arg("grad_c_n"),
          arg("x"), arg("h0"), arg("c0"), arg("w_ih"), arg("w_hh"), arg("out"), arg("gates"), arg("c_all"),
          arg("reverse"), arg("input_grad"),
          "(grad_x or None, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).");
    m.def("gru_sequence_forward", &gru_sequence_forward, arg("x"), arg("h0"), arg("w_ih"), arg("w_hh"),
          arg("b_ih").none(true), arg("b_hh").none(true), arg("reverse"),
          "(out (L, B, Hd), h_n, workspace (L, B, 4Hd)).");
    m.def("gru_sequence_backward", &gru_sequence_backward, arg("grad_out"), arg("grad_h_n"), arg("x"), arg("h0"),
          arg("w_ih"), arg("w_hh"), arg("out"), arg("workspace"), arg("reverse"), arg("input_grad"),
          "(grad_x or None, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).");
}

}  // namespace pyconv::cpu
