// conv2d_tc.cu — 2-D convolution over fp32 NHWC activations and HWIO weights as an implicit GEMM on
// tensor cores (mma.sync, kernels/common/tensor_core.cuh): the same problem, parameters and grid as
// conv2d_implicit_gemm_f32 (kernels/conv2d.cu), one kernel per operand precision:
//   conv2d_implicit_gemm_bf16 / _f16: operands rounded to bf16 / fp16, m16n8k16, fp32 accumulators;
//   conv2d_implicit_gemm_tf32:        operands rounded to TF32, m16n8k8, fp32 accumulators;
//   conv2d_implicit_gemm_3xtf32:      fp32-accurate: each operand split into two TF32 halves, three
//                                     m16n8k8 per step (big·big + big·small + small·big).
// CPU twin: src/backend/cpu/conv2d.rs (im2col + GEMM in fp32).
//
// Tiling (first tensor-core version: correct and compiled to HMMA; the multi-stage cp.async pipeline,
// the fused GroupNorm prologue and split-K are the next steps):
//   CTA tile 64 output pixels × 64 output channels, K step 16, 128 threads = 4 warps in 2 × 2, each
//   warp 32 × 32 = 2 m16 × 4 n8 mma tiles (32 fp32 accumulators per thread). The A tile is gathered
//   from the input under the window (zero outside it) and the B tile read from the weights, both
//   converted to the operand type as they are stored in shared memory (padded rows: ldmatrix and the
//   TF32 fragment reads hit distinct banks). 16-bit operands reach registers by ldmatrix (A x4, B
//   x4.trans for two n8 tiles); TF32 ones by their fragment layout. Grid: (ceil(M / 64), ceil(cog / 64),
//   groups). The bias is added in the epilogue.
#include "common/params.h"
#include "common/shared.cuh"
#include "common/tensor_core.cuh"

#define TC_BM 64
#define TC_BN 64
#define TC_BK 16
#define TC_THREADS 128
// At least 4 CTAs (16 warps) per SM: ptxas then keeps each variant within 128 registers without
// spilling (unbounded, it aims at 64 on sm_80 and spills the 16-bit variants).
#define TC_MIN_CTAS 4
// Shared-memory row strides in elements: 48-byte A rows and 144-byte B rows put the 8 rows an
// ldmatrix reads in distinct banks; 20- and 72-float rows do the same for the TF32 fragment reads.
#define TC_A16_STRIDE 24
#define TC_B16_STRIDE 72
#define TC_A32_STRIDE 20
#define TC_B32_STRIDE 72

enum { TC_BF16 = 0, TC_F16 = 1, TC_TF32 = 2, TC_3XTF32 = 3 };

template <int MODE>
__device__ __forceinline__ uint16_t tc_to_16(float v) {
    const uint32_t p = MODE == TC_BF16 ? tri_pack_bf16x2(v, 0.0f) : tri_pack_f16x2(v, 0.0f);
    return (uint16_t)(p & 0xffffu);
}

template <int MODE>
__device__ __forceinline__ void conv2d_tc(const float* __restrict__ x, const float* __restrict__ w,
                                          const float* __restrict__ bias, float* __restrict__ y,
                                          const TriConv2dParams& p) {
    constexpr bool HALF = MODE == TC_BF16 || MODE == TC_F16;
    TRI_SHARED_ALIGNED(16, uint16_t, A16, [HALF ? TC_BM * TC_A16_STRIDE : 8]);
    TRI_SHARED_ALIGNED(16, uint16_t, B16, [HALF ? TC_BK * TC_B16_STRIDE : 8]);
    TRI_SHARED_ALIGNED(16, float, A32, [HALF ? 4 : TC_BM * TC_A32_STRIDE]);
    TRI_SHARED_ALIGNED(16, float, B32, [HALF ? 4 : TC_BK * TC_B32_STRIDE]);

    const TriNhwc s = p.in;
    const uint32_t cig = s.c / p.groups, cog = p.co / p.groups;
    const uint64_t M = (uint64_t)s.n * p.ho * p.wo;
    const uint32_t K = p.kh * p.kw * cig;
    const uint32_t grp = blockIdx.z;
    const uint64_t m0 = (uint64_t)blockIdx.x * TC_BM;
    const uint32_t n0 = blockIdx.y * TC_BN;
    const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const unsigned g = lane / 4, t = lane % 4;
    const unsigned wm = (warp % 2) * 32, wn = (warp / 2) * 32;

    // The loader's fixed row and column: thread tid loads A elements (row tid % 64, the 8 consecutive
    // k = 8(tid / 64) + i, so the 16-bit elements a thread stores share no 32-bit word with another
    // warp's) and B elements (k = tid / 64 + 2i, column tid % 64), i = 0..7.
    const unsigned lrow = tid % TC_BM, lk = tid / TC_BM;
    const uint64_t am = m0 + lrow;
    int64_t iy0 = 0, ix0 = 0;
    uint64_t abase = 0;
    const bool arow_ok = am < M;
    if (arow_ok) {
        const uint64_t b = am / ((uint64_t)p.ho * p.wo);
        const uint32_t r = (uint32_t)(am % ((uint64_t)p.ho * p.wo));
        iy0 = (int64_t)(r / p.wo) * p.stride - p.pad_top;
        ix0 = (int64_t)(r % p.wo) * p.stride - p.pad_left;
        abase = b * s.h * s.w;
    }
    const uint32_t bcol = n0 + lrow;
    const bool bcol_ok = bcol < cog;
    const uint64_t bcol_off = (uint64_t)(grp * cog + bcol) * p.b_n_stride;

    float acc[2][4][4] = {};
    for (uint32_t k0 = 0; k0 < K; k0 += TC_BK) {
#pragma unroll
        for (int i = 0; i < TC_BK / 2; ++i) {
            const unsigned ka = 8 * lk + i, kb = lk + 2 * i;
            float av = 0.0f, bv = 0.0f;
            if (arow_ok && k0 + ka < K) {
                const uint32_t k = k0 + ka, ci = k % cig, tap = k / cig;
                const int64_t iy = iy0 + tap / p.kw, ix = ix0 + tap % p.kw;
                if (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w)
                    av = x[(abase + (uint64_t)iy * s.w + ix) * s.c + grp * cig + ci];
            }
            if (bcol_ok && k0 + kb < K) bv = w[(uint64_t)(k0 + kb) * p.b_k_stride + bcol_off];
            if (HALF) {
                A16[lrow * TC_A16_STRIDE + ka] = tc_to_16<MODE>(av);
                B16[kb * TC_B16_STRIDE + lrow] = tc_to_16<MODE>(bv);
            } else {
                A32[lrow * TC_A32_STRIDE + ka] = av;
                B32[kb * TC_B32_STRIDE + lrow] = bv;
            }
        }
        __syncthreads();
        if (HALF) {
            // ldmatrix: lane 8j + i addresses row i of matrix j. A (x4): matrices (rows +0, k 0-7),
            // (rows +8, k 0-7), (rows +0, k 8-15), (rows +8, k 8-15). B (x4.trans): (k 0-7, n +0),
            // (k 8-15, n +0), (k 0-7, n +8), (k 8-15, n +8): two n8 tiles' fragments.
            const unsigned li = lane % 8, lj = lane / 8;
            uint32_t af[2][4], bf[4][2];
#pragma unroll
            for (int mt = 0; mt < 2; ++mt)
                tri_ldmatrix_x4(af[mt], &A16[(wm + mt * 16 + li + 8 * (lj % 2)) * TC_A16_STRIDE + 8 * (lj / 2)]);
#pragma unroll
            for (int np = 0; np < 2; ++np) {
                uint32_t q[4];
                tri_ldmatrix_x4_trans(q, &B16[(li + 8 * (lj % 2)) * TC_B16_STRIDE + wn + 16 * np + 8 * (lj / 2)]);
                bf[2 * np][0] = q[0];
                bf[2 * np][1] = q[1];
                bf[2 * np + 1][0] = q[2];
                bf[2 * np + 1][1] = q[3];
            }
            if (MODE == TC_BF16)
                tri_mma_bf16_16816_tiles<2, 4>(acc, af, bf);
            else
                tri_mma_f16_16816_tiles<2, 4>(acc, af, bf);
        } else {
#pragma unroll
            for (int ks = 0; ks < TC_BK; ks += 8) {
                float af[2][4], bf[4][2];
#pragma unroll
                for (int mt = 0; mt < 2; ++mt)
#pragma unroll
                    for (int r = 0; r < 4; ++r)
                        af[mt][r] = A32[(wm + mt * 16 + g + 8 * (r & 1)) * TC_A32_STRIDE + ks + t + 4 * (r >> 1)];
#pragma unroll
                for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                    for (int r = 0; r < 2; ++r) bf[nt][r] = B32[(ks + t + 4 * r) * TC_B32_STRIDE + wn + nt * 8 + g];
                if (MODE == TC_3XTF32) {
                    tri_mma_3xtf32_1688_tiles<2, 4>(acc, af, bf);
                } else {
                    uint32_t at[2][4], bt[4][2];
#pragma unroll
                    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
                        for (int r = 0; r < 4; ++r) at[mt][r] = tri_to_tf32(af[mt][r]);
#pragma unroll
                    for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                        for (int r = 0; r < 2; ++r) bt[nt][r] = tri_to_tf32(bf[nt][r]);
                    tri_mma_tf32_1688_tiles<2, 4>(acc, at, bt);
                }
            }
        }
        __syncthreads();
    }

    // Accumulator i of tile (mt, nt): row g + 8(i / 2), column 2t + i % 2 of the tile.
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int nt = 0; nt < 4; ++nt)
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const uint64_t m = m0 + wm + mt * 16 + g + 8 * (i / 2);
                const uint32_t n = n0 + wn + nt * 8 + 2 * t + (i % 2);
                if (m >= M || n >= cog) continue;
                const uint32_t oc = grp * cog + n;
                y[m * p.co + oc] = p.has_bias ? acc[mt][nt][i] + bias[oc] : acc[mt][nt][i];
            }
}

extern "C" __global__ void __launch_bounds__(TC_THREADS, TC_MIN_CTAS)
conv2d_implicit_gemm_bf16(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                          float* __restrict__ y, const TriConv2dParams p) {
    conv2d_tc<TC_BF16>(x, w, bias, y, p);
}

extern "C" __global__ void __launch_bounds__(TC_THREADS, TC_MIN_CTAS)
conv2d_implicit_gemm_f16(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                         float* __restrict__ y, const TriConv2dParams p) {
    conv2d_tc<TC_F16>(x, w, bias, y, p);
}

extern "C" __global__ void __launch_bounds__(TC_THREADS, TC_MIN_CTAS)
conv2d_implicit_gemm_tf32(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                          float* __restrict__ y, const TriConv2dParams p) {
    conv2d_tc<TC_TF32>(x, w, bias, y, p);
}

extern "C" __global__ void __launch_bounds__(TC_THREADS, TC_MIN_CTAS)
conv2d_implicit_gemm_3xtf32(const float* __restrict__ x, const float* __restrict__ w,
                            const float* __restrict__ bias, float* __restrict__ y, const TriConv2dParams p) {
    conv2d_tc<TC_3XTF32>(x, w, bias, y, p);
}
