// pointwise.cu — memory-bound per-element network ops on NHWC activations: activations, binary ops, and
// the per-channel affine (eval batch norm, time-embedding add, SE gate, NVAE's soft clamps) with its
// activation fused. CPU twin: src/backend/cpu/pointwise.rs.
// Each kernel exists per activation storage type (<op>_f32, _bf16, _f16: fp32 activations, or the
// 16-bit ones of --precision bf16 / fp16): elements are widened to fp32 on load, computed in fp32 and
// rounded to nearest even on store; the affine's vectors stay fp32.
// Launch: 1-D grid-stride over the output, 256 threads per CTA.
#include "common/activation.cuh"
#include "common/params.h"
#include "common/storage.cuh"

#define TRI_ACTIVATION(NAME, T)                                                                         \
    extern "C" __global__ void activation_##NAME(const T* __restrict__ x, T* __restrict__ y,           \
                                                 const TriActivationParams p) {                         \
        for (uint64_t i = tri_global_thread(); i < p.n; i += tri_grid_threads())                        \
            tri_store_f32(y + i, tri_activate(p.act, p.arg, tri_load_f32(x + i)));                      \
    }
TRI_ACTIVATION(f32, float)
TRI_ACTIVATION(bf16, __nv_bfloat16)
TRI_ACTIVATION(f16, __half)

template <typename T>
__device__ __forceinline__ void binary_body(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ y,
                                            const TriBinaryParams& p) {
    for (uint64_t i = tri_global_thread(); i < p.n; i += tri_grid_threads()) {
        const float u = tri_load_f32(a + i), v = tri_load_f32(b + i);
        tri_store_f32(y + i, p.op == TRI_BINARY_ADD ? u + v : (p.op == TRI_BINARY_SUB ? u - v : u * v));
    }
}
#define TRI_BINARY(NAME, T)                                                                            \
    extern "C" __global__ void binary_##NAME(const T* __restrict__ a, const T* __restrict__ b,         \
                                             T* __restrict__ y, const TriBinaryParams p) {             \
        binary_body(a, b, y, p);                                                                       \
    }
TRI_BINARY(f32, float)
TRI_BINARY(bf16, __nv_bfloat16)
TRI_BINARY(f16, __half)

// The CPU twin applies center, scale and shift as three separately rounded operations; so does this
// (no fma contraction), keeping the fp32 results equal up to the activation's ulps.
template <typename T>
__device__ __forceinline__ void channel_affine_body(const T* __restrict__ x, const float* __restrict__ center,
                                                    const float* __restrict__ scale,
                                                    const float* __restrict__ shift, T* __restrict__ y,
                                                    const TriChannelAffineParams& p) {
    const uint64_t n = p.rows * p.c;
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        const uint64_t row = i / p.c;
        const uint32_t ch = (uint32_t)(i - row * p.c);
        const uint64_t sample_off = (row / p.pixels) * p.c;
        float v = tri_load_f32(x + i);
        if (p.has_center) v = __fsub_rn(v, center[(p.center_per_sample ? sample_off : 0) + ch]);
        if (p.has_scale) v = __fmul_rn(v, scale[(p.scale_per_sample ? sample_off : 0) + ch]);
        if (p.has_shift) v = __fadd_rn(v, shift[(p.shift_per_sample ? sample_off : 0) + ch]);
        tri_store_f32(y + i, tri_activate(p.act, p.act_arg, v));
    }
}
#define TRI_CHANNEL_AFFINE(NAME, T)                                                                     \
    extern "C" __global__ void channel_affine_##NAME(const T* __restrict__ x, const float* __restrict__ center, \
                                                     const float* __restrict__ scale,                   \
                                                     const float* __restrict__ shift, T* __restrict__ y, \
                                                     const TriChannelAffineParams p) {                  \
        channel_affine_body(x, center, scale, shift, y, p);                                             \
    }
TRI_CHANNEL_AFFINE(f32, float)
TRI_CHANNEL_AFFINE(bf16, __nv_bfloat16)
TRI_CHANNEL_AFFINE(f16, __half)
