// pyconv._cuda: the kernels of kernels/*.cu compiled ahead of time by nvcc, launched by name.
//
// launch() checks the arguments against the kernel's parameter kinds (deduced from its type,
// see registry.h), packs them into the void*[] that cudaLaunchKernel takes and launches. The
// module links the CUDA runtime statically, so it imports on machines without a GPU or driver:
// device_count() is then 0 and launch() raises RuntimeError with CUDA's error.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "registry.h"

namespace py = pybind11;
using pyconv_cuda::Entry;
using pyconv_cuda::Param;
using pyconv_cuda::Table;

namespace {

const std::map<std::string, const Entry*>& registry() {
    static const std::map<std::string, const Entry*> entries = [] {
        std::map<std::string, const Entry*> map;
        for (const Table* table = pyconv_cuda::tables(); table->family; ++table)
            for (int i = 0; i < table->count; ++i) map[table->entries[i].name] = &table->entries[i];
        return map;
    }();
    return entries;
}

std::string type_code(const Param& p) {
    return std::string(p.type) + (p.lanes > 1 ? "x" + std::to_string(p.lanes) : "");
}

// The emulator's descriptor format (csrc/simt/simt_module.h): "p:f32,cp:f32,s:i64" for
// (float*, const float*, long long), so that the two registries can be compared.
std::string descriptor(const Entry& e) {
    std::string s;
    for (int i = 0; i < e.param_count; ++i) {
        const Param& p = e.params[i];
        if (i) s += ",";
        s += (p.pointer ? (p.is_const ? "cp:" : "p:") : "s:") + type_code(p);
    }
    return s;
}

// The parameter as C spells it, for error messages.
std::string c_type(const Param& p) {
    static const std::map<std::string, const char*> names = {
        {"f32", "float"}, {"f64", "double"},         {"i8", "signed char"}, {"u8", "unsigned char"},
        {"b8", "bool"},   {"i16", "short"},          {"u16", "unsigned short"}, {"i32", "int"},
        {"u32", "unsigned int"}, {"i64", "long long"}, {"u64", "unsigned long long"}};
    static const std::map<std::string, const char*> vectors = {
        {"f32", "float"}, {"f64", "double"}, {"i8", "char"},  {"u8", "uchar"},         {"i16", "short"},
        {"u16", "ushort"}, {"i32", "int"},   {"u32", "uint"}, {"i64", "longlong"}, {"u64", "ulonglong"}};
    std::string s = p.is_const ? "const " : "";
    s += p.lanes > 1 ? vectors.at(p.type) + std::to_string(p.lanes) : names.at(p.type);
    return p.pointer ? s + "*" : s;
}

// NumPy / __cuda_array_interface__ type strings an element type accepts.
bool typestr_matches(const Param& p, const std::string& typestr) {
    if (typestr.size() < 3) return false;
    const char order = typestr[0];
    if (p.size > 1 && order != '<' && order != '=') return false;  // little-endian data only
    const std::string kind_size = typestr.substr(1);
    const std::string type = p.type;
    const std::string bytes = std::to_string(p.size);
    if (type[0] == 'f') return kind_size == "f" + bytes;
    if (type[0] == 'i') return kind_size == "i" + bytes;
    if (type == "u8") return kind_size == "u1" || kind_size == "b1";  // NumPy bool is one byte
    if (type[0] == 'u') return kind_size == "u" + bytes;
    if (type == "b8") return kind_size == "b1";
    return false;
}

const char* numpy_name(const std::string& type) {
    static const std::map<std::string, const char*> names = {
        {"f32", "numpy.float32"}, {"f64", "numpy.float64"}, {"i8", "numpy.int8"},   {"u8", "numpy.uint8"},
        {"b8", "numpy.bool_"},    {"i16", "numpy.int16"},   {"u16", "numpy.uint16"}, {"i32", "numpy.int32"},
        {"u32", "numpy.uint32"},  {"i64", "numpy.int64"},   {"u64", "numpy.uint64"}};
    return names.at(type);
}

std::string where(const Entry& e, size_t i) {
    return std::string(e.name) + " argument " + std::to_string(i) + " (" + c_type(e.params[i]) + ")";
}

std::string type_name(const py::handle& obj) { return py::str(py::type::of(obj).attr("__name__")); }

// A device array through the CUDA Array Interface (CuPy, Numba, PyTorch ...): its data pointer
// after checking the element type, C-contiguity and, for a written parameter, writability.
std::uintptr_t device_pointer(const Entry& e, size_t i, const py::handle& obj) {
    const Param& p = e.params[i];
    if (!py::hasattr(obj, "__cuda_array_interface__"))
        throw py::type_error(where(e, i) + ": expected a device array (an object with "
                             "__cuda_array_interface__, e.g. a cupy.ndarray), got " + type_name(obj));
    py::dict iface = obj.attr("__cuda_array_interface__");
    const std::string typestr = py::str(iface["typestr"]);
    if (!typestr_matches(p, typestr))
        throw py::type_error(where(e, i) + ": expected an array of " + p.type + " elements, got typestr '" +
                             typestr + "'");
    if (iface.contains("mask") && !iface["mask"].is_none())
        throw py::type_error(where(e, i) + ": masked arrays are not supported");
    py::tuple shape = iface["shape"];
    py::object strides = iface.contains("strides") ? py::object(iface["strides"]) : py::object(py::none());
    if (!strides.is_none()) {
        // C-contiguous unless a dimension of extent > 1 has an unexpected stride
        py::tuple st = strides;
        long long expected = static_cast<long long>(p.size);
        bool empty = false;
        for (size_t d = 0; d < shape.size(); ++d) empty = empty || shape[d].cast<long long>() == 0;
        for (size_t d = shape.size(); d-- > 0 && !empty;) {
            const long long extent = shape[d].cast<long long>();
            if (extent != 1 && st[d].cast<long long>() != expected)
                throw py::value_error(where(e, i) + ": the array is not C-contiguous (strides " +
                                      std::string(py::str(strides)) + "); pass a contiguous copy");
            expected *= extent;
        }
    }
    py::tuple data = iface["data"];
    if (!p.is_const && data[1].cast<bool>())
        throw py::value_error(where(e, i) + ": the kernel writes this array but it is read-only");
    const auto ptr = data[0].cast<std::uintptr_t>();
    if (ptr % p.align != 0)
        throw py::value_error(where(e, i) + ": the data pointer is not " + std::to_string(p.align) +
                              "-byte aligned, as the kernel's loads require");
    return ptr;
}

// A scalar must be a NumPy scalar of exactly the parameter's type (CuPy's rule): a Python int
// or float has no width, and a silent conversion would hide a wrong glue argument.
void scalar_bytes(const Entry& e, size_t i, const py::handle& obj, void* slot) {
    const Param& p = e.params[i];
    // a handle that is never released: a static py::object would be destroyed after the interpreter
    static const py::handle generic = py::object(py::module_::import("numpy").attr("generic")).release();
    if (!py::isinstance(obj, generic))
        throw py::type_error(where(e, i) + ": expected a NumPy scalar " + numpy_name(p.type) + "(...), got " +
                             type_name(obj));
    const std::string typestr = py::str(obj.attr("dtype").attr("str"));
    if (!typestr_matches(p, typestr))
        throw py::type_error(where(e, i) + ": expected a NumPy scalar " + numpy_name(p.type) + "(...), got dtype '" +
                             typestr + "'");
    const std::string raw = py::bytes(obj.attr("tobytes")());
    std::memcpy(slot, raw.data(), p.size);
}

dim3 to_dim3(const std::vector<long long>& v, const char* what) {
    if (v.size() != 3) throw py::value_error(std::string(what) + " must have 3 dimensions");
    for (long long d : v)
        if (d < 1 || d > 0xffffffffLL)
            throw py::value_error(std::string(what) + " dimensions must be in [1, 2^32), got " + std::to_string(d));
    return dim3(static_cast<unsigned>(v[0]), static_cast<unsigned>(v[1]), static_cast<unsigned>(v[2]));
}

[[noreturn]] void raise_cuda(const std::string& what, cudaError_t err) {
    cudaGetLastError();  // clear a non-sticky error so that later calls start clean
    throw std::runtime_error(what + ": " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

const Entry& find(const std::string& name) {
    const auto& reg = registry();
    auto it = reg.find(name);
    if (it == reg.end())
        throw py::key_error("pyconv._cuda has no kernel " + name + " (" + std::to_string(reg.size()) +
                            " entries; a kernel added after the build needs a rebuild)");
    return *it->second;
}

void launch(const std::string& name, const std::vector<long long>& grid, const std::vector<long long>& block,
            const py::sequence& args, size_t shared_mem, std::uintptr_t stream, int device) {
    const Entry& e = find(name);
    const dim3 g = to_dim3(grid, "grid"), b = to_dim3(block, "block");
    if (args.size() != static_cast<size_t>(e.param_count))
        throw py::type_error(name + " takes " + std::to_string(e.param_count) + " arguments (" + descriptor(e) +
                             "), got " + std::to_string(args.size()));
    std::vector<std::uint64_t> slots(e.param_count + 1, 0);  // every parameter fits 8 bytes
    std::vector<void*> argv(e.param_count + 1, nullptr);
    for (size_t i = 0; i < args.size(); ++i) {
        if (e.params[i].pointer) {
            const std::uintptr_t ptr = device_pointer(e, i, args[i]);
            std::memcpy(&slots[i], &ptr, sizeof ptr);
        } else {
            scalar_bytes(e, i, args[i], &slots[i]);
        }
        argv[i] = &slots[i];
    }
    cudaError_t err = cudaSuccess;
    {
        py::gil_scoped_release release;
        int current = -1;
        if (device >= 0 && (err = cudaGetDevice(&current)) == cudaSuccess && current != device)
            err = cudaSetDevice(device);
        if (err == cudaSuccess)
            err = cudaLaunchKernel(e.function, g, b, argv.data(), shared_mem,
                                   reinterpret_cast<cudaStream_t>(stream));
    }
    if (err != cudaSuccess) raise_cuda("pyconv._cuda: launching " + name, err);
}

int device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

py::dict entries() {
    py::dict out;
    for (const auto& [name, entry] : registry()) out[py::str(name)] = descriptor(*entry);
    return out;
}

py::dict build_info() {
    int runtime = 0;
    cudaRuntimeGetVersion(&runtime);
    py::dict info;
    info["archs"] = pyconv_cuda::built_archs();
    info["nvcc"] = pyconv_cuda::nvcc_version();
    info["runtime_version"] = runtime;
    return info;
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "pyconv's CUDA kernels (kernels/*.cu) compiled by nvcc, launched by name";
    m.def("entries", &entries, "{entry name: parameter descriptor} of every compiled kernel");
    m.def("device_count", &device_count, "CUDA devices visible (0 without a driver or GPU; never raises)");
    m.def("build_info", &build_info, "the archs and nvcc this module was built with, the CUDA runtime version");
    m.def("launch", &launch, py::arg("name"), py::arg("grid"), py::arg("block"), py::arg("args"),
          py::arg("shared_mem") = 0, py::arg("stream") = 0, py::arg("device") = -1,
          "Launch kernel `name` (grid and block are 3 ints) with `args` (device arrays for pointer\n"
          "parameters, NumPy scalars of the exact type for the others) on `stream` (a cudaStream_t as\n"
          "int, 0 = the default stream) of `device` (-1 = the current one).");
}
