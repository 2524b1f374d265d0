// Execution contexts for emulated CUDA threads (fibers) and the sanitizer hooks around a switch.
//
// x86-64 uses a hand-written switch (callee-saved registers + MXCSR/x87 control word, ~10 ns);
// other targets, or -DSIMT_USE_UCONTEXT, use glibc ucontext (a sigprocmask syscall per switch).
// Included by simt_runtime.cpp only.
#pragma once

#if defined(__x86_64__) && !defined(SIMT_USE_UCONTEXT)
#define SIMT_ASM_CONTEXT 1
#else
#define SIMT_ASM_CONTEXT 0
#endif

// Sanitizer runtime entry points, declared here so that no sanitizer header is needed.
#if defined(__SANITIZE_ADDRESS__)
#define SIMT_ASAN 1
extern "C" void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                                size_t* size_old);
extern "C" void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
#else
#define SIMT_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define SIMT_TSAN 1
extern "C" void* __tsan_get_current_fiber(void);
extern "C" void* __tsan_create_fiber(unsigned flags);
extern "C" void __tsan_switch_to_fiber(void* fiber, unsigned flags);
extern "C" void __tsan_set_fiber_name(void* fiber, const char* name);
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#define SIMT_TSAN_ACQUIRE(addr) __tsan_acquire((void*)(addr))
#define SIMT_TSAN_RELEASE(addr) __tsan_release((void*)(addr))
#else
#define SIMT_TSAN 0
#define SIMT_TSAN_ACQUIRE(addr) ((void)0)
#define SIMT_TSAN_RELEASE(addr) ((void)0)
#endif

namespace simt::detail {

#if SIMT_ASM_CONTEXT
// pyconv_simt_switch(save, load): push callee-saved state, store rsp in *save, load rsp = load,
// pop the other context's state and return into it. The trampoline starts a fresh fiber: r12 holds
// the argument, r13 the entry function (which never returns). Weak + hidden: one copy per .so.
extern "C" void pyconv_simt_switch(void** save_sp, void* load_sp);
extern "C" void pyconv_simt_trampoline();
asm(R"(
    .text
    .p2align 4
    .weak pyconv_simt_switch
    .hidden pyconv_simt_switch
    .type pyconv_simt_switch, @function
pyconv_simt_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size pyconv_simt_switch, .-pyconv_simt_switch

    .p2align 4
    .weak pyconv_simt_trampoline
    .hidden pyconv_simt_trampoline
    .type pyconv_simt_trampoline, @function
pyconv_simt_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq %r12, %rdi
    callq *%r13
    ud2
    .cfi_endproc
    .size pyconv_simt_trampoline, .-pyconv_simt_trampoline
)");

struct Context {
    void* sp = nullptr;
};

// A fresh context that runs fn(arg) on [stack, stack + size) when first switched to.
inline void context_init(Context& c, char* stack, size_t size, void (*fn)(void*), void* arg) {
    uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + size - 16) & ~uintptr_t(15);
    uint64_t* sp = reinterpret_cast<uint64_t*>(top - 64);  // 8 slots popped by the switch; 16-aligned
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    sp[0] = uint64_t(mxcsr) | (uint64_t(fpucw) << 32);
    sp[1] = 0;                                      // r15
    sp[2] = 0;                                      // r14
    sp[3] = reinterpret_cast<uint64_t>(fn);         // r13
    sp[4] = reinterpret_cast<uint64_t>(arg);        // r12
    sp[5] = 0;                                      // rbx
    sp[6] = 0;                                      // rbp: ends frame-pointer unwinds
    sp[7] = reinterpret_cast<uint64_t>(&pyconv_simt_trampoline);
    c.sp = sp;
}

inline void context_switch(Context& from, Context& to) { pyconv_simt_switch(&from.sp, to.sp); }

#else  // ucontext fallback

struct Context {
    ucontext_t uc;
};

inline void ucontext_entry(unsigned lo, unsigned hi, unsigned flo, unsigned fhi) {
    auto fn = reinterpret_cast<void (*)(void*)>((uintptr_t(fhi) << 32) | flo);
    fn(reinterpret_cast<void*>((uintptr_t(hi) << 32) | lo));
}

inline void context_init(Context& c, char* stack, size_t size, void (*fn)(void*), void* arg) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = size;
    c.uc.uc_link = nullptr;
    uintptr_t a = reinterpret_cast<uintptr_t>(arg), f = reinterpret_cast<uintptr_t>(fn);
    makecontext(&c.uc, reinterpret_cast<void (*)()>(&ucontext_entry), 4, unsigned(a), unsigned(a >> 32),
                unsigned(f), unsigned(f >> 32));
}

inline void context_switch(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }

#endif

}  // namespace simt::detail
