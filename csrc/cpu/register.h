// Each csrc/cpu/*.cpp that exposes kernels to Python defines one register_<family> function;
// csrc/bindings.cpp calls them all.
#pragma once

#include <pybind11/pybind11.h>

namespace pyconv::cpu {

namespace py = pybind11;

void register_gemm(pybind11::module_& m);
void register_linear(pybind11::module_& m);
void register_conv2d(pybind11::module_& m);
void register_peak(pybind11::module_& m);

}  // namespace pyconv::cpu
