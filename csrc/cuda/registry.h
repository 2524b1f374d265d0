// The kernel registry of pyconv._cuda: for every entry point of kernels/*.cu, its name, its
// __global__ function (as cudaLaunchKernel takes it) and the kinds of its parameters.
//
// The parameter kinds come from template deduction on the kernel's function type, so they can
// never disagree with the kernel's signature: `PYCONV_CUDA_ENTRY(k)` deduces `void(*)(Args...)`
// from `&k` and turns each `Args` into a Param. The SIMT emulator describes kernels the same way.
//
// This header is compiled by nvcc (the generated per-family translation units) and by the host
// C++ compiler (module.cpp); it includes no CUDA header.
#pragma once

namespace pyconv_cuda {

// One kernel parameter: a scalar, or a pointer to an array of `type` elements (read `lanes` at a
// time when the pointee is a CUDA vector type such as float4).
struct Param {
    const char* type;   // element type: f32 f64 i8 u8 b8 i16 u16 i32 u32 i64 u64
    unsigned size;      // bytes of one element
    unsigned lanes;     // elements per pointee: 1, or 2-4 for a vector type
    unsigned align;     // alignment the pointer (or scalar) needs, in bytes
    bool pointer;
    bool is_const;      // pointer to const: the array is only read
};

struct Entry {
    const char* name;
    const void* function;
    const Param* params;
    int param_count;
};

// The entries of one kernels/<family>.cu.
struct Table {
    const char* family;
    const Entry* entries;
    int count;
};

// Defined by the generated pyconv_cuda_tables.cpp: every family's table (ending with an empty
// one), and what the kernels were compiled for and with.
const Table* tables();
const char* built_archs();
const char* nvcc_version();

template <typename T> struct always_false { static constexpr bool value = false; };

template <typename T> struct ElementType {
    static_assert(always_false<T>::value,
                  "pyconv._cuda: a kernel parameter has a type the launcher cannot pass; use "
                  "float, double, (unsigned) char/short/int/long long, bool, or pointers to them or "
                  "to CUDA vector types (float4, double2 ...)");
};
#define PYCONV_CUDA_ELEMENT(T, CODE) \
    template <> struct ElementType<T> { static constexpr const char* code = CODE; }
PYCONV_CUDA_ELEMENT(float, "f32");
PYCONV_CUDA_ELEMENT(double, "f64");
PYCONV_CUDA_ELEMENT(signed char, "i8");
PYCONV_CUDA_ELEMENT(char, "i8");
PYCONV_CUDA_ELEMENT(unsigned char, "u8");
PYCONV_CUDA_ELEMENT(bool, "b8");
PYCONV_CUDA_ELEMENT(short, "i16");
PYCONV_CUDA_ELEMENT(unsigned short, "u16");
PYCONV_CUDA_ELEMENT(int, "i32");
PYCONV_CUDA_ELEMENT(unsigned int, "u32");
PYCONV_CUDA_ELEMENT(long, "i64");
PYCONV_CUDA_ELEMENT(unsigned long, "u64");
PYCONV_CUDA_ELEMENT(long long, "i64");
PYCONV_CUDA_ELEMENT(unsigned long long, "u64");
#undef PYCONV_CUDA_ELEMENT

// What a pointer may point to: an element type, or (nvcc only) a CUDA vector of them.
template <typename T> struct Pointee {
    static constexpr const char* code = ElementType<T>::code;
    static constexpr unsigned size = sizeof(T), lanes = 1;
};
#ifdef __CUDACC__
#define PYCONV_CUDA_VECTOR(V, T, N)                                 \
    template <> struct Pointee<V> {                                 \
        static constexpr const char* code = ElementType<T>::code;   \
        static constexpr unsigned size = sizeof(T), lanes = N;      \
    }
#define PYCONV_CUDA_VECTORS(PREFIX, T) \
    PYCONV_CUDA_VECTOR(PREFIX##1, T, 1); PYCONV_CUDA_VECTOR(PREFIX##2, T, 2); \
    PYCONV_CUDA_VECTOR(PREFIX##3, T, 3); PYCONV_CUDA_VECTOR(PREFIX##4, T, 4)
PYCONV_CUDA_VECTORS(float, float);
PYCONV_CUDA_VECTORS(int, int);
PYCONV_CUDA_VECTORS(uint, unsigned int);
PYCONV_CUDA_VECTORS(char, signed char);
PYCONV_CUDA_VECTORS(uchar, unsigned char);
PYCONV_CUDA_VECTORS(short, short);
PYCONV_CUDA_VECTORS(ushort, unsigned short);
// 4-lane 64-bit vectors are deprecated in CUDA 13 (double4_16a / double4_32a replace them)
PYCONV_CUDA_VECTOR(double1, double, 1);
PYCONV_CUDA_VECTOR(double2, double, 2);
PYCONV_CUDA_VECTOR(longlong1, long long, 1);
PYCONV_CUDA_VECTOR(longlong2, long long, 2);
PYCONV_CUDA_VECTOR(ulonglong1, unsigned long long, 1);
PYCONV_CUDA_VECTOR(ulonglong2, unsigned long long, 2);
#undef PYCONV_CUDA_VECTORS
#undef PYCONV_CUDA_VECTOR
#endif

// Top-level const and __restrict__ are not part of a function's type, so `const int n` and
// `float* __restrict__ y` arrive here as `int` and `float*`.
template <typename T> struct ParamOf {
    static constexpr Param value{ElementType<T>::code, sizeof(T), 1, alignof(T), false, false};
};
template <typename T> struct ParamOf<T*> {
    static constexpr Param value{Pointee<T>::code, Pointee<T>::size, Pointee<T>::lanes, alignof(T), true, false};
};
template <typename T> struct ParamOf<const T*> {
    static constexpr Param value{Pointee<T>::code, Pointee<T>::size, Pointee<T>::lanes, alignof(T), true, true};
};

template <typename... Args> struct Signature {
    // one extra element so that a kernel without parameters still has an array
    static constexpr Param params[sizeof...(Args) + 1] = {ParamOf<Args>::value..., Param{}};
};

template <typename... Args> constexpr const Param* params_of(void (*)(Args...)) {
    return Signature<Args...>::params;
}

template <typename... Args> constexpr int param_count_of(void (*)(Args...)) {
    return static_cast<int>(sizeof...(Args));
}

}  // namespace pyconv_cuda

#define PYCONV_CUDA_ENTRY(kernel)                                                          \
    pyconv_cuda::Entry {                                                                   \
        #kernel, reinterpret_cast<const void*>(&kernel), pyconv_cuda::params_of(&kernel),  \
            pyconv_cuda::param_count_of(&kernel)                                           \
    }
