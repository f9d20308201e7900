// cld_sscs.h — the analytic half step of CLD's symmetric splitting sampler (SSCS), in float64 as the
// official code computes it (sampling.py: get_sscs_sampler; the reference: tools/reference/cld_sde.py).
//
// Over a half step dt_half starting at reverse time tau, with b = int_{1-tau-dt_half}^{1-tau} beta,
// g = 1/Gamma = sqrt(M^-1)/2 and f = Gamma:
//   x' = e1 (cxx x + cxv v) + l11 z_x,   v' = e1 (cvx x + cvv v) + l21 z_x + l22 z_v,
// e1 = exp(-2 g b), (cxx, cxv, cvx, cvv) = (1 + 2 g b, -4 g^2 b, b, 1 - 2 g b), and (l11, l21, l22) the
// Cholesky factor of the added noise's covariance. Compiled as host C++ for the CPU sampler and tests;
// the CUDA half-step kernel receives these scalars.
#pragma once

#include "params.h"
#include "portable.h"

#if !defined(__CUDACC__)
#include <math.h>
#endif

// int_0^t beta = beta0 t + (0.5 beta1) t^2.
TRI_HD double tri_cld_beta_int(const TriCldSde* s, double t) {
    return s->beta0 * t + 0.5 * s->beta1 * (t * t);
}

// Returns 0, or -1 when the noise covariance is not positive definite (its Cholesky factor is NaN).
TRI_HD int tri_cld_sscs_half_step(const TriCldSde* s, double tau, double dt_half, TriSscsHalfStep* out) {
    const double f = 2.0 / sqrt(s->m_inv);  // Gamma, critical damping
    const double g = 1.0 / f;
    const double b = tri_cld_beta_int(s, 1.0 - tau) - tri_cld_beta_int(s, 1.0 - (tau + dt_half));
    const double e1 = exp(-2.0 * g * b);
    const double e2 = exp(-4.0 * g * b);
    const double sxx = e2 * (1.0 / e2 - 1.0 - 4.0 * g * b - 8.0 * (g * g) * (b * b)) + s->sscs_num_stab;
    const double sxv = -e2 * (4.0 * g * (b * b));
    const double svv = e2 * (-(f * f) * (1.0 - (1.0 / e2)) / 4.0 + f * b - 2.0 * (b * b)) + s->sscs_num_stab;
    const double l11 = sqrt(sxx);
    const double l21 = sxv / l11;
    const double l22 = sqrt(svv - l21 * l21);
    if (l11 != l11 || l22 != l22) return -1;
    out->e1 = e1;
    out->cxx = 1.0 + 2.0 * g * b;
    out->cxv = -4.0 * (g * g) * b;
    out->cvx = b;
    out->cvv = 1.0 - 2.0 * g * b;
    out->l11 = l11;
    out->l21 = l21;
    out->l22 = l22;
    return 0;
}
