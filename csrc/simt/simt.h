// The SIMT emulator: CUDA device code compiled by g++ and run on the CPU, one fiber per CUDA thread.
//
// Force-included (g++ -x c++ -std=c++20 -DPYCONV_SIMT -include simt.h) in front of a kernels/*.cu
// file. It defines what CUDA's front end would: the built-in indices, __syncthreads, the _sync warp
// ops, atomics, vector types, intrinsics and the qualifiers, on top of the runtime's interface
// (scheduler, fibers, worker pool: simt_runtime.cpp, compiled once and linked into every module).
// The generated translation unit includes simt_module.h after the kernel source to register the
// entry points. Semantics and strict checks: docs/simt.md (spec: /work/shared/design/SIMT.md).
#pragma once

// Only light standard headers: this file is parsed for every module. The qualifier macros at the
// end (__noinline__ above all) would break standard headers included after them.
#include <cassert>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <math.h>
#include <type_traits>
#include <utility>

#include "simt_vector.h"

#if defined(__SANITIZE_THREAD__)
// The runtime's bookkeeping is shared by all fibers of a worker; TSan must not see it, or every
// fiber would look racy against the scheduler (and syncing them would hide real races).
#define SIMT_NO_TSAN __attribute__((no_sanitize_thread))
#else
#define SIMT_NO_TSAN
#endif

// --- the runtime's interface (csrc/simt/simt_runtime.cpp, linked into every module) ------------

namespace simt::detail {

enum class Op : unsigned char {
    None, Barrier, SyncWarp, ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, All, Any,
    ReduceAdd, ReduceMin, ReduceMax, ReduceAnd, ReduceOr, ReduceXor, MatchAny, MatchAll,
};

// What device code reads about the running block and thread.
struct BlockState {
    uint3 block_idx{0, 0, 0};
    dim3 block_dim, grid_dim;
    unsigned char* smem = nullptr;
    unsigned existing_mask[32];  // per warp: the lanes that exist (a partial last warp has fewer)
    unsigned exited_mask[32];
};
struct ThreadState {
    uint3 tid{0, 0, 0};
    unsigned warp = 0, lane = 0;
    BlockState* block_state = nullptr;
};

// The CUDA thread running on this OS thread (fibers never migrate between OS threads).
extern __thread ThreadState* current_thread;

// Block until every non-exited thread of the block is here; `arg` 0 plain, 1 count, 2 and, 3 or.
int barrier(unsigned arg, int pred, const char* file, int line);
// Arrive at a warp op with `mask`; returns this lane's result once every lane of the mask is there.
unsigned long long warp_op(Op op, unsigned mask, unsigned long long value, unsigned arg, int width,
                           const char* file, int line);
// Fail the launch from device code (SimtError in Python); never returns.
[[noreturn]] __attribute__((format(printf, 4, 5))) void fail_in_fiber(const char* file, int line, const char* what,
                                                                    const char* fmt, ...);

using Invoker = void (*)(void* fn, void** args);
// Run a grid; 0 on success, else 1 with the message in last_error().
int launch_kernel(const char* kernel, void* fn, Invoker invoke, const unsigned* grid, const unsigned* block,
                  unsigned long long smem, void** args, int schedule, unsigned long long seed, int workers);
const char* last_error();

}  // namespace simt::detail

// --- built-in variables -------------------------------------------------------------------------

#define threadIdx (static_cast<const uint3&>(::simt::detail::current_thread->tid))
#define blockIdx (static_cast<const uint3&>(::simt::detail::current_thread->block_state->block_idx))
#define blockDim (static_cast<const dim3&>(::simt::detail::current_thread->block_state->block_dim))
#define gridDim (static_cast<const dim3&>(::simt::detail::current_thread->block_state->grid_dim))
constexpr int warpSize = 32;

namespace simt {
// The launch's dynamic shared memory (compat.cuh's PYCONV_DYNAMIC_SMEM): exactly `shared_mem`
// bytes, 16-byte aligned, filled with 0xFF (NaN) bytes at the start of every block.
inline void* dynamic_smem() { return detail::current_thread->block_state->smem; }
}  // namespace simt

#define SIMT_CALL_SITE const char *simt_file = __builtin_FILE(), int simt_line = __builtin_LINE()

// --- barriers and warp ops ----------------------------------------------------------------------

inline void __syncthreads(SIMT_CALL_SITE) { ::simt::detail::barrier(0, 0, simt_file, simt_line); }
inline int __syncthreads_count(int pred, SIMT_CALL_SITE) {
    return ::simt::detail::barrier(1, pred, simt_file, simt_line);
}
inline int __syncthreads_and(int pred, SIMT_CALL_SITE) {
    return ::simt::detail::barrier(2, pred, simt_file, simt_line);
}
inline int __syncthreads_or(int pred, SIMT_CALL_SITE) {
    return ::simt::detail::barrier(3, pred, simt_file, simt_line);
}

inline void __syncwarp(unsigned mask = 0xffffffffu, SIMT_CALL_SITE) {
    ::simt::detail::warp_op(::simt::detail::Op::SyncWarp, mask, 0, 0, 32, simt_file, simt_line);
}

namespace simt::detail {
template <typename T>
inline T shuffle(Op op, unsigned mask, T var, unsigned arg, int width, const char* file, int line) {
    unsigned long long bits = 0;
    memcpy(&bits, &var, sizeof(T));
    bits = warp_op(op, mask, bits, arg, width, file, line);
    T out;
    memcpy(&out, &bits, sizeof(T));
    return out;
}
}  // namespace simt::detail

#define SIMT_SHUFFLES(T)                                                                          \
    inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize, SIMT_CALL_SITE) { \
        return ::simt::detail::shuffle(::simt::detail::Op::ShflIdx, mask, var, unsigned(srcLane), width, \
                                       simt_file, simt_line);                                     \
    }                                                                                             \
    inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize, SIMT_CALL_SITE) { \
        return ::simt::detail::shuffle(::simt::detail::Op::ShflUp, mask, var, delta, width, simt_file, \
                                       simt_line);                                                \
    }                                                                                             \
    inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,           \
                              SIMT_CALL_SITE) {                                                   \
        return ::simt::detail::shuffle(::simt::detail::Op::ShflDown, mask, var, delta, width, simt_file, \
                                       simt_line);                                                \
    }                                                                                             \
    inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = warpSize, SIMT_CALL_SITE) { \
        return ::simt::detail::shuffle(::simt::detail::Op::ShflXor, mask, var, unsigned(laneMask), width, \
                                       simt_file, simt_line);                                     \
    }                                                                                             \
    inline unsigned __match_any_sync(unsigned mask, T value, SIMT_CALL_SITE) {                    \
        return unsigned(::simt::detail::shuffle(::simt::detail::Op::MatchAny, mask,               \
                                                (unsigned long long)0 + simt_bits(value), 0, 32,  \
                                                simt_file, simt_line));                           \
    }                                                                                             \
    inline unsigned __match_all_sync(unsigned mask, T value, int* pred, SIMT_CALL_SITE) {         \
        unsigned r = unsigned(::simt::detail::shuffle(::simt::detail::Op::MatchAll, mask,         \
                                                      (unsigned long long)0 + simt_bits(value), 0, 32, \
                                                      simt_file, simt_line));                     \
        *pred = r != 0;                                                                           \
        return r;                                                                                 \
    }

template <typename T>
inline unsigned long long simt_bits(T v) {
    unsigned long long bits = 0;
    memcpy(&bits, &v, sizeof(T));
    return bits;
}

SIMT_SHUFFLES(int)
SIMT_SHUFFLES(unsigned int)
SIMT_SHUFFLES(long)
SIMT_SHUFFLES(unsigned long)
SIMT_SHUFFLES(long long)
SIMT_SHUFFLES(unsigned long long)
SIMT_SHUFFLES(float)
SIMT_SHUFFLES(double)
#undef SIMT_SHUFFLES

inline unsigned __ballot_sync(unsigned mask, int pred, SIMT_CALL_SITE) {
    return unsigned(::simt::detail::warp_op(::simt::detail::Op::Ballot, mask, pred != 0, 0, 32, simt_file, simt_line));
}
inline int __all_sync(unsigned mask, int pred, SIMT_CALL_SITE) {
    return int(::simt::detail::warp_op(::simt::detail::Op::All, mask, pred != 0, 0, 32, simt_file, simt_line));
}
inline int __any_sync(unsigned mask, int pred, SIMT_CALL_SITE) {
    return int(::simt::detail::warp_op(::simt::detail::Op::Any, mask, pred != 0, 0, 32, simt_file, simt_line));
}
// The lanes of the caller's warp that exist and have not exited (the emulator has no divergence).
inline unsigned __activemask() {
    const auto* t = ::simt::detail::current_thread;
    return t->block_state->existing_mask[t->warp] & ~t->block_state->exited_mask[t->warp];
}

#define SIMT_REDUCE(name, OP, T, is_signed)                                                          \
    inline T name(unsigned mask, T value, SIMT_CALL_SITE) {                                          \
        return T(unsigned(::simt::detail::warp_op(::simt::detail::Op::OP, mask, (unsigned)value, is_signed, \
                                                  32, simt_file, simt_line)));                       \
    }
SIMT_REDUCE(__reduce_add_sync, ReduceAdd, unsigned, 0)
SIMT_REDUCE(__reduce_add_sync, ReduceAdd, int, 1)
SIMT_REDUCE(__reduce_min_sync, ReduceMin, unsigned, 0)
SIMT_REDUCE(__reduce_min_sync, ReduceMin, int, 1)
SIMT_REDUCE(__reduce_max_sync, ReduceMax, unsigned, 0)
SIMT_REDUCE(__reduce_max_sync, ReduceMax, int, 1)
SIMT_REDUCE(__reduce_and_sync, ReduceAnd, unsigned, 0)
SIMT_REDUCE(__reduce_or_sync, ReduceOr, unsigned, 0)
SIMT_REDUCE(__reduce_xor_sync, ReduceXor, unsigned, 0)
#undef SIMT_REDUCE

// --- failures raised by device code -------------------------------------------------------------

namespace simt::detail {
[[noreturn]] inline void device_assert(const char* expr, const char* file, int line, const char* function) {
    fail_in_fiber(file, line, "assert", "device assertion `%s` failed in %s", expr, function);
}
}  // namespace simt::detail

inline void __trap(SIMT_CALL_SITE) {
    ::simt::detail::fail_in_fiber(simt_file, simt_line, "__trap", "__trap() called");
}
inline void __brkpt(SIMT_CALL_SITE) {
    ::simt::detail::fail_in_fiber(simt_file, simt_line, "__brkpt", "__brkpt() called");
}

// --- atomics (GCC builtins: blocks on different workers run concurrently) -----------------------

namespace simt::detail {
template <typename T>
inline T atomic_cas(T* p, T compare, T v) {
    __atomic_compare_exchange(p, &compare, &v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return compare;
}
// old = *p; *p = next(old) atomically; returns old.
template <typename T, typename F>
inline T atomic_update(T* p, F next) {
    T old;
    __atomic_load(p, &old, __ATOMIC_SEQ_CST);
    for (;;) {
        T desired = next(old);
        if (__atomic_compare_exchange(p, &old, &desired, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return old;
    }
}
}  // namespace simt::detail

#define SIMT_ATOMIC_INTEGER(T)                                                                        \
    inline T atomicAdd(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }              \
    inline T atomicSub(T* p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); }              \
    inline T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }            \
    inline T atomicAnd(T* p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); }              \
    inline T atomicOr(T* p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); }                \
    inline T atomicXor(T* p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); }              \
    inline T atomicCAS(T* p, T compare, T v) { return ::simt::detail::atomic_cas(p, compare, v); }    \
    inline T atomicMax(T* p, T v) {                                                                   \
        return ::simt::detail::atomic_update(p, [v](T old) { return old < v ? v : old; });            \
    }                                                                                                 \
    inline T atomicMin(T* p, T v) {                                                                   \
        return ::simt::detail::atomic_update(p, [v](T old) { return v < old ? v : old; });            \
    }
SIMT_ATOMIC_INTEGER(int)
SIMT_ATOMIC_INTEGER(unsigned int)
SIMT_ATOMIC_INTEGER(unsigned long long)
#undef SIMT_ATOMIC_INTEGER
inline float atomicAdd(float* p, float v) {
    return ::simt::detail::atomic_update(p, [v](float old) { return old + v; });
}
inline double atomicAdd(double* p, double v) {
    return ::simt::detail::atomic_update(p, [v](double old) { return old + v; });
}
inline long long atomicMax(long long* p, long long v) {
    return ::simt::detail::atomic_update(p, [v](long long old) { return old < v ? v : old; });
}
inline long long atomicMin(long long* p, long long v) {
    return ::simt::detail::atomic_update(p, [v](long long old) { return v < old ? v : old; });
}
inline float atomicExch(float* p, float v) {
    float old;
    __atomic_exchange(p, &v, &old, __ATOMIC_SEQ_CST);
    return old;
}
inline unsigned short atomicCAS(unsigned short* p, unsigned short compare, unsigned short v) {
    return ::simt::detail::atomic_cas(p, compare, v);
}
inline unsigned atomicInc(unsigned* p, unsigned limit) {
    return ::simt::detail::atomic_update(p, [limit](unsigned old) { return old >= limit ? 0u : old + 1; });
}
inline unsigned atomicDec(unsigned* p, unsigned limit) {
    return ::simt::detail::atomic_update(p, [limit](unsigned old) { return (old == 0 || old > limit) ? limit : old - 1; });
}

inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// --- loads, bit casts, integer intrinsics -----------------------------------------------------

template <typename T> inline T __ldg(const T* p) { return *p; }
template <typename T> inline T __ldcg(const T* p) { return *p; }
template <typename T> inline T __ldca(const T* p) { return *p; }
template <typename T> inline T __ldcs(const T* p) { return *p; }
template <typename T> inline T __ldlu(const T* p) { return *p; }
template <typename T> inline T __ldcv(const T* p) { return *p; }
template <typename T> inline void __stcg(T* p, T v) { *p = v; }
template <typename T> inline void __stcs(T* p, T v) { *p = v; }
template <typename T> inline void __stwb(T* p, T v) { *p = v; }
template <typename T> inline void __stwt(T* p, T v) { *p = v; }

inline float __int_as_float(int v) { return __builtin_bit_cast(float, v); }
inline int __float_as_int(float v) { return __builtin_bit_cast(int, v); }
inline float __uint_as_float(unsigned v) { return __builtin_bit_cast(float, v); }
inline unsigned __float_as_uint(float v) { return __builtin_bit_cast(unsigned, v); }
inline double __longlong_as_double(long long v) { return __builtin_bit_cast(double, v); }
inline long long __double_as_longlong(double v) { return __builtin_bit_cast(long long, v); }
inline double __hiloint2double(int hi, int lo) {
    return __builtin_bit_cast(double, (unsigned long long)(unsigned)hi << 32 | (unsigned)lo);
}
inline int __double2hiint(double v) { return int(__builtin_bit_cast(unsigned long long, v) >> 32); }
inline int __double2loint(double v) { return int(__builtin_bit_cast(unsigned long long, v)); }

inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
inline int __clz(int v) { return v ? __builtin_clz(unsigned(v)) : 32; }
inline int __clzll(long long v) { return v ? __builtin_clzll((unsigned long long)v) : 64; }
inline int __ffs(int v) { return __builtin_ffs(v); }
inline int __ffsll(long long v) { return __builtin_ffsll(v); }
inline unsigned __brev(unsigned v) {
    v = ((v >> 1) & 0x55555555u) | ((v & 0x55555555u) << 1);
    v = ((v >> 2) & 0x33333333u) | ((v & 0x33333333u) << 2);
    v = ((v >> 4) & 0x0f0f0f0fu) | ((v & 0x0f0f0f0fu) << 4);
    return __builtin_bswap32(v);
}
inline unsigned long long __brevll(unsigned long long v) {
    return (unsigned long long)__brev(unsigned(v)) << 32 | __brev(unsigned(v >> 32));
}
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    unsigned long long bytes = (unsigned long long)y << 32 | x;
    unsigned r = 0;
    for (int i = 0; i < 4; ++i) r |= unsigned((bytes >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
    return r;
}
inline int __mulhi(int a, int b) { return int(((long long)a * b) >> 32); }
inline unsigned __umulhi(unsigned a, unsigned b) { return unsigned(((unsigned long long)a * b) >> 32); }
inline long long __mul64hi(long long a, long long b) { return (long long)(((__int128)a * b) >> 64); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline int __mul24(int a, int b) { return (a << 8 >> 8) * (b << 8 >> 8); }
inline unsigned __umul24(unsigned a, unsigned b) { return (a & 0xffffffu) * (b & 0xffffffu); }

// --- floating-point intrinsics: the fast-math forms map to precise libm -------------------------

inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline void __sincosf(float x, float* s, float* c) { sincosf(x, s, c); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline double __drcp_rn(double x) { return 1.0 / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline double __dsqrt_rn(double x) { return sqrt(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __saturatef(float x) { return x >= 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); }  // NaN -> 0
inline int __float2int_rn(float x) { return int(nearbyintf(x)); }
inline int __float2int_rz(float x) { return int(x); }
inline int __float2int_rd(float x) { return int(floorf(x)); }
inline int __float2int_ru(float x) { return int(ceilf(x)); }
inline int __double2int_rn(double x) { return int(nearbyint(x)); }
inline float __int2float_rn(int x) { return float(x); }
inline float __ll2float_rn(long long x) { return float(x); }
inline long long __float2ll_rn(float x) { return (long long)nearbyintf(x); }

// min/max over mixed arithmetic types like CUDA's overload set (fmin/fmax for floating types).
template <typename A, typename B, typename = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
inline std::common_type_t<A, B> min(A a, B b) {
    using C = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<C>) return std::fmin(C(a), C(b));
    else return C(b) < C(a) ? C(b) : C(a);
}
template <typename A, typename B, typename = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
inline std::common_type_t<A, B> max(A a, B b) {
    using C = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<C>) return std::fmax(C(a), C(b));
    else return C(a) < C(b) ? C(b) : C(a);
}

// --- CUDA qualifiers and the device assert -----------------------------------------------------

#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Static shared memory: one instance per worker OS thread, which runs one block at a time and whose
// fibers never migrate, so every thread of the block sees the same array.
#define __shared__ static thread_local

#undef assert
#define assert(e) ((e) ? (void)0 : ::simt::detail::device_assert(#e, __FILE__, __LINE__, __func__))
