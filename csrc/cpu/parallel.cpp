#include "parallel.h"

namespace pyconv::cpu {

namespace {

int initial_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int g_threads = initial_threads();

}  // namespace

int max_threads() { return __atomic_load_n(&g_threads, __ATOMIC_RELAXED); }

void set_max_threads(int n) { __atomic_store_n(&g_threads, n < 1 ? 1 : n, __ATOMIC_RELAXED); }

}  // namespace pyconv::cpu
