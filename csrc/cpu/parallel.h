// Threading for the cpu backend: one process-wide thread count (pyconv.set_num_threads) and a
// task loop over OpenMP that never lets an exception escape a parallel region.
#pragma once

#include <cstdint>
#include <exception>
#include <mutex>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pyconv::cpu {

// Threads the kernels use. Set from Python; read by every call (also from other Python threads,
// whose OpenMP thread-count settings are their own, hence the explicit num_threads clause).
int max_threads();
void set_max_threads(int n);

// Below this many flops a fork/join costs more than it saves.
constexpr double kParallelMinFlops = 2e6;

inline int threads_for(double flops) { return flops < kParallelMinFlops ? 1 : max_threads(); }

// f(task) for task in [0, n_tasks) on up to `threads` threads, dynamically scheduled. Tasks must
// write disjoint memory; results do not depend on which thread ran which task. The first
// exception thrown by a task is rethrown after the loop.
template <class F>
void parallel_for(int64_t n_tasks, int threads, F&& f) {
    if (n_tasks <= 0) return;
#ifdef _OPENMP
    if (threads > 1 && n_tasks > 1) {
        std::exception_ptr error;
        std::mutex error_mutex;
        const int team = static_cast<int>(n_tasks < threads ? n_tasks : threads);
#pragma omp parallel for schedule(dynamic, 1) num_threads(team)
        for (int64_t t = 0; t < n_tasks; ++t) {
            try {
                f(t);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex);
                if (!error) error = std::current_exception();
            }
        }
        if (error) std::rethrow_exception(error);
        return;
    }
#endif
    (void)threads;
    for (int64_t t = 0; t < n_tasks; ++t) f(t);
}

}  // namespace pyconv::cpu
