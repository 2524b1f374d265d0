// The fused pointwise math of one recurrent step on the lanes [j, j+n) of one batch row, shared
// by the cell kernels (rnn.cpp) and the sequence kernels (rnn_sequence.cpp). Gate rows hold G
// blocks of Hd values (LSTM i, f, g, o; GRU workspace r, z, n, W_hn h + b_hn).
#pragma once

#include <cstdint>

#include "rnn_common.h"

namespace pyconv::cpu::rnn_detail {

// Elman: pre-activations (Hd) -> h', in place.
template <Act A, typename T>
inline void elman_forward_lanes(T* pre, int64_t j, int n) {
    const rm::Vec<T> v = ld(pre + j, n);
    st(pre + j, A == Act::Tanh ? rm::tanh(v) : rm::relu(v), n);
}

// Elman: the gradient of the pre-activation from grad_h' and h'.
// tanh' = 1 - h'^2; relu' = [h' > 0] (0 at exactly 0, as PyTorch).
template <Act A, typename T>
inline rm::Vec<T> elman_gate_grad(rm::Vec<T> grad, rm::Vec<T> y) {
    using V = rm::Vec<T>;
    return A == Act::Tanh ? grad * (V::set1(T(1)) - y * y) : rm::where_positive(y, grad);
}

// LSTM forward: g (4Hd) pre-activations in, activated i, f, g, o out; c the previous cell
// state; writes c' and h'.
template <typename T>
inline void lstm_forward_lanes(T* g, const T* c, T* c_new, T* h_new, int64_t hd, int64_t j, int n) {
    using V = rm::Vec<T>;
    const V i = rm::sigmoid(ld(g + j, n)), f = rm::sigmoid(ld(g + hd + j, n));
    const V gg = rm::tanh(ld(g + 2 * hd + j, n)), og = rm::sigmoid(ld(g + 3 * hd + j, n));
    const V cn = f * ld(c + j, n) + i * gg;
    st(g + j, i, n);
    st(g + hd + j, f, n);
    st(g + 2 * hd + j, gg, n);
    st(g + 3 * hd + j, og, n);
    st(c_new + j, cn, n);
    st(h_new + j, og * rm::tanh(cn), n);
}

// LSTM backward: from grad_h' (gho), grad_c' (dc), the activated gates g (4Hd), c and c',
// writes the gate gradients p (4Hd) and grad_c = (total grad of c') * f. gc may alias dc.
template <typename T>
inline void lstm_backward_lanes(rm::Vec<T> gho, const T* dc, const T* g, const T* c, const T* c_new, T* p,
                                T* gc, int64_t hd, int64_t j, int n) {
    using V = rm::Vec<T>;
    const V one = V::set1(T(1));
    const V i = ld(g + j, n), f = ld(g + hd + j, n), gg = ld(g + 2 * hd + j, n), og = ld(g + 3 * hd + j, n);
    const V tc = rm::tanh(ld(c_new + j, n));
    // the gradient reaching c' from both outputs
    const V gct = ld(dc + j, n) + gho * og * (one - tc * tc);
    st(p + j, gct * gg * i * (one - i), n);
    st(p + hd + j, gct * ld(c + j, n) * f * (one - f), n);
    st(p + 2 * hd + j, gct * i * (one - gg * gg), n);
    st(p + 3 * hd + j, gho * tc * og * (one - og), n);
    st(gc + j, gct * f, n);
}

// GRU forward: w (4Hd) holds the x-side pre-activations (3Hd, biases included) and becomes
// [r, z, n, W_hn h + b_hn]; ph the h-side pre-activations (3Hd); h the previous state.
template <typename T>
inline void gru_forward_lanes(T* w, const T* ph, const T* h, T* h_new, int64_t hd, int64_t j, int n) {
    using V = rm::Vec<T>;
    const V rg = rm::sigmoid(ld(w + j, n) + ld(ph + j, n));
    const V z = rm::sigmoid(ld(w + hd + j, n) + ld(ph + hd + j, n));
    const V hn = ld(ph + 2 * hd + j, n);
    const V ng = rm::tanh(ld(w + 2 * hd + j, n) + rg * hn);
    st(w + j, rg, n);
    st(w + hd + j, z, n);
    st(w + 2 * hd + j, ng, n);
    st(w + 3 * hd + j, hn, n);
    st(h_new + j, ng + z * (ld(h + j, n) - ng), n);
}

// GRU backward: from grad_h' (g), the workspace w (4Hd) and h, writes the x-side (pi) and h-side
// (ph) gate gradients (3Hd each: equal for r and z, n's h side scaled by r) and gh = g * z, the
// direct part of grad_h (the caller's GEMM adds the gates' part). gh may alias g's source.
template <typename T>
inline void gru_backward_lanes(rm::Vec<T> g, const T* w, const T* h, T* pi, T* ph, T* gh, int64_t hd,
                               int64_t j, int n) {
    using V = rm::Vec<T>;
    const V one = V::set1(T(1));
    const V rg = ld(w + j, n), z = ld(w + hd + j, n), ng = ld(w + 2 * hd + j, n), hn = ld(w + 3 * hd + j, n);
    const V gn = g * (one - z) * (one - ng * ng);
    const V gr = gn * hn * rg * (one - rg);
    const V gz = g * (ld(h + j, n) - ng) * z * (one - z);
    st(pi + j, gr, n);
    st(pi + hd + j, gz, n);
    st(pi + 2 * hd + j, gn, n);
    st(ph + j, gr, n);
    st(ph + hd + j, gz, n);
    st(ph + 2 * hd + j, gn * rg, n);
    st(gh + j, g * z, n);
}

}  // namespace pyconv::cpu::rnn_detail
