// group_norm.cu — GroupNorm (and adaptive GroupNorm) over fp32 NHWC [n, pixels, c], fused with the
// affine and the activation that follow it in every NCSN++ block (GroupNorm → SiLU, AdaGN's per-sample
// scale and shift). CPU twin: src/backend/cpu/group_norm.rs.
//
// One CTA of 256 threads per (sample, group). Statistics are two-pass in float64, as on the CPU: the
// mean, then the mean squared deviation (biased, as PyTorch). float64 costs nothing here (the kernel is
// bound by the three reads of x) and keeps the statistics exact to the CPU's rounding, so the only
// difference between the two paths is the order of the f64 sums.
//
// The normalisation folds rstd·scale per channel in float64 and rounds it once, then computes
// (x − mean)·scale' + shift in separately rounded fp32 operations, exactly as the CPU twin does.
//
// A group's elements are pixels × (c / groups) channels apart by c: consecutive threads read
// consecutive channels of a pixel, then the next pixel, so the loads coalesce within a group's width.
// One CTA per (sample, group) under-fills the GPU at batch 1 (32 groups); splitting the statistics
// across CTAs is the performance issue's work.
#include "common/activation.cuh"
#include "common/block_sum.cuh"
#include "common/params.h"
#include "common/shared.cuh"

#define GN_THREADS 256

extern "C" __global__ void __launch_bounds__(GN_THREADS)
group_norm_f32(const float* __restrict__ x, const float* __restrict__ scale, const float* __restrict__ shift,
               float* __restrict__ y, const TriGroupNormParams p) {
    TRI_SHARED(double, scratch, [GN_THREADS / 32]);
    const TriChannelAffineParams& a = p.affine;
    const uint32_t sample = blockIdx.x / p.groups, group = blockIdx.x % p.groups;
    const uint32_t cg = a.c / p.groups;
    const uint64_t count = (uint64_t)a.pixels * cg;
    const float* xs = x + (uint64_t)sample * a.pixels * a.c + group * cg;
    float* ys = y + (uint64_t)sample * a.pixels * a.c + group * cg;
    auto at = [&](uint64_t k) { return (k / cg) * a.c + (k % cg); };

    double s = 0.0;
    for (uint64_t k = threadIdx.x; k < count; k += GN_THREADS) s += (double)xs[at(k)];
    const double mean = tri_block_sum<GN_THREADS>(s, scratch) / (double)count;
    double q = 0.0;
    for (uint64_t k = threadIdx.x; k < count; k += GN_THREADS) {
        const double d = (double)xs[at(k)] - mean;
        q += d * d;
    }
    const double var = tri_block_sum<GN_THREADS>(q, scratch) / (double)count;
    const float mean32 = (float)mean;
    const float rstd32 = (float)(1.0 / sqrt(var + (double)p.eps));

    const uint64_t vec_off = (uint64_t)sample * a.c + group * cg;
    for (uint64_t k = threadIdx.x; k < count; k += GN_THREADS) {
        const uint32_t j = (uint32_t)(k % cg);
        float sc = rstd32;
        if (a.has_scale) sc = (float)((double)rstd32 * (double)scale[(a.scale_per_sample ? vec_off : group * cg) + j]);
        float v = __fmul_rn(__fsub_rn(xs[at(k)], mean32), sc);
        if (a.has_shift) v = __fadd_rn(v, shift[(a.shift_per_sample ? vec_off : group * cg) + j]);
        ys[at(k)] = tri_activate(a.act, a.act_arg, v);
    }
}
