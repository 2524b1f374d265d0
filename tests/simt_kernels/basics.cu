// Emulator test kernels: built-in indices, barriers, shared memory, vector types, sizes, asserts.
#include "compat.cuh"

// Every thread writes its threadIdx, blockIdx, blockDim and gridDim (12 values) at its global slot.
extern "C" __global__ void write_indices(unsigned* out) {
    unsigned long long block = blockIdx.x + gridDim.x * (blockIdx.y + (unsigned long long)gridDim.y * blockIdx.z);
    unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    unsigned threads = blockDim.x * blockDim.y * blockDim.z;
    unsigned* o = out + (block * threads + thread) * 12;
    const unsigned values[12] = {threadIdx.x, threadIdx.y, threadIdx.z, blockIdx.x, blockIdx.y, blockIdx.z,
                                 blockDim.x,  blockDim.y,  blockDim.z,  gridDim.x,  gridDim.y,  gridDim.z};
    for (int k = 0; k < 12; ++k) o[k] = values[k];
}

// One sum per block: a shared-memory tree that is only correct with its barriers.
extern "C" __global__ __launch_bounds__(256) void block_sum_f64(double* sums, const double* x, int n) {
    __shared__ double partial[256];
    unsigned t = threadIdx.x;
    long long i = (long long)blockIdx.x * blockDim.x + t;
    partial[t] = i < n ? x[i] : 0.0;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride > 0; stride >>= 1) {
        if (t < stride) partial[t] += partial[t + stride];
        __syncthreads();
    }
    if (t == 0) sums[blockIdx.x] = partial[0];
}

// out = in^T through a padded static 2-D tile; blocks of (32, 8) threads.
#define TILE 32
extern "C" __global__ void transpose_f32(float* out, const float* in, int rows, int cols) {
    __shared__ float tile[TILE][TILE + 1];
    int x = blockIdx.x * TILE + threadIdx.x, y = blockIdx.y * TILE + threadIdx.y;
    for (int j = 0; j < TILE; j += blockDim.y)
        if (x < cols && y + j < rows) tile[threadIdx.y + j][threadIdx.x] = in[(long long)(y + j) * cols + x];
    __syncthreads();
    x = blockIdx.y * TILE + threadIdx.x;
    y = blockIdx.x * TILE + threadIdx.y;
    for (int j = 0; j < TILE; j += blockDim.y)
        if (x < rows && y + j < cols) out[(long long)(y + j) * rows + x] = tile[threadIdx.x][threadIdx.y + j];
}

// Reverses each block's slice through dynamic shared memory.
extern "C" __global__ void reverse_blocks_f32(float* y, const float* x) {
    PYCONV_DYNAMIC_SMEM(float, buffer);
    long long base = (long long)blockIdx.x * blockDim.x;
    buffer[threadIdx.x] = x[base + threadIdx.x];
    __syncthreads();
    y[base + threadIdx.x] = buffer[blockDim.x - 1 - threadIdx.x];
}

// Reads dynamic shared memory before writing it (a bug the poison makes visible), then writes it.
extern "C" __global__ void read_unwritten_smem_f64(double* y) {
    PYCONV_DYNAMIC_SMEM(double, buffer);
    y[(long long)blockIdx.x * blockDim.x + threadIdx.x] = buffer[threadIdx.x];
    buffer[threadIdx.x] = 1.0;
}

// y = 2 x through float4 loads and stores (n4 = number of float4 groups).
extern "C" __global__ void double_float4(float* y, const float* x, long long n4) {
    PYCONV_GRID_STRIDE_LOOP(i, n4) {
        float4 v = reinterpret_cast<const float4*>(x)[i];
        v.x *= 2.0f; v.y *= 2.0f; v.z *= 2.0f; v.w *= 2.0f;
        reinterpret_cast<float4*>(y)[i] = v;
    }
}

// Swaps the components of float2 pairs (a vector-typed pointer parameter).
extern "C" __global__ void swap_float2(float2* y, const float2* x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = make_float2(x[i].y, x[i].x);
}

static_assert(alignof(float4) == 16 && alignof(float2) == 8 && alignof(double2) == 16 && alignof(int4) == 16 &&
              alignof(float3) == 4 && sizeof(float3) == 12 && alignof(longlong2) == 16 && alignof(char4) == 4,
              "vector types must have CUDA's alignment");

// Echoes scalar parameters of every width (64-bit sizes above 2^31 included).
extern "C" __global__ void echo_scalars(long long* out, double* real, long long n, unsigned long long u, int i,
                                        unsigned ui, float f, double d) {
    out[0] = n;
    out[1] = (long long)u;
    out[2] = i;
    out[3] = ui;
    real[0] = f;
    real[1] = d;
}

// __syncthreads_count/_and/_or of the predicate x[t] > 0, one result triple per block.
extern "C" __global__ void barrier_votes(int* out, const float* x) {
    int pred = x[blockIdx.x * blockDim.x + threadIdx.x] > 0.0f;
    int count = __syncthreads_count(pred);
    int all = __syncthreads_and(pred);
    int any = __syncthreads_or(pred);
    if (threadIdx.x == 0) {
        out[3 * blockIdx.x] = count;
        out[3 * blockIdx.x + 1] = all;
        out[3 * blockIdx.x + 2] = any;
    }
}

// Device assert and __trap: both must become a SimtError naming this file and line.
extern "C" __global__ void check_non_negative(const float* x) { assert(x[threadIdx.x] >= 0.0f); }
extern "C" __global__ void trap_if_negative(int n) {
    if (n < 0) __trap();
}

// A template kernel registered through name_expressions.
template <typename T>
__global__ void fill(T* y, T value, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = value;
}
template __global__ void fill<float>(float*, float, int);
template __global__ void fill<double>(double*, double, int);

// y = x + 1: the speed benchmark (grid-stride loop).
extern "C" __global__ void add_one_f32(float* y, const float* x, long long n) {
    PYCONV_GRID_STRIDE_LOOP(i, n) y[i] = x[i] + 1.0f;
}

// Ten barriers in a row: the scheduler's cost per barrier.
extern "C" __global__ void ten_barriers(int* y) {
    int v = threadIdx.x;
    for (int k = 0; k < 10; ++k) __syncthreads();
    y[(long long)blockIdx.x * blockDim.x + threadIdx.x] = v;
}
