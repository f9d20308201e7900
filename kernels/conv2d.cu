// conv2d.cu — 2-D convolution over fp32 NHWC activations and HWIO weights as an implicit GEMM (no
// im2col buffer: the A tile is gathered from the input under the window as it is loaded), plus the
// depthwise case and the linear layer through the same kernel. CPU twin: src/backend/cpu/conv2d.rs
// (im2col + GEMM) and the CPU linear (src/backend/cpu/conv2d.rs).
//
// Tiling (correct-first SIMT version; the tensor-core mainloop is the performance issue's work):
//   CTA tile 64 output pixels × 64 output channels, K step 16, 256 threads, each computing a 4×4
//   micro-tile with fp32 FMA. A and B tiles are staged in shared memory (A stored k-major so each
//   thread's 4 pixels are one 16-byte read). Grid: (ceil(M / 64), ceil(cog / 64), groups · splits).
//   A GroupNorm + activation prologue applies to A as it is loaded; the epilogue adds the bias and the
//   residual and scales (common/conv_fusion.cuh); split-K CTAs
//   store raw partials instead and conv2d_splitk_reduce_f32 finishes them (params.h).
// Depthwise (cig = cog = 1): one thread per output element, kh·kw taps, coalesced over channels.
//
// Summation order differs from the CPU GEMM, so results agree to fp32 rounding (≈1e-7 relative for
// K in the thousands), not bit for bit.
#include "common/params.h"
#include "common/conv_fusion.cuh"
#include "common/nhwc.cuh"
#include "common/shared.cuh"
#include "common/storage.cuh"

#define CONV_BM 64
#define CONV_BN 64
#define CONV_BK 16
#define CONV_THREADS 256

// At least 3 CTAs per SM: with the prologue's activation switch in the loader and the per-image bias in
// the epilogue, ptxas left alone aims at about 48 registers on sm_80 and spills, and so it does at 64
// (4 CTAs); at up to 85 it spills nothing.
extern "C" __global__ void __launch_bounds__(CONV_THREADS, 3)
conv2d_implicit_gemm_f32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                         const float* __restrict__ sample_bias, const float* __restrict__ residual, const float* __restrict__ fold, float* __restrict__ y,
                         const TriConv2dParams p) {
    TRI_SHARED_ALIGNED(16, float, As, [CONV_BK][CONV_BM]);
    TRI_SHARED_ALIGNED(16, float, Bs, [CONV_BK][CONV_BN]);

    const TriNhwc s = p.in;
    const uint32_t cig = s.c / p.groups, cog = p.co / p.groups;
    const uint64_t M = (uint64_t)s.n * p.ho * p.wo;
    const uint32_t K = p.kh * p.kw * cig;
    const uint32_t g = blockIdx.z / p.splits, split = blockIdx.z % p.splits;
    const uint32_t k_begin = split * p.k_split, k_end = min(K, k_begin + p.k_split);
    y += (uint64_t)split * M * p.co;
    const uint64_t m0 = (uint64_t)blockIdx.x * CONV_BM;
    const uint32_t n0 = blockIdx.y * CONV_BN;
    const int tid = threadIdx.x;
    const int tm = (tid % 16) * 4, tn = (tid / 16) * 4;

    // The loader's fixed rows: thread tid loads A elements (row = tid % 64, k = tid / 64 + 4·i) and
    // B elements (k = tid / 64 + 4·i, col = tid % 64), i = 0..3.
    const int lrow = tid % CONV_BM, lk = tid / CONV_BM;
    const uint64_t am = m0 + lrow;
    int64_t iy0 = 0, ix0 = 0;
    uint64_t abase = 0, aimg = 0;
    const bool arow_ok = am < M;
    if (arow_ok) {
        aimg = am / ((uint64_t)p.ho * p.wo);
        const uint32_t r = (uint32_t)(am % ((uint64_t)p.ho * p.wo));
        iy0 = (int64_t)(r / p.wo) * p.stride - p.pad_top;
        ix0 = (int64_t)(r % p.wo) * p.stride - p.pad_left;
        abase = aimg * s.h * s.w;
    }
    const uint32_t bcol = n0 + lrow;
    const bool bcol_ok = bcol < cog;
    const uint64_t bcol_off = (uint64_t)(g * cog + bcol) * p.b_n_stride;

    float acc[4][4] = {};
    for (uint32_t k0 = k_begin; k0 < k_end; k0 += CONV_BK) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const uint32_t k = k0 + lk + 4 * i;
            float av = 0.0f, bv = 0.0f;
            if (k < k_end) {
                if (arow_ok) {
                    const uint32_t ci = k % cig, tap = k / cig;
                    const int64_t iy = iy0 + tap / p.kw, ix = ix0 + tap % p.kw;
                    if (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w) {
                        av = x[(abase + (uint64_t)iy * s.w + ix) * s.c + g * cig + ci];
                        if (p.has_prologue) av = tri_conv_prologue(av, fold, aimg, g * cig + ci, s.c, p);
                    }
                }
                if (bcol_ok) bv = w[(uint64_t)k * p.b_k_stride + bcol_off];
            }
            As[lk + 4 * i][lrow] = av;
            Bs[lk + 4 * i][lrow] = bv;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < CONV_BK; ++kk) {
            const float4 a = *reinterpret_cast<const float4*>(&As[kk][tm]);
            const float4 b = *reinterpret_cast<const float4*>(&Bs[kk][tn]);
            const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const uint64_t m = m0 + tm + i;
        if (m >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const uint32_t n = n0 + tn + j;
            if (n >= cog) continue;
            const uint32_t oc = g * cog + n;
            y[m * p.co + oc] = tri_conv_epilogue(acc[i][j], bias, sample_bias, residual, m, oc, p);
        }
    }
}

// Split-K's second pass: y = epilogue(Σ_s partial_s) over the n·ho·wo·co outputs, the partials summed in
// split order (deterministic: no atomics). Per activation storage type (_f32, _bf16, _f16: the fp32
// partials of the tensor-core kernels with 16-bit activations; residual and output in that type).
template <typename T>
__device__ __forceinline__ void splitk_reduce_body(const float* __restrict__ partials, const float* __restrict__ bias,
                                                   const float* __restrict__ sample_bias, const T* __restrict__ residual,
                                                   T* __restrict__ y, const TriConv2dParams& p) {
    const uint64_t M = (uint64_t)p.in.n * p.ho * p.wo, len = M * p.co;
    for (uint64_t i = tri_global_thread(); i < len; i += tri_grid_threads()) {
        float acc = 0.0f;
        for (uint32_t s = 0; s < p.splits; ++s) acc += partials[s * len + i];
        tri_store_f32(y + i, tri_conv_epilogue(acc, bias, sample_bias, residual, i / p.co, (uint32_t)(i % p.co), p));
    }
}
#define TRI_SPLITK_REDUCE(NAME, T)                                                                          \
    extern "C" __global__ void conv2d_splitk_reduce_##NAME(const float* __restrict__ partials,              \
                                                           const float* __restrict__ bias,                  \
                                                           const float* __restrict__ sample_bias,           \
                                                           const T* __restrict__ residual, T* __restrict__ y, \
                                                           const TriConv2dParams p) {                       \
        splitk_reduce_body(partials, bias, sample_bias, residual, y, p);                                    \
    }
TRI_SPLITK_REDUCE(f32, float)
TRI_SPLITK_REDUCE(bf16, __nv_bfloat16)
TRI_SPLITK_REDUCE(f16, __half)

// groups == c == co: each output channel sees only its own input channel. Per activation storage type
// (x, residual and y; weights, bias and fold fp32), fp32 arithmetic.
template <typename T>
__device__ __forceinline__ void depthwise_body(const T* __restrict__ x, const float* __restrict__ w,
                                               const float* __restrict__ bias, const float* __restrict__ sample_bias,
                                               const T* __restrict__ residual, const float* __restrict__ fold,
                                               T* __restrict__ y, const TriConv2dParams& p) {
    const TriNhwc s = p.in;
    const uint64_t n = (uint64_t)s.n * p.ho * p.wo * s.c;
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        const TriNhwcAt at = tri_nhwc_at(i, p.ho, p.wo, s.c);
        const uint64_t b = at.b;
        const uint32_t oy = at.y, ox = at.x, ch = at.ch;
        float acc = 0.0f;
        for (uint32_t ky = 0; ky < p.kh; ++ky) {
            const int64_t iy = (int64_t)oy * p.stride - p.pad_top + ky;
            if (iy < 0 || iy >= s.h) continue;
            for (uint32_t kx = 0; kx < p.kw; ++kx) {
                const int64_t ix = (int64_t)ox * p.stride - p.pad_left + kx;
                if (ix < 0 || ix >= s.w) continue;
                float xv = tri_load_f32(x + ((b * s.h + iy) * s.w + ix) * s.c + ch);
                if (p.has_prologue) xv = tri_conv_prologue(xv, fold, b, ch, s.c, p);
                acc = fmaf(xv, w[(ky * p.kw + kx) * (uint64_t)s.c + ch], acc);
            }
        }
        tri_store_f32(y + i, tri_conv_epilogue(acc, bias, sample_bias, residual, i / s.c, ch, p));
    }
}
#define TRI_DEPTHWISE(NAME, T)                                                                               \
    extern "C" __global__ void conv2d_depthwise_##NAME(const T* __restrict__ x, const float* __restrict__ w,   \
                                                       const float* __restrict__ bias,                        \
                                                       const float* __restrict__ sample_bias,                 \
                                                       const T* __restrict__ residual,                        \
                                                       const float* __restrict__ fold, T* __restrict__ y,     \
                                                       const TriConv2dParams p) {                             \
        depthwise_body(x, w, bias, sample_bias, residual, fold, y, p);                                        \
    }
TRI_DEPTHWISE(f32, float)
TRI_DEPTHWISE(bf16, __nv_bfloat16)
TRI_DEPTHWISE(f16, __half)
