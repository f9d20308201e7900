// philox_normal.cu — fill [num_samples, elems_per_sample] with standard normals from Philox4x32-10.
//
// One thread computes one Philox block: four consecutive elements of one sample, from the counter
// (block, stream, first_sample + sample, step) and the seed as key (kernels/common/philox.h). Element
// values therefore do not depend on the launch shape, the batch split or the device.
// Launch: 1-D grid-stride over num_samples * ceil(elems_per_sample / 4) blocks, 256 threads per CTA.
// CPU reference: src/backend/cpu/philox_normal.rs, which calls the same header compiled as host C++.
// Bound by the store bandwidth (16 B per thread, ~50 integer ops and 2 log/sin/cos pairs per block).
#include "common/params.h"
#include "common/philox.h"
#include "common/storage.cuh"

template <typename T>
__device__ __forceinline__ void randn_body(T* __restrict__ out, const TriRandnParams p) {
    const uint64_t blocks_per_sample = (p.elems_per_sample + 3) / 4;
    const uint64_t total = blocks_per_sample * p.num_samples;
    for (uint64_t t = tri_global_thread(); t < total; t += tri_grid_threads()) {
        const uint64_t sample = t / blocks_per_sample;
        const uint32_t block = (uint32_t)(t - sample * blocks_per_sample);
        float z[4];
        tri_randn_block(&p, tri_global_sample(&p, (uint32_t)sample), block, z);
        const uint64_t first = (uint64_t)block * 4;
        T* row = out + sample * p.elems_per_sample;
        // Full 16-byte fp32 blocks with an aligned row go out as one vector store.
        if (sizeof(T) == 4 && first + 4 <= p.elems_per_sample && p.elems_per_sample % 4 == 0 &&
            (reinterpret_cast<uintptr_t>(out) & 15) == 0) {
            *reinterpret_cast<float4*>(row + first) = make_float4(z[0], z[1], z[2], z[3]);
        } else {
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                if (first + i < p.elems_per_sample) tri_store_f32(row + first + i, z[i]);
            }
        }
    }
}

extern "C" __global__ void randn_philox_f32(float* out, const TriRandnParams p) { randn_body(out, p); }
extern "C" __global__ void randn_philox_bf16(__nv_bfloat16* out, const TriRandnParams p) {
    randn_body(out, p);
}
extern "C" __global__ void randn_philox_f16(__half* out, const TriRandnParams p) { randn_body(out, p); }
