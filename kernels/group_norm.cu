// group_norm.cu — GroupNorm (and adaptive GroupNorm) over NHWC [n, pixels, c], fused with the affine and
// the activation that follow it in every NCSN++ block (GroupNorm → SiLU, AdaGN's per-sample scale and
// shift). CPU twin: src/backend/cpu/group_norm.rs. One kernel per activation storage type (_f32, _bf16,
// _f16): elements widened on load, the output rounded to nearest even on store; the fold is fp32.
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
#include "common/storage.cuh"

#define GN_THREADS 256

// The statistics of one (sample, group), as float32 mean and rstd: two-pass in float64.
struct GnStats {
    float mean, rstd;
};

template <typename T>
__device__ __forceinline__ GnStats gn_stats(const T* __restrict__ xs, uint64_t count, uint32_t cg, uint32_t c,
                                            float eps, double* scratch) {
    auto at = [&](uint64_t k) { return (k / cg) * c + (k % cg); };
    double s = 0.0;
    for (uint64_t k = threadIdx.x; k < count; k += GN_THREADS) s += (double)tri_load_f32(xs + at(k));
    const double mean = tri_block_sum<GN_THREADS>(s, scratch) / (double)count;
    double q = 0.0;
    for (uint64_t k = threadIdx.x; k < count; k += GN_THREADS) {
        const double d = (double)tri_load_f32(xs + at(k)) - mean;
        q += d * d;
    }
    const double var = tri_block_sum<GN_THREADS>(q, scratch) / (double)count;
    return GnStats{(float)mean, (float)(1.0 / sqrt(var + (double)eps))};
}

// The folded per-channel scale: rstd · scale in float64, rounded once (as the CPU twin).
__device__ __forceinline__ float gn_scale(float rstd, const float* __restrict__ scale, const TriChannelAffineParams& a,
                                          uint64_t vec_off, uint32_t group_first, uint32_t j) {
    if (!a.has_scale) return rstd;
    return (float)((double)rstd * (double)scale[(a.scale_per_sample ? vec_off : group_first) + j]);
}

// The shift of channel j of the group (per channel or per sample).
__device__ __forceinline__ float gn_shift(const float* __restrict__ shift, const TriChannelAffineParams& a,
                                          uint64_t vec_off, uint32_t group_first, uint32_t j) {
    return shift[(a.shift_per_sample ? vec_off : group_first) + j];
}

template <typename T>
__device__ __forceinline__ void group_norm_body(const T* __restrict__ x, const float* __restrict__ scale,
                                                const float* __restrict__ shift, T* __restrict__ y,
                                                const TriGroupNormParams& p, double* scratch) {
    const TriChannelAffineParams& a = p.affine;
    const uint32_t sample = blockIdx.x / p.groups, group = blockIdx.x % p.groups;
    const uint32_t cg = a.c / p.groups;
    const uint64_t count = (uint64_t)a.pixels * cg;
    const T* xs = x + (uint64_t)sample * a.pixels * a.c + group * cg;
    T* ys = y + (uint64_t)sample * a.pixels * a.c + group * cg;
    auto at = [&](uint64_t k) { return (k / cg) * a.c + (k % cg); };
    const GnStats st = gn_stats(xs, count, cg, a.c, p.eps, scratch);

    const uint64_t vec_off = (uint64_t)sample * a.c + group * cg;
    for (uint64_t k = threadIdx.x; k < count; k += GN_THREADS) {
        const uint32_t j = (uint32_t)(k % cg);
        const float sc = gn_scale(st.rstd, scale, a, vec_off, group * cg, j);
        float v = __fmul_rn(__fsub_rn(tri_load_f32(xs + at(k)), st.mean), sc);
        if (a.has_shift) v = __fadd_rn(v, gn_shift(shift, a, vec_off, group * cg, j));
        tri_store_f32(ys + at(k), tri_activate(a.act, a.act_arg, v));
    }
}
#define TRI_GROUP_NORM(NAME, T)                                                                          \
    extern "C" __global__ void __launch_bounds__(GN_THREADS)                                             \
    group_norm_##NAME(const T* __restrict__ x, const float* __restrict__ scale, const float* __restrict__ shift, \
                      T* __restrict__ y, const TriGroupNormParams p) {                                   \
        TRI_SHARED(double, scratch, [GN_THREADS / 32]);                                                  \
        group_norm_body(x, scale, shift, y, p, scratch);                                                 \
    }
TRI_GROUP_NORM(f32, float)
TRI_GROUP_NORM(bf16, __nv_bfloat16)
TRI_GROUP_NORM(f16, __half)

// The same statistics, folded for a following convolution's prologue instead of applied
// (params.h, TriConv2dParams): fold[sample, channel] = {mean, rstd·scale, shift, has_shift}. One CTA per
// (sample, group); the activation is the convolution's to apply.
template <typename T>
__device__ __forceinline__ void group_norm_fold_body(const T* __restrict__ x, const float* __restrict__ scale,
                                                     const float* __restrict__ shift, float* __restrict__ fold,
                                                     const TriGroupNormParams& p, double* scratch) {
    const TriChannelAffineParams& a = p.affine;
    const uint32_t sample = blockIdx.x / p.groups, group = blockIdx.x % p.groups;
    const uint32_t cg = a.c / p.groups;
    const T* xs = x + (uint64_t)sample * a.pixels * a.c + group * cg;
    const GnStats st = gn_stats(xs, (uint64_t)a.pixels * cg, cg, a.c, p.eps, scratch);
    const uint64_t vec_off = (uint64_t)sample * a.c + group * cg;
    for (uint32_t j = threadIdx.x; j < cg; j += GN_THREADS) {
        float* f = fold + (vec_off + j) * 4;
        f[0] = st.mean;
        f[1] = gn_scale(st.rstd, scale, a, vec_off, group * cg, j);
        f[2] = a.has_shift ? gn_shift(shift, a, vec_off, group * cg, j) : 0.0f;
        f[3] = a.has_shift ? 1.0f : 0.0f;
    }
}
#define TRI_GROUP_NORM_FOLD(NAME, T)                                                                     \
    extern "C" __global__ void __launch_bounds__(GN_THREADS)                                             \
    group_norm_fold_##NAME(const T* __restrict__ x, const float* __restrict__ scale,                     \
                           const float* __restrict__ shift, float* __restrict__ fold, const TriGroupNormParams p) { \
        TRI_SHARED(double, scratch, [GN_THREADS / 32]);                                                  \
        group_norm_fold_body(x, scale, shift, fold, p, scratch);                                         \
    }
TRI_GROUP_NORM_FOLD(f32, float)
TRI_GROUP_NORM_FOLD(bf16, __nv_bfloat16)
TRI_GROUP_NORM_FOLD(f16, __half)
