// Emulator test kernels: atomics from many blocks (run by several workers at once).
#include "compat.cuh"

extern "C" __global__ void count_and_sum(int* counter, float* total, double* total64, int* maximum,
                                         unsigned long long* big, const float* x, long long n) {
    PYCONV_GRID_STRIDE_LOOP(i, n) {
        atomicAdd(counter, 1);
        atomicAdd(total, x[i]);
        atomicAdd(total64, (double)x[i]);
        atomicMax(maximum, (int)(x[i] * 1000.0f));
        atomicAdd(big, 1ull << 33);
    }
}

// An increment built from atomicCAS (the retry loop the CUDA guide shows for custom atomics).
extern "C" __global__ void cas_increment(unsigned* counter, int repeats) {
    for (int r = 0; r < repeats; ++r) {
        unsigned old = *counter, seen;
        while ((seen = atomicCAS(counter, old, old + 1)) != old) old = seen;
    }
}
