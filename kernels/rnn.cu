// Fused pointwise kernels of the recurrent cells (Elman tanh / relu, LSTM, GRU), forward and
// backward. The gate pre-activations come from two GEMMs of kernels/gemm.cu run by the glue
// (cuda_glue/rnn.py): pre_ih = x @ w_ih^T + b_ih and pre_hh = h @ w_hh^T + b_hh, both (B, G*Hd)
// with the gates of one hidden unit j at columns j, Hd + j, ... (PyTorch's gate orders: LSTM
// i, f, g, o; GRU r, z, n). Each kernel turns them into the cell's outputs in one pass, and the
// backward kernels turn the outputs' gradients into the pre-activations' gradients, which the
// glue then multiplies by the weights and sums for the biases.
// Semantics (and the order of every rounding): pyconv/backends/numpy_ref/rnn.py.
//
// One thread per (b, j) of the (B, Hd) state in a grid-stride loop of 256-thread blocks; no
// shared memory, no barriers. Consecutive threads touch consecutive j, so every read and write of
// a gate block is coalesced.
#include "compat.cuh"

__device__ __forceinline__ float rnn_exp(float x) { return expf(x); }
__device__ __forceinline__ double rnn_exp(double x) { return exp(x); }
__device__ __forceinline__ float rnn_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double rnn_tanh(double x) { return tanh(x); }

// 1 / (1 + exp(-x)) through exp(-|x|), which never overflows (as the reference's sigmoid).
template <typename T> __device__ __forceinline__ T rnn_sigmoid(T x) {
    const T e = rnn_exp(x >= T(0) ? -x : x);
    return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
}

// ---------------------------------------------------------------------------------------------
// Elman cells: h' = act(pre_ih + pre_hh)
// ---------------------------------------------------------------------------------------------

template <typename T, bool RELU>
__device__ void elman_cell_forward(T* __restrict__ h_new, const T* __restrict__ pre_ih,
                                   const T* __restrict__ pre_hh, long long n) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        const T pre = pre_ih[i] + pre_hh[i];
        // relu keeps NaN (pre < 0 is false for it), as np.maximum
        h_new[i] = RELU ? (pre < T(0) ? T(0) : pre) : rnn_tanh(pre);
    }
}

// The gradient reaching h' of a step: grad_h_new, plus (in a sequence) the gradient carried back
// from the next step's use of h', added here so that the glue needs no separate add.
template <typename T>
__device__ __forceinline__ T rnn_grad_h(const T* grad_h_new, const T* carry, int has_carry,
                                        long long s) {
    return has_carry ? grad_h_new[s] + carry[s] : grad_h_new[s];
}

// grad_pre = grad_h' * act'(pre), written through h' (tanh' = 1 - h'^2; relu' = [h' > 0]).
template <typename T, bool RELU>
__device__ void elman_cell_backward(T* __restrict__ grad_pre, const T* __restrict__ grad_h_new,
                                    const T* __restrict__ carry, int has_carry,
                                    const T* __restrict__ h_new, long long n) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        const T h = h_new[i];
        const T gh = rnn_grad_h(grad_h_new, carry, has_carry, i);
        grad_pre[i] = RELU ? (h > T(0) ? gh : T(0)) : gh * (T(1) - h * h);
    }
}

// ---------------------------------------------------------------------------------------------
// LSTM
// ---------------------------------------------------------------------------------------------

// gates (B, 4Hd) = activated [i f g o]; c' = f * c + i * g; h' = o * tanh(c').
template <typename T>
__device__ void lstm_cell_forward(T* __restrict__ h_new, T* __restrict__ c_new,
                                  T* __restrict__ gates, const T* __restrict__ pre_ih,
                                  const T* __restrict__ pre_hh, const T* __restrict__ c, int B,
                                  int Hd) {
    PYCONV_GRID_STRIDE_LOOP(s, (long long)B * Hd) {
        const long long b = s / Hd;
        const long long g0 = s + b * 3 * Hd;  // (b, j) in the (B, 4Hd) gate layout
        const T i = rnn_sigmoid(pre_ih[g0] + pre_hh[g0]);
        const T f = rnn_sigmoid(pre_ih[g0 + Hd] + pre_hh[g0 + Hd]);
        const T g = rnn_tanh(pre_ih[g0 + 2 * Hd] + pre_hh[g0 + 2 * Hd]);
        const T o = rnn_sigmoid(pre_ih[g0 + 3 * Hd] + pre_hh[g0 + 3 * Hd]);
        gates[g0] = i;
        gates[g0 + Hd] = f;
        gates[g0 + 2 * Hd] = g;
        gates[g0 + 3 * Hd] = o;
        const T cell = f * c[s] + i * g;
        c_new[s] = cell;
        h_new[s] = o * rnn_tanh(cell);
    }
}

// grad_pre (B, 4Hd) of the pre-activations and grad_c (B, Hd) of the previous cell state.
template <typename T>
__device__ void lstm_cell_backward(T* __restrict__ grad_pre, T* __restrict__ grad_c,
                                   const T* __restrict__ grad_h_new, const T* __restrict__ carry,
                                   int has_carry, const T* __restrict__ grad_c_new,
                                   const T* __restrict__ c,
                                   const T* __restrict__ gates, const T* __restrict__ c_new, int B,
                                   int Hd) {
    PYCONV_GRID_STRIDE_LOOP(s, (long long)B * Hd) {
        const long long b = s / Hd;
        const long long g0 = s + b * 3 * Hd;
        const T i = gates[g0], f = gates[g0 + Hd], g = gates[g0 + 2 * Hd], o = gates[g0 + 3 * Hd];
        const T tanh_c = rnn_tanh(c_new[s]);
        const T gh = rnn_grad_h(grad_h_new, carry, has_carry, s);
        const T gc = grad_c_new[s] + gh * o * (T(1) - tanh_c * tanh_c);
        grad_pre[g0] = gc * g * i * (T(1) - i);
        grad_pre[g0 + Hd] = gc * c[s] * f * (T(1) - f);
        grad_pre[g0 + 2 * Hd] = gc * i * (T(1) - g * g);
        grad_pre[g0 + 3 * Hd] = gh * tanh_c * o * (T(1) - o);
        grad_c[s] = gc * f;
    }
}

// ---------------------------------------------------------------------------------------------
// GRU
// ---------------------------------------------------------------------------------------------

// pre_ih, pre_hh (B, 3Hd); workspace (B, 4Hd) = [r, z, n, W_hn h + b_hn]; h' = n + z * (h - n).
template <typename T>
__device__ void gru_cell_forward(T* __restrict__ h_new, T* __restrict__ workspace,
                                 const T* __restrict__ pre_ih, const T* __restrict__ pre_hh,
                                 const T* __restrict__ h, int B, int Hd) {
    PYCONV_GRID_STRIDE_LOOP(s, (long long)B * Hd) {
        const long long b = s / Hd;
        const long long p0 = s + b * 2 * Hd;  // (b, j) in the (B, 3Hd) pre-activations
        const long long w0 = s + b * 3 * Hd;  // and in the (B, 4Hd) workspace
        const T r = rnn_sigmoid(pre_ih[p0] + pre_hh[p0]);
        const T z = rnn_sigmoid(pre_ih[p0 + Hd] + pre_hh[p0 + Hd]);
        const T hn = pre_hh[p0 + 2 * Hd];
        const T n = rnn_tanh(pre_ih[p0 + 2 * Hd] + r * hn);
        workspace[w0] = r;
        workspace[w0 + Hd] = z;
        workspace[w0 + 2 * Hd] = n;
        workspace[w0 + 3 * Hd] = hn;
        h_new[s] = n + z * (h[s] - n);
    }
}

// grad_pre_ih, grad_pre_hh (B, 3Hd): equal but for n, whose h-side is scaled by r;
// grad_h_direct (B, Hd) = grad_h' * z, the part of grad_h that bypasses the weights.
template <typename T>
__device__ void gru_cell_backward(T* __restrict__ grad_pre_ih, T* __restrict__ grad_pre_hh,
                                  T* __restrict__ grad_h_direct, const T* __restrict__ grad_h_new,
                                  const T* __restrict__ carry, int has_carry,
                                  const T* __restrict__ h, const T* __restrict__ workspace, int B,
                                  int Hd) {
    PYCONV_GRID_STRIDE_LOOP(s, (long long)B * Hd) {
        const long long b = s / Hd;
        const long long p0 = s + b * 2 * Hd;
        const long long w0 = s + b * 3 * Hd;
        const T r = workspace[w0], z = workspace[w0 + Hd], n = workspace[w0 + 2 * Hd],
                hn = workspace[w0 + 3 * Hd];
        const T gh = rnn_grad_h(grad_h_new, carry, has_carry, s);
        const T grad_n = gh * (T(1) - z) * (T(1) - n * n);
        const T grad_r = grad_n * hn * r * (T(1) - r);
        const T grad_z = gh * (h[s] - n) * z * (T(1) - z);
        grad_pre_ih[p0] = grad_r;
        grad_pre_ih[p0 + Hd] = grad_z;
        grad_pre_ih[p0 + 2 * Hd] = grad_n;
        grad_pre_hh[p0] = grad_r;
        grad_pre_hh[p0 + Hd] = grad_z;
        grad_pre_hh[p0 + 2 * Hd] = grad_n * r;
        grad_h_direct[s] = gh * z;
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points (256 threads per block, grid-stride)
// ---------------------------------------------------------------------------------------------

#define RNN_ELMAN_ENTRIES(act, RELU, T, sfx)                                                     \
    extern "C" __global__ void __launch_bounds__(256)                                          \
    rnn_##act##_cell_forward_##sfx(T* h_new, const T* pre_ih, const T* pre_hh, long long n) {  \
        elman_cell_forward<T, RELU>(h_new, pre_ih, pre_hh, n);                                 \
    }                                                                                          \
    extern "C" __global__ void __launch_bounds__(256)                                          \
    rnn_##act##_cell_backward_##sfx(T* grad_pre, const T* grad_h_new, const T* carry,          \
                                    int has_carry, const T* h_new, long long n) {              \
        elman_cell_backward<T, RELU>(grad_pre, grad_h_new, carry, has_carry, h_new, n);        \
    }

RNN_ELMAN_ENTRIES(tanh, false, float, f32)
RNN_ELMAN_ENTRIES(tanh, false, double, f64)
RNN_ELMAN_ENTRIES(relu, true, float, f32)
RNN_ELMAN_ENTRIES(relu, true, double, f64)

#define RNN_GATED_ENTRIES(T, sfx)                                                               \
    extern "C" __global__ void __launch_bounds__(256)                                          \
    lstm_cell_forward_##sfx(T* h_new, T* c_new, T* gates, const T* pre_ih, const T* pre_hh,    \
                            const T* c, int B, int Hd) {                                       \
        lstm_cell_forward(h_new, c_new, gates, pre_ih, pre_hh, c, B, Hd);                      \
    }                                                                                          \
    extern "C" __global__ void __launch_bounds__(256)                                          \
    lstm_cell_backward_##sfx(T* grad_pre, T* grad_c, const T* grad_h_new, const T* carry,      \
                             int has_carry, const T* grad_c_new, const T* c, const T* gates,   \
                             const T* c_new, int B, int Hd) {                                  \
        lstm_cell_backward(grad_pre, grad_c, grad_h_new, carry, has_carry, grad_c_new, c, gates, \
                           c_new, B, Hd);                                                      \
    }                                                                                          \
    extern "C" __global__ void __launch_bounds__(256)                                          \
    gru_cell_forward_##sfx(T* h_new, T* workspace, const T* pre_ih, const T* pre_hh,           \
                           const T* h, int B, int Hd) {                                        \
        gru_cell_forward(h_new, workspace, pre_ih, pre_hh, h, B, Hd);                          \
    }                                                                                          \
    extern "C" __global__ void __launch_bounds__(256)                                          \
    gru_cell_backward_##sfx(T* grad_pre_ih, T* grad_pre_hh, T* grad_h_direct,                  \
                            const T* grad_h_new, const T* carry, int has_carry, const T* h,    \
                            const T* workspace, int B, int Hd) {                               \
        gru_cell_backward(grad_pre_ih, grad_pre_hh, grad_h_direct, grad_h_new, carry, has_carry, \
                          h, workspace, B, Hd);                                                \
    }

RNN_GATED_ENTRIES(float, f32)
RNN_GATED_ENTRIES(double, f64)
