// storage.cuh — loads and stores of the engine's storage types through fp32, the compute type of every
// elementwise kernel. Conversions round to nearest even, as the `half` crate does on the CPU path.
#pragma once

#include <stdint.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

__device__ __forceinline__ float tri_load_f32(const float* p) { return *p; }
__device__ __forceinline__ float tri_load_f32(const __nv_bfloat16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ float tri_load_f32(const __half* p) { return __half2float(*p); }

__device__ __forceinline__ void tri_store_f32(float* p, float v) { *p = v; }
__device__ __forceinline__ void tri_store_f32(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
__device__ __forceinline__ void tri_store_f32(__half* p, float v) { *p = __float2half_rn(v); }

// Grid-stride loop bounds: the launcher caps the grid, so one thread may handle several items.
__device__ __forceinline__ uint64_t tri_global_thread() {
    return (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ uint64_t tri_grid_threads() { return (uint64_t)gridDim.x * blockDim.x; }
