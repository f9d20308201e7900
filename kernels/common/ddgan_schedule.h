// ddgan_schedule.h — DDGAN's discretised VP schedule and the coefficients of the posterior
// q(x_{i} | x_{i+1}, x_0), in the official code's precision and operation order
// (test_ddgan.py: get_time_schedule/get_sigma_schedule in float64, cast to float32 once;
// Posterior_Coefficients in float32).
//
// Compiled as host C++ for the CPU sampler and its tests (csrc/host_math.cpp); the CUDA posterior step
// receives the per-step scalars it computes. Every +, -, *, / and sqrt is correctly rounded on both
// sides, so coef1 and coef2 are bit-identical to PyTorch's; exp and log may differ by an ulp.
#pragma once

#include "portable.h"

#if !defined(__CUDACC__)
#include <math.h>
#endif

#define TRI_DDGAN_MAX_T 64
#define TRI_DDGAN_EPS_SMALL 1e-3

// 1 - alpha_bar(t) of the continuous VP-SDE with linear beta, float64, in the official op order:
// log_mean = (-0.25 t^2)(beta_max - beta_min) - (0.5 t) beta_min; var = 1 - exp(2 log_mean).
TRI_HD double tri_ddgan_vp_var(double t, double beta_min, double beta_max) {
    double log_mean = -0.25 * (t * t) * (beta_max - beta_min) - 0.5 * t * beta_min;
    return 1.0 - exp(2.0 * log_mean);
}

// Fills coef1 (multiplies x0_hat), coef2 (multiplies x_t) and log_var (clipped at 1e-20) for
// i = 0..T-1. Returns 0, or -1 when T is outside 1..TRI_DDGAN_MAX_T.
TRI_HD int tri_ddgan_posterior_coefficients(int T, double beta_min, double beta_max, float* coef1,
                                            float* coef2, float* log_var) {
    if (T < 1 || T > TRI_DDGAN_MAX_T) return -1;
    // betas in float64 from the time grid t_k = eps + (1 - eps) k / T, then cast to float32.
    float beta[TRI_DDGAN_MAX_T];
    double abar_prev = 1.0 - tri_ddgan_vp_var(TRI_DDGAN_EPS_SMALL, beta_min, beta_max);
    for (int k = 1; k <= T; ++k) {
        double t = ((double)k / (double)T) * (1.0 - TRI_DDGAN_EPS_SMALL) + TRI_DDGAN_EPS_SMALL;
        double abar = 1.0 - tri_ddgan_vp_var(t, beta_min, beta_max);
        beta[k - 1] = (float)(1.0 - abar / abar_prev);
        abar_prev = abar;
    }
    // float32 from here on, as the official tensors are.
    float alphas_cumprod = 1.0f;
    for (int i = 0; i < T; ++i) {
        float b = beta[i];
        float a = 1.0f - b;
        float ac_prev = alphas_cumprod;
        alphas_cumprod = alphas_cumprod * a;
        float var = b * (1.0f - ac_prev) / (1.0f - alphas_cumprod);
        coef1[i] = b * sqrtf(ac_prev) / (1.0f - alphas_cumprod);
        coef2[i] = (1.0f - ac_prev) * sqrtf(a) / (1.0f - alphas_cumprod);
        log_var[i] = logf(var > 1e-20f ? var : 1e-20f);
    }
    return 0;
}
