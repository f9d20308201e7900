// conv_epilogue.cuh — the convolutions' output step, shared by the FFMA and tensor-core kernels and the
// split-K reduction: y = (acc + bias[oc] + residual[m, oc]) · out_scale, each term where the params ask
// for it (TriConv2dParams). The NCSN++ residual block ends in Conv_1 + shortcut, × 1/√2: one store
// here instead of two more passes over the activation.
#pragma once

#include "params.h"

__device__ __forceinline__ float tri_conv_epilogue(float acc, const float* __restrict__ bias,
                                                   const float* __restrict__ residual, uint64_t m,
                                                   uint32_t oc, const TriConv2dParams& p) {
    if (p.has_bias) acc += bias[oc];
    if (p.has_residual) acc += residual[m * p.co + oc];
    return acc * p.out_scale;
}
