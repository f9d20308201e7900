// storage.cuh — loads and stores of the engine's storage types through fp32, the compute type of every
// elementwise kernel. Conversions round to nearest even, as the `half` crate does on the CPU path.
#pragma once

#include <stdint.h>
#include <string.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

__device__ __forceinline__ float tri_load_f32(const float* p) { return *p; }
__device__ __forceinline__ float tri_load_f32(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ float tri_load_f32(const __half* p) { return __half2float(*p); }

__device__ __forceinline__ void tri_store_f32(float* p, float v) { *p = v; }
__device__ __forceinline__ void tri_store_f32(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void tri_store_f32(__half* p, float v) { *p = __float2half_rn(v); }

// Eight consecutive elements at a 16-byte aligned `p`, widened to fp32 (exact): one 16-byte load of
// 16-bit activations.
template <typename T>
__device__ __forceinline__ void tri_load8_f32(const T* p, float out[8]) {
    static_assert(sizeof(T) == 2, "eight 16-bit elements");
    const uint4 v = *reinterpret_cast<const uint4*>(p);
    T e[8];
    memcpy(e, &v, sizeof(v));
#pragma unroll
    for (int j = 0; j < 8; ++j) out[j] = tri_load_f32(e + j);
}

// Grid-stride loop bounds: the launcher caps the grid, so one thread may handle several items.
__device__ __forceinline__ uint64_t tri_global_thread() {
    return (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ uint64_t tri_grid_threads() { return (uint64_t)gridDim.x * blockDim.x; }
