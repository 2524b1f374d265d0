// Winograd F(4x4, 3x3) for stride-1, dilation-1, 3x3 convolutions (one group): each 4x4 output
// tile comes from a 6x6 input tile with 36 multiplies per (input, output channel) pair instead
// of 144, i.e. 4x fewer FLOPs in the GEMMs.
//
//   y = A^T [ (G g G^T) (.) (B^T d B) ] A     per (tile, channel pair), summed over channels
//
// which becomes 36 independent GEMMs, one per position xi of the 6x6 transformed tile:
//   M_xi (K x T) = U_xi (K x C) * V_xi (C x T),  U = G g G^T (filters), V = B^T d B (tiles)
// with T the tiles of a chunk of images (the batch is folded into the GEMM's columns, so small
// images do not leave partial column strips). The GEMMs run on gemm.h's driver and micro-kernel;
// the transforms are vectorised over blocks of 16 tiles.
#pragma once

#include <cstdint>

namespace pyconv::cpu {

// y[n, k, p, q] = bias[k] + sum_{c, r, s} in[n, c, p + r - top, q + s - left] * g(k, c, r, s),
// out-of-image inputs reading 0 (top and left may be any integers). With `rotated`, the
// filter is the 180-degree rotated transpose of a conv2d weight (C, K, 3, 3) (for the input
// gradient): g(k, c, r, s) = weight[c, k, 2 - r, 2 - s]; otherwise weight is (K, C, 3, 3).
template <typename T>
struct WinogradConv {
    const T* in = nullptr;      // (n, c, h, w)
    const T* weight = nullptr;  // (k, c, 3, 3), or (c, k, 3, 3) when rotated
    const T* bias = nullptr;    // (k,) or null
    T* out = nullptr;           // (n, k, p, q)
    int64_t n = 0, c = 0, h = 0, w = 0, k = 0, p = 0, q = 0, top = 0, left = 0;
    bool rotated = false;
};

template <typename T>
void winograd_conv3x3(const WinogradConv<T>& conv);

// grad_w[k, c, r, s] = sum_{n, p, q} grad_y[n, k, p, q] * x[n, c, p + r - top, q + s - left]
// (out-of-image inputs read 0): the weight gradient of a stride-1, dilation-1 3x3 conv2d with
// one group, by Winograd F(3x3, 4x4) (winograd_weight_grad.cpp).
template <typename T>
struct WinogradWeightGrad {
    const T* x = nullptr;       // (n, c, h, w)
    const T* grad_y = nullptr;  // (n, k, p, q)
    T* grad_w = nullptr;        // (k, c, 3, 3)
    int64_t n = 0, c = 0, h = 0, w = 0, k = 0, p = 0, q = 0, top = 0, left = 0;
};

template <typename T>
void winograd_weight_grad3x3(const WinogradWeightGrad<T>& wg);

// Whether Winograd beats the implicit GEMM for c input and k output channels and a p x q output
// (measured, 64 images, 1 and 2 threads; docs/cpu_backend.md): the transforms cost a fixed
// amount per (tile, channel), the GEMMs a cost proportional to the other channel count, so both
// must be large enough; and every 4x4 tile costs the same however little of it lies inside the
// output. Since the chunks of winograd_tiles.h the forward and input gradient win down to a
// coverage of 3/8: 5 x 5 outputs (25 of 64) 1.5x, 9 x 9 (81 of 144) 1.3-1.9x, 13 x 13 (LeNet's
// input gradient, 169 of 256) 1.07x, 13 x 13 with 64 channels 1.9x.
inline bool winograd_pays_off(int64_t c, int64_t k, int64_t p, int64_t q) {
    const int64_t tiled = ((p + 3) / 4 * 4) * ((q + 3) / 4 * 4);
    return c >= 32 && k >= 32 && p >= 4 && q >= 4 && 8 * p * q >= 3 * tiled;
}

// The same for the weight gradient (winograd_weight_grad.cpp), whose GEMMs reduce over the tiles
// (a tile's padding is multiplied too) and which has a fixed cost per call (the 36 K x C sums,
// the final transform): it needs 3/5 of the tiled area inside the output (9 x 9: 0.94-1.09x,
// 10 x 10: 1.15x, 5 x 5: 0.7x) and ~16 MFLOP of direct work (8 images of 8 x 8 with 32
// channels: 0.40 vs 0.43 ms; 64 images: Winograd 1.6x faster).
inline bool winograd_weight_grad_pays_off(int64_t n, int64_t c, int64_t k, int64_t p, int64_t q) {
    const int64_t tiled = ((p + 3) / 4 * 4) * ((q + 3) / 4 * 4);
    const double direct_flops = 2.0 * double(n) * double(c) * double(k) * 9.0 * double(p) * double(q);
    return c >= 32 && k >= 32 && p >= 4 && q >= 4 && 5 * p * q >= 3 * tiled && direct_flops >= 16e6;
}

}  // namespace pyconv::cpu
