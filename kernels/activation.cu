// Elementwise activations, forward and backward: relu, leaky_relu, sigmoid, tanh, gelu (erf form
// and tanh approximation). Semantics: pyconv/backends/numpy_ref/activation.py.
//
// Every op is a functor applied by one grid-stride loop. Each entry point exists as _f32 and _f64
// over flat arrays of n elements, and as _vec4_f32 over n4 = n / 4 float4 groups, which the glue
// launches only when every pointer is 16-byte aligned and n is a multiple of 4.
#include "compat.cuh"

// Overloads resolved by element type (the global float overloads of <cmath> are not available
// under every compiler we use).
__device__ __forceinline__ float act_exp(float x) { return expf(x); }
__device__ __forceinline__ double act_exp(double x) { return exp(x); }
__device__ __forceinline__ float act_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double act_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float act_erf(float x) { return erff(x); }
__device__ __forceinline__ double act_erf(double x) { return erf(x); }
__device__ __forceinline__ float act_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double act_abs(double x) { return fabs(x); }

#define ACT_SQRT_2_OVER_PI 0.79788456080286535588  // sqrt(2 / pi)
#define ACT_INV_SQRT_2 0.70710678118654752440      // 1 / sqrt(2)
#define ACT_INV_SQRT_2PI 0.39894228040143267794    // 1 / sqrt(2 pi)
#define ACT_GELU_CUBIC 0.044715

// ---------------------------------------------------------------------------------------------
// The ops. Forward functors take x; backward functors take (grad_y, saved) where saved is y or x
// as the contract says.
// ---------------------------------------------------------------------------------------------

template <typename T> struct ReluForward {
    // written so that NaN propagates, like np.maximum(x, 0)
    __device__ __forceinline__ T operator()(T x) const { return x <= T(0) ? T(0) : x; }
};

template <typename T> struct ReluBackward {
    // a select, not grad_y * (y > 0): an infinite gradient where y <= 0 must give 0, not NaN
    __device__ __forceinline__ T operator()(T grad_y, T y) const { return y > T(0) ? grad_y : T(0); }
};

template <typename T> struct LeakyReluForward {
    T slope;
    __device__ __forceinline__ T operator()(T x) const { return x > T(0) ? x : x * slope; }
};

template <typename T> struct LeakyReluBackward {
    T slope;
    __device__ __forceinline__ T operator()(T grad_y, T x) const {
        return x > T(0) ? grad_y : grad_y * slope;
    }
};

template <typename T> struct SigmoidForward {
    // exp(-|x|) is at most 1, so neither form overflows for large |x|
    __device__ __forceinline__ T operator()(T x) const {
        T e = act_exp(-act_abs(x));
        return x >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
    }
};

template <typename T> struct SigmoidBackward {
    __device__ __forceinline__ T operator()(T grad_y, T y) const { return grad_y * y * (T(1) - y); }
};

template <typename T> struct TanhForward {
    __device__ __forceinline__ T operator()(T x) const { return act_tanh(x); }
};

template <typename T> struct TanhBackward {
    __device__ __forceinline__ T operator()(T grad_y, T y) const { return grad_y * (T(1) - y * y); }
};

template <typename T> struct GeluErfForward {
    __device__ __forceinline__ T operator()(T x) const {
        return T(0.5) * x * (T(1) + act_erf(x * T(ACT_INV_SQRT_2)));
    }
};

template <typename T> struct GeluErfBackward {
    __device__ __forceinline__ T operator()(T grad_y, T x) const {
        T cdf = T(0.5) * (T(1) + act_erf(x * T(ACT_INV_SQRT_2)));
        T pdf = T(ACT_INV_SQRT_2PI) * act_exp(T(-0.5) * x * x);
        return grad_y * (cdf + x * pdf);
    }
};

template <typename T> struct GeluTanhForward {
    __device__ __forceinline__ T operator()(T x) const {
        T inner = T(ACT_SQRT_2_OVER_PI) * (x + T(ACT_GELU_CUBIC) * (x * x * x));
        return T(0.5) * x * (T(1) + act_tanh(inner));
    }
};

template <typename T> struct GeluTanhBackward {
    __device__ __forceinline__ T operator()(T grad_y, T x) const {
        T inner = T(ACT_SQRT_2_OVER_PI) * (x + T(ACT_GELU_CUBIC) * (x * x * x));
        T t = act_tanh(inner);
        T d_inner = T(ACT_SQRT_2_OVER_PI) * (T(1) + T(3 * ACT_GELU_CUBIC) * x * x);
        return grad_y * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * d_inner);
    }
};

// ---------------------------------------------------------------------------------------------
// The loops
// ---------------------------------------------------------------------------------------------

template <typename T, typename Op>
__device__ __forceinline__ void map_unary(T* __restrict__ out, const T* __restrict__ a,
                                          long long n, Op op) {
    PYCONV_GRID_STRIDE_LOOP(i, n) { out[i] = op(a[i]); }
}

template <typename T, typename Op>
__device__ __forceinline__ void map_binary(T* __restrict__ out, const T* __restrict__ a,
                                           const T* __restrict__ b, long long n, Op op) {
    PYCONV_GRID_STRIDE_LOOP(i, n) { out[i] = op(a[i], b[i]); }
}

// One 16-byte load per input and one 16-byte store per thread and iteration.
template <typename Op>
__device__ __forceinline__ void map_unary_vec4(float4* __restrict__ out, const float4* __restrict__ a,
                                               long long n4, Op op) {
    PYCONV_GRID_STRIDE_LOOP(i, n4) {
        float4 v = a[i];
        out[i] = make_float4(op(v.x), op(v.y), op(v.z), op(v.w));
    }
}

template <typename Op>
__device__ __forceinline__ void map_binary_vec4(float4* __restrict__ out, const float4* __restrict__ a,
                                                const float4* __restrict__ b, long long n4, Op op) {
    PYCONV_GRID_STRIDE_LOOP(i, n4) {
        float4 u = a[i];
        float4 v = b[i];
        out[i] = make_float4(op(u.x, v.x), op(u.y, v.y), op(u.z, v.z), op(u.w, v.w));
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points (the glue always launches 256 threads per block)
// ---------------------------------------------------------------------------------------------

// relu
extern "C" __global__ void __launch_bounds__(256)
relu_forward_f32(float* y, const float* x, long long n) {
    map_unary(y, x, n, ReluForward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
relu_forward_f64(double* y, const double* x, long long n) {
    map_unary(y, x, n, ReluForward<double>{});
}
extern "C" __global__ void __launch_bounds__(256)
relu_forward_vec4_f32(float4* y, const float4* x, long long n4) {
    map_unary_vec4(y, x, n4, ReluForward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
relu_backward_f32(float* grad_x, const float* grad_y, const float* y, long long n) {
    map_binary(grad_x, grad_y, y, n, ReluBackward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
relu_backward_f64(double* grad_x, const double* grad_y, const double* y, long long n) {
    map_binary(grad_x, grad_y, y, n, ReluBackward<double>{});
}
extern "C" __global__ void __launch_bounds__(256)
relu_backward_vec4_f32(float4* grad_x, const float4* grad_y, const float4* y, long long n4) {
    map_binary_vec4(grad_x, grad_y, y, n4, ReluBackward<float>{});
}

// leaky_relu
extern "C" __global__ void __launch_bounds__(256)
leaky_relu_forward_f32(float* y, const float* x, long long n, float negative_slope) {
    map_unary(y, x, n, LeakyReluForward<float>{negative_slope});
}
extern "C" __global__ void __launch_bounds__(256)
leaky_relu_forward_f64(double* y, const double* x, long long n, double negative_slope) {
    map_unary(y, x, n, LeakyReluForward<double>{negative_slope});
}
extern "C" __global__ void __launch_bounds__(256)
leaky_relu_forward_vec4_f32(float4* y, const float4* x, long long n4, float negative_slope) {
    map_unary_vec4(y, x, n4, LeakyReluForward<float>{negative_slope});
}
extern "C" __global__ void __launch_bounds__(256)
leaky_relu_backward_f32(float* grad_x, const float* grad_y, const float* x, long long n,
                        float negative_slope) {
    map_binary(grad_x, grad_y, x, n, LeakyReluBackward<float>{negative_slope});
}
extern "C" __global__ void __launch_bounds__(256)
leaky_relu_backward_f64(double* grad_x, const double* grad_y, const double* x, long long n,
                        double negative_slope) {
    map_binary(grad_x, grad_y, x, n, LeakyReluBackward<double>{negative_slope});
}
extern "C" __global__ void __launch_bounds__(256)
leaky_relu_backward_vec4_f32(float4* grad_x, const float4* grad_y, const float4* x, long long n4,
                             float negative_slope) {
    map_binary_vec4(grad_x, grad_y, x, n4, LeakyReluBackward<float>{negative_slope});
}

// sigmoid
extern "C" __global__ void __launch_bounds__(256)
sigmoid_forward_f32(float* y, const float* x, long long n) {
    map_unary(y, x, n, SigmoidForward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
sigmoid_forward_f64(double* y, const double* x, long long n) {
    map_unary(y, x, n, SigmoidForward<double>{});
}
extern "C" __global__ void __launch_bounds__(256)
sigmoid_forward_vec4_f32(float4* y, const float4* x, long long n4) {
    map_unary_vec4(y, x, n4, SigmoidForward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
sigmoid_backward_f32(float* grad_x, const float* grad_y, const float* y, long long n) {
    map_binary(grad_x, grad_y, y, n, SigmoidBackward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
sigmoid_backward_f64(double* grad_x, const double* grad_y, const double* y, long long n) {
    map_binary(grad_x, grad_y, y, n, SigmoidBackward<double>{});
}
extern "C" __global__ void __launch_bounds__(256)
sigmoid_backward_vec4_f32(float4* grad_x, const float4* grad_y, const float4* y, long long n4) {
    map_binary_vec4(grad_x, grad_y, y, n4, SigmoidBackward<float>{});
}

// tanh
extern "C" __global__ void __launch_bounds__(256)
tanh_forward_f32(float* y, const float* x, long long n) {
    map_unary(y, x, n, TanhForward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
tanh_forward_f64(double* y, const double* x, long long n) {
    map_unary(y, x, n, TanhForward<double>{});
}
extern "C" __global__ void __launch_bounds__(256)
tanh_forward_vec4_f32(float4* y, const float4* x, long long n4) {
    map_unary_vec4(y, x, n4, TanhForward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
tanh_backward_f32(float* grad_x, const float* grad_y, const float* y, long long n) {
    map_binary(grad_x, grad_y, y, n, TanhBackward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
tanh_backward_f64(double* grad_x, const double* grad_y, const double* y, long long n) {
    map_binary(grad_x, grad_y, y, n, TanhBackward<double>{});
}
extern "C" __global__ void __launch_bounds__(256)
tanh_backward_vec4_f32(float4* grad_x, const float4* grad_y, const float4* y, long long n4) {
    map_binary_vec4(grad_x, grad_y, y, n4, TanhBackward<float>{});
}

// gelu, approximate='none'
extern "C" __global__ void __launch_bounds__(256)
gelu_erf_forward_f32(float* y, const float* x, long long n) {
    map_unary(y, x, n, GeluErfForward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
gelu_erf_forward_f64(double* y, const double* x, long long n) {
    map_unary(y, x, n, GeluErfForward<double>{});
}
extern "C" __global__ void __launch_bounds__(256)
gelu_erf_forward_vec4_f32(float4* y, const float4* x, long long n4) {
    map_unary_vec4(y, x, n4, GeluErfForward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
gelu_erf_backward_f32(float* grad_x, const float* grad_y, const float* x, long long n) {
    map_binary(grad_x, grad_y, x, n, GeluErfBackward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
gelu_erf_backward_f64(double* grad_x, const double* grad_y, const double* x, long long n) {
    map_binary(grad_x, grad_y, x, n, GeluErfBackward<double>{});
}
extern "C" __global__ void __launch_bounds__(256)
gelu_erf_backward_vec4_f32(float4* grad_x, const float4* grad_y, const float4* x, long long n4) {
    map_binary_vec4(grad_x, grad_y, x, n4, GeluErfBackward<float>{});
}

// gelu, approximate='tanh'
extern "C" __global__ void __launch_bounds__(256)
gelu_tanh_forward_f32(float* y, const float* x, long long n) {
    map_unary(y, x, n, GeluTanhForward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
gelu_tanh_forward_f64(double* y, const double* x, long long n) {
    map_unary(y, x, n, GeluTanhForward<double>{});
}
extern "C" __global__ void __launch_bounds__(256)
gelu_tanh_forward_vec4_f32(float4* y, const float4* x, long long n4) {
    map_unary_vec4(y, x, n4, GeluTanhForward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
gelu_tanh_backward_f32(float* grad_x, const float* grad_y, const float* x, long long n) {
    map_binary(grad_x, grad_y, x, n, GeluTanhBackward<float>{});
}
extern "C" __global__ void __launch_bounds__(256)
gelu_tanh_backward_f64(double* grad_x, const double* grad_y, const double* x, long long n) {
    map_binary(grad_x, grad_y, x, n, GeluTanhBackward<double>{});
}
extern "C" __global__ void __launch_bounds__(256)
gelu_tanh_backward_vec4_f32(float4* grad_x, const float4* grad_y, const float4* x, long long n4) {
    map_binary_vec4(grad_x, grad_y, x, n4, GeluTanhBackward<float>{});
}
