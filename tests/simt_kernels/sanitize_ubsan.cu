// UndefinedBehaviorSanitizer build (-fsanitize=alignment): a float4 load from an address that is not
// 16-byte aligned is reported with this file and line.
#include "compat.cuh"

extern "C" __global__ void sum_float4(float* y, const float* x, int offset) {
    const float4* groups = reinterpret_cast<const float4*>(x + offset);
    float4 v = groups[threadIdx.x];  // MISALIGNED: offset 1 breaks the 16-byte alignment
    y[threadIdx.x] = v.x + v.y + v.z + v.w;
}
