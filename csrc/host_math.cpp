// host_math.cpp — the kernels' shared-math headers compiled as host C++ for the CPU backend and tests.
//
// Nothing here re-implements kernel math: each function is a thin extern "C" entry over the same
// __host__ __device__ header the .cu files include (kernels/common/). Built by build.rs with the cc
// crate and -ffp-contract=off, so the host does exactly the fp32 operations written in the header.
#include "common/cld_sscs.h"
#include "common/ddgan_schedule.h"
#include "common/lsgm_sde.h"
#include "common/params.h"
#include "common/philox.h"

extern "C" {

// One Philox4x32-10 block: ctr[4], key[2] -> out[4]. For the Random123 known-answer tests.
void trilemma_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    TriU32x4 c;
    for (int i = 0; i < 4; ++i) c.v[i] = ctr[i];
    TriU32x4 r = tri_philox4x32_10(c, key[0], key[1]);
    for (int i = 0; i < 4; ++i) out[i] = r.v[i];
}

// The CPU reference of kernels/philox_normal.cu: fills out[num_samples * elems_per_sample] in fp32,
// one Philox block (four elements) at a time, exactly as one GPU thread does.
void trilemma_randn_f32(const TriRandnParams* p, float* out) {
    const uint64_t blocks_per_sample = (p->elems_per_sample + 3) / 4;
    for (uint32_t s = 0; s < p->num_samples; ++s) {
        float* row = out + (uint64_t)s * p->elems_per_sample;
        for (uint64_t b = 0; b < blocks_per_sample; ++b) {
            float z[4];
            tri_randn_block(p, p->first_sample + s, (uint32_t)b, z);
            for (uint64_t i = 0; i < 4 && 4 * b + i < p->elems_per_sample; ++i) row[4 * b + i] = z[i];
        }
    }
}

// DDGAN posterior coefficients for i = 0..T-1 (see common/ddgan_schedule.h). Returns 0, or -1 for a T
// outside 1..TRI_DDGAN_MAX_T; each array holds T floats.
int trilemma_ddgan_posterior_coefficients(int T, double beta_min, double beta_max, float* coef1, float* coef2,
                                          float* log_var) {
    return tri_ddgan_posterior_coefficients(T, beta_min, beta_max, coef1, coef2, log_var);
}

// CLD SSCS analytic half-step coefficients (see common/cld_sscs.h); 0, or -1 when not positive definite.
int trilemma_cld_sscs_half_step(const TriCldSde* sde, double tau, double dt_half, TriSscsHalfStep* out) {
    return tri_cld_sscs_half_step(sde, tau, dt_half, out);
}

// LSGM sigma^2(t) and g^2(t) (see common/lsgm_sde.h).
float trilemma_lsgm_var(const TriLsgmSde* sde, float t) { return tri_lsgm_var(sde, t); }
float trilemma_lsgm_g2(const TriLsgmSde* sde, float t) { return tri_lsgm_g2(sde, t); }

}  // extern "C"
