// The workspace arena: per-thread, grow-only, 64-byte aligned scratch buffers that live across
// calls. A fresh 4 KiB page costs about 2 us to fault in on these machines, so packing buffers
// are allocated once and reused instead of being requested from malloc on every call.
#pragma once

#include <cstddef>

namespace pyconv::cpu {

// Independent buffers of one thread; a caller and the worker threads it spawns use different
// slots, so a buffer is never shared between threads.
enum class Slot : int { PackedA = 0, PackedB, Columns, Count };

class Workspace {
public:
    Workspace() = default;
    Workspace(const Workspace&) = delete;
    Workspace& operator=(const Workspace&) = delete;
    ~Workspace();

    // At least `count` elements of T in `slot`; the contents are unspecified. Invalidates earlier
    // pointers of the same slot.
    template <typename T>
    T* get(Slot slot, size_t count) {
        return static_cast<T*>(bytes(slot, count * sizeof(T)));
    }

    // Bytes reserved by this thread in all slots (for tests and diagnostics).
    size_t reserved() const;

private:
    void* bytes(Slot slot, size_t n);

    struct Block {
        void* data = nullptr;
        size_t size = 0;
    };
    Block blocks_[static_cast<int>(Slot::Count)];
};

// This thread's workspace (OpenMP worker threads persist, and so do their workspaces).
Workspace& thread_workspace();

}  // namespace pyconv::cpu
