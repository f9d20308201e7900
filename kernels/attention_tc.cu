// attention_tc.cu — NCSN++'s single-head self-attention on tensor cores, FlashAttention-2 style: the
// same problem and parameters as attention_f32 (kernels/attention.cu), for the bf16 and fp16
// precisions. q, k, v and the probabilities are rounded to the operand type; the scores, the softmax
// and the output accumulate in fp32. CPU twin: src/backend/cpu/attention.rs.
//
// Tiling. A CTA owns 64 queries (4 warps x 16 rows) of one image and a slice of FA_DV output columns
// (grid: (query blocks · images, column slices)). It walks the keys in blocks of 64:
//   S = Q·Kᵀ    the head dimension in chunks of 64: Q and K chunks converted to 16-bit pairs as they
//               are stored in shared memory, ldmatrix (K untransposed: its rows are the B columns),
//               mma m16n8k16, fp32 scores in registers (16 x 64 per warp);
//   softmax     online, in registers: masked keys (past the sequence) at -inf, running row max m and
//               per-lane partial row sums l (reduced over the lane quad once at the end), the output
//               rescaled by exp2(m_old - m_new) when the max grows;
//   O += P·V    the probabilities reuse the score accumulators' registers as A fragments (the C layout
//               of two n8 tiles is the A layout of one k16 step), V by ldmatrix.trans.
// Output columns are split across CTAs so a warp's accumulator stays at 16 x FA_DV (64 registers); a
// head dimension above FA_DV recomputes S once per slice (at c = 256: 1.5x the minimal FLOPs, and
// twice the CTAs for small batches). The row sums add the probabilities as rounded for the P·V
// product, so the weights divided out are exactly the weights applied.
//
// Requires c % 8 == 0 (8-element vector loads of q, k, v rows); the launcher falls back to
// attention_f32 otherwise.
#include "common/params.h"
#include "common/shared.cuh"
#include "common/tensor_core.cuh"

#define FA_BQ 64
#define FA_BKV 64
#define FA_KC 64
#define FA_DV 128
#define FA_THREADS 128
// Row strides in 16-bit elements: +8 halves (16 bytes) put the 8 rows an ldmatrix reads in distinct
// banks and keep every row 16-byte aligned for the vector stores.
#define FA_QK_STRIDE (FA_KC + 8)
#define FA_V_STRIDE (FA_DV + 8)

enum { FA_BF16 = 0, FA_F16 = 1 };

template <int MODE>
__device__ __forceinline__ uint32_t fa_pack(float lo, float hi) {
    return MODE == FA_BF16 ? tri_pack_bf16x2(lo, hi) : tri_pack_f16x2(lo, hi);
}

// The value a packed operand element holds (the low half of `bits`), back in fp32.
template <int MODE>
__device__ __forceinline__ float fa_low_as_float(uint32_t bits) {
    const uint16_t h = (uint16_t)(bits & 0xffffu);
    if (MODE == FA_BF16) return __uint_as_float((uint32_t)h << 16);
    __half v;
    memcpy(&v, &h, 2);
    return __half2float(v);
}

// ROWS x COLS elements of a row-major matrix (row r at src + r·stride) into shared memory as 16-bit
// pairs, dst row r at dst + r·DST_STRIDE; rows at or past `rows` and columns at or past `cols` are
// zero. Eight consecutive columns per thread and step: fp32 ones two 16-byte loads, rounded and packed;
// 16-bit ones (T is then the kernel's operand type) one 16-byte load, stored as they are; one 16-byte
// store. `cols` is a multiple of 8.
template <int MODE, int ROWS, int COLS, int DST_STRIDE, typename T>
__device__ __forceinline__ void fa_load_tile(uint16_t* dst, const T* __restrict__ src, uint64_t stride,
                                             uint32_t rows, uint32_t cols, unsigned tid) {
    constexpr int PER_ROW = COLS / 8, STEPS = ROWS * PER_ROW / FA_THREADS;
    static_assert(ROWS * PER_ROW % FA_THREADS == 0, "whole steps");
#pragma unroll 2
    for (int i = 0; i < STEPS; ++i) {
        const unsigned e = tid + FA_THREADS * i, r = e / PER_ROW, c = 8 * (e % PER_ROW);
        uint4 packed = make_uint4(0u, 0u, 0u, 0u);
        if (r < rows && c < cols) {
            if constexpr (sizeof(T) == 2) {
                packed = *reinterpret_cast<const uint4*>(src + r * stride + c);
            } else {
                const float4* s = reinterpret_cast<const float4*>(src + r * stride + c);
                const float4 a = s[0], b = s[1];
                packed = make_uint4(fa_pack<MODE>(a.x, a.y), fa_pack<MODE>(a.z, a.w), fa_pack<MODE>(b.x, b.y),
                                    fa_pack<MODE>(b.z, b.w));
            }
        }
        *reinterpret_cast<uint4*>(dst + r * DST_STRIDE + c) = packed;
    }
}

// acc += A·B for one m16 row block and 8 n8 tiles (64 columns): a k16 step of Q·Kᵀ over a key block,
// or of P·V over a 64-column group of the output.
#define FA_NT 8
template <int MODE>
__device__ __forceinline__ void fa_mma(float (&acc)[1][FA_NT][4], const uint32_t (&a)[1][4], const uint32_t (&b)[FA_NT][2]) {
    if (MODE == FA_BF16)
        tri_mma_bf16_16816_tiles<1, FA_NT>(acc, a, b);
    else
        tri_mma_f16_16816_tiles<1, FA_NT>(acc, a, b);
}

// T: the activations' storage type (fp32, or the kernel's own 16-bit type) of qkv and y.
template <int MODE, typename T>
__device__ __forceinline__ void attention_flash(const T* __restrict__ qkv, T* __restrict__ y,
                                                const TriAttentionParams& p) {
    // One buffer: the Q and K chunks during Q·Kᵀ, then the V block for P·V (18 KB a CTA, so shared
    // memory never limits the 3 CTAs per SM that the registers allow, even on sm_86's 100 KB).
    constexpr int QK = FA_BQ * FA_QK_STRIDE + FA_BKV * FA_QK_STRIDE, V = FA_BKV * FA_V_STRIDE;
    TRI_SHARED_ALIGNED(16, uint16_t, smem, [QK > V ? QK : V]);
    uint16_t* const Qs = smem;
    uint16_t* const Ks = smem + FA_BQ * FA_QK_STRIDE;
    uint16_t* const Vs = smem;

    const uint32_t P = p.positions, C = p.c;
    const uint64_t stride = 3ull * C;
    const uint32_t query_blocks = (P + FA_BQ - 1) / FA_BQ, image = blockIdx.x / query_blocks;
    const uint32_t q0 = (blockIdx.x % query_blocks) * FA_BQ, d0 = blockIdx.y * FA_DV;
    const T* img = qkv + (uint64_t)image * P * stride;
    const unsigned tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const unsigned g = lane / 4, t = lane % 4, li = lane % 8, lj = lane / 8;
    // Scores stay in q·k units; the scale and log2(e) apply inside the exponent.
    const float scale_log2 = p.scale * 1.4426950408889634f;

    float o[FA_DV / 64][1][FA_NT][4] = {};  // 64-column groups of the output
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // rows g and g + 8 of the warp's 16
    for (uint32_t kv0 = 0; kv0 < P; kv0 += FA_BKV) {
        const uint32_t keys = min(P - kv0, (uint32_t)FA_BKV);
        float s[1][FA_NT][4] = {};  // FA_BKV = 8 n8 tiles
        for (uint32_t c0 = 0; c0 < C; c0 += FA_KC) {
            fa_load_tile<MODE, FA_BQ, FA_KC, FA_QK_STRIDE>(Qs, img + (uint64_t)q0 * stride + c0, stride,
                                                           P > q0 ? P - q0 : 0, C - c0, tid);
            fa_load_tile<MODE, FA_BKV, FA_KC, FA_QK_STRIDE>(Ks, img + (uint64_t)kv0 * stride + C + c0, stride, keys,
                                                            C - c0, tid);
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < FA_KC; kk += 16) {
                // A (x4): (rows +0, k 0-7), (rows +8, k 0-7), (rows +0, k 8-15), (rows +8, k 8-15).
                uint32_t af[1][4];
                tri_ldmatrix_x4(af[0], &Qs[(warp * 16 + li + 8 * (lj % 2)) * FA_QK_STRIDE + kk + 8 * (lj / 2)]);
                // B (x4, untransposed K rows = B columns): (keys +0, k 0-7), (keys +0, k 8-15),
                // (keys +8, k 0-7), (keys +8, k 8-15): two n8 tiles' fragments.
                uint32_t bf[FA_NT][2];
#pragma unroll
                for (int np = 0; np < FA_NT / 2; ++np) {
                    uint32_t r[4];
                    tri_ldmatrix_x4(r, &Ks[(16 * np + li + 8 * (lj / 2)) * FA_QK_STRIDE + kk + 8 * (lj % 2)]);
                    bf[2 * np][0] = r[0];
                    bf[2 * np][1] = r[1];
                    bf[2 * np + 1][0] = r[2];
                    bf[2 * np + 1][1] = r[3];
                }
                fa_mma<MODE>(s, af, bf);
            }
            __syncthreads();
        }
        // Every warp is past its last Q·Kᵀ read: the V block takes the buffer while the softmax runs.
        fa_load_tile<MODE, FA_BKV, FA_DV, FA_V_STRIDE>(Vs, img + (uint64_t)kv0 * stride + 2 * C + d0, stride, keys,
                                                       C - d0, tid);

        // Online softmax over this block. Accumulator i of tile nt: row g + 8(i / 2), key 8nt + 2t + i % 2.
        float mx[2] = {m[0], m[1]};
#pragma unroll
        for (int nt = 0; nt < FA_NT; ++nt)
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                if (kv0 + 8 * nt + 2 * t + (i % 2) >= P) s[0][nt][i] = -INFINITY;
                mx[i / 2] = fmaxf(mx[i / 2], s[0][nt][i]);
            }
        float corr[2], neg_m[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(TRI_FULL_WARP, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(TRI_FULL_WARP, mx[r], 2));
            // Every block holds at least one key in range, so mx is finite; on the first block m is
            // -inf and the correction 0.
            corr[r] = exp2f((m[r] - mx[r]) * scale_log2);
            m[r] = mx[r];
            neg_m[r] = -mx[r] * scale_log2;
            l[r] *= corr[r];
        }
#pragma unroll
        for (int og = 0; og < FA_DV / 64; ++og)
#pragma unroll
            for (int nt = 0; nt < FA_NT; ++nt)
#pragma unroll
                for (int i = 0; i < 4; ++i) o[og][0][nt][i] *= corr[i / 2];

        // P as A fragments, one k16 step per pair of score tiles; the row sums add the rounded values.
        uint32_t pf[FA_BKV / 16][4];
#pragma unroll
        for (int ks = 0; ks < FA_BKV / 16; ++ks)
#pragma unroll
            for (int h = 0; h < 2; ++h)      // score tile 2ks + h: A registers 2h (row g), 2h + 1 (row g + 8)
#pragma unroll
                for (int r = 0; r < 2; ++r) {
                    const float* sv = s[0][2 * ks + h] + 2 * r;
                    const uint32_t packed = fa_pack<MODE>(exp2f(fmaf(sv[0], scale_log2, neg_m[r])),
                                                          exp2f(fmaf(sv[1], scale_log2, neg_m[r])));
                    l[r] += fa_low_as_float<MODE>(packed) + fa_low_as_float<MODE>(packed >> 16);
                    pf[ks][2 * h + r] = packed;
                }
        __syncthreads();  // V is in shared memory
        // B (x4.trans): (keys 0-7, n +0), (keys 8-15, n +0), (keys 0-7, n +8), (keys 8-15, n +8); one
        // 64-column group at a time, to hold 16 B registers instead of 32.
#pragma unroll
        for (int ks = 0; ks < FA_BKV / 16; ++ks) {
            const uint32_t a[1][4] = {{pf[ks][0], pf[ks][1], pf[ks][2], pf[ks][3]}};
#pragma unroll
            for (int og = 0; og < FA_DV / 64; ++og) {
                uint32_t bf[FA_NT][2];
#pragma unroll
                for (int np = 0; np < FA_NT / 2; ++np) {
                    uint32_t r[4];
                    tri_ldmatrix_x4_trans(
                        r, &Vs[(16 * ks + li + 8 * (lj % 2)) * FA_V_STRIDE + 64 * og + 16 * np + 8 * (lj / 2)]);
                    bf[2 * np][0] = r[0];
                    bf[2 * np][1] = r[1];
                    bf[2 * np + 1][0] = r[2];
                    bf[2 * np + 1][1] = r[3];
                }
                fa_mma<MODE>(o[og], a, bf);
            }
        }
        __syncthreads();  // every warp is done with V before the next Q and K chunks overwrite it
    }

    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        l[r] += __shfl_xor_sync(TRI_FULL_WARP, l[r], 1);
        l[r] += __shfl_xor_sync(TRI_FULL_WARP, l[r], 2);
        inv[r] = 1.0f / l[r];
    }
    T* out = y + (uint64_t)image * P * C;
#pragma unroll
    for (int og = 0; og < FA_DV / 64; ++og)
#pragma unroll
        for (int nt = 0; nt < FA_NT; ++nt)
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                const uint32_t row = q0 + warp * 16 + g + 8 * r, col = d0 + 64 * og + 8 * nt + 2 * t;
                if (row < P && col < C) {
                    const float a = o[og][0][nt][2 * r] * inv[r], b = o[og][0][nt][2 * r + 1] * inv[r];
                    if constexpr (sizeof(T) == 2)
                        *reinterpret_cast<uint32_t*>(out + (uint64_t)row * C + col) = fa_pack<MODE>(a, b);
                    else
                        *reinterpret_cast<float2*>(out + (uint64_t)row * C + col) = make_float2(a, b);
                }
            }
}

// Per operand type, over fp32 activations and (_io16) over activations stored in that 16-bit type.
#define FA_KERNEL(NAME, MODE, T)                                                                         \
    extern "C" __global__ void __launch_bounds__(FA_THREADS, 3)                                          \
    NAME(const T* __restrict__ qkv, T* __restrict__ y, const TriAttentionParams p) {                     \
        attention_flash<MODE, T>(qkv, y, p);                                                             \
    }
FA_KERNEL(attention_flash_bf16, FA_BF16, float)
FA_KERNEL(attention_flash_f16, FA_F16, float)
FA_KERNEL(attention_flash_bf16_io16, FA_BF16, __nv_bfloat16)
FA_KERNEL(attention_flash_f16_io16, FA_F16, __half)
