// The machine's limits, measured: the FMA peak (every thread runs independent chains of fused
// multiply-adds on registers, enough chains to cover the FMA latency on both ports, nothing
// touches memory) and the streaming memory bandwidth (a = b + c with non-temporal stores, the
// access pattern of pyconv's bandwidth-bound kernels). Benchmarks report achieved GFLOP/s and
// GB/s as fractions of these numbers from the same run.
#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

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

// a[i] = b[i] + c[i] over [lo, hi): 2 reads and, with AVX2, non-temporal writes (no read for
// ownership of a's lines, as in the kernels that stream their outputs)
void stream_add(float* a, const float* b, const float* c, int64_t lo, int64_t hi) {
#ifdef PYCONV_CPU_AVX2
    int64_t i = lo;
    for (; i < hi && (reinterpret_cast<uintptr_t>(a + i) & 31) != 0; ++i) a[i] = b[i] + c[i];
    for (; i + 8 <= hi; i += 8) _mm256_stream_ps(a + i, _mm256_add_ps(_mm256_loadu_ps(b + i), _mm256_loadu_ps(c + i)));
    for (; i < hi; ++i) a[i] = b[i] + c[i];
    _mm_sfence();
#else
    for (int64_t i = lo; i < hi; ++i) a[i] = b[i] + c[i];
#endif
}

double stream_bandwidth_gbs(int threads, int64_t mib, int repeats) {
    if (threads < 1) threads = max_threads();
    if (mib < 1 || mib > 4096) throw py::value_error("stream_bandwidth_gbs: mib must be in [1, 4096], got " + std::to_string(mib));
    if (repeats < 1) throw py::value_error("stream_bandwidth_gbs: repeats must be >= 1, got " + std::to_string(repeats));
    const int64_t n = mib * (int64_t(1) << 20) / int64_t(sizeof(float));
    const auto make = [n]() {
        float* p = static_cast<float*>(std::aligned_alloc(64, size_t(n) * sizeof(float)));
        if (p == nullptr) throw std::bad_alloc();
        return std::unique_ptr<float, decltype(&std::free)>(p, &std::free);
    };
    auto a = make(), b = make(), c = make();
    py::gil_scoped_release release;
    // first touch by the threads that will stream them (pages resident before timing)
    parallel_for(threads, threads, [&](int64_t t) {
        const int64_t lo = n * t / threads, hi = n * (t + 1) / threads;
        std::fill(a.get() + lo, a.get() + hi, 0.0f);
        std::fill(b.get() + lo, b.get() + hi, 1.0f);
        std::fill(c.get() + lo, c.get() + hi, 2.0f);
    });
    double best = std::numeric_limits<double>::infinity();
    for (int r = 0; r < repeats; ++r) {
        const auto start = std::chrono::steady_clock::now();
        parallel_for(threads, threads, [&](int64_t t) {
            stream_add(a.get(), b.get(), c.get(), n * t / threads, n * (t + 1) / threads);
        });
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return 3.0 * double(n) * sizeof(float) / best * 1e-9;
}

}  // namespace

PYCONV_REGISTER_FAMILY(peak) {
    m.def("stream_bandwidth_gbs", &stream_bandwidth_gbs, py::arg("threads") = 0, py::arg("mib") = 64,
          py::arg("repeats") = 5,
          "Measured memory bandwidth (GB/s) of `threads` threads: a = b + c over float32 arrays of `mib` "
          "MiB each with non-temporal stores, 3 arrays' bytes counted, the best of `repeats`.");
    m.def("fma_peak_gflops", &fma_peak_gflops, py::arg("threads") = 0, py::arg("seconds") = 0.2,
          "Measured fp32 FMA peak (GFLOP/s) of `threads` threads (0: the configured count), from "
          "register-only FMA chains in the build's vector ISA.");
}

}  // namespace pyconv::cpu
