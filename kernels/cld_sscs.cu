// cld_sscs.cu — CLD's SSCS analytic half step, fused: both outputs from one read of x, v and the
// noise, instead of the five axpby passes of the unfused path. With Philox noise the draw is made in
// the kernel (no noise tensor at all). CPU twin: the unfused sequence in src/backend/cpu/cld_sscs.rs, whose
// rounded operations this repeats in the same order (no fma), so with a noise tensor the results are
// bit-identical, and with Philox they differ only by the normals' few-ulp host/device difference.
// Launch: 1-D grid-stride over B·H·W·C elements, 256 threads per CTA. Each thread evaluates the Philox
// blocks of its two normals (a block yields 4 normals, so generated noise costs up to 4× the Philox
// work of a tensor fill; the memory traffic, not Philox, bounds this kernel at CLD's sizes).
#include "common/params.h"
#include "common/philox.h"
#include "common/storage.cuh"

__device__ __forceinline__ float sscs_normal(const TriRandnParams& r, uint32_t sample, uint64_t e) {
    float z[4];
    tri_randn_block(&r, tri_global_sample(&r, sample), (uint32_t)(e / 4), z);
    // Selected without a dynamic index, which would put z in local memory.
    const uint32_t k = (uint32_t)(e % 4);
    return k == 0 ? z[0] : k == 1 ? z[1] : k == 2 ? z[2] : z[3];
}

extern "C" __global__ void cld_sscs_half_step_f32(const float* __restrict__ x, const float* __restrict__ v,
                                                  const float* __restrict__ noise, float* __restrict__ x_out,
                                                  float* __restrict__ v_out, const TriSscsStepParams p) {
    const uint64_t n = p.pixels * p.c;
    const uint64_t pixels_per_sample = p.noise.elems_per_sample / (2ull * p.c);
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        const uint64_t px = i / p.c;
        const uint32_t ch = (uint32_t)(i - px * p.c);
        const uint64_t zi = px * 2ull * p.c + ch;  // z_x in the [pixels, 2C] draw; z_v is C further
        float zx, zv;
        if (p.has_noise) {
            zx = noise[zi];
            zv = noise[zi + p.c];
        } else {
            const uint32_t sample = (uint32_t)(px / pixels_per_sample);
            const uint64_t e = zi - (uint64_t)sample * p.noise.elems_per_sample;
            zx = sscs_normal(p.noise, sample, e);
            zv = sscs_normal(p.noise, sample, e + p.c);
        }
        const float xi = x[i], vi = v[i];
        const float xm = __fadd_rn(__fmul_rn(p.a_xx, xi), __fmul_rn(p.a_xv, vi));
        x_out[i] = __fadd_rn(__fmul_rn(p.l11, zx), xm);
        float vm = __fadd_rn(__fmul_rn(p.a_vx, xi), __fmul_rn(p.a_vv, vi));
        vm = __fadd_rn(__fmul_rn(p.l21, zx), vm);
        v_out[i] = __fadd_rn(__fmul_rn(p.l22, zv), vm);
    }
}
