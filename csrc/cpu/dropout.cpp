// Dropout forward and backward (contract: pyconv/backends/contract.py). The keep-mask is the
// reference's counter-based function, bit for bit (pyconv/backends/numpy_ref/dropout.py,
// kernels/dropout.cu): element i (flat C order) is kept iff
//     splitmix64(seed, i) >> 40  >=  threshold = ceil(p * 2^24)   (computed by the Python side)
// so the mask depends on (seed, i) only, never on how the range is split over threads.
// y = x * keep * scale in that order (a dropped inf or NaN gives NaN, as the reference).
#include <pybind11/pybind11.h>

#include <cstdint>

#include "register.h"
#include "validate.h"
#include "vector_math.h"

namespace pyconv::cpu {

namespace {

constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kMix1 = 0xBF58476D1CE4E5B9ull;
constexpr uint64_t kMix2 = 0x94D049BB133111EBull;
constexpr int64_t kParallelMin = 1 << 14;

// Output number `index` of SplitMix64 started at `seed`: state seed + (index + 1) * gamma
// through Stafford's Mix13 finaliser, top 24 bits.
inline uint32_t top24(uint64_t seed, uint64_t index) {
    uint64_t z = seed + (index + 1) * kGamma;
    z = (z ^ (z >> 30)) * kMix1;
    z = (z ^ (z >> 27)) * kMix2;
    return static_cast<uint32_t>((z ^ (z >> 31)) >> 40);
}

template <typename T>
void forward_range(T* y, bool* mask, const T* x, uint64_t seed, uint32_t threshold, T scale,
                   int64_t begin, int64_t end) {
    // plain loop: g++ vectorises the 64-bit hashing with AVX2
    for (int64_t i = begin; i < end; ++i) {
        const bool keep = top24(seed, static_cast<uint64_t>(i)) >= threshold;
        mask[i] = keep;
        y[i] = x[i] * T(keep) * scale;
    }
}

// a T array of any number of dimensions
template <typename T>
Shape check_any(const py::array& a, const char* op, const char* name) {
    return check_array<T>(a, op, name, static_cast<int>(a.ndim()));
}

py::tuple dropout_forward(const py::array& x, uint32_t threshold, uint64_t seed, double scale) {
    constexpr const char* op = "dropout_forward";
    if (threshold > (1u << 24))
        throw py::value_error("dropout_forward: threshold must be at most 2^24 (p < 1)");
    return dispatch_float(float_dtype(x, op, "x"), [&](auto tag) -> py::tuple {
        using T = decltype(tag);
        const Shape shape = check_any<T>(x, op, "x");
        const int64_t n = checked_numel(shape, op);
        auto y = new_array<T>(shape);
        auto mask = new_array<bool>(shape);
        T* py_ = y.mutable_data();
        bool* pm = mask.mutable_data();
        const T* px = data_of<T>(x);
        const T s = static_cast<T>(scale);
        {
            py::gil_scoped_release release;
            vmath::for_each_range(n, kParallelMin, [&](int64_t begin, int64_t end) {
                forward_range<T>(py_, pm, px, seed, threshold, s, begin, end);
            });
        }
        return py::make_tuple(std::move(y), std::move(mask));
    });
}

py::array dropout_backward(const py::array& grad_y, const py::array& mask, double scale) {
    constexpr const char* op = "dropout_backward";
    return dispatch_float(float_dtype(grad_y, op, "grad_y"), [&](auto tag) -> py::array {
        using T = decltype(tag);
        const Shape shape = check_any<T>(grad_y, op, "grad_y");
        expect_shape(op, "mask", check_array<bool>(mask, op, "mask", static_cast<int>(mask.ndim())), shape);
        const int64_t n = checked_numel(shape, op);
        auto out = new_array<T>(shape);
        T* po = out.mutable_data();
        const T* pg = data_of<T>(grad_y);
        const bool* pm = data_of<bool>(mask);
        const T s = static_cast<T>(scale);
        {
            py::gil_scoped_release release;
            vmath::for_each_range(n, 1 << 16, [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) po[i] = pg[i] * T(pm[i]) * s;
            });
        }
        return std::move(out);
    });
}

}  // namespace

PYCONV_REGISTER_FAMILY(dropout) {
    using py::arg;
    m.def("dropout_forward", &dropout_forward, arg("x"), arg("threshold"), arg("seed"), arg("scale"),
          "(y, mask): mask[i] = splitmix64(seed, i) >> 40 >= threshold, y = x * mask * scale.");
    m.def("dropout_backward", &dropout_backward, arg("grad_y"), arg("mask"), arg("scale"),
          "grad_y * mask * scale (mask a bool array of grad_y's shape).");
}

}  // namespace pyconv::cpu
