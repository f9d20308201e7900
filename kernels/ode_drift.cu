// ode_drift.cu — the probability-flow drifts the ODE samplers integrate, from the network's f32 output
// to the solver's f64 derivative, one fused pass each (no intermediate tensors): CLD's reverse-time
// drift of u = [x; v] and LSGM's latent drift with the mixed prediction. Formulas and operand order:
// TriCldOdeDriftParams and TriLsgmOdeDriftParams (common/params.h). CPU twin:
// src/backend/cpu/ode_drift.rs, whose rounded operations these repeat in the same order (no fma):
// bit-identical given the same network output.
// Launch: 1-D grid-stride over B·H·W·C elements, 256 threads per CTA.
#include "common/params.h"
#include "common/storage.cuh"

extern "C" __global__ void cld_ode_drift_f32(const float* __restrict__ u, const float* __restrict__ alpha,
                                             double* __restrict__ k, const TriCldOdeDriftParams p) {
    const uint64_t n = p.pixels * p.c;
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        const uint64_t px = i / p.c;
        const uint32_t ch = (uint32_t)(i - px * p.c);
        const uint64_t ix = px * 2 * p.c + ch, iv = ix + p.c;
        const float v32 = u[iv];
        const double x = (double)u[ix], v = (double)v32;
        const float s = __fadd_rn(__fdiv_rn(-v32, p.svv), __fmul_rn(alpha[i], p.neg_ell));
        k[ix] = -__dmul_rn(p.a_xv, v);
        const double restoring = __dadd_rn(__dmul_rn(p.neg_b, x), -__dmul_rn(p.c_vv, v));
        k[iv] = __dadd_rn(-restoring, __dmul_rn(__dmul_rn(p.c_vs, (double)s), 0.5));
    }
}

extern "C" __global__ void lsgm_ode_drift_f32(const float* __restrict__ z, const float* __restrict__ eps,
                                              const float* __restrict__ mix, double* __restrict__ k,
                                              const TriLsgmOdeDriftParams p) {
    for (uint64_t i = tri_global_thread(); i < p.n; i += tri_grid_threads()) {
        const float a = mix[i % p.c], zi = z[i];
        const float e = __fadd_rn(__fmul_rn(__fsub_rn(1.0f, a), __fmul_rn(p.sd, zi)), __fmul_rn(a, eps[i]));
        const float d = __fadd_rn(__fmul_rn(p.ft, zi), __fdiv_rn(__fmul_rn(p.half_g2, e), p.sd));
        k[i] = (double)(-d);
    }
}
