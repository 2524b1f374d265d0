#include "arena.h"

#include <cstdlib>
#include <new>

namespace pyconv::cpu {

namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kGranule = size_t(1) << 16;  // round requests up so small growth reuses blocks

}  // namespace

Workspace::~Workspace() {
    for (Block& b : blocks_) std::free(b.data);
}

void* Workspace::bytes(Slot slot, size_t n) {
    Block& b = blocks_[static_cast<int>(slot)];
    if (n <= b.size && b.data != nullptr) return b.data;
    size_t size = (n + kGranule - 1) / kGranule * kGranule;
    if (size < n) throw std::bad_alloc();  // rounding overflowed
    if (size == 0) size = kGranule;
    void* p = std::aligned_alloc(kAlignment, size);
    if (p == nullptr) throw std::bad_alloc();
    std::free(b.data);
    b.data = p;
    b.size = size;
    return p;
}

size_t Workspace::reserved() const {
    size_t total = 0;
    for (const Block& b : blocks_) total += b.size;
    return total;
}

Workspace& thread_workspace() {
    thread_local Workspace workspace;
    return workspace;
}

}  // namespace pyconv::cpu
