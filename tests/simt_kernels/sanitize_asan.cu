// AddressSanitizer build: dynamic shared memory is allocated to exactly the launch's size, so reading
// one element past it is a heap-buffer-overflow with this file and line.
#include "compat.cuh"

extern "C" __global__ void copy_through_smem(float* y, const float* x, int overrun) {
    PYCONV_DYNAMIC_SMEM(float, buffer);
    buffer[threadIdx.x] = x[threadIdx.x];
    __syncthreads();
    y[threadIdx.x] = buffer[threadIdx.x + overrun];  // OVERRUN: overrun = 1 reads past the end
}
