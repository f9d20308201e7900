// lsgm_sde.h — LSGM's latent SDE coefficients sigma^2(t) and g^2(t), in float32 with the official
// constant rounding and operation order (diffusion_continuous.py: DiffusionVPSDE, DiffusionGeometric;
// the reference: tools/reference/lsgm_sde.py). Python-float hyperparameters meet float32 tensors there,
// so each constant is rounded to float32 once, after the double arithmetic Python does on constants.
// Compiled as host C++ for the CPU sampler and tests; the CUDA drift kernel includes it too.
#pragma once

#include "params.h"
#include "portable.h"

#if !defined(__CUDACC__)
#include <math.h>
#endif

// sigma^2(t). VP: 1 - (1 - sigma2_0) exp(-beta_start t - (beta_end - beta_start)/2 t^2);
// geometric: sigma2_min r^t - sigma2_min + sigma2_0 with r = sigma2_max / sigma2_min.
TRI_HD float tri_lsgm_var(const TriLsgmSde* s, float t) {
    if (s->geometric) {
        const float r = (float)(s->sigma2_max / s->sigma2_min);
        return (float)s->sigma2_min * powf(r, t) - (float)s->sigma2_min + (float)s->sigma2_0;
    }
    const float neg_beta_start = (float)(-s->beta_start);
    const float half_db = (float)(0.5 * (s->beta_end - s->beta_start));
    const float e = expf(neg_beta_start * t - half_db * t * t);
    return 1.0f - (float)(1.0 - s->sigma2_0) * e;
}

// g^2(t). VP: beta_start + (beta_end - beta_start) t; geometric:
// s2 ln(r) / (1 - sigma2_0 + sigma2_min - s2) with s2 = sigma2_min r^t.
TRI_HD float tri_lsgm_g2(const TriLsgmSde* s, float t) {
    if (s->geometric) {
        const double r = s->sigma2_max / s->sigma2_min;
        const float s2 = (float)s->sigma2_min * powf((float)r, t);
        return s2 * (float)log(r) / ((float)(1.0 - s->sigma2_0 + s->sigma2_min) - s2);
    }
    return (float)(s->beta_end - s->beta_start) * t + (float)s->beta_start;
}
