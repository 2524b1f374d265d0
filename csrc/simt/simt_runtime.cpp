// The emulator's runtime: one fiber per CUDA thread, a per-block scheduler with barriers, warp-op
// groups, strict checks and deadlock reports, and a pool of worker OS threads that run blocks.
//
// Compiled once per set of compiler flags into an object that pyconv.simt links into every module
// (with hidden visibility: each module gets its own pool and state). Kernel code sees only the
// declarations in simt.h.

// The heavy standard headers first: simt.h's qualifier macros would break headers included later.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdarg>
#include <mutex>
#include <new>
#include <numeric>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <thread>
#include <ucontext.h>
#include <unistd.h>
#include <vector>

#include "simt.h"
#include "simt_fiber.h"

namespace simt::detail {

constexpr unsigned kMaxThreads = 1024;
constexpr unsigned kMaxWarps = kMaxThreads / 32;
constexpr unsigned long long kMaxDynamicSmem = 227 * 1024;

#ifndef SIMT_STACK_SIZE
#if SIMT_ASAN || SIMT_TSAN
#define SIMT_STACK_SIZE (256 * 1024)
#else
#define SIMT_STACK_SIZE (64 * 1024)
#endif
#endif
constexpr size_t kStackSize = SIMT_STACK_SIZE;
constexpr size_t kGuardSize = 4096;

enum class Schedule : int { InOrder = 0, Reverse = 1, Random = 2 };
enum class State : unsigned char { Ready, Barrier, Warp, Exited };

inline const char* op_name(Op op) {
    switch (op) {
        case Op::None: return "(none)";
        case Op::Barrier: return "__syncthreads";
        case Op::SyncWarp: return "__syncwarp";
        case Op::ShflIdx: return "__shfl_sync";
        case Op::ShflUp: return "__shfl_up_sync";
        case Op::ShflDown: return "__shfl_down_sync";
        case Op::ShflXor: return "__shfl_xor_sync";
        case Op::Ballot: return "__ballot_sync";
        case Op::All: return "__all_sync";
        case Op::Any: return "__any_sync";
        case Op::ReduceAdd: return "__reduce_add_sync";
        case Op::ReduceMin: return "__reduce_min_sync";
        case Op::ReduceMax: return "__reduce_max_sync";
        case Op::ReduceAnd: return "__reduce_and_sync";
        case Op::ReduceOr: return "__reduce_or_sync";
        case Op::ReduceXor: return "__reduce_xor_sync";
        case Op::MatchAny: return "__match_any_sync";
        case Op::MatchAll: return "__match_all_sync";
    }
    return "?";
}

// One kernel launch, shared by the workers that run its blocks.
struct Launch {
    const char* kernel = nullptr;
    void* fn = nullptr;
    Invoker invoke = nullptr;
    void** args = nullptr;
    dim3 grid, block;
    unsigned long long smem = 0;
    Schedule schedule = Schedule::InOrder;
    unsigned long long seed = 0;
    int workers = 1;
    unsigned long long nblocks = 0;
    std::vector<unsigned long long> permutation;  // random schedule: block order
    unsigned long long affine_a = 1, affine_c = 0;  // random order of grids too big to permute
    std::atomic<unsigned long long> next{0};
    std::atomic<bool> failed{false};
    std::mutex error_mutex;
    std::string error;
    int running = 0;  // workers still busy (guarded by the pool mutex)
};

struct Block;
struct Worker;

// One emulated CUDA thread.
struct Fiber : ThreadState {
    Context ctx;
    Block* block = nullptr;
    char* stack = nullptr;
    unsigned linear = 0;
    State state = State::Ready;
    // What the thread waits at (for the release step and for reports).
    Op op = Op::None;
    unsigned mask = 0;
    int width = 32;
    unsigned arg = 0;
    unsigned long long value = 0;
    unsigned long long result = 0;
    const char* file = nullptr;
    int line = 0;
#if SIMT_ASAN
    void* asan_fake_stack = nullptr;
#endif
#if SIMT_TSAN
    void* tsan_fiber = nullptr;
    unsigned barrier_phase = 0;  // parity picks the block's barrier token
    unsigned warp_syncs = 0;     // parity picks this lane's warp token
    unsigned peer_parity = 0;    // bit j: the token parity lane j released at the last group
    char warp_token[2] = {0, 0};
#endif
};

__thread ThreadState* current_thread = nullptr;

inline Fiber* current_fiber() { return static_cast<Fiber*>(current_thread); }

// The block a worker is running.
struct Block : BlockState {
    Launch* launch = nullptr;
    Worker* worker = nullptr;
    Fiber* fibers = nullptr;
    unsigned nthreads = 0, nwarps = 0;
    unsigned exited = 0, at_barrier = 0;
    unsigned waiting_mask[kMaxWarps];
    unsigned order[kMaxThreads];
    unsigned long long rng = 0;
    bool failed = false;
    char message[4096];
    Context scheduler;
#if SIMT_TSAN
    char barrier_token[2] = {0, 0};
    char start_token = 0, done_token = 0;
#endif
};

// A pool thread: its fibers and their stacks live as long as the thread.
struct Worker {
    Block block;
    Fiber fibers[kMaxThreads];
    char* stacks = nullptr;
    unsigned stacks_ready = 0;
#if SIMT_ASAN
    const void* scheduler_stack_bottom = nullptr;
    size_t scheduler_stack_size = 0;
#endif
#if SIMT_TSAN
    void* tsan_scheduler = nullptr;
#endif
};

// --- small helpers -------------------------------------------------------------------------

inline unsigned long long splitmix64(unsigned long long& state) {
    unsigned long long z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

inline unsigned long long random_below(unsigned long long& state, unsigned long long n) {
    return (unsigned long long)(((unsigned __int128)splitmix64(state) * n) >> 64);
}

inline int lowest_lane(unsigned bits) { return __builtin_ctz(bits); }

// --- switching between the scheduler and a fiber --------------------------------------------

// Scheduler -> fiber; returns when the fiber blocks, exits or fails.
SIMT_NO_TSAN __attribute__((noinline)) inline void resume(Block& b, Fiber* f) {
    current_thread = f;
#if SIMT_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, f->stack, kStackSize);
#endif
#if SIMT_TSAN
    __tsan_switch_to_fiber(f->tsan_fiber, 1 /* __tsan_switch_to_fiber_no_sync */);
#endif
    context_switch(b.scheduler, f->ctx);
#if SIMT_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    current_thread = nullptr;
}

// Fiber -> scheduler; returns when the scheduler resumes this fiber (never if `exiting`).
SIMT_NO_TSAN __attribute__((noinline)) inline void yield_to_scheduler(Fiber* f, bool exiting) {
    Block& b = *f->block;
#if SIMT_ASAN
    __sanitizer_start_switch_fiber(exiting ? nullptr : &f->asan_fake_stack,
                                   b.worker->scheduler_stack_bottom, b.worker->scheduler_stack_size);
#endif
#if SIMT_TSAN
    __tsan_switch_to_fiber(b.worker->tsan_scheduler, 1);
#endif
    context_switch(f->ctx, b.scheduler);
#if SIMT_ASAN
    __sanitizer_finish_switch_fiber(f->asan_fake_stack, nullptr, nullptr);
#else
    (void)exiting;
#endif
}

// --- errors -------------------------------------------------------------------------------

// "SIMT error at file:line in what: kernel K, block (..), thread (..): <fmt>" into b.message.
SIMT_NO_TSAN inline void record_error(Block& b, const Fiber& f, const char* file, int line, const char* what,
                                      const char* fmt, va_list ap) {
    char detail[2048];
    vsnprintf(detail, sizeof detail, fmt, ap);
    snprintf(b.message, sizeof b.message, "SIMT error at %s:%d in %s: kernel %s, block (%u,%u,%u), thread (%u,%u,%u): %s",
             file, line, what, b.launch->kernel, b.block_idx.x, b.block_idx.y, b.block_idx.z, f.tid.x, f.tid.y,
             f.tid.z, detail);
    b.failed = true;
}

// Records an error raised inside a fiber and leaves the fiber for good: the block is abandoned.
[[noreturn]] SIMT_NO_TSAN void fail_in_fiber(const char* file, int line, const char* what, const char* fmt, ...) {
    Fiber* f = current_fiber();
    va_list ap;
    va_start(ap, fmt);
    record_error(*f->block, *f, file, line, what, fmt, ap);
    va_end(ap);
    yield_to_scheduler(f, false);
    __builtin_trap();  // a failed block is never resumed
}

inline std::string describe_wait(const Fiber& f) {
    char buf[256];
    if (f.state == State::Ready) return "runnable";
    if (f.state == State::Barrier)
        snprintf(buf, sizeof buf, "waiting at __syncthreads() at %s:%d", f.file, f.line);
    else
        snprintf(buf, sizeof buf, "waiting at %s(mask 0x%08x) at %s:%d", op_name(f.op), f.mask, f.file,
                 f.line);
    return buf;
}

// Every non-exited thread, consecutive threads with the same wait collapsed into one line.
SIMT_NO_TSAN inline void report_stuck_threads(Block& b, const char* headline) {
    std::string report = headline;
    char buf[512];
    snprintf(buf, sizeof buf, " (kernel %s, block (%u,%u,%u), %u threads, %u exited). Non-exited threads:",
             b.launch->kernel, b.block_idx.x, b.block_idx.y, b.block_idx.z, b.nthreads, b.exited);
    report += buf;
    unsigned i = 0;
    while (i < b.nthreads) {
        const Fiber& first = b.fibers[i];
        if (first.state == State::Exited) { ++i; continue; }
        std::string wait = describe_wait(first);
        unsigned j = i + 1;
        while (j < b.nthreads && b.fibers[j].state != State::Exited && describe_wait(b.fibers[j]) == wait) ++j;
        const Fiber& last = b.fibers[j - 1];
        if (j - i == 1)
            snprintf(buf, sizeof buf, "\n  thread (%u,%u,%u): ", first.tid.x, first.tid.y, first.tid.z);
        else
            snprintf(buf, sizeof buf, "\n  threads (%u,%u,%u)..(%u,%u,%u) [%u threads]: ", first.tid.x,
                     first.tid.y, first.tid.z, last.tid.x, last.tid.y, last.tid.z, j - i);
        report += buf;
        report += wait;
        i = j;
    }
    snprintf(b.message, sizeof b.message, "%s", report.c_str());
    if (report.size() >= sizeof b.message) {
        const char tail[] = "\n  ... (report truncated)";
        memcpy(b.message + sizeof b.message - sizeof tail, tail, sizeof tail);
    }
    b.failed = true;
}

// An error found while releasing groups, reported at the waiting thread `f`.
SIMT_NO_TSAN __attribute__((format(printf, 3, 4))) inline void fail_in_scheduler(Block& b, const Fiber& f,
                                                                                 const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    record_error(b, f, f.file, f.line, op_name(f.op), fmt, ap);
    va_end(ap);
}

// --- fiber side: barriers and warp ops ----------------------------------------------------

// __syncthreads and its _count/_and/_or forms: `arg` 0 plain, 1 count, 2 and, 3 or.
SIMT_NO_TSAN int barrier(unsigned arg, int pred, const char* file, int line) {
    Fiber* f = current_fiber();
    Block& b = *f->block;
    f->op = Op::Barrier;
    f->arg = arg;
    f->value = pred != 0;
    f->file = file;
    f->line = line;
    f->state = State::Barrier;
    ++b.at_barrier;
    SIMT_TSAN_RELEASE(&b.barrier_token[f->barrier_phase & 1]);
    yield_to_scheduler(f, false);
    SIMT_TSAN_ACQUIRE(&b.barrier_token[f->barrier_phase & 1]);
#if SIMT_TSAN
    ++f->barrier_phase;
#endif
    return int(f->result);
}

inline bool is_shuffle(Op op) {
    return op == Op::ShflIdx || op == Op::ShflUp || op == Op::ShflDown || op == Op::ShflXor;
}

// Arrive at a warp op with `mask`; returns this lane's result once every lane of the mask is there.
SIMT_NO_TSAN unsigned long long warp_op(Op op, unsigned mask, unsigned long long value, unsigned arg, int width,
                                       const char* file, int line) {
    Fiber* f = current_fiber();
    Block& b = *f->block;
    const char* name = op_name(op);
    if (!((mask >> f->lane) & 1u))
        fail_in_fiber(file, line, name, "the calling lane %u is not in mask 0x%08x", f->lane, mask);
    if (unsigned missing = mask & ~b.existing_mask[f->warp])
        fail_in_fiber(file, line, name,
                      "mask 0x%08x names lanes that do not exist (0x%08x): warp %u of a %u-thread block "
                      "has lanes mask 0x%08x",
                      mask, missing, f->warp, b.nthreads, b.existing_mask[f->warp]);
    if (unsigned gone = mask & b.exited_mask[f->warp])
        fail_in_fiber(file, line, name, "mask 0x%08x names lanes that have already exited (0x%08x)", mask,
                      gone);
    if (is_shuffle(op) && (width < 1 || width > 32 || (width & (width - 1))))
        fail_in_fiber(file, line, name, "width %d is not a power of two in [1, 32]", width);
    f->op = op;
    f->mask = mask;
    f->value = value;
    f->arg = arg;
    f->width = is_shuffle(op) ? width : 32;
    f->file = file;
    f->line = line;
    f->state = State::Warp;
    b.waiting_mask[f->warp] |= 1u << f->lane;
#if SIMT_TSAN
    __tsan_release(&f->warp_token[f->warp_syncs & 1]);
#endif
    yield_to_scheduler(f, false);
#if SIMT_TSAN
    Fiber* base = b.fibers + f->warp * 32;
    for (unsigned rest = mask; rest; rest &= rest - 1) {
        int j = lowest_lane(rest);
        __tsan_acquire(&base[j].warp_token[(f->peer_parity >> j) & 1]);
    }
    ++f->warp_syncs;
#endif
    return f->result;
}

// Runs in a fresh fiber: the kernel, then the exit bookkeeping. Uninstrumented for TSan, whose
// shadow call stack would otherwise see a frame that never returns.
SIMT_NO_TSAN inline void fiber_main(void* p) {
    Fiber* f = static_cast<Fiber*>(p);
    Block& b = *f->block;
#if SIMT_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &b.worker->scheduler_stack_bottom, &b.worker->scheduler_stack_size);
#endif
    SIMT_TSAN_ACQUIRE(&b.start_token);
    b.launch->invoke(b.launch->fn, b.launch->args);
    SIMT_TSAN_RELEASE(&b.done_token);
#if SIMT_TSAN
    // An exited thread counts as arrived at the next barrier (only: releasing the token of the phase
    // the others are leaving would order this thread's last accesses before their next ones).
    __tsan_release(&b.barrier_token[f->barrier_phase & 1]);
#endif
    f->state = State::Exited;
    f->op = Op::None;
    ++b.exited;
    b.exited_mask[f->warp] |= 1u << f->lane;
    yield_to_scheduler(f, true);
    __builtin_trap();
}

// --- scheduler side: releasing groups -----------------------------------------------------

inline unsigned long long poison_bits() { return ~0ull; }

// Source lane of a shuffle (PTX shfl.sync rules), or -1 when the lane keeps its own value.
inline int shuffle_source(Op op, unsigned lane, unsigned arg, int width) {
    unsigned seg_start = lane & ~unsigned(width - 1), seg_end = seg_start + unsigned(width) - 1;
    unsigned b = arg & 31u;
    int j;
    switch (op) {
        case Op::ShflIdx: return int(seg_start | (arg & unsigned(width - 1)));
        case Op::ShflUp: j = int(lane) - int(b); return j >= int(seg_start) ? j : -1;
        case Op::ShflDown: j = int(lane + b); return j <= int(seg_end) ? j : -1;
        case Op::ShflXor: j = int(lane ^ b); return j <= int(seg_end) ? j : -1;
        default: return -1;
    }
}

SIMT_NO_TSAN inline void complete_group(Block& b, unsigned warp, unsigned mask) {
    Fiber* base = b.fibers + warp * 32;
    const Fiber& first = base[lowest_lane(mask)];
    Op op = first.op;
    unsigned long long votes = 0, sum = 0, all_and = ~0ull, all_or = 0, all_xor = 0;
    long long smin = LLONG_MAX, smax = LLONG_MIN;
    unsigned long long umin = ~0ull, umax = 0;
    bool all_equal = true;
    for (unsigned rest = mask; rest; rest &= rest - 1) {
        const Fiber& g = base[lowest_lane(rest)];
        if (g.value) votes |= 1ull << g.lane;
        sum += g.value;
        all_and &= g.value;
        all_or |= g.value;
        all_xor ^= g.value;
        long long s = (long long)(int)(unsigned)g.value;
        smin = s < smin ? s : smin;
        smax = s > smax ? s : smax;
        umin = g.value < umin ? g.value : umin;
        umax = g.value > umax ? g.value : umax;
        all_equal = all_equal && g.value == first.value;
    }
    bool is_signed = first.arg != 0;
    unsigned parity = 0;
    for (unsigned rest = mask; rest; rest &= rest - 1) {
        Fiber& g = base[lowest_lane(rest)];
#if SIMT_TSAN
        parity |= (g.warp_syncs & 1u) << g.lane;
#endif
        switch (op) {
            case Op::ShflIdx: case Op::ShflUp: case Op::ShflDown: case Op::ShflXor: {
                int src = shuffle_source(op, g.lane, g.arg, g.width);
                if (src < 0) g.result = g.value;
                else if ((mask >> src) & 1u) g.result = base[src].value;
                else g.result = poison_bits();  // reading a lane outside the mask is undefined
                break;
            }
            case Op::Ballot: g.result = votes; break;
            case Op::All: g.result = votes == mask; break;
            case Op::Any: g.result = votes != 0; break;
            case Op::ReduceAdd: g.result = (unsigned)sum; break;
            case Op::ReduceMin: g.result = is_signed ? (unsigned)(int)smin : (unsigned)umin; break;
            case Op::ReduceMax: g.result = is_signed ? (unsigned)(int)smax : (unsigned)umax; break;
            case Op::ReduceAnd: g.result = (unsigned)all_and; break;
            case Op::ReduceOr: g.result = (unsigned)all_or; break;
            case Op::ReduceXor: g.result = (unsigned)all_xor; break;
            case Op::MatchAny: {
                unsigned same = 0;
                for (unsigned r = mask; r; r &= r - 1)
                    if (base[lowest_lane(r)].value == g.value) same |= 1u << lowest_lane(r);
                g.result = same;
                break;
            }
            case Op::MatchAll: g.result = all_equal ? mask : 0; break;
            default: g.result = 0; break;
        }
    }
    for (unsigned rest = mask; rest; rest &= rest - 1) {
        Fiber& g = base[lowest_lane(rest)];
#if SIMT_TSAN
        g.peer_parity = parity;
#endif
        g.state = State::Ready;
    }
    (void)parity;
    b.waiting_mask[warp] &= ~mask;
}

// Releases every warp group whose lanes have all arrived; false if none could be released.
SIMT_NO_TSAN inline bool release_warp_groups(Block& b, unsigned warp) {
    Fiber* base = b.fibers + warp * 32;
    bool released = false;
    unsigned pending = b.waiting_mask[warp];
    while (pending && !b.failed) {
        const Fiber& f = base[lowest_lane(pending)];
        unsigned mask = f.mask;
        pending &= ~(1u << f.lane);
        if (unsigned gone = mask & b.exited_mask[warp]) {
            fail_in_scheduler(b, f, "lane %d of mask 0x%08x exited without reaching this warp op", lowest_lane(gone),
                              mask);
            return released;
        }
        unsigned matching = 0;
        for (unsigned rest = mask & b.waiting_mask[warp]; rest; rest &= rest - 1) {
            const Fiber& g = base[lowest_lane(rest)];
            if (g.mask == mask && g.op == f.op && g.width == f.width) {
                matching |= 1u << g.lane;
            } else if ((g.mask >> f.lane) & 1u) {  // each waits for the other at a different op: never resolves
                fail_in_scheduler(b, f,
                                  "lanes of one mask group reached different warp ops: lane %u waits at "
                                  "%s(mask 0x%08x, width %d) but lane %u waits at %s(mask 0x%08x, width %d) at %s:%d",
                                  f.lane, op_name(f.op), f.mask, f.width, g.lane, op_name(g.op), g.mask, g.width,
                                  g.file, g.line);
                return released;
            }
        }
        if (matching != mask) continue;
        complete_group(b, warp, mask);
        pending &= ~mask;
        released = true;
    }
    return released;
}

SIMT_NO_TSAN inline bool release_barrier(Block& b) {
    if (b.at_barrier == 0 || b.at_barrier + b.exited != b.nthreads) return false;
    const Fiber* first = nullptr;
    unsigned long long count = 0;
    for (unsigned i = 0; i < b.nthreads; ++i) {
        const Fiber& f = b.fibers[i];
        if (f.state != State::Barrier) continue;
        if (!first) first = &f;
        if (f.line != first->line || strcmp(f.file, first->file) != 0 || f.arg != first->arg) {
            report_stuck_threads(b, "SIMT deadlock: threads wait at different __syncthreads() call sites "
                                    "(a barrier inside a divergent branch?)");
            return false;
        }
        count += f.value;
    }
    unsigned long long waiting = b.at_barrier;
    for (unsigned i = 0; i < b.nthreads; ++i) {
        Fiber& f = b.fibers[i];
        if (f.state != State::Barrier) continue;
        switch (f.arg) {
            case 1: f.result = count; break;
            case 2: f.result = count == waiting; break;
            case 3: f.result = count != 0; break;
            default: f.result = 0; break;
        }
        f.state = State::Ready;
    }
    b.at_barrier = 0;
    return true;
}

// --- scheduler side: running one block --------------------------------------------------------

SIMT_NO_TSAN inline bool schedule_block(Block& b) {
    const Schedule kind = b.launch->schedule;
    for (;;) {
        unsigned n = 0;
        for (unsigned i = 0; i < b.nthreads; ++i)
            if (b.fibers[i].state == State::Ready) b.order[n++] = i;
        if (kind == Schedule::Reverse) {
            for (unsigned i = 0; i < n / 2; ++i) std::swap(b.order[i], b.order[n - 1 - i]);
        } else if (kind == Schedule::Random) {
            for (unsigned i = n; i > 1; --i) std::swap(b.order[i - 1], b.order[random_below(b.rng, i)]);
        }
        for (unsigned k = 0; k < n; ++k) {
            Fiber* f = &b.fibers[b.order[k]];
            if (f->state != State::Ready) continue;
            resume(b, f);
            if (b.failed) return false;
        }
        bool released = false;
        for (unsigned w = 0; w < b.nwarps && !b.failed; ++w)
            if (b.waiting_mask[w]) released |= release_warp_groups(b, w);
        if (!b.failed) released |= release_barrier(b);
        if (b.failed) return false;
        if (n == 0 && !released) {
            if (b.exited == b.nthreads) return true;
            report_stuck_threads(b, "SIMT deadlock: no thread of the block can proceed");
            return false;
        }
    }
}

inline void ensure_stacks(Worker& w, unsigned n) {
    const size_t slot = kGuardSize + kStackSize;
    if (!w.stacks) {
        void* p = mmap(nullptr, slot * kMaxThreads, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) throw std::runtime_error("SIMT: cannot reserve fiber stacks (mmap failed)");
        w.stacks = static_cast<char*>(p);
    }
    for (; w.stacks_ready < n; ++w.stacks_ready) {
        char* stack = w.stacks + size_t(w.stacks_ready) * slot + kGuardSize;  // guard page below
        if (mprotect(stack, kStackSize, PROT_READ | PROT_WRITE) != 0)
            throw std::runtime_error("SIMT: cannot map a fiber stack (mprotect failed)");
        w.fibers[w.stacks_ready].stack = stack;
    }
}

SIMT_NO_TSAN inline bool run_block(Worker& w, Launch& L, unsigned long long linear, std::string& error) {
    Block& b = w.block;
    b.launch = &L;
    b.worker = &w;
    b.fibers = w.fibers;
    b.grid_dim = L.grid;
    b.block_dim = L.block;
    b.block_idx = uint3{unsigned(linear % L.grid.x), unsigned(linear / L.grid.x % L.grid.y),
                        unsigned(linear / (unsigned long long)(L.grid.x * (unsigned long long)L.grid.y))};
    b.nthreads = L.block.x * L.block.y * L.block.z;
    b.nwarps = (b.nthreads + 31) / 32;
    b.exited = 0;
    b.at_barrier = 0;
    b.failed = false;
    b.message[0] = 0;
    unsigned long long rng_seed = L.seed * 0x9e3779b97f4a7c15ull + linear;
    b.rng = splitmix64(rng_seed);
    for (unsigned k = 0; k < b.nwarps; ++k) {
        unsigned lanes = std::min(32u, b.nthreads - k * 32);
        b.existing_mask[k] = lanes == 32 ? ~0u : (1u << lanes) - 1;
        b.exited_mask[k] = 0;
        b.waiting_mask[k] = 0;
    }
    ensure_stacks(w, b.nthreads);
    // Exactly the launch's size (AddressSanitizer sees an overrun), poisoned with NaN bytes.
    b.smem = static_cast<unsigned char*>(::operator new(L.smem, std::align_val_t(16)));
    memset(b.smem, 0xFF, L.smem);
    const unsigned bx = L.block.x, by = L.block.y;
    for (unsigned i = 0; i < b.nthreads; ++i) {
        Fiber& f = w.fibers[i];
        f.block = &b;
        f.block_state = &b;
        f.tid = uint3{i % bx, i / bx % by, i / (bx * by)};
        f.linear = i;
        f.warp = i / 32;
        f.lane = i % 32;
        f.state = State::Ready;
        f.op = Op::None;
        f.file = "";
        f.line = 0;
#if SIMT_ASAN
        __asan_unpoison_memory_region(f.stack, kStackSize);  // frames of abandoned fibers stay poisoned
#endif
#if SIMT_TSAN
        if (!f.tsan_fiber) f.tsan_fiber = __tsan_create_fiber(0);
        // Fibers are reused by the worker's next blocks, whose threads must all start on the same
        // token parities: a fiber left at an odd phase by a smaller block would release into the
        // other token than its peers and TSan would report the block's own barriers as races.
        f.barrier_phase = 0;
        f.warp_syncs = 0;
#endif
        context_init(f.ctx, f.stack, kStackSize, &fiber_main, &f);
    }
#if SIMT_TSAN
    if (!w.tsan_scheduler) w.tsan_scheduler = __tsan_get_current_fiber();
#endif
    current_thread = nullptr;  // the module's TLS block (static __shared__ too) is allocated before the release
    SIMT_TSAN_RELEASE(&b.start_token);
    bool ok = schedule_block(b);
    SIMT_TSAN_ACQUIRE(&b.done_token);
    ::operator delete(b.smem, std::align_val_t(16));
    b.smem = nullptr;
    if (!ok) error = b.message;
    return ok;
}

// --- the grid: block order and the worker pool ------------------------------------------------

inline unsigned long long block_at(const Launch& L, unsigned long long ordinal) {
    switch (L.schedule) {
        case Schedule::Reverse: return L.nblocks - 1 - ordinal;
        case Schedule::Random:
            if (!L.permutation.empty()) return L.permutation[ordinal];
            return (unsigned long long)(((unsigned __int128)L.affine_a * ordinal + L.affine_c) % L.nblocks);
        default: return ordinal;
    }
}

inline void plan_block_order(Launch& L) {
    if (L.schedule != Schedule::Random || L.nblocks < 2) return;
    unsigned long long state = L.seed ^ 0x5851f42d4c957f2dull;
    if (L.nblocks <= (1ull << 20)) {
        L.permutation.resize(L.nblocks);
        for (unsigned long long i = 0; i < L.nblocks; ++i) L.permutation[i] = i;
        for (unsigned long long i = L.nblocks; i > 1; --i)
            std::swap(L.permutation[i - 1], L.permutation[random_below(state, i)]);
        return;
    }
    do {
        L.affine_a = random_below(state, L.nblocks - 1) + 1;
    } while (std::gcd(L.affine_a, L.nblocks) != 1);
    L.affine_c = random_below(state, L.nblocks);
}

inline void run_blocks(Worker& w, Launch& L) {
    std::string error;
    while (!L.failed.load(std::memory_order_relaxed)) {
        unsigned long long ordinal = L.next.fetch_add(1);
        if (ordinal >= L.nblocks) break;
        bool ok;
        try {
            ok = run_block(w, L, block_at(L, ordinal), error);
        } catch (const std::exception& e) {
            ok = false;
            error = e.what();
        }
        if (!ok) {
            std::lock_guard<std::mutex> lock(L.error_mutex);
            if (!L.failed.exchange(true)) L.error = error;
            break;
        }
    }
}

class Pool {
public:
    void run(Launch& L) {
        std::unique_lock<std::mutex> lock(mutex_);
        while (int(workers_.size()) < L.workers) {
            int index = int(workers_.size());
            workers_.push_back(new Worker);
            std::thread([this, index] { worker_loop(index); }).detach();
        }
        L.running = L.workers;
        job_ = &L;
        ++generation_;
        wake_.notify_all();
        done_.wait(lock, [&] { return L.running == 0; });
        job_ = nullptr;
    }

private:
    void worker_loop(int index) {
        Worker* w;
        unsigned long long seen = 0;
        std::unique_lock<std::mutex> lock(mutex_);
        w = workers_[index];
        for (;;) {
            wake_.wait(lock, [&] { return generation_ != seen; });
            seen = generation_;
            Launch* L = job_;
            if (!L || index >= L->workers) continue;
            lock.unlock();
            run_blocks(*w, *L);
            lock.lock();
            if (--L->running == 0) done_.notify_all();
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_, done_;
    std::vector<Worker*> workers_;
    Launch* job_ = nullptr;
    unsigned long long generation_ = 0;
};

// The process's pool; a forked child gets a fresh one (the parent's threads do not exist there).
inline Pool& pool() {
    static Pool* instance = nullptr;
    static pid_t owner = 0;
    pid_t me = getpid();
    if (!instance || owner != me) {
        instance = new Pool;  // never destroyed: its threads sleep until the process exits
        owner = me;
    }
    return *instance;
}

inline std::mutex& launch_mutex() {
    static std::mutex* m = new std::mutex;
    return *m;
}

// Runs a whole grid; returns "" on success, else the error message.
inline std::string launch(Launch& L) {
    if (L.block.x == 0 || L.block.y == 0 || L.block.z == 0 || L.grid.x == 0 || L.grid.y == 0 || L.grid.z == 0)
        return "SIMT launch error: grid and block dimensions must be positive";
    if ((unsigned long long)L.block.x * L.block.y * L.block.z > kMaxThreads)
        return "SIMT launch error: more than 1024 threads per block";
    if (L.smem > kMaxDynamicSmem) return "SIMT launch error: more than 227 KiB of dynamic shared memory";
    L.nblocks = (unsigned long long)L.grid.x * L.grid.y * L.grid.z;
    if (L.workers < 1) L.workers = 1;
    if ((unsigned long long)L.workers > L.nblocks) L.workers = int(L.nblocks);
    plan_block_order(L);
    std::lock_guard<std::mutex> serial(launch_mutex());
    if (L.workers == 1) {  // one block or one worker: the calling thread runs it (no hand-off)
        static thread_local Worker* caller = new Worker;  // per calling thread, like a pool thread's
        run_blocks(*caller, L);
    } else {
        pool().run(L);
    }
    return L.failed ? L.error : std::string();
}

thread_local std::string launch_error;

int launch_kernel(const char* kernel, void* fn, Invoker invoke, const unsigned* grid, const unsigned* block,
                  unsigned long long smem, void** args, int schedule, unsigned long long seed, int workers) {
    Launch L;
    L.kernel = kernel;
    L.fn = fn;
    L.invoke = invoke;
    L.args = args;
    L.grid = dim3(grid[0], grid[1], grid[2]);
    L.block = dim3(block[0], block[1], block[2]);
    L.smem = smem;
    L.schedule = Schedule(schedule);
    L.seed = seed;
    L.workers = workers;
    try {
        launch_error = launch(L);
    } catch (const std::exception& e) {
        launch_error = std::string("SIMT launch error: ") + e.what();
    }
    return launch_error.empty() ? 0 : 1;
}

const char* last_error() { return launch_error.c_str(); }

}  // namespace simt::detail
