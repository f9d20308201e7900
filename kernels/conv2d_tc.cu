// conv2d_tc.cu — 2-D convolution over NHWC activations (fp32, or 16-bit: _io16) and HWIO weights as an
// implicit GEMM on tensor cores (mma.sync, kernels/common/tensor_core.cuh): the same problem, parameters
// and grid as conv2d_implicit_gemm_f32 (kernels/conv2d.cu), one kernel per operand precision:
//   conv2d_implicit_gemm_bf16 / _f16: operands rounded to bf16 / fp16, m16n8k16, fp32 accumulators;
//   conv2d_implicit_gemm_tf32:        operands rounded to TF32, m16n8k8, fp32 accumulators;
//   conv2d_implicit_gemm_3xtf32:      fp32-accurate: each operand split into two TF32 halves, three
//                                     m16n8k8 per step (big·big + big·small + small·big).
// CPU twin: src/backend/cpu/conv2d.rs (im2col + GEMM in fp32).
//
// Tiling: CTA tiles as template parameters, chosen per shape by the launcher's table
// (src/backend/conv_plan.rs, `ConvPlan::choose`):
//   64×64:   128 threads = 4 warps in 2 × 2, each warp 32 × 32 = 2 m16 × 4 n8 mma tiles;
//   128×128: 256 threads = 8 warps in 2 × 4, each warp 64 × 32 = 4 m16 × 4 n8 mma tiles (the big-M
//            shapes: twice the operand reuse per shared-memory byte);
// K step 16, fp32 accumulators in registers. The A tile is gathered from the input under the window
// (zero outside it) and converted to the operand type as it is stored in shared memory (padded rows:
// ldmatrix and the TF32 fragment reads hit distinct banks). The weights come already in the operand's
// storage type (bf16 / fp16 bits for the 16-bit kernels, packed once by the layer or cast by the
// launcher; fp32 for the TF32 ones), so the B tile is a plain copy: cp.async, 16 bytes per thread and
// chunk, straight into shared memory where the output channels run in whole aligned chunks (channels
// per group and the row stride multiples of 8 halves / 4 floats: every NCSN++ conv), else element by
// element. The mainloop is software-pipelined over two shared-memory stages: the
// next k step's A loads and B copies are issued before the current step's mma, A converted and
// stored to the other stage after it, then one wait for the copies and one barrier per step. Over
// 16-bit activations of the operand's type (the _io16 kernels) A is copied by cp.async as well where
// the GroupNorm prologue does not transform it; over fp32 activations, or with the prologue, it is
// converted / transformed on the way through registers.
// 16-bit operands reach registers by ldmatrix (A x4, B x4.trans for two n8 tiles); TF32 ones by their
// fragment layout. Grid: (ceil(M / BM), ceil(cog / BN), groups · splits): split-K for the small grids
// (params.h). A GroupNorm + activation prologue applies to the in-image A elements as they are stored;
// the epilogue adds bias and residual and scales (common/conv_fusion.cuh).
#include "common/conv_fusion.cuh"
#include "common/params.h"
#include "common/shared.cuh"
#include "common/storage.cuh"
#include "common/tensor_core.cuh"

#define TC_BK 16
// Shared-memory row strides in elements: BK + 8 halves (48-byte A rows) and BN + 8 halves (B rows of
// 144 or 272 bytes) put the 8 rows an ldmatrix reads in distinct banks; BK + 4 and BN + 8 floats do
// the same for the TF32 fragment reads.
#define TC_A16_STRIDE (TC_BK + 8)
#define TC_A32_STRIDE (TC_BK + 4)

enum { TC_BF16 = 0, TC_F16 = 1, TC_TF32 = 2, TC_3XTF32 = 3 };

// The weights' element type in memory and in shared memory: the 16-bit kernels take bf16 / fp16 bits,
// the TF32 ones fp32 (split or rounded as the fragments are read).
template <bool HALF>
struct TcWeight {
    typedef float type;
};
template <>
struct TcWeight<true> {
    typedef uint16_t type;
};

// One CTA of BM × BN outputs, computed by warps of WTM m16 × WTN n8 mma tiles each, with STAGES (2:
// pipelined through registers; 1: load, barrier, multiply, barrier) shared-memory stages.
// T is the activations' storage type (x, residual, y): fp32, or the 16-bit kernels' own type. The output
// goes to `y` as T, or with split-K as fp32 partials (the reduce kernel finishes them).
template <int MODE, typename T, int BM, int BN, int WTM, int WTN, int STAGES>
__device__ __forceinline__ void conv2d_tc(const T* __restrict__ x,
                                          const typename TcWeight<MODE == TC_BF16 || MODE == TC_F16>::type* __restrict__ w,
                                          const float* __restrict__ bias, const float* __restrict__ sample_bias,
                                          const T* __restrict__ residual, const float* __restrict__ fold, void* __restrict__ y,
                                          const TriConv2dParams& p) {
    constexpr bool HALF = MODE == TC_BF16 || MODE == TC_F16;
    constexpr int WARPS_M = BM / (16 * WTM), WARPS_N = BN / (8 * WTN);
    typedef typename TcWeight<HALF>::type W;
    constexpr int THREADS = 32 * WARPS_M * WARPS_N;
    // B rows of BN + 8 elements (144 / 272 bytes at 16 bits, 288 / 544 at 32): 16-byte aligned for the
    // copies, and the 8 rows an ldmatrix or a TF32 fragment read touches fall in distinct banks.
    constexpr int B_STRIDE = BN + 8;
    // The loader: thread tid loads the A elements of row tid % BM, A_RUN consecutive k from
    // A_RUN · (tid / BM) (so the 16-bit elements a thread stores share no 32-bit word with another
    // warp's). B by cp.async: chunk tid + THREADS · i of the tile's TC_BK rows × BN / B_VEC chunks; B
    // element by element: column tid % BN at k = tid / BN + B_STEP · i.
    constexpr int A_RUN = TC_BK * BM / THREADS, B_STEP = THREADS / BN, B_PER = TC_BK / B_STEP;
    constexpr int B_VEC = 16 / (int)sizeof(W), B_CHUNKS = TC_BK * BN / B_VEC / THREADS;
    static_assert(THREADS % BM == 0 && THREADS % BN == 0 && A_RUN % 2 == 0 && B_PER >= 1, "loader mapping");
    static_assert(B_CHUNKS >= 1 && TC_BK * BN == B_CHUNKS * B_VEC * THREADS, "B copy mapping");
    static_assert(WTN % 2 == 0, "B fragments come in pairs of n8 tiles");
    static_assert(STAGES == 1 || STAGES == 2, "one or two stages");
    // Two stages of each operand tile: the k step being multiplied and the next one being stored.
    constexpr int A16_STAGE = BM * TC_A16_STRIDE, A32_STAGE = BM * TC_A32_STRIDE, B_STAGE = TC_BK * B_STRIDE;
    TRI_SHARED_ALIGNED(16, uint16_t, A16, [HALF ? STAGES * A16_STAGE : 8]);
    TRI_SHARED_ALIGNED(16, float, A32, [HALF ? 4 : STAGES * A32_STAGE]);
    TRI_SHARED_ALIGNED(16, W, Bsm, [STAGES * B_STAGE]);

    const TriNhwc s = p.in;
    const uint32_t cig = s.c / p.groups, cog = p.co / p.groups;
    const uint64_t M = (uint64_t)s.n * p.ho * p.wo;
    const uint32_t K = p.kh * p.kw * cig;
    const uint32_t grp = blockIdx.z / p.splits, split = blockIdx.z % p.splits;
    const uint32_t k_begin = split * p.k_split, k_end = min(K, k_begin + p.k_split);
    const uint32_t steps = k_end > k_begin ? (k_end - k_begin + TC_BK - 1) / TC_BK : 0;
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
    // Whole 16-byte chunks of one weight row: columns contiguous, the group's first column, every row
    // and the base aligned; a chunk lies inside [0, cog) or wholly outside it (cog % B_VEC == 0).
    const bool b_async = p.b_n_stride == 1 && cog % B_VEC == 0 && p.b_k_stride % B_VEC == 0 &&
                         ((uintptr_t)w & 15u) == 0;

    // The next k step's operands, loaded from global memory into registers while the current step
    // multiplies (the loads' latency hides behind the mma), then converted and stored to the other
    // stage. a_inside bit i marks A element i as inside the image (the prologue transforms it; the
    // padding stays 0); a_channel is element 0's channel within the group (the A_RUN elements are
    // consecutive k, so their channels follow, wrapping at cig).
    float a_next[A_RUN];
    uint32_t a_inside = 0, a_channel = 0;
    // A run starts at a k that is a multiple of A_RUN (k steps and split-K slices are whole steps of
    // 16), so where cig is a multiple of A_RUN every run lies in one tap, inside the channel range, and
    // (with the input 16-byte aligned) loads as A_RUN / 4 float4 vectors instead of A_RUN scalars.
    static_assert(A_RUN % 8 == 0, "runs fill whole 16-byte shared-memory stores");
    const bool a_vector = HALF && cig % A_RUN == 0 && ((uintptr_t)x & 15u) == 0;
    // 16-bit activations (then of the operand's own type) that no prologue transforms are copied as
    // they are: by cp.async (.ca: a 3×3 window reads each input pixel up to 9 times, so L1 keeps
    // it), zero-filled at the padding, past M and past the slice's K.
    static_assert(sizeof(T) == 4 || (HALF && A_RUN == 8), "16-bit activations: one 16-byte run per thread");
    const bool a_async = sizeof(T) == 2 && a_vector && !p.has_prologue;
    // Issues step k0's loads into shared-memory `stage` where they go by cp.async (A, and B in whole
    // chunks) or element by element (B otherwise), and A into registers where it is converted or
    // transformed first.
    auto load = [&](uint32_t k0, int stage) {
        uint32_t k = k0 + lka, ci = k % cig, tap = k / cig, ky = tap / p.kw, kx = tap % p.kw;
        a_channel = ci;
        a_inside = 0;
        if (a_vector) {
            bool inside = false;
            const T* src = nullptr;
            if (arow_ok && k < k_end) {
                const int64_t iy = iy0 + ky, ix = ix0 + kx;
                inside = iy >= 0 && iy < s.h && ix >= 0 && ix < s.w;
                if (inside) src = x + (abase + (uint64_t)iy * s.w + ix) * s.c + grp * cig + ci;
            }
            if constexpr (sizeof(T) == 2) {
                if (a_async) {
                    tri_cp_async_ca<16>(&A16[stage * A16_STAGE + lrow * TC_A16_STRIDE + lka], inside ? src : x,
                                        inside ? 16 : 0);
                } else if (inside) {
                    tri_load8_f32(src, a_next);  // one 16-byte load, widened for the prologue
                } else {
#pragma unroll
                    for (int j = 0; j < 8; ++j) a_next[j] = 0.0f;
                }
            } else {
#pragma unroll
                for (int q = 0; q < A_RUN / 4; ++q) {
                    const float4 v = inside ? reinterpret_cast<const float4*>(src)[q] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                    a_next[4 * q] = v.x;
                    a_next[4 * q + 1] = v.y;
                    a_next[4 * q + 2] = v.z;
                    a_next[4 * q + 3] = v.w;
                }
            }
            a_inside = inside ? (1u << A_RUN) - 1u : 0u;
        } else {
#pragma unroll
            for (int i = 0; i < A_RUN; ++i) {
                float av = 0.0f;
                if (arow_ok && k + i < k_end) {
                    const int64_t iy = iy0 + ky, ix = ix0 + kx;
                    if (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w) {
                        av = tri_load_f32(x + (abase + (uint64_t)iy * s.w + ix) * s.c + grp * cig + ci);
                        a_inside |= 1u << i;
                    }
                }
                a_next[i] = av;
                if (++ci == cig) {
                    ci = 0;
                    if (++kx == p.kw) {
                        kx = 0;
                        ++ky;
                    }
                }
            }
        }
        if (b_async) {
            W* dst = Bsm + stage * B_STAGE;
#pragma unroll
            for (int i = 0; i < B_CHUNKS; ++i) {
                const unsigned c = tid + THREADS * i, kk = c / (BN / B_VEC), nc = B_VEC * (c % (BN / B_VEC));
                const uint32_t kb = k0 + kk, col = n0 + nc;
                const bool ok = kb < k_end && col < cog;
                const W* src = ok ? w + (uint64_t)kb * p.b_k_stride + grp * cog + col : w;
                tri_cp_async_cg16(&dst[kk * B_STRIDE + nc], src, ok ? 16 : 0);
            }
        } else {
            // Straight to shared memory: `stage` is free (see the mainloop), and this path only serves
            // the odd-width layers (RGB output convs, the embedding's dense layers).
#pragma unroll
            for (int i = 0; i < B_PER; ++i) {
                const uint32_t kb = k0 + lkb + B_STEP * i;
                Bsm[stage * B_STAGE + (lkb + B_STEP * i) * B_STRIDE + lcol] =
                    bcol_ok && kb < k_end ? w[(uint64_t)kb * p.b_k_stride + bcol_off] : (W)0;
            }
        }
        tri_cp_async_commit();  // the step's copies, one group (empty where none were issued)
    };
    // A's run (unless cp.async copied it) goes to shared memory as whole 16-byte stores (rows of 48
    // or 80 bytes, runs at 0 or 16 elements: all 16-byte aligned), its 16-bit pairs rounded to nearest
    // even.
    auto store = [&](int stage) {
        if (a_async) return;
        uint32_t ci = a_channel;
        float av[A_RUN];
#pragma unroll
        for (int i = 0; i < A_RUN; ++i) {
            av[i] = a_next[i];
            if (p.has_prologue && (a_inside >> i & 1u)) av[i] = tri_conv_prologue(av[i], fold, aimg, grp * cig + ci, s.c, p);
            if (++ci == cig) ci = 0;
        }
        if (HALF) {
            uint4* dst = reinterpret_cast<uint4*>(&A16[stage * A16_STAGE + lrow * TC_A16_STRIDE + lka]);
#pragma unroll
            for (int q = 0; q < A_RUN / 8; ++q) {
                uint32_t h[4];
#pragma unroll
                for (int j = 0; j < 4; ++j)
                    h[j] = MODE == TC_BF16 ? tri_pack_bf16x2(av[8 * q + 2 * j], av[8 * q + 2 * j + 1])
                                           : tri_pack_f16x2(av[8 * q + 2 * j], av[8 * q + 2 * j + 1]);
                dst[q] = make_uint4(h[0], h[1], h[2], h[3]);
            }
        } else {
            float4* dst = reinterpret_cast<float4*>(&A32[stage * A32_STAGE + lrow * TC_A32_STRIDE + lka]);
#pragma unroll
            for (int q = 0; q < A_RUN / 4; ++q)
                dst[q] = make_float4(av[4 * q], av[4 * q + 1], av[4 * q + 2], av[4 * q + 3]);
        }
    };

    float acc[WTM][WTN][4] = {};
    if (steps > 0) {
        load(k_begin, 0);
        store(0);
    }
    tri_cp_async_wait<0>();
    __syncthreads();
    // Two stages, one barrier per step: a step reads stage s % 2 and writes stage (s + 1) % 2, which
    // every warp finished reading before the previous step's barrier; its copies land at the wait
    // before the step's barrier. One stage: two barriers.
    for (uint32_t step = 0; step < steps; ++step) {
        const bool more = step + 1 < steps;
        const int stage = STAGES == 2 ? step % 2 : 0;
        if (STAGES == 2 && more) load(k_begin + (step + 1) * TC_BK, 1 - stage);
        if (STAGES == 1 && step > 0) {
            load(k_begin + step * TC_BK, 0);
            store(0);
            tri_cp_async_wait<0>();
            __syncthreads();
        }
        if (HALF) {
            const uint16_t* As = A16 + stage * A16_STAGE;
            const uint16_t* Bs = reinterpret_cast<const uint16_t*>(Bsm) + stage * B_STAGE;
            // ldmatrix: lane 8j + i addresses row i of matrix j. A (x4): matrices (rows +0, k 0-7),
            // (rows +8, k 0-7), (rows +0, k 8-15), (rows +8, k 8-15). B (x4.trans): (k 0-7, n +0),
            // (k 8-15, n +0), (k 0-7, n +8), (k 8-15, n +8): two n8 tiles' fragments.
            const unsigned li = lane % 8, lj = lane / 8;
            uint32_t af[WTM][4], bf[WTN][2];
#pragma unroll
            for (int mt = 0; mt < WTM; ++mt)
                tri_ldmatrix_x4(af[mt], &As[(wm + mt * 16 + li + 8 * (lj % 2)) * TC_A16_STRIDE + 8 * (lj / 2)]);
#pragma unroll
            for (int np = 0; np < WTN / 2; ++np) {
                uint32_t q[4];
                tri_ldmatrix_x4_trans(q, &Bs[(li + 8 * (lj % 2)) * B_STRIDE + wn + 16 * np + 8 * (lj / 2)]);
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
            const float* As = A32 + stage * A32_STAGE;
            const float* Bs = reinterpret_cast<const float*>(Bsm) + stage * B_STAGE;
#pragma unroll
            for (int ks = 0; ks < TC_BK; ks += 8) {
                float af[WTM][4], bf[WTN][2];
#pragma unroll
                for (int mt = 0; mt < WTM; ++mt)
#pragma unroll
                    for (int r = 0; r < 4; ++r)
                        af[mt][r] = As[(wm + mt * 16 + g + 8 * (r & 1)) * TC_A32_STRIDE + ks + t + 4 * (r >> 1)];
#pragma unroll
                for (int nt = 0; nt < WTN; ++nt)
#pragma unroll
                    for (int r = 0; r < 2; ++r) bf[nt][r] = Bs[(ks + t + 4 * r) * B_STRIDE + wn + nt * 8 + g];
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
        if (STAGES == 2 && more) store(1 - stage);
        tri_cp_async_wait<0>();
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
                const float v = tri_conv_epilogue(acc[mt][nt][i], bias, sample_bias, residual, m, oc, p);
                if (p.splits > 1)
                    static_cast<float*>(y)[(uint64_t)split * M * p.co + m * p.co + oc] = v;
                else
                    tri_store_f32(static_cast<T*>(y) + m * p.co + oc, v);
            }
}

// One extern "C" kernel per (precision, tile, activation type): conv2d_implicit_gemm_<precision>[_<BM>x<BN>]
// over fp32 activations (the 64×64 tile unsuffixed), and for the 16-bit precisions also _io16 over
// activations stored in that 16-bit type (--precision bf16 / fp16 networks). MIN_CTAS is the
// __launch_bounds__ occupancy each is built for: ptxas keeps it within the registers that allow it
// without spilling (tests/kernel_resources.rs checks both). The 3xTF32 128×128 kernel keeps one
// stage: its 64 accumulators and split fragments leave no room for the next step's operands within the
// 128 registers of 2 CTAs per SM (it spilled 176 bytes).
#define TC_KERNEL(NAME, MODE, T, W, BM, BN, WTM, WTN, STAGES, MIN_CTAS)                                       \
    extern "C" __global__ void __launch_bounds__(32 * (BM / (16 * WTM)) * (BN / (8 * WTN)), MIN_CTAS)          \
    NAME(const T* __restrict__ x, const W* __restrict__ w, const float* __restrict__ bias,                     \
         const float* __restrict__ sample_bias, const T* __restrict__ residual,                                  \
         const float* __restrict__ fold, void* __restrict__ y, const TriConv2dParams p) {                        \
        conv2d_tc<MODE, T, BM, BN, WTM, WTN, STAGES>(x, w, bias, sample_bias, residual, fold, y, p);           \
    }

TC_KERNEL(conv2d_implicit_gemm_bf16, TC_BF16, float, uint16_t, 64, 64, 2, 4, 2, 4)
TC_KERNEL(conv2d_implicit_gemm_f16, TC_F16, float, uint16_t, 64, 64, 2, 4, 2, 4)
TC_KERNEL(conv2d_implicit_gemm_tf32, TC_TF32, float, float, 64, 64, 2, 4, 2, 4)
TC_KERNEL(conv2d_implicit_gemm_3xtf32, TC_3XTF32, float, float, 64, 64, 2, 4, 2, 4)
TC_KERNEL(conv2d_implicit_gemm_bf16_128x128, TC_BF16, float, uint16_t, 128, 128, 4, 4, 2, 2)
TC_KERNEL(conv2d_implicit_gemm_f16_128x128, TC_F16, float, uint16_t, 128, 128, 4, 4, 2, 2)
TC_KERNEL(conv2d_implicit_gemm_tf32_128x128, TC_TF32, float, float, 128, 128, 4, 4, 2, 2)
TC_KERNEL(conv2d_implicit_gemm_3xtf32_128x128, TC_3XTF32, float, float, 128, 128, 4, 4, 1, 2)
TC_KERNEL(conv2d_implicit_gemm_bf16_io16, TC_BF16, __nv_bfloat16, uint16_t, 64, 64, 2, 4, 2, 4)
TC_KERNEL(conv2d_implicit_gemm_f16_io16, TC_F16, __half, uint16_t, 64, 64, 2, 4, 2, 4)
TC_KERNEL(conv2d_implicit_gemm_bf16_128x128_io16, TC_BF16, __nv_bfloat16, uint16_t, 128, 128, 4, 4, 2, 2)
TC_KERNEL(conv2d_implicit_gemm_f16_128x128_io16, TC_F16, __half, uint16_t, 128, 128, 4, 4, 2, 2)
