// conv_fusion.cuh — what the convolutions fuse around their GEMM, shared by the FFMA and tensor-core
// kernels (and the split-K reduction's epilogue), each where TriConv2dParams asks for it:
//   prologue: the input GroupNorm'd and activated as it is loaded (an NCSN++ conv's SiLU(GroupNorm(x))
//             never makes a pass of its own);
//   epilogue: y = (acc + bias[oc] + sample_bias[image, oc] + residual[m, oc]) · out_scale, added in
//             that order (the residual block's Conv_0 + its time embedding's projection, and Conv_1
//             + shortcut, × 1/√2: one store instead of more passes over the activation).
#pragma once

#include "activation.cuh"
#include "params.h"
#include "storage.cuh"

// The prologue of a convolution whose input is a GroupNorm's (params.h): input element x of image
// `img`, channel `ch` (of c) under its fold, in group_norm_f32's operations and order. The fold's four
// floats per (image, channel) are one 16-byte load (every device tensor is 16-byte aligned).
__device__ __forceinline__ float tri_conv_prologue(float x, const float* __restrict__ fold, uint64_t img,
                                                   uint32_t ch, uint32_t c, const TriConv2dParams& p) {
    const float4 f = *reinterpret_cast<const float4*>(fold + (img * c + ch) * 4);
    float v = __fmul_rn(__fsub_rn(x, f.x), f.y);
    if (f.w != 0.0f) v = __fadd_rn(v, f.z);
    return tri_activate(p.pro_act, p.pro_act_arg, v);
}

// The residual is in the activations' storage type (T), widened on load; bias and sample bias are fp32.
template <typename T>
__device__ __forceinline__ float tri_conv_epilogue(float acc, const float* __restrict__ bias,
                                                   const float* __restrict__ sample_bias,
                                                   const T* __restrict__ residual, uint64_t m,
                                                   uint32_t oc, const TriConv2dParams& p) {
    if (p.has_bias) acc += bias[oc];
    if (p.has_sample_bias) acc += sample_bias[m / ((uint64_t)p.ho * p.wo) * p.co + oc];
    if (p.has_residual) acc += tri_load_f32(residual + m * p.co + oc);
    return acc * p.out_scale;
}
