// cld_em.cu — one Euler–Maruyama step of CLD's reverse SDE after the network call, fused: the v-score
// from the network output, the drift of x and v, and the diffusion noise (drawn in the kernel when it
// is Philox), in one pass instead of five axpby passes and a noise tensor. Without noise it is the
// final denoising step. CPU twin: the unfused sequence in src/backend/cpu/cld_em.rs, whose rounded operations
// this repeats in the same order (no fma): bit-identical with a noise tensor or none, within the
// normals' host/device ulps with Philox.
// Launch: 1-D grid-stride over B·H·W·C elements, 256 threads per CTA.
#include "common/params.h"
#include "common/philox.h"
#include "common/storage.cuh"

extern "C" __global__ void cld_em_step_f32(const float* __restrict__ x, const float* __restrict__ v,
                                           const float* __restrict__ alpha, const float* __restrict__ noise,
                                           float* __restrict__ x_out, float* __restrict__ v_out,
                                           const TriCldEmParams p) {
    const uint64_t n = p.pixels * p.c;
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        const uint64_t px = i / p.c;
        const uint32_t ch = (uint32_t)(i - px * p.c);
        const float xi = x[i], vi = v[i];
        const float s = __fadd_rn(__fmul_rn(p.neg_ell, alpha[i]), __fmul_rn(p.neg_inv_svv, vi));
        x_out[i] = __fadd_rn(__fmul_rn(p.a_xv, vi), xi);
        float vn = __fadd_rn(__fmul_rn(p.c_vx, xi), __fmul_rn(p.c_vv, vi));
        vn = __fadd_rn(__fmul_rn(p.c_vs, s), vn);
        if (p.noise_mode != TRI_CLD_NOISE_NONE) {
            const uint64_t zi = px * 2ull * p.c + p.c + ch;  // the v half of the [pixels, 2C] draw
            float zv;
            if (p.noise_mode == TRI_CLD_NOISE_TENSOR) {
                zv = noise[zi];
            } else {
                const uint64_t pixels_per_sample = p.noise.elems_per_sample / (2ull * p.c);
                const uint32_t sample = (uint32_t)(px / pixels_per_sample);
                const uint64_t e = zi - (uint64_t)sample * p.noise.elems_per_sample;
                float z[4];
                tri_randn_block(&p.noise, tri_global_sample(&p.noise, sample), (uint32_t)(e / 4), z);
                const uint32_t k = (uint32_t)(e % 4);
                zv = k == 0 ? z[0] : k == 1 ? z[1] : k == 2 ? z[2] : z[3];
            }
            vn = __fadd_rn(__fmul_rn(p.diffusion, zv), vn);
        }
        v_out[i] = vn;
    }
}
