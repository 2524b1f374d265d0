// pyconv._C: the native extension. It reports what it was built with and holds the C++ kernels
// of the cpu backend (csrc/cpu/*.cpp), each family registering itself (csrc/cpu/register.h).
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>

#include "cpu/parallel.h"
#include "cpu/register.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace py = pybind11;

namespace {

#ifndef PYCONV_BUILD_FLAGS
#define PYCONV_BUILD_FLAGS "unknown"
#endif

std::string compiled_isa() {
#if defined(__AVX512F__)
    return "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
    return "avx2";
#elif defined(__SSE2__) || defined(_M_X64)
    return "sse2";
#elif defined(__ARM_NEON)
    return "neon";
#else
    return "portable";
#endif
}

py::dict cpu_features() {
    py::dict d;
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    d["avx2"] = static_cast<bool>(__builtin_cpu_supports("avx2"));
    d["fma"] = static_cast<bool>(__builtin_cpu_supports("fma"));
    d["avx512f"] = static_cast<bool>(__builtin_cpu_supports("avx512f"));
#endif
    return d;
}

py::dict build_info() {
    py::dict d;
#if defined(__clang__)
    d["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
    d["compiler"] = std::string("gcc ") + __VERSION__;
#else
    d["compiler"] = "unknown";
#endif
    d["flags"] = PYCONV_BUILD_FLAGS;
    d["isa"] = compiled_isa();
    d["cpu"] = cpu_features();
#ifdef _OPENMP
    d["openmp"] = _OPENMP;
#else
    d["openmp"] = py::none();
#endif
    d["pointer_bits"] = static_cast<int>(sizeof(void*) * 8);
    return d;
}

void set_num_threads(int n) {
    if (n < 1) throw py::value_error("set_num_threads: n must be >= 1, got " + std::to_string(n));
    pyconv::cpu::set_max_threads(n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

int get_num_threads() { return pyconv::cpu::max_threads(); }

}  // namespace

namespace pyconv::cpu {

std::vector<std::pair<const char*, RegisterFn>>& family_registry() {
    static std::vector<std::pair<const char*, RegisterFn>> families;
    return families;
}

}  // namespace pyconv::cpu

PYBIND11_MODULE(_C, m) {
    m.doc() = "pyconv native kernels (C++)";
    m.def("build_info", &build_info, "Compiler, flags, compiled ISA, CPU features and OpenMP version.");
    m.def("set_num_threads", &set_num_threads, py::arg("n"));
    m.def("get_num_threads", &get_num_threads);
    auto families = pyconv::cpu::family_registry();
    std::sort(families.begin(), families.end(),
              [](const auto& a, const auto& b) { return std::string(a.first) < b.first; });
    for (const auto& [name, register_family] : families) register_family(m);
}
