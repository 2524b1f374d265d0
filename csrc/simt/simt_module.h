// The entry-point registry and the C ABI of one emulator module (.so).
//
// The generated translation unit includes the kernel source, then this header, then lists the
// entries:
//     static const ::simt::detail::Entry pyconv_simt_entries[] = {
//         ::simt::detail::make_entry("relu_forward_f32", &relu_forward_f32), ..., {}};
//     SIMT_DEFINE_MODULE(pyconv_simt_entries)
// make_entry turns a kernel's type void(*)(Args...) into an argument descriptor that Python checks
// arguments against, and an invoker that calls the kernel from a cudaLaunchKernel-style void**.
#pragma once

namespace simt::detail {

// "f32", "i64", "f32x4" ... for a parameter's value type or pointee type; "?" if unsupported.
template <typename T> constexpr const char* type_code() {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same_v<U, float>) return "f32";
    else if constexpr (std::is_same_v<U, double>) return "f64";
    else if constexpr (std::is_same_v<U, bool>) return "b8";
    else if constexpr (std::is_same_v<U, void>) return "void";
    else if constexpr (std::is_integral_v<U>) {
        constexpr bool s = std::is_signed_v<U>;
        switch (sizeof(U)) {
            case 1: return s ? "i8" : "u8";
            case 2: return s ? "i16" : "u16";
            case 4: return s ? "i32" : "u32";
            default: return s ? "i64" : "u64";
        }
    }
#define SIMT_VECTOR_CODE(V, code) else if constexpr (std::is_same_v<U, V>) return code;
    SIMT_VECTOR_CODE(float2, "f32x2") SIMT_VECTOR_CODE(float4, "f32x4") SIMT_VECTOR_CODE(double2, "f64x2")
    SIMT_VECTOR_CODE(int2, "i32x2") SIMT_VECTOR_CODE(int4, "i32x4") SIMT_VECTOR_CODE(uint2, "u32x2")
    SIMT_VECTOR_CODE(uint4, "u32x4") SIMT_VECTOR_CODE(longlong2, "i64x2") SIMT_VECTOR_CODE(uchar4, "u8x4")
    SIMT_VECTOR_CODE(char4, "i8x4") SIMT_VECTOR_CODE(float3, "f32x3") SIMT_VECTOR_CODE(double4, "f64x4")
#undef SIMT_VECTOR_CODE
    else return "?";
}

// "p" (T*), "cp" (const T*) or "s" (a value).
template <typename T> constexpr const char* arg_kind() {
    if constexpr (std::is_pointer_v<T>) return std::is_const_v<std::remove_pointer_t<T>> ? "cp" : "p";
    else return "s";
}

template <typename T> constexpr const char* arg_type() {
    if constexpr (std::is_pointer_v<T>) return type_code<std::remove_pointer_t<T>>();
    else return type_code<T>();
}

template <typename... A> struct Signature {
    static constexpr const char* kinds[sizeof...(A) + 1] = {arg_kind<std::remove_cv_t<A>>()..., nullptr};
    static constexpr const char* types[sizeof...(A) + 1] = {arg_type<std::remove_cv_t<A>>()..., nullptr};
};

template <typename... A, size_t... I>
SIMT_NO_TSAN inline void call_with(void (*fn)(A...), void** args, std::index_sequence<I...>) {
    fn(*static_cast<std::remove_cv_t<A>*>(args[I])...);
}

template <typename... A> SIMT_NO_TSAN void invoke(void* fn, void** args) {
    call_with(reinterpret_cast<void (*)(A...)>(fn), args, std::index_sequence_for<A...>{});
}

struct Entry {
    const char* name = nullptr;
    int nargs = 0;
    const char* const* kinds = nullptr;
    const char* const* types = nullptr;
    void* fn = nullptr;
    Invoker invoke = nullptr;
};

template <typename... A> Entry make_entry(const char* name, void (*fn)(A...)) {
    return Entry{name, int(sizeof...(A)), Signature<A...>::kinds, Signature<A...>::types,
                 reinterpret_cast<void*>(fn), &invoke<A...>};
}

// "p:f32,cp:f32,s:i64" for Python's argument checks.
inline const char* describe_signature(const Entry& e) {
    static thread_local char text[4096];
    size_t used = 0;
    text[0] = 0;
    for (int k = 0; k < e.nargs && used < sizeof text; ++k)
        used += snprintf(text + used, sizeof text - used, "%s%s:%s", k ? "," : "", e.kinds[k], e.types[k]);
    return text;
}

}  // namespace simt::detail

// The C ABI loaded by pyconv.simt (ctypes), the only symbols a module exports (built with
// -fvisibility=hidden). Entries end with an empty sentinel.
#define SIMT_EXPORT extern "C" __attribute__((visibility("default")))
#define SIMT_DEFINE_MODULE(entries)                                                                    \
    SIMT_EXPORT int pyconv_simt_abi_version() { return 1; }                                            \
    SIMT_EXPORT int pyconv_simt_entry_count() { return int(sizeof(entries) / sizeof(entries[0])) - 1; } \
    SIMT_EXPORT const char* pyconv_simt_entry_name(int i) { return entries[i].name; }                  \
    SIMT_EXPORT const char* pyconv_simt_entry_signature(int i) {                                       \
        return ::simt::detail::describe_signature(entries[i]);                                          \
    }                                                                                                   \
    SIMT_EXPORT const char* pyconv_simt_last_error() { return ::simt::detail::last_error(); }          \
    SIMT_EXPORT int pyconv_simt_launch(int i, const unsigned* grid, const unsigned* block,              \
                                       unsigned long long smem, void** args, int schedule,              \
                                       unsigned long long seed, int workers) {                          \
        return ::simt::detail::launch_kernel(entries[i].name, entries[i].fn, entries[i].invoke, grid,    \
                                             block, smem, args, schedule, seed, workers);                \
    }
