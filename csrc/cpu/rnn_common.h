// Helpers shared by the recurrent kernels (csrc/cpu/rnn.cpp: one step; rnn_sequence.cpp: whole
// sequences): GEMM shorthands on phase A's driver, bias sums, row-parallel pointwise loops.
#pragma once

#include <pybind11/numpy.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "gemm.h"
#include "parallel.h"
#include "rnn_math.h"
#include "validate.h"

namespace pyconv::cpu::rnn_detail {

namespace rm = rnn_math;

template <typename T>
Output<T> output_of(T* c, int64_t ldc, const T* col_bias = nullptr, T beta = 0) {
    Output<T> out;
    out.c = c;
    out.ldc = ldc;
    out.col_bias = col_bias;
    out.beta = beta;
    return out;
}

inline int64_t group_zero(int64_t) { return 0; }

// C (m x n, row stride ldc) = A * B (+ col_bias) (+ beta C).
template <typename T, class PackA, class PackB>
void matmul(int64_t m, int64_t n, int64_t k, const PackA& a, const PackB& b, const Output<T>& out) {
    gemm<T>(1, 1, m, n, k, a, b, group_zero, [&](int64_t) { return out; });
}

// b_ih + b_hh (either may be null); `sum` holds the result when both are given.
template <typename T>
const T* combined_bias(const T* b_ih, const T* b_hh, int64_t n, std::vector<T>& sum) {
    if (!b_ih || !b_hh) return b_ih ? b_ih : b_hh;
    sum.resize(size_t(n));
    for (int64_t j = 0; j < n; ++j) sum[j] = b_ih[j] + b_hh[j];
    return sum.data();
}

// sums[j] = sum over rows r of a[r, j] (rows in order: the same result on any thread count).
template <typename T>
void column_sums(const T* a, int64_t rows, int64_t cols, T* sums) {
    constexpr int64_t block = 512;
    const int threads = threads_for(8.0 * double(rows) * double(cols));
    parallel_for(ceil_div(cols, block), threads, [&](int64_t t) {
        const int64_t j0 = t * block, j1 = std::min(cols, j0 + block);
        T* s = sums;
        for (int64_t j = j0; j < j1; ++j) s[j] = T(0);
        for (int64_t r = 0; r < rows; ++r) {
            const T* row = a + r * cols;
            for (int64_t j = j0; j < j1; ++j) s[j] += row[j];
        }
    });
}

// f(row, j0, j1) over a rows x cols grid, cut into row blocks (and column blocks when there are
// fewer rows than threads); threaded when the work (cost per element) pays for a fork/join.
template <class F>
void for_rows(int64_t rows, int64_t cols, double cost, const F& f) {
    if (rows <= 0 || cols <= 0) return;
    const int threads = threads_for(cost * double(rows) * double(cols));
    int64_t col_blocks = rows >= threads ? 1 : ceil_div(threads, rows);
    const int64_t width = round_up(ceil_div(cols, col_blocks), 8);
    col_blocks = ceil_div(cols, width);
    const int64_t row_blocks = std::min<int64_t>(rows, 2 * int64_t(threads));
    const int64_t per_block = ceil_div(rows, row_blocks);
    parallel_for(row_blocks * col_blocks, threads, [&](int64_t t) {
        const int64_t rb = t / col_blocks, cb = t % col_blocks;
        const int64_t j0 = cb * width, j1 = std::min(cols, j0 + width);
        for (int64_t r = rb * per_block; r < std::min(rows, (rb + 1) * per_block); ++r) f(r, j0, j1);
    });
}

// g(j, n) for lanes j, j+1, ... j+n-1 covering [j0, j1): full vectors, then one partial.
template <typename T, class G>
inline void for_lanes(int64_t j0, int64_t j1, const G& g) {
    constexpr int W = rm::Vec<T>::W;
    int64_t j = j0;
    for (; j + W <= j1; j += W) g(j, W);
    if (j < j1) g(j, int(j1 - j));
}

template <typename T>
inline rm::Vec<T> ld(const T* p, int n) {
    return n == rm::Vec<T>::W ? rm::Vec<T>::load(p) : rm::Vec<T>::load(p, n);
}

template <typename T>
inline void st(T* p, rm::Vec<T> v, int n) {
    if (n == rm::Vec<T>::W)
        v.store(p);
    else
        v.store(p, n);
}

// Rough cost per element of each pass in flops, for the threading decision.
constexpr double kCheapPass = 4, kRnnPass = 30, kLstmPass = 150, kGruPass = 100;

enum class Act { Tanh, Relu };

template <typename T>
const T* optional_data(const std::optional<py::array>& a) {
    return a ? data_of<T>(*a) : nullptr;
}

}  // namespace pyconv::cpu::rnn_detail
