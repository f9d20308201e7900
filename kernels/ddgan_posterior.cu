// ddgan_posterior.cu — one DDGAN posterior draw x_i ~ q(x_i | x_{i+1}, x0_hat) with given noise:
//   out = (coef1 * x0_hat + coef2 * x_t) + noise_std * noise      (noise_std = 0 on the last step)
// in fp32 whatever the storage type, as two rounded products, a rounded sum and, when noise is added,
// one more rounded product and sum — the order of the official float32 tensor code, with no fma
// contraction (__fmul_rn/__fadd_rn), so the CPU reference (src/backend/cpu/ddgan_posterior.rs) gives the
// same bits. The coefficients come from kernels/common/ddgan_schedule.h on the host.
// Launch: 1-D grid-stride over n elements, 256 threads per CTA. Memory-bound: 3 reads + 1 write.
#include "common/params.h"
#include "common/philox.h"
#include "common/storage.cuh"

template <typename T>
__device__ __forceinline__ void posterior_body(const T* __restrict__ x0, const T* __restrict__ xt,
                                               const T* __restrict__ noise, T* __restrict__ out,
                                               const TriDdganPosteriorParams p) {
    for (uint64_t i = tri_global_thread(); i < p.n; i += tri_grid_threads()) {
        float mean = __fadd_rn(__fmul_rn(p.coef1, tri_load_f32(x0 + i)), __fmul_rn(p.coef2, tri_load_f32(xt + i)));
        if (p.noise_std != 0.0f) mean = __fadd_rn(mean, __fmul_rn(p.noise_std, tri_load_f32(noise + i)));
        tri_store_f32(out + i, mean);
    }
}

#define TRI_POSTERIOR(NAME, T)                                                                     \
    extern "C" __global__ void ddgan_posterior_step_##NAME(const T* x0, const T* xt, const T* noise, \
                                                           T* out, const TriDdganPosteriorParams p) { \
        posterior_body(x0, xt, noise, out, p);                                                     \
    }
TRI_POSTERIOR(f32, float)
TRI_POSTERIOR(bf16, __nv_bfloat16)
TRI_POSTERIOR(f16, __half)

// The same draw with the noise generated in the kernel: element e of sample s takes normal e of the
// Philox stream `r` for global sample r.first_sample + s (the values `randn_philox` would write), rounded
// to the storage type as a stored noise tensor would be. One thread per Philox block of four elements:
// two reads and one write per element instead of three reads, one write and the noise tensor's
// write and read. CPU twin: the unfused path (randn, then the step), which gives the same values up to
// the few-ulp host/device difference of the normals (kernels/common/philox.h).
template <typename T>
__device__ __forceinline__ void posterior_philox_body(const T* __restrict__ x0, const T* __restrict__ xt,
                                                      T* __restrict__ out, const TriDdganPosteriorParams p,
                                                      const TriRandnParams r) {
    const uint64_t blocks_per_sample = (r.elems_per_sample + 3) / 4;
    const uint64_t total = blocks_per_sample * r.num_samples;
    for (uint64_t t = tri_global_thread(); t < total; t += tri_grid_threads()) {
        const uint64_t sample = t / blocks_per_sample;
        const uint32_t block = (uint32_t)(t - sample * blocks_per_sample);
        float z[4];
        tri_randn_block(&r, tri_global_sample(&r, (uint32_t)sample), block, z);
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            const uint64_t e = (uint64_t)block * 4 + k;
            if (e >= r.elems_per_sample) break;
            const uint64_t i = sample * r.elems_per_sample + e;
            T noise;
            tri_store_f32(&noise, z[k]);
            float v = __fadd_rn(__fmul_rn(p.coef1, tri_load_f32(x0 + i)), __fmul_rn(p.coef2, tri_load_f32(xt + i)));
            if (p.noise_std != 0.0f) v = __fadd_rn(v, __fmul_rn(p.noise_std, tri_load_f32(&noise)));
            tri_store_f32(out + i, v);
        }
    }
}

#define TRI_POSTERIOR_PHILOX(NAME, T)                                                                 \
    extern "C" __global__ void ddgan_posterior_philox_##NAME(const T* x0, const T* xt, T* out,          \
                                                             const TriDdganPosteriorParams p,           \
                                                             const TriRandnParams r) {                  \
        posterior_philox_body(x0, xt, out, p, r);                                                     \
    }
TRI_POSTERIOR_PHILOX(f32, float)
TRI_POSTERIOR_PHILOX(bf16, __nv_bfloat16)
TRI_POSTERIOR_PHILOX(f16, __half)
