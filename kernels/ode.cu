// ode.cu — the f64 vector arithmetic of the ODE solvers (src/samplers/ode/): the state stays on the
// device in double, as the official solvers integrate it (SciPy's RK45 on float64 arrays), and the
// host reads one double per step, the scaled error norm its step-size controller needs. CPU twin:
// src/backend/cpu/ode.rs, whose rounded operations these repeat in the same order (no fma), so a
// combination is bit-identical to the CPU's and a norm differs only in the order of its sum.
//
// - ode_widen_f32: the f32 initial state to f64 (exact).
// - ode_combine_f64: a Runge–Kutta stage or step, base + h Σ w_j k_j, fused with its rounding to f32
//   for the network (a stage needs only that; a step keeps the f64 state too). One pass reads the base
//   and up to seven derivatives once instead of one axpby pass per term.
// - ode_scaled_sq_partials_f64 + ode_sum_partials_f64: the error norm in a fixed-shape two-pass
//   reduction (deterministic: the grid depends on n alone, not on the GPU's SM count).
// Launch: 1-D grid-stride, 256 threads per CTA; the norm's first pass on exactly p.blocks CTAs, its
// second on one.
#include "common/block_sum.cuh"
#include "common/params.h"
#include "common/shared.cuh"
#include "common/storage.cuh"

extern "C" __global__ void ode_widen_f32(const float* __restrict__ x, double* __restrict__ y,
                                         const unsigned long long n) {
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) y[i] = (double)x[i];
}

// Σ_{j < terms} w_j k_j[i] from −0 (the additive identity), each product rounded before the add.
__device__ __forceinline__ double tri_ode_terms(const double* const (&k)[TRI_ODE_MAX_TERMS], const double* w,
                                                uint32_t terms, uint64_t i) {
    double acc = -0.0;
#pragma unroll
    for (int j = 0; j < TRI_ODE_MAX_TERMS; ++j)
        if ((uint32_t)j < terms) acc = __dadd_rn(acc, __dmul_rn(k[j][i], w[j]));
    return acc;
}

extern "C" __global__ void ode_combine_f64(const double* __restrict__ base, const double* k0, const double* k1,
                                           const double* k2, const double* k3, const double* k4,
                                           const double* k5, const double* k6, double* __restrict__ wide,
                                           float* __restrict__ narrow, const TriOdeCombineParams p) {
    const double* const k[TRI_ODE_MAX_TERMS] = {k0, k1, k2, k3, k4, k5, k6};
    for (uint64_t i = tri_global_thread(); i < p.n; i += tri_grid_threads()) {
        const double y = __dadd_rn(base[i], __dmul_rn(p.h, tri_ode_terms(k, p.w, p.terms, i)));
        if (p.write_wide) wide[i] = y;
        narrow[i] = (float)y;
    }
}

extern "C" __global__ void __launch_bounds__(TRI_ODE_NORM_THREADS)
ode_scaled_sq_partials_f64(const double* __restrict__ a, const double* __restrict__ b, const double* k0,
                           const double* k1, const double* k2, const double* k3, const double* k4,
                           const double* k5, const double* k6, double* __restrict__ partials,
                           const TriOdeNormParams p) {
    TRI_SHARED(double, scratch, [TRI_ODE_NORM_THREADS / 32]);
    const double* const k[TRI_ODE_MAX_TERMS] = {k0, k1, k2, k3, k4, k5, k6};
    double s = 0.0;
    const uint64_t stride = (uint64_t)p.blocks * TRI_ODE_NORM_THREADS;
    for (uint64_t i = (uint64_t)blockIdx.x * TRI_ODE_NORM_THREADS + threadIdx.x; i < p.n; i += stride) {
        const double e = __dmul_rn(tri_ode_terms(k, p.w, p.terms, i), p.h);
        const double scale = __dadd_rn(p.atol, __dmul_rn(fmax(fabs(a[i]), fabs(b[i])), p.rtol));
        const double q = __ddiv_rn(e, scale);
        s = __dadd_rn(s, __dmul_rn(q, q));
    }
    const double total = tri_block_sum<TRI_ODE_NORM_THREADS>(s, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

extern "C" __global__ void __launch_bounds__(TRI_ODE_NORM_THREADS)
ode_sum_partials_f64(const double* __restrict__ partials, double* __restrict__ out, const unsigned int count) {
    TRI_SHARED(double, scratch, [TRI_ODE_NORM_THREADS / 32]);
    double s = 0.0;
    for (uint32_t i = threadIdx.x; i < count; i += TRI_ODE_NORM_THREADS) s += partials[i];
    const double total = tri_block_sum<TRI_ODE_NORM_THREADS>(s, scratch);
    if (threadIdx.x == 0) out[0] = total;
}
