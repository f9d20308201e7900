// pointwise.cu — memory-bound per-element network ops on fp32 NHWC activations: activations, binary
// ops, and the per-channel affine (eval batch norm, time-embedding add, SE gate, NVAE's soft clamps)
// with its activation fused. CPU twin: src/backend/cpu/pointwise.rs.
// Launch: 1-D grid-stride over the output, 256 threads per CTA.
#include "common/activation.cuh"
#include "common/params.h"
#include "common/storage.cuh"

extern "C" __global__ void activation_f32(const float* __restrict__ x, float* __restrict__ y,
                                          const TriActivationParams p) {
    for (uint64_t i = tri_global_thread(); i < p.n; i += tri_grid_threads()) {
        y[i] = tri_activate(p.act, p.arg, x[i]);
    }
}

extern "C" __global__ void binary_f32(const float* __restrict__ a, const float* __restrict__ b,
                                      float* __restrict__ y, const TriBinaryParams p) {
    for (uint64_t i = tri_global_thread(); i < p.n; i += tri_grid_threads()) {
        const float u = a[i], v = b[i];
        y[i] = p.op == TRI_BINARY_ADD ? u + v : (p.op == TRI_BINARY_SUB ? u - v : u * v);
    }
}

// The CPU twin applies center, scale and shift as three separately rounded operations; so does this
// (no fma contraction), keeping the fp32 results equal up to the activation's ulps.
extern "C" __global__ void channel_affine_f32(const float* __restrict__ x, const float* __restrict__ center,
                                              const float* __restrict__ scale,
                                              const float* __restrict__ shift, float* __restrict__ y,
                                              const TriChannelAffineParams p) {
    const uint64_t n = p.rows * p.c;
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        const uint64_t row = i / p.c;
        const uint32_t ch = (uint32_t)(i - row * p.c);
        const uint64_t sample_off = (row / p.pixels) * p.c;
        float v = x[i];
        if (p.has_center) v = __fsub_rn(v, center[(p.center_per_sample ? sample_off : 0) + ch]);
        if (p.has_scale) v = __fmul_rn(v, scale[(p.scale_per_sample ? sample_off : 0) + ch]);
        if (p.has_shift) v = __fadd_rn(v, shift[(p.shift_per_sample ? sample_off : 0) + ch]);
        y[i] = tri_activate(p.act, p.act_arg, v);
    }
}
