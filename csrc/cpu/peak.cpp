// The machine's FMA peak, measured: every thread runs independent chains of fused multiply-adds
// on registers (enough chains to cover the FMA latency on both ports), nothing touches memory.
// Benchmarks report achieved GFLOP/s as a fraction of this number from the same run.
#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "microkernel.h"
#include "parallel.h"
#include "register.h"

namespace pyconv::cpu {

namespace {

constexpr int kChains = 12;

// Runs `iters` rounds of kChains independent FMAs; returns flops done (a sink keeps them alive).
double fma_rounds(int64_t iters, float seed, volatile float* sink) {
#ifdef PYCONV_CPU_AVX2
    __m256 acc[kChains];
    const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(seed);
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(float(i));
    for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
        for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], mul, add);
    }
    __m256 total = acc[0];
    for (int i = 1; i < kChains; ++i) total = _mm256_add_ps(total, acc[i]);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, total);
    *sink = lanes[0];
    return double(iters) * kChains * 8 * 2;
#else
    float acc[kChains * 8];
    for (int i = 0; i < kChains * 8; ++i) acc[i] = float(i);
    for (int64_t it = 0; it < iters; ++it)
        for (int i = 0; i < kChains * 8; ++i) acc[i] = acc[i] * 0.999999f + seed;
    float total = 0;
    for (float v : acc) total += v;
    *sink = total;
    return double(iters) * kChains * 8 * 2;
#endif
}

// GFLOP/s of `threads` threads each running `iters` rounds.
double timed_peak(int threads, int64_t iters) {
    volatile float sink[64];
    const auto start = std::chrono::steady_clock::now();
    double flops = 0;
    parallel_for(threads, threads, [&](int64_t t) {
        const double f = fma_rounds(iters, 1e-7f * float(t + 1), &sink[t % 64]);
        if (t == 0) flops = f * threads;
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return flops / seconds * 1e-9;
}

double fma_peak_gflops(int threads, double seconds) {
    if (threads < 1) threads = max_threads();
    py::gil_scoped_release release;
    // calibrate the round count on one short run, then measure for about `seconds`
    const int64_t probe = 1 << 16;
    const double rate = timed_peak(threads, probe) * 1e9 / (double(kChains) * 16 * threads);
    const int64_t iters = std::max<int64_t>(probe, int64_t(rate * seconds));
    return timed_peak(threads, iters);
}

}  // namespace

PYCONV_REGISTER_FAMILY(peak) {
    m.def("fma_peak_gflops", &fma_peak_gflops, py::arg("threads") = 0, py::arg("seconds") = 0.2,
          "Measured fp32 FMA peak (GFLOP/s) of `threads` threads (0: the configured count), from "
          "register-only FMA chains in the build's vector ISA.");
}

}  // namespace pyconv::cpu
