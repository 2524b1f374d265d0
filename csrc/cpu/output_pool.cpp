#include "output_pool.h"

#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "register.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace pyconv::cpu::output_pool {

namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kPage = 4096;
constexpr size_t kDefaultLimitBytes = size_t(1) << 30;
// Blocks from 4 MiB on are 2 MiB aligned and sized, and asked for transparent huge pages (as
// NumPy does for its large arrays): with 4 KiB pages, streaming through three 16 MB arrays
// misses the TLB on every page (softmax backward: 6.0 ms instead of 4.0 ms).
constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kHugeFrom = size_t(4) << 20;

// Rounds up to a page and then to one of 8 classes per power of two (at most 12.5% slack), so
// sizes that differ by a few elements share blocks.
size_t size_class(size_t bytes) {
    size_t pages = (bytes + kPage - 1) / kPage;
    size_t top = 1;
    while (top * 2 <= pages) top *= 2;
    size_t step = top >= 8 ? top / 8 : 1;
    size_t rounded = (pages + step - 1) / step * step * kPage;
    return rounded >= kHugeFrom ? (rounded + kHugePage - 1) / kHugePage * kHugePage : rounded;
}

void* allocate(size_t cls) {
    void* block = std::aligned_alloc(cls >= kHugeFrom ? kHugePage : kAlignment, cls);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (block != nullptr && cls >= kHugeFrom) madvise(block, cls, MADV_HUGEPAGE);  // a hint only
#endif
    return block;
}

size_t limit_from_environment() {
    const char* text = std::getenv("PYCONV_CPU_CACHE_MB");
    if (text == nullptr || *text == '\0') return kDefaultLimitBytes;
    char* end = nullptr;
    unsigned long long mb = std::strtoull(text, &end, 10);
    if (end == text || *end != '\0') return kDefaultLimitBytes;
    return static_cast<size_t>(mb) << 20;
}

struct Pool {
    std::mutex mutex;
    std::map<size_t, std::vector<void*>> idle;  // size class -> idle blocks
    std::unordered_map<void*, size_t> in_use;  // block -> its size class
    size_t cached_bytes = 0;
    size_t in_use_bytes = 0;
    size_t limit_bytes = limit_from_environment();
    uint64_t hits = 0;
    uint64_t misses = 0;
    bool poison = false;

    // Frees idle blocks, largest first, until cached_bytes <= target. Caller holds the mutex.
    void trim_to(size_t target) {
        while (cached_bytes > target && !idle.empty()) {
            auto largest = std::prev(idle.end());
            std::vector<void*>& blocks = largest->second;
            std::free(blocks.back());
            blocks.pop_back();
            cached_bytes -= largest->first;
            if (blocks.empty()) idle.erase(largest);
        }
    }

    // An idle block of class `cls`, or nullptr. Caller holds the mutex.
    void* take_idle(size_t cls) {
        auto it = idle.find(cls);
        if (it == idle.end()) return nullptr;
        void* block = it->second.back();
        it->second.pop_back();
        if (it->second.empty()) idle.erase(it);
        cached_bytes -= cls;
        return block;
    }

    void mark_in_use(void* block, size_t cls) {
        in_use.emplace(block, cls);
        in_use_bytes += cls;
    }
};

Pool& pool() {
    static Pool* instance = new Pool;  // never destroyed: capsules may release after static teardown
    return *instance;
}

}  // namespace

void* acquire(size_t bytes) {
    size_t cls = size_class(bytes);
    if (cls < bytes) throw std::bad_alloc();  // rounding overflowed
    Pool& p = pool();
    void* block = nullptr;
    bool poison = false;
    {
        std::lock_guard<std::mutex> lock(p.mutex);
        poison = p.poison;
        block = p.take_idle(cls);
        if (block != nullptr) {
            p.mark_in_use(block, cls);
            ++p.hits;
        }
    }
    if (block == nullptr) {
        block = allocate(cls);
        if (block == nullptr) {
            clear();  // idle blocks of other sizes may be what stands in the way
            block = allocate(cls);
            if (block == nullptr) throw std::bad_alloc();
        }
        std::lock_guard<std::mutex> lock(p.mutex);
        p.mark_in_use(block, cls);
        ++p.misses;
    }
    if (poison) std::memset(block, 0xFF, bytes);
    return block;
}

void release(void* block) noexcept {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    auto it = p.in_use.find(block);
    if (it == p.in_use.end()) return;  // not ours: never happens, and never worth a crash
    size_t cls = it->second;
    p.in_use.erase(it);
    p.in_use_bytes -= cls;
    if (cls > p.limit_bytes) {
        std::free(block);
        return;
    }
    try {
        p.idle[cls].push_back(block);
    } catch (...) {
        std::free(block);
        return;
    }
    p.cached_bytes += cls;
    p.trim_to(p.limit_bytes);
}

Stats stats() {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    return {p.cached_bytes, p.in_use_bytes, p.limit_bytes, p.hits, p.misses};
}

void set_limit(size_t bytes) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    p.limit_bytes = bytes;
    p.trim_to(bytes);
}

void clear() {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    p.trim_to(0);
}

void set_poison(bool on) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mutex);
    p.poison = on;
}

}  // namespace pyconv::cpu::output_pool

namespace {

using namespace pyconv::cpu;
namespace py = pybind11;

PYCONV_REGISTER_FAMILY(output_pool) {
    m.def("output_pool_stats", [] {
        output_pool::Stats s = output_pool::stats();
        py::dict d;
        d["cached_bytes"] = s.cached_bytes;
        d["in_use_bytes"] = s.in_use_bytes;
        d["limit_bytes"] = s.limit_bytes;
        d["hits"] = s.hits;
        d["misses"] = s.misses;
        return d;
    }, "The output pool's counters: cached/in-use/limit bytes, hits and misses.");
    m.def("output_pool_set_limit", [](long long bytes) {
        if (bytes < 0)
            throw py::value_error("output_pool_set_limit: bytes must be >= 0, got " + std::to_string(bytes));
        output_pool::set_limit(static_cast<size_t>(bytes));
    }, py::arg("bytes"), "Caps the idle bytes the pool keeps (0 disables caching).");
    m.def("output_pool_clear", &output_pool::clear, "Frees every idle block of the output pool.");
    m.def("output_pool_set_poison", &output_pool::set_poison, py::arg("on"),
          "Tests: fill every pooled output with 0xFF bytes before a kernel writes it.");
}

}  // namespace
