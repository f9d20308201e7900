// params.h — launch-parameter structs shared by the kernels and the Rust host.
//
// This header is the single declaration of every struct passed by value to a kernel. The Rust side
// (src/kernels/params_bindings.rs) is generated from it by bindgen and committed; the test
// `tests/bindings_fresh.rs` regenerates it and fails when the committed copy is stale
// (TRILEMMA_BLESS=1 rewrites it). Keep fields naturally aligned and padding explicit, so the layout
// is the same for nvcc, the host C++ compiler and Rust's #[repr(C)].
#pragma once

#include <stdint.h>

// Standard-normal noise from Philox4x32-10 (kernels/philox_normal.cu; CPU reference: the same header
// compiled by csrc/host_math.cpp). The tensor is [num_samples, elems_per_sample], row-major.
// Element e of local sample s is a pure function of
//   (seed, stream, first_sample + s, step, e)
// so any split of a batch across launches, processes or devices reproduces the same noise.
typedef struct TriRandnParams {
    uint64_t seed;              // Philox key (low word = key[0], high word = key[1])
    uint64_t elems_per_sample;  // elements in one sample; at most 4 * 2^32
    uint32_t num_samples;       // samples in this tensor
    uint32_t first_sample;      // global index of this tensor's first sample
    uint32_t step;              // sampler step (counter word 3)
    uint32_t stream;            // noise purpose, e.g. sampler noise vs. DDGAN latent z (counter word 1)
} TriRandnParams;

// y[i] = a * x[i] + b * y[i], computed in fp32 whatever the storage type.
typedef struct TriAxpbyParams {
    uint64_t n;
    float a;
    float b;
} TriAxpbyParams;

// y[i] = convert(x[i]) between storage types, round-to-nearest-even.
typedef struct TriCastParams {
    uint64_t n;
} TriCastParams;

// The CLD SDE settings the SSCS coefficients depend on (kernels/common/cld_sscs.h); linear
// beta(t) = beta0 + beta1 t.
typedef struct TriCldSde {
    double beta0;
    double beta1;
    double m_inv;          // M^-1
    double sscs_num_stab;  // added to the half step's two variances (0 in every released config)
} TriCldSde;

// One SSCS analytic half step: x' = e1 (cxx x + cxv v) + l11 z_x, v' = e1 (cvx x + cvv v) + l21 z_x + l22 z_v.
typedef struct TriSscsHalfStep {
    double e1, cxx, cxv, cvx, cvv;
    double l11, l21, l22;
} TriSscsHalfStep;

// LSGM's latent SDE (kernels/common/lsgm_sde.h). geometric = 0: the VP-SDE with linear beta
// (beta_start, beta_end); geometric = 1: the geometric SDE (sigma2_min, sigma2_max). sigma2_0 is the
// variance at t = 0 in both.
typedef struct TriLsgmSde {
    int32_t geometric;
    int32_t pad;
    double beta_start;
    double beta_end;
    double sigma2_0;
    double sigma2_min;
    double sigma2_max;
} TriLsgmSde;

// One DDGAN posterior draw for a batch at one step (kernels/ddgan_posterior.cu):
// out = coef1 * x0_hat + coef2 * x_t + noise_std * noise, noise_std = 0 on the last step (no noise).
typedef struct TriDdganPosteriorParams {
    uint64_t n;
    float coef1;
    float coef2;
    float noise_std;
    uint32_t pad;
} TriDdganPosteriorParams;
