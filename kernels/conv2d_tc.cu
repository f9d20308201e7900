// conv2d_tc.cu — 2-D convolution over fp32 NHWC activations and HWIO weights as an implicit GEMM on
// tensor cores (mma.sync, kernels/common/tensor_core.cuh): the same problem, parameters and grid as
// conv2d_implicit_gemm_f32 (kernels/conv2d.cu), one kernel per operand precision:
//   conv2d_implicit_gemm_bf16 / _f16: operands rounded to bf16 / fp16, m16n8k16, fp32 accumulators;
//   conv2d_implicit_gemm_tf32:        operands rounded to TF32, m16n8k8, fp32 accumulators;
//   conv2d_implicit_gemm_3xtf32:      fp32-accurate: each operand split into two TF32 halves, three
//                                     m16n8k8 per step (big·big + big·small + small·big).
// CPU twin: src/backend/cpu/conv2d.rs (im2col + GEMM in fp32).
//
// Tiling: CTA tiles as template parameters, chosen per shape by the launcher's table
// (src/backend/cuda/conv2d.rs, `ConvTilePlan`):
//   64×64:   128 threads = 4 warps in 2 × 2, each warp 32 × 32 = 2 m16 × 4 n8 mma tiles;
//   128×128: 256 threads = 8 warps in 2 × 4, each warp 64 × 32 = 4 m16 × 4 n8 mma tiles (the big-M
//            shapes: twice the operand reuse per shared-memory byte);
// K step 16, fp32 accumulators in registers. The A tile is gathered from the input under the window
// (zero outside it) and the B tile read from the weights, both converted to the operand type as they
// are stored in shared memory (padded rows: ldmatrix and the TF32 fragment reads hit distinct banks).
// 16-bit operands reach registers by ldmatrix (A x4, B x4.trans for two n8 tiles); TF32 ones by their
// fragment layout. Grid: (ceil(M / BM), ceil(cog / BN), groups · splits): split-K for the small grids
// (params.h). A GroupNorm + activation prologue applies to the A elements as they are loaded; the
// epilogue adds bias and residual and scales (common/conv_fusion.cuh).
// Next: the multi-stage cp.async pipeline (the activations are fp32 in memory, so it needs a bf16
// activation layout or register-staged conversion) and the GroupNorm + SiLU prologue.
#include "common/conv_fusion.cuh"
#include "common/params.h"
#include "common/shared.cuh"
#include "common/tensor_core.cuh"

#define TC_BK 16
// Shared-memory row strides in elements: BK + 8 halves (48-byte A rows) and BN + 8 halves (B rows of
// 144 or 272 bytes) put the 8 rows an ldmatrix reads in distinct banks; BK + 4 and BN + 8 floats do
// the same for the TF32 fragment reads.
#define TC_A16_STRIDE (TC_BK + 8)
#define TC_A32_STRIDE (TC_BK + 4)

enum { TC_BF16 = 0, TC_F16 = 1, TC_TF32 = 2, TC_3XTF32 = 3 };

template <int MODE>
__device__ __forceinline__ uint16_t tc_to_16(float v) {
    const uint32_t p = MODE == TC_BF16 ? tri_pack_bf16x2(v, 0.0f) : tri_pack_f16x2(v, 0.0f);
    return (uint16_t)(p & 0xffffu);
}

// One CTA of BM × BN outputs, computed by warps of WTM m16 × WTN n8 mma tiles each.
template <int MODE, int BM, int BN, int WTM, int WTN>
__device__ __forceinline__ void conv2d_tc(const float* __restrict__ x, const float* __restrict__ w,
                                          const float* __restrict__ bias, const float* __restrict__ sample_bias,
                                          const float* __restrict__ residual, const float* __restrict__ fold, float* __restrict__ y,
                                          const TriConv2dParams& p) {
    constexpr bool HALF = MODE == TC_BF16 || MODE == TC_F16;
    constexpr int WARPS_M = BM / (16 * WTM), WARPS_N = BN / (8 * WTN);
    constexpr int THREADS = 32 * WARPS_M * WARPS_N;
    constexpr int B16_STRIDE = BN + 8, B32_STRIDE = BN + 8;
    // The loader: thread tid loads the A elements of row tid % BM, A_RUN consecutive k from
    // A_RUN · (tid / BM) (so the 16-bit elements a thread stores share no 32-bit word with another
    // warp's), and the B elements of column tid % BN at k = tid / BN + B_STEP · i.
    constexpr int A_RUN = TC_BK * BM / THREADS, B_STEP = THREADS / BN, B_PER = TC_BK / B_STEP;
    static_assert(THREADS % BM == 0 && THREADS % BN == 0 && A_RUN % 2 == 0 && B_PER >= 1, "loader mapping");
    static_assert(WTN % 2 == 0, "B fragments come in pairs of n8 tiles");
    TRI_SHARED_ALIGNED(16, uint16_t, A16, [HALF ? BM * TC_A16_STRIDE : 8]);
    TRI_SHARED_ALIGNED(16, uint16_t, B16, [HALF ? TC_BK * B16_STRIDE : 8]);
    TRI_SHARED_ALIGNED(16, float, A32, [HALF ? 4 : BM * TC_A32_STRIDE]);
    TRI_SHARED_ALIGNED(16, float, B32, [HALF ? 4 : TC_BK * B32_STRIDE]);

    const TriNhwc s = p.in;
    const uint32_t cig = s.c / p.groups, cog = p.co / p.groups;
    const uint64_t M = (uint64_t)s.n * p.ho * p.wo;
    const uint32_t K = p.kh * p.kw * cig;
    const uint32_t grp = blockIdx.z / p.splits, split = blockIdx.z % p.splits;
    const uint32_t k_begin = split * p.k_split, k_end = min(K, k_begin + p.k_split);
    y += (uint64_t)split * M * p.co;
    const uint64_t m0 = (uint64_t)blockIdx.x * BM;
    const uint32_t n0 = blockIdx.y * BN;
    const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const unsigned g = lane / 4, t = lane % 4;
    const unsigned wm = (warp % WARPS_M) * (16 * WTM), wn = (warp / WARPS_M) * (8 * WTN);

    const unsigned lrow = tid % BM, lka = A_RUN * (tid / BM);
    const unsigned lcol = tid % BN, lkb = tid / BN;
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
    const uint32_t bcol = n0 + lcol;
    const bool bcol_ok = bcol < cog;
    const uint64_t bcol_off = (uint64_t)(grp * cog + bcol) * p.b_n_stride;

    float acc[WTM][WTN][4] = {};
    for (uint32_t k0 = k_begin; k0 < k_end; k0 += TC_BK) {
#pragma unroll
        for (int i = 0; i < A_RUN; ++i) {
            const unsigned ka = lka + i;
            float av = 0.0f;
            if (arow_ok && k0 + ka < k_end) {
                const uint32_t k = k0 + ka, ci = k % cig, tap = k / cig;
                const int64_t iy = iy0 + tap / p.kw, ix = ix0 + tap % p.kw;
                if (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w) {
                    av = x[(abase + (uint64_t)iy * s.w + ix) * s.c + grp * cig + ci];
                    if (p.has_prologue) av = tri_conv_prologue(av, fold, aimg, grp * cig + ci, s.c, p);
                }
            }
            if (HALF)
                A16[lrow * TC_A16_STRIDE + ka] = tc_to_16<MODE>(av);
            else
                A32[lrow * TC_A32_STRIDE + ka] = av;
        }
#pragma unroll
        for (int i = 0; i < B_PER; ++i) {
            const unsigned kb = lkb + B_STEP * i;
            float bv = 0.0f;
            if (bcol_ok && k0 + kb < k_end) bv = w[(uint64_t)(k0 + kb) * p.b_k_stride + bcol_off];
            if (HALF)
                B16[kb * B16_STRIDE + lcol] = tc_to_16<MODE>(bv);
            else
                B32[kb * B32_STRIDE + lcol] = bv;
        }
        __syncthreads();
        if (HALF) {
            // ldmatrix: lane 8j + i addresses row i of matrix j. A (x4): matrices (rows +0, k 0-7),
            // (rows +8, k 0-7), (rows +0, k 8-15), (rows +8, k 8-15). B (x4.trans): (k 0-7, n +0),
            // (k 8-15, n +0), (k 0-7, n +8), (k 8-15, n +8): two n8 tiles' fragments.
            const unsigned li = lane % 8, lj = lane / 8;
            uint32_t af[WTM][4], bf[WTN][2];
#pragma unroll
            for (int mt = 0; mt < WTM; ++mt)
                tri_ldmatrix_x4(af[mt], &A16[(wm + mt * 16 + li + 8 * (lj % 2)) * TC_A16_STRIDE + 8 * (lj / 2)]);
#pragma unroll
            for (int np = 0; np < WTN / 2; ++np) {
                uint32_t q[4];
                tri_ldmatrix_x4_trans(q, &B16[(li + 8 * (lj % 2)) * B16_STRIDE + wn + 16 * np + 8 * (lj / 2)]);
                bf[2 * np][0] = q[0];
                bf[2 * np][1] = q[1];
                bf[2 * np + 1][0] = q[2];
                bf[2 * np + 1][1] = q[3];
            }
            if (MODE == TC_BF16)
                tri_mma_bf16_16816_tiles<WTM, WTN>(acc, af, bf);
            else
                tri_mma_f16_16816_tiles<WTM, WTN>(acc, af, bf);
        } else {
#pragma unroll
            for (int ks = 0; ks < TC_BK; ks += 8) {
                float af[WTM][4], bf[WTN][2];
#pragma unroll
                for (int mt = 0; mt < WTM; ++mt)
#pragma unroll
                    for (int r = 0; r < 4; ++r)
                        af[mt][r] = A32[(wm + mt * 16 + g + 8 * (r & 1)) * TC_A32_STRIDE + ks + t + 4 * (r >> 1)];
#pragma unroll
                for (int nt = 0; nt < WTN; ++nt)
#pragma unroll
                    for (int r = 0; r < 2; ++r) bf[nt][r] = B32[(ks + t + 4 * r) * B32_STRIDE + wn + nt * 8 + g];
                if (MODE == TC_3XTF32) {
                    tri_mma_3xtf32_1688_tiles<WTM, WTN>(acc, af, bf);
                } else {
                    uint32_t at[WTM][4], bt[WTN][2];
#pragma unroll
                    for (int mt = 0; mt < WTM; ++mt)
#pragma unroll
                        for (int r = 0; r < 4; ++r) at[mt][r] = tri_to_tf32(af[mt][r]);
#pragma unroll
                    for (int nt = 0; nt < WTN; ++nt)
#pragma unroll
                        for (int r = 0; r < 2; ++r) bt[nt][r] = tri_to_tf32(bf[nt][r]);
                    tri_mma_tf32_1688_tiles<WTM, WTN>(acc, at, bt);
                }
            }
        }
        __syncthreads();
    }

    // Accumulator i of tile (mt, nt): row g + 8(i / 2), column 2t + i % 2 of the tile.
#pragma unroll
    for (int mt = 0; mt < WTM; ++mt)
#pragma unroll
        for (int nt = 0; nt < WTN; ++nt)
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const uint64_t m = m0 + wm + mt * 16 + g + 8 * (i / 2);
                const uint32_t n = n0 + wn + nt * 8 + 2 * t + (i % 2);
                if (m >= M || n >= cog) continue;
                const uint32_t oc = grp * cog + n;
                y[m * p.co + oc] = tri_conv_epilogue(acc[mt][nt][i], bias, sample_bias, residual, m, oc, p);
            }
}

// One extern "C" kernel per (precision, tile): conv2d_implicit_gemm_<precision>[_<BM>x<BN>], the
// 64×64 tile unsuffixed. MIN_CTAS is the __launch_bounds__ occupancy each is built for: ptxas keeps it
// within the registers that allow it without spilling (tests/kernel_resources.rs checks both).
#define TC_KERNEL(NAME, MODE, BM, BN, WTM, WTN, MIN_CTAS)                                                     \
    extern "C" __global__ void __launch_bounds__(32 * (BM / (16 * WTM)) * (BN / (8 * WTN)), MIN_CTAS)          \
    NAME(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,             \
         const float* __restrict__ sample_bias, const float* __restrict__ residual,                              \
         const float* __restrict__ fold, float* __restrict__ y, const TriConv2dParams p) {                       \
        conv2d_tc<MODE, BM, BN, WTM, WTN>(x, w, bias, sample_bias, residual, fold, y, p);                      \
    }

TC_KERNEL(conv2d_implicit_gemm_bf16, TC_BF16, 64, 64, 2, 4, 4)
TC_KERNEL(conv2d_implicit_gemm_f16, TC_F16, 64, 64, 2, 4, 4)
TC_KERNEL(conv2d_implicit_gemm_tf32, TC_TF32, 64, 64, 2, 4, 4)
TC_KERNEL(conv2d_implicit_gemm_3xtf32, TC_3XTF32, 64, 64, 2, 4, 4)
TC_KERNEL(conv2d_implicit_gemm_bf16_128x128, TC_BF16, 128, 128, 4, 4, 2)
TC_KERNEL(conv2d_implicit_gemm_f16_128x128, TC_F16, 128, 128, 4, 4, 2)
TC_KERNEL(conv2d_implicit_gemm_tf32_128x128, TC_TF32, 128, 128, 4, 4, 2)
TC_KERNEL(conv2d_implicit_gemm_3xtf32_128x128, TC_3XTF32, 128, 128, 4, 4, 2)
