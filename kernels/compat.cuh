// Portability layer shared by the three compilers of kernels/*.cu: nvcc (pyconv._cuda), NVRTC
// (CuPy RawModule) and g++ with -DPYCONV_SIMT -include csrc/simt/simt.h (the SIMT emulator).
//
// Kernels include nothing but this file. NVRTC sees no host headers, so constants such as
// INFINITY or FLT_MAX are spelled here as bit patterns and literals.
#pragma once

#if defined(PYCONV_SIMT)
// The emulator header (force-included) already defines the CUDA built-ins, vector types,
// intrinsics, atomics and pyconv_dynamic_smem().
#define PYCONV_DYNAMIC_SMEM(T, name) T* name = reinterpret_cast<T*>(::simt::dynamic_smem())
#else
#define PYCONV_DYNAMIC_SMEM(T, name)                                   \
    extern __shared__ __align__(16) unsigned char pyconv_dynamic_smem_[]; \
    T* name = reinterpret_cast<T*>(pyconv_dynamic_smem_)
#endif

#define PYCONV_INF_F __int_as_float(0x7f800000)
#define PYCONV_INF_D __longlong_as_double(0x7ff0000000000000LL)
#define PYCONV_FLT_MAX 3.402823466e+38f
#define PYCONV_DBL_MAX 1.7976931348623157e+308
#define PYCONV_FULL_MASK 0xffffffffu

// Numeric limits for the element type of a templated kernel body.
template <typename T> struct pyconv_limits;
template <> struct pyconv_limits<float> {
    static __device__ __forceinline__ float inf() { return PYCONV_INF_F; }
    static __device__ __forceinline__ float max() { return PYCONV_FLT_MAX; }
};
template <> struct pyconv_limits<double> {
    static __device__ __forceinline__ double inf() { return PYCONV_INF_D; }
    static __device__ __forceinline__ double max() { return PYCONV_DBL_MAX; }
};

// Grid-stride loop over [0, n) with 64-bit indices: tensors may exceed 2^31 elements.
#define PYCONV_GRID_STRIDE_LOOP(i, n)                                                   \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); \
         i += (long long)blockDim.x * gridDim.x)
