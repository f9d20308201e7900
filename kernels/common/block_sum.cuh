// block_sum.cuh — the sum of one double per thread over a CTA of THREADS threads (a multiple of 32, at
// most 1024), in a fixed order: each warp by shuffles, then the warps' sums by the first warp. Every
// thread gets the total. `scratch` is THREADS / 32 doubles of shared memory, reusable on return.
#pragma once

template <int THREADS>
__device__ __forceinline__ double tri_block_sum(double v, double* scratch) {
    static_assert(THREADS % 32 == 0 && THREADS <= 1024, "whole warps, one CTA");
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < THREADS / 32 ? scratch[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) scratch[0] = v;
    }
    __syncthreads();
    const double total = scratch[0];
    __syncthreads();  // the next reduction may reuse scratch
    return total;
}
