// Boundary checks of the Python-facing kernels: every array argument is a C-contiguous,
// element-aligned NumPy array of the expected dtype and shape, and every size product fits in
// 64 bits. Kernels read the arrays in place (zero-copy), so nothing here converts: a mismatch is
// a TypeError (dtype) or ValueError (shape, layout) naming the argument, and the Python backend
// module makes its inputs contiguous and aligned before calling.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "output_pool.h"

namespace pyconv::cpu {

namespace py = pybind11;

using Shape = std::vector<int64_t>;

inline std::string shape_str(const Shape& s) {
    std::string out = "(";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + (s.size() == 1 ? ",)" : ")");
}

inline Shape shape_of(const py::array& a) {
    return Shape(a.shape(), a.shape() + a.ndim());
}

// a * b, or a ValueError naming `what` when it does not fit in int64.
inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
        throw py::value_error(std::string(what) + ": size product overflows 64 bits (" +
                              std::to_string(a) + " * " + std::to_string(b) + ")");
    return r;
}

inline int64_t checked_numel(const Shape& s, const char* what) {
    int64_t n = 1;
    for (int64_t d : s) n = checked_mul(n, d, what);
    return n;
}

// The dtype of the kernel's first array, which every other array must share.
enum class DType { F32, F64 };

// Equal dtypes, not the same dtype object: NumPy hands out distinct but equal float32 descriptors
// (arrays from np.frombuffer, unpickling, ...); a non-native byte order is not equal.
template <typename T>
bool has_dtype(const py::array& a) {
    return py::detail::npy_api::get().PyArray_EquivTypes_(a.dtype().ptr(), py::dtype::of<T>().ptr());
}

inline DType float_dtype(const py::array& a, const char* op, const char* name) {
    if (has_dtype<float>(a)) return DType::F32;
    if (has_dtype<double>(a)) return DType::F64;
    throw py::type_error(std::string(op) + ": " + name + " must be float32 or float64, got " +
                         std::string(py::str(a.dtype())));
}

// Checks `a` for use as a T array of `ndim` dimensions and returns its shape.
template <typename T>
Shape check_array(const py::array& a, const char* op, const char* name, int ndim) {
    if (!has_dtype<T>(a))
        throw py::type_error(std::string(op) + ": " + name + " must be " +
                             std::string(py::str(py::dtype::of<T>())) + " like the other arrays, got " +
                             std::string(py::str(a.dtype())));
    if (a.ndim() != ndim)
        throw py::value_error(std::string(op) + ": " + name + " must have " + std::to_string(ndim) +
                              " dimensions, got shape " + shape_str(shape_of(a)));
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(std::string(op) + ": " + name +
                              " must be C-contiguous (the kernels read it in place)");
    if (reinterpret_cast<uintptr_t>(a.data()) % alignof(T) != 0)
        throw py::value_error(std::string(op) + ": " + name + " must be aligned to " +
                              std::to_string(alignof(T)) + " bytes");
    Shape s = shape_of(a);
    checked_numel(s, op);
    return s;
}

inline void expect_shape(const char* op, const char* name, const Shape& got, const Shape& want) {
    if (got != want)
        throw py::value_error(std::string(op) + ": " + name + " must have shape " + shape_str(want) +
                              ", got " + shape_str(got));
}

// A shape given as a Python sequence (input_shape=, weight_shape=): `n` non-negative ints.
inline Shape check_dims(const std::vector<int64_t>& dims, size_t n, const char* op, const char* name) {
    if (dims.size() != n)
        throw py::value_error(std::string(op) + ": " + name + " must have " + std::to_string(n) +
                              " entries, got " + shape_str(dims));
    for (int64_t d : dims)
        if (d < 0)
            throw py::value_error(std::string(op) + ": " + name + " must be non-negative, got " +
                                  shape_str(dims));
    checked_numel(dims, op);
    return dims;
}

// f(T{}) with T the C++ type of `dtype`.
template <class F>
auto dispatch_float(DType dtype, F&& f) {
    return dtype == DType::F32 ? f(float{}) : f(double{});
}

template <typename T>
const T* data_of(const py::array& a) {
    return static_cast<const T*>(a.data());
}

// A position modulo kPage, in steps of kApartStep bytes, as far as possible from every input's
// address modulo kPage (the smallest on ties). Pooled outputs start where their block does, so
// without it an output and an input that is itself a pooled output often coincide modulo 4 KiB.
constexpr size_t kPage = 4096, kApartStep = 256;
inline size_t position_apart(std::initializer_list<const void*> inputs) {
    size_t best = 0, best_distance = 0;
    for (size_t candidate = 0; candidate < kPage; candidate += kApartStep) {
        size_t distance = kPage;
        for (const void* p : inputs) {
            const size_t at = reinterpret_cast<uintptr_t>(p) % kPage;
            const size_t d = candidate > at ? candidate - at : at - candidate;
            distance = std::min(distance, std::min(d, kPage - d));
        }
        if (distance > best_distance) best = candidate, best_distance = distance;
    }
    return best;
}

// A new uninitialised C-contiguous array (allocated with the GIL held). Large ones live in a
// block of the output pool (output_pool.h), released back to it when the array dies. With
// `apart_from` (kernels that read those arrays while streaming into this one), a pooled output
// starts at position_apart() of them modulo 4 KiB, in a block a page larger: softmax_backward,
// reading two arrays in step and writing the third with non-temporal stores, ran 2.1-2.4x
// slower when all three nearly coincided modulo 4 KiB (2.4 -> 5.2-5.8 ms at (4096, 1000), 1
// thread), which a softmax output and its gradient, both from the pool, regularly did.
template <typename T>
py::array_t<T> new_array(const Shape& shape, std::initializer_list<const void*> apart_from = {}) {
    std::vector<py::ssize_t> dims(shape.begin(), shape.end());
    int64_t bytes = checked_mul(checked_numel(shape, "output"), sizeof(T), "output");
    if (static_cast<size_t>(bytes) < output_pool::kMinPooledBytes) return py::array_t<T>(dims);
    void* block = output_pool::acquire(static_cast<size_t>(bytes) + (apart_from.size() ? kPage : 0));
    // blocks are 64-byte aligned, so the offset is too
    const size_t offset = apart_from.size()
        ? (position_apart(apart_from) + kPage - reinterpret_cast<uintptr_t>(block) % kPage) % kPage : 0;
    py::capsule owner;
    try {
        owner = py::capsule(block, [](void* p) { output_pool::release(p); });
    } catch (...) {
        output_pool::release(block);
        throw;
    }
    return py::array_t<T>(dims, reinterpret_cast<T*>(static_cast<char*>(block) + offset), owner);
}

}  // namespace pyconv::cpu
