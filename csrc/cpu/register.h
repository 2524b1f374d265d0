// Each csrc/cpu/*.cpp that exposes kernels to Python registers itself with
// PYCONV_REGISTER_FAMILY(name) { m.def(...); }: a static registrar adds the function to a list
// that csrc/bindings.cpp runs when the module loads, so adding a kernel file touches no shared
// file.
#pragma once

#include <pybind11/pybind11.h>

#include <utility>
#include <vector>

namespace pyconv::cpu {

namespace py = pybind11;

using RegisterFn = void (*)(py::module_&);

// (family name, register function) in static-initialisation order; bindings.cpp sorts by name.
std::vector<std::pair<const char*, RegisterFn>>& family_registry();

struct FamilyRegistrar {
    FamilyRegistrar(const char* name, RegisterFn fn) { family_registry().emplace_back(name, fn); }
};

}  // namespace pyconv::cpu

#define PYCONV_REGISTER_FAMILY(name)                                                        \
    static void pyconv_register_##name(::pyconv::cpu::py::module_& m);                     \
    static const ::pyconv::cpu::FamilyRegistrar pyconv_registrar_##name(#name,              \
                                                                        pyconv_register_##name); \
    static void pyconv_register_##name(::pyconv::cpu::py::module_& m)
