// The output pool: kernel outputs of 64 KiB and more are carved from recycled blocks.
//
// A fresh 4 KiB page costs about 2.3 us to fault in on these machines, so writing a new 16 MB
// softmax output costs ~9 ms of faults for ~2 ms of work, and glibc hands large allocations back
// to the kernel on free (mmap / heap trimming). Training and benchmark loops free and request the
// same sizes every step, so a block released by a dead NumPy array is kept (up to a byte limit)
// and handed to the next request of the same size class: its pages are already resident.
//
// Blocks are owned by the arrays that use them (a capsule is the array's base); when the last
// view dies, the capsule returns the block here. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pyconv::cpu::output_pool {

// Requests below this size go to NumPy's allocator (small blocks come from malloc's heap, which
// keeps them resident anyway).
constexpr size_t kMinPooledBytes = size_t(1) << 16;

// A 64-byte aligned block of at least `bytes` bytes (its size rounded up to a size class).
void* acquire(size_t bytes);

// Gives back a block from acquire(): cached if the pool stays within its limit, else freed.
void release(void* block) noexcept;

struct Stats {
    size_t cached_bytes;   // idle blocks kept for reuse
    size_t in_use_bytes;   // blocks owned by live arrays
    size_t limit_bytes;    // cached_bytes never exceeds this
    uint64_t hits;         // requests served from the cache
    uint64_t misses;       // requests that allocated a new block
};

Stats stats();

// Sets the cache limit (0 disables caching) and frees idle blocks beyond it.
void set_limit(size_t bytes);

// Frees every idle block (blocks in use are unaffected).
void clear();

// Tests: when on, every block acquire() returns is filled with 0xFF bytes (NaN as a float, -1
// as an int64), so a kernel that fails to write all of its output is caught at once.
void set_poison(bool on);

}  // namespace pyconv::cpu::output_pool
