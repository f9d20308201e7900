// emu_selftest.cu — the CUDA driver emulator's own test kernels (tests/emulator.rs): correct ones whose
// results are known exactly (warp shuffles, votes, a block barrier through shared memory), and broken
// ones, each with one deliberate bug that a sanitizer must catch. Compiled by nvcc like every kernel
// (so the emulator loads them from a real fatbin) but kept out of the resource report and the library's
// kernel set.
#include <stdint.h>

#include "../../kernels/common/shared.cuh"

// ---- correct ----------------------------------------------------------------------------------------
extern "C" __global__ void copy_f32(const float* x, float* y, unsigned n) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i];
}

// y[w] = the sum of x over warp w, by an xor butterfly; every lane of a warp ends with the same sum.
extern "C" __global__ void warp_sum_f32(const float* x, float* y) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    float v = x[i];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) y[i / 32] = v;
    // Each lane also checks the others agree (a vote): y gets -1 where they did not.
    const float lane0 = __shfl_sync(0xffffffffu, v, 0);
    if (!__all_sync(0xffffffffu, lane0 == v) && (threadIdx.x & 31) == 0) y[i / 32] = -1.0f;
}

// y[k] = lane k's value shifted: up by 1, down by 2, as the hardware defines the edges; gather[k] =
// the value of lane 7k mod 32 (each lane its own source lane, as an ldmatrix-style gather has).
extern "C" __global__ void shuffle_edges_u32(unsigned* up, unsigned* down, unsigned* ballot, unsigned* gather) {
    const unsigned lane = threadIdx.x & 31;
    gather[threadIdx.x] = __shfl_sync(0xffffffffu, lane * 10u, (int)((lane * 7) % 32));
    up[threadIdx.x] = __shfl_up_sync(0xffffffffu, lane * 10u, 1);
    down[threadIdx.x] = __shfl_down_sync(0xffffffffu, lane * 10u, 2);
    ballot[threadIdx.x] = __ballot_sync(0xffffffffu, lane % 3 == 0);
}

// Reverses each block's slice of x through shared memory: needs the barrier to be a real one.
extern "C" __global__ void __launch_bounds__(256) block_reverse_f32(const float* x, float* y) {
    TRI_SHARED(float, tile, [256]);
    const unsigned t = threadIdx.x, base = blockIdx.x * blockDim.x;
    tile[t] = x[base + t];
    __syncthreads();
    y[base + t] = tile[blockDim.x - 1 - t];
}

// ---- broken, one bug each ------------------------------------------------------------------------------
// Reads one element past the end: thread n-1 reads x[n].
extern "C" __global__ void oob_read_f32(const float* x, float* y, unsigned n) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i + 1];
}

// Writes one element past the end of y.
extern "C" __global__ void oob_write_f32(float* y, unsigned n) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) y[i] = 1.0f;
}

// A float4 load from an address 4 bytes into an aligned buffer.
extern "C" __global__ void misaligned_f32x4(const float* x, float* y) {
    const float4 v = *reinterpret_cast<const float4*>(x + 1);
    y[threadIdx.x] = v.x + v.y + v.z + v.w;
}

// Reads shared memory past its declaration.
extern "C" __global__ void shared_oob_f32(float* y) {
    TRI_SHARED(float, s, [64]);
    s[threadIdx.x] = (float)threadIdx.x;
    __syncthreads();
    y[threadIdx.x] = s[threadIdx.x + 1];  // thread 63 reads s[64]
}

// Reads shared memory no thread wrote (initcheck: NaN).
extern "C" __global__ void shared_uninit_f32(float* y) {
    TRI_SHARED(float, s, [64]);
    if (threadIdx.x < 32) s[threadIdx.x] = 1.0f;
    __syncthreads();
    y[threadIdx.x] = s[threadIdx.x];
}

// Every thread writes one shared word and reads it back without a barrier: the value read depends on
// the order the threads run in (racecheck by schedule).
extern "C" __global__ void shared_race_u32(unsigned* y) {
    TRI_SHARED(unsigned, s, [1]);
    s[0] = threadIdx.x;
    __syncthreads();
    y[threadIdx.x] = s[0];
}

// Half the block waits at one barrier, half at another.
extern "C" __global__ void divergent_barrier_f32(float* y) {
    if (threadIdx.x < 16) {
        __syncthreads();
        y[threadIdx.x] = 1.0f;
    } else {
        __syncthreads();
        y[threadIdx.x] = 2.0f;
    }
}

// The upper half-warp returns, then the lower half shuffles with a full mask.
extern "C" __global__ void shuffle_after_exit_f32(float* y) {
    if ((threadIdx.x & 31) >= 16) return;
    y[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (float)threadIdx.x, 1);
}

// Many live registers and no launch bounds: at 1024 threads per block it needs more registers than an
// SM has (the launch must fail with CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES).
extern "C" __global__ void register_hungry_f32(const float* x, float* y) {
    float r[96];
#pragma unroll
    for (int i = 0; i < 96; ++i) r[i] = x[(threadIdx.x + 97 * i) & 1023];
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 96; ++i) s = fmaf(r[i], r[95 - i] + s, r[(i * 7) % 96]);
    y[threadIdx.x] = s;
}

// A full-mask shuffle in a block of 48 threads: the second warp has 16 lanes, the mask names 32.
extern "C" __global__ void shuffle_partial_warp_f32(float* y) {
    y[threadIdx.x] = __shfl_down_sync(0xffffffffu, (float)threadIdx.x, 1);
}
