// activation.cuh — the pointwise activations of src/backend/geometry.rs `Activation`, in fp32 with the
// accurate libdevice functions (expf, expm1f, tanhf: within 2 ulp), written in the same form as the CPU
// twin (`Activation::apply`) so the two differ only by those ulps.
#pragma once

#include "params.h"

__device__ __forceinline__ float tri_activate(int act, float arg, float x) {
    switch (act) {
        case TRI_ACT_SILU: return x / (1.0f + expf(-x));
        case TRI_ACT_ELU: return x > 0.0f ? x : expm1f(x);
        case TRI_ACT_RELU: return fmaxf(x, 0.0f);
        case TRI_ACT_LEAKY_RELU: return x > 0.0f ? x : arg * x;
        case TRI_ACT_TANH: return tanhf(x);
        case TRI_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
        case TRI_ACT_SOFT_CLAMP: return tanhf(x / arg) * arg;
        case TRI_ACT_EXP: return expf(x);
        default: return x;
    }
}
