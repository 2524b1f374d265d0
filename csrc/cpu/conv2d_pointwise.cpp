// Pointwise conv2d (1x1 kernel, stride 1, no padding, groups 1: dilation does not matter) as
// GEMMs over the pixels of each image, HW = H * W:
//
//   forward          y[n] (K x HW)      = W (K x C) * x[n] (C x HW) + bias
//   backward_input   grad_x[n] (C x HW) = W^T (C x K) * grad_y[n] (K x HW)
//   backward_weight  dW (K x C)         = sum_n grad_y[n] (K x HW) * x[n]^T (HW x C)
//
// The first two are gemm.h's packing and task grid with the image as the B matrix (rows
// contiguous). The weight gradient reduces over the pixels, which are contiguous in both
// operands: with runs of at least 256 pixels per image (AVX2) it is a grid of register tiles of
// dot products read straight from the arrays (backward_weight_dot, conv2d_pointwise_dot.h: no
// packing); otherwise its own loop on the GEMM micro-kernel with transposing packers
// (conv2d_pointwise_pack.h), whose reduction blocks may span images, in chunks of whole images
// summed into partial dWs added in chunk order. Either way results do not depend on the thread
// count.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>
#include <type_traits>

#include "conv2d_pointwise_dot.h"
#include "conv2d_pointwise_pack.h"
#include "conv2d_pointwise_stream.h"
#include "gemm.h"
#include "register.h"
#include "validate.h"

namespace pyconv::cpu {

namespace {

constexpr int64_t kPanelBytes = 256 * 1024;

// out[b] (m x hw) = A (m x k, packed by pack_a) * B_b (k x hw, rows of `b_rows` with image
// stride b_image) + row bias, for b < n images. With k <= KC every tile is finished in one
// micro-kernel call, so tiles NR columns wide are written straight from the accumulators with
// non-temporal stores (conv2d_pointwise_stream.h) when `out`'s rows are 32-byte aligned: the
// output is written once and not read here, so its cache lines are not fetched first (a third
// of backward_input's memory traffic). Otherwise (or k > KC) gemm.h's driver.
template <typename T, class PackA>
void images_gemm(int64_t n, int64_t m, int64_t k, int64_t hw, const PackA& pack_a, const T* b_rows,
                 int64_t b_image, const T* bias, T* out) {
    constexpr int64_t MR = Tile<T>::MR, NR = Tile<T>::NR, KC = Blocking<T>::KC, MC = Blocking<T>::MC;
    const MatrixB<T> pack_b{b_rows, hw, 1, b_image};
    const auto out_of = [=](int64_t b) {
        Output<T> o;
        o.c = out + b * m * hw;
        o.ldc = hw;
        o.row_bias = bias;
        return o;
    };
    const bool streamable = k > 0 && k <= KC && reinterpret_cast<uintptr_t>(out) % 32 == 0 &&
                            (hw * int64_t(sizeof(T))) % 32 == 0;
    if (!streamable) {
        gemm<T>(1, n, m, hw, k, pack_a, pack_b, [](int64_t) { return int64_t(0); }, out_of);
        return;
    }
    if (n <= 0 || m <= 0 || hw <= 0) return;
    const int threads = threads_for(2.0 * double(n) * double(m) * double(hw) * double(k));
    const PackedA<T> a = pack_a_all<T>(1, m, k, pack_a, threads);
    TaskGrid grid = task_grid<T>(n, m, hw, threads);
    // the packed k x nc panel of B stays within half of L2
    const int64_t panel_cols = std::max(NR, (kPanelBytes / (k * int64_t(sizeof(T)))) / NR * NR);
    if (grid.nc > panel_cols) {
        grid.nc = panel_cols;
        grid.n_blocks = ceil_div(hw, grid.nc);
    }
    const int64_t per_image = grid.n_blocks * grid.m_chunks;
    parallel_for(n * per_image, threads, [&](int64_t t) {
        const int64_t b = t / per_image, j0 = ((t % per_image) / grid.m_chunks) * grid.nc;
        const int64_t i0 = (t % grid.m_chunks) * grid.mc, nc = std::min(grid.nc, hw - j0);
        const int64_t i1 = std::min(m, i0 + grid.mc);
        T* panel = thread_workspace().get<T>(Slot::PackedB, size_t(k * round_up(nc, NR)));
        pack_b(b, 0, k, j0, nc, panel);
        T* c_image = out + b * m * hw;
        for (int64_t ic = i0; ic < i1; ic += MC) {
            const int64_t mc = std::min(MC, i1 - ic);
            for (int64_t jr = 0; jr < nc; jr += NR) {
                const int nr = int(std::min(NR, nc - jr));
                for (int64_t ir = ic; ir < ic + mc; ir += MR) {
                    const int mr = int(std::min(MR, ic + mc - ir));
                    Epilogue<T> e;
                    if (bias) e.row_bias = bias + ir;
                    const T* a_panel = a.block(0, ic, 0) + (ir - ic) * k;
                    T* c = c_image + ir * hw + j0 + jr;
#ifdef PYCONV_CPU_AVX2
                    if (nr == NR) {
                        pointwise::stream_kernel_for<T>(mr)(k, a_panel, panel + jr * k, c, hw, e.row_bias);
                        continue;
                    }
#endif
                    micro_kernel_edge(mr, nr, k, a_panel, panel + jr * k, c, hw, e);
                }
            }
        }
#ifdef PYCONV_CPU_AVX2
        _mm_sfence();  // the streamed stores are visible before the task ends
#endif
    });
}

template <typename T>
void forward(int64_t n, int64_t c, int64_t k, int64_t hw, const T* x, const T* w, const T* bias, T* y) {
    images_gemm<T>(n, k, c, hw, MatrixA<T>{w, c, 1, 0}, x, c * hw, bias, y);
}

template <typename T>
void backward_input(int64_t n, int64_t c, int64_t k, int64_t hw, const T* gy, const T* w, T* gx) {
    images_gemm<T>(n, c, k, hw, MatrixA<T>{w, 1, c, 0}, gy, k * hw, static_cast<const T*>(nullptr), gx);
}

// ---------------------------------------------------------------------------------------------
// backward_weight
// ---------------------------------------------------------------------------------------------

// One operand of the weight gradient: `rows` rows of HW pixels per image; row i of image n at
// base[n * image + i * hw].
template <typename T>
struct PixelRows {
    const T* base;
    int64_t rows, image;
};

// Rows [row0, row0 + count) (count <= R) of `op` over reduction steps [k0, k0 + kc), the steps
// numbering (image, pixel) pairs, into dst[kk * R + i], in runs of one image each.
template <typename T, int R>
void pack_pixels(const PixelRows<T>& op, int64_t hw, int64_t row0, int count, int64_t k0, int64_t kc, T* dst) {
    for (int64_t kk = 0, step = k0; kk < kc;) {
        const int64_t n = step / hw, j = step % hw, len = std::min(kc - kk, hw - j);
        pointwise::pack_transposed<T, R>(op.base + n * op.image + row0 * hw + j, hw, count, len, dst + kk * R);
        kk += len;
        step += len;
    }
}

// out (a.rows x nb, row stride ldo) = sum over reduction steps [r0, r1) of a's rows times rows
// [j0, j0 + nb) of b.
template <typename T>
void weight_task(const PixelRows<T>& a, const PixelRows<T>& b, int64_t hw, int64_t r0, int64_t r1, int64_t j0,
                 int64_t nb, T* out, int64_t ldo) {
    constexpr int64_t MR = Tile<T>::MR, NR = Tile<T>::NR, KC = Blocking<T>::KC, MC = Blocking<T>::MC;
    const int64_t m = a.rows;
    Workspace& ws = thread_workspace();
    // 8 values of slack: the float MR packer writes 2 past its panel
    T* pa = ws.get<T>(Slot::PackedA, size_t(round_up(m, MR) * KC + 8));
    T* pb = ws.get<T>(Slot::PackedB, size_t(round_up(nb, NR) * KC + 8));
    for (int64_t k0 = r0; k0 < r1; k0 += KC) {
        const int64_t kc = std::min(KC, r1 - k0);
        for (int64_t i = 0; i < m; i += MR)
            pack_pixels<T, MR>(a, hw, i, int(std::min(MR, m - i)), k0, kc, pa + i * kc);
        for (int64_t j = 0; j < nb; j += NR)
            pack_pixels<T, NR>(b, hw, j0 + j, int(std::min(NR, nb - j)), k0, kc, pb + j * kc);
        Epilogue<T> e;
        e.beta = k0 == r0 ? T(0) : T(1);
        for (int64_t ic = 0; ic < m; ic += MC) {
            const int64_t mc = std::min(MC, m - ic);
            for (int64_t jr = 0; jr < nb; jr += NR) {
                const int nr = int(std::min(NR, nb - jr));
                for (int64_t ir = ic; ir < ic + mc; ir += MR) {
                    const int mr = int(std::min(MR, ic + mc - ir));
                    T* c = out + ir * ldo + jr;
                    if (mr == MR && nr == NR)
                        micro_kernel(kc, pa + ir * kc, pb + jr * kc, c, ldo, e);
                    else
                        micro_kernel_edge(mr, nr, kc, pa + ir * kc, pb + jr * kc, c, ldo, e);
                }
            }
        }
    }
}

constexpr int64_t kMaxChunks = 8;
constexpr int64_t kPartialBudget = int64_t(1) << 22;  // values of all partial dW together

template <typename T>
void backward_weight(int64_t n, int64_t c, int64_t k, int64_t hw, const T* gy, const T* x, T* gw) {
    constexpr int64_t MR = Tile<T>::MR, NR = Tile<T>::NR, NC = Blocking<T>::NC;
    if (n == 0 || hw == 0 || k == 0 || c == 0) {
        std::fill(gw, gw + k * c, T(0));
        return;
    }
    // the micro-kernel computes round_up(m, MR) x round_up(nn, NR) for an m x nn product
    const auto padded = [](int64_t m, int64_t nn) { return double(round_up(m, MR)) * double(round_up(nn, NR)); };
    const bool swap = padded(c, k) < padded(k, c);  // out = dW^T (C x K)
    const PixelRows<T> op_k{gy, k, k * hw}, op_c{x, c, c * hw};
    const PixelRows<T>& a = swap ? op_c : op_k;
    const PixelRows<T>& b = swap ? op_k : op_c;
    const int64_t m = a.rows, nn = b.rows;
    int64_t chunks = std::clamp<int64_t>(kPartialBudget / (m * nn), 1, std::min(n, kMaxChunks));
    const int64_t per_chunk = ceil_div(n, chunks);
    chunks = ceil_div(n, per_chunk);
    const int threads = threads_for(2.0 * double(n * hw) * double(m) * double(nn));
    // columns of the output per task: at most NC, and enough tasks for every thread
    int64_t nb = std::min(NC, round_up(nn, NR));
    if (chunks * ceil_div(nn, nb) < threads)
        nb = std::max(NR, round_up(ceil_div(nn, ceil_div(threads, chunks)), NR));
    const int64_t blocks = ceil_div(nn, nb);
    T* partial = thread_workspace().get<T>(Slot::Columns, size_t(chunks * m * nn));
    parallel_for(chunks * blocks, threads, [&](int64_t t) {
        const int64_t chunk = t / blocks, j0 = (t % blocks) * nb;
        const int64_t r0 = chunk * per_chunk * hw, r1 = std::min(n, (chunk + 1) * per_chunk) * hw;
        weight_task(a, b, hw, r0, r1, j0, std::min(nb, nn - j0), partial + chunk * m * nn + j0, nn);
    });
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < nn; ++j) {
            T sum = partial[i * nn + j];
            for (int64_t ch = 1; ch < chunks; ++ch) sum += partial[(ch * m + i) * nn + j];
            (swap ? gw[j * c + i] : gw[i * c + j]) = sum;
        }
}

#ifdef PYCONV_CPU_AVX2

// The inner operand's block (its rows x one run of pixels) within this many bytes: whole images
// up to here even when the block is past L2 (800 KB on the benchmark shape, read from L3), since
// every run restarts every tile (~150 cycles each): 256 KiB blocks (1045-pixel runs) measured 9%
// slower than whole 3136-pixel images.
constexpr int64_t kDotBlockBytes = 2 * 1024 * 1024;
// Below this many pixels per run the lane sums of each tile cost too much: the GEMM path.
constexpr int64_t kDotMinRun = 256;

// Pixels per run of the dot path (whole images cut into equal runs of a multiple of the vector
// width), 0 when it does not pay. Depends on the shape only.
template <typename T>
int64_t dot_run(int64_t c, int64_t k, int64_t hw) {
    constexpr int64_t W = pointwise::Lanes<T>::W;
    if (std::min(c, k) <= 0) return 0;
    const int64_t budget = kDotBlockBytes / (std::min(c, k) * int64_t(sizeof(T))) / W * W;
    if (std::min(budget, hw) < kDotMinRun) return 0;
    return round_up(ceil_div(hw, ceil_div(hw, budget)), W);
}

// dW (K x C) = sum_n grad_y[n] (K x HW) x[n]^T (HW x C) as dot products along the pixels,
// without packing (conv2d_pointwise_dot.h). The operand with fewer rows ("inner", I side of the
// tile) is read in blocks of rows x run pixels that stay in cache while every 3-row group of the
// other ("outer", read from memory once) sweeps it. Tasks own disjoint groups of outer rows,
// i.e. disjoint dW elements, each summed over (image, run) in order: no partial dW, and results
// do not depend on the thread count.
template <typename T>
void backward_weight_dot(int64_t n, int64_t c, int64_t k, int64_t hw, int64_t run, const T* gy, const T* x, T* gw) {
    constexpr int O = pointwise::kDotO, I = pointwise::kDotI;
    const bool inner_is_x = c < k;
    const T* inner = inner_is_x ? x : gy;
    const T* outer = inner_is_x ? gy : x;
    const int64_t rows_in = std::min(c, k), rows_out = std::max(c, k);
    const int64_t so = inner_is_x ? c : 1, si = inner_is_x ? 1 : c;  // dW strides of (outer, inner) rows
    std::fill(gw, gw + k * c, T(0));
    const int64_t groups = ceil_div(rows_out, O);
    const int threads = threads_for(2.0 * double(n * hw) * double(c) * double(k));
    const int64_t tasks = std::min<int64_t>(groups, threads);
    parallel_for(tasks, threads, [&](int64_t t) {
        const int64_t g0 = groups * t / tasks, g1 = groups * (t + 1) / tasks;
        for (int64_t img = 0; img < n; ++img) {
            for (int64_t p0 = 0; p0 < hw; p0 += run) {
                const int64_t len = std::min(run, hw - p0);
                const T* v = inner + img * rows_in * hw + p0;
                for (int64_t g = g0; g < g1; ++g) {
                    const int64_t o0 = g * O;
                    const int o = int(std::min<int64_t>(O, rows_out - o0));
                    const T* u = outer + (img * rows_out + o0) * hw + p0;
                    for (int64_t i0 = 0; i0 < rows_in; i0 += I) {
                        const int i = int(std::min<int64_t>(I, rows_in - i0));
                        pointwise::dot_tile_for<T>(o, i)(u, hw, v + i0 * hw, hw, len, gw + o0 * so + i0 * si, so, si);
                    }
                }
            }
        }
    });
}

#endif

// ---------------------------------------------------------------------------------------------
// Python boundary
// ---------------------------------------------------------------------------------------------

// weight (K, C, 1, 1) for `channels` input channels; returns K.
Shape check_weight(const char* op, const Shape& ws, int64_t channels, const char* what) {
    if (ws[2] != 1 || ws[3] != 1 || ws[1] != channels)
        throw py::value_error(std::string(op) + ": weight must have shape (K, C, 1, 1) with C=" +
                              std::to_string(channels) + " (" + what + "), got " + shape_str(ws));
    return ws;
}

py::array pointwise_forward(const py::array& x, const py::array& weight, const std::optional<py::array>& bias) {
    constexpr const char* op = "conv2d_pointwise_forward";
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape xs = check_array<T>(x, op, "x", 4);
        const Shape ws = check_weight(op, check_array<T>(weight, op, "weight", 4), xs[1], "the input's channels");
        const T* b = nullptr;
        if (bias) {
            expect_shape(op, "bias", check_array<T>(*bias, op, "bias", 1), {ws[0]});
            b = data_of<T>(*bias);
        }
        checked_numel({xs[0], std::max(xs[1], ws[0]), xs[2], xs[3]}, op);
        auto y = new_array<T>({xs[0], ws[0], xs[2], xs[3]});
        T* out = y.mutable_data();
        {
            py::gil_scoped_release release;
            forward(xs[0], xs[1], ws[0], xs[2] * xs[3], data_of<T>(x), data_of<T>(weight), b, out);
        }
        return std::move(y);
    });
}

py::array pointwise_backward_input(const py::array& grad_y, const py::array& weight) {
    constexpr const char* op = "conv2d_pointwise_backward_input";
    return dispatch_float(float_dtype(grad_y, op, "grad_y"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape gs = check_array<T>(grad_y, op, "grad_y", 4), ws = check_array<T>(weight, op, "weight", 4);
        if (ws[0] != gs[1] || ws[2] != 1 || ws[3] != 1)
            throw py::value_error(std::string(op) + ": weight must have shape (K, C, 1, 1) with K=" +
                                  std::to_string(gs[1]) + " (grad_y's channels), got " + shape_str(ws));
        checked_numel({gs[0], std::max(gs[1], ws[1]), gs[2], gs[3]}, op);
        auto grad_x = new_array<T>({gs[0], ws[1], gs[2], gs[3]});
        T* out = grad_x.mutable_data();
        {
            py::gil_scoped_release release;
            backward_input(gs[0], ws[1], gs[1], gs[2] * gs[3], data_of<T>(grad_y), data_of<T>(weight), out);
        }
        return std::move(grad_x);
    });
}

py::array pointwise_backward_weight(const py::array& grad_y, const py::array& x) {
    constexpr const char* op = "conv2d_pointwise_backward_weight";
    return dispatch_float(float_dtype(grad_y, op, "grad_y"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape gs = check_array<T>(grad_y, op, "grad_y", 4), xs = check_array<T>(x, op, "x", 4);
        if (gs[0] != xs[0] || gs[2] != xs[2] || gs[3] != xs[3])
            throw py::value_error(std::string(op) + ": grad_y " + shape_str(gs) + " and x " + shape_str(xs) +
                                  " must have the same batch and spatial sizes");
        checked_numel({gs[1], xs[1], kMaxChunks}, op);
        auto grad_w = new_array<T>({gs[1], xs[1], 1, 1});
        T* out = grad_w.mutable_data();
        {
            py::gil_scoped_release release;
#ifdef PYCONV_CPU_AVX2
            const int64_t run = dot_run<T>(xs[1], gs[1], xs[2] * xs[3]);
            if (run > 0 && xs[0] > 0) {
                backward_weight_dot(xs[0], xs[1], gs[1], xs[2] * xs[3], run, data_of<T>(grad_y), data_of<T>(x), out);
            } else
#endif
            backward_weight(xs[0], xs[1], gs[1], xs[2] * xs[3], data_of<T>(grad_y), data_of<T>(x), out);
        }
        return std::move(grad_w);
    });
}

}  // namespace

PYCONV_REGISTER_FAMILY(conv2d_pointwise) {
    using py::arg;
    m.def("conv2d_pointwise_forward", &pointwise_forward, arg("x"), arg("weight"), arg("bias"),
          "y (N, K, H, W) = 1x1 conv2d(x (N, C, H, W), weight (K, C, 1, 1)) + bias (K,) or None; "
          "stride 1, no padding, groups 1.");
    m.def("conv2d_pointwise_backward_input", &pointwise_backward_input, arg("grad_y"), arg("weight"),
          "grad_x (N, C, H, W) of the 1x1 conv2d from grad_y (N, K, H, W) and weight (K, C, 1, 1).");
    m.def("conv2d_pointwise_backward_weight", &pointwise_backward_weight, arg("grad_y"), arg("x"),
          "grad_weight (K, C, 1, 1) of the 1x1 conv2d from grad_y (N, K, H, W) and x (N, C, H, W).");
}

}  // namespace pyconv::cpu
