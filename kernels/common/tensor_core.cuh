// tensor_core.cuh — warp-level tensor-core building blocks for sm_80 and later: mma.sync (bf16/fp16 in,
// fp32 accumulate, m16n8k16; tf32 m16n8k8 and the 3xTF32 split that makes it fp32-accurate), ldmatrix
// (x1/x2/x4, optionally transposed) and cp.async (global to shared, with zero-fill and commit/wait
// groups).
//
// On the GPU each is one PTX instruction. For the CUDA driver emulator (TRI_EMU) each has a twin that
// reproduces the PTX ISA's fragment layout lane by lane: the warp's registers are exchanged between
// two warp barriers (so every twin is a warp collective, checked like one: all 32 lanes must arrive), and
// cp.async copies land only when a wait_group covers them, so a kernel that reads shared memory before
// waiting reads the emulator's NaN fill, as it could read stale data on a GPU.
//
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16 / m16n8k8"), g = lane / 4, t = lane % 4:
//   m16n8k16 bf16/f16, A 16x16 row-major: a[r] packs A[g + 8(r & 1)][2t + 8(r >> 1) + {0, 1}]
//                      B 16x8 (K x N):    b[r] packs B[2t + 8r + {0, 1}][g]
//   m16n8k8 tf32,      A 16x8:            a[r] = A[g + 8(r & 1)][t + 4(r >> 1)]
//                      B 8x8:             b[r] = B[t + 4r][g]
//   accumulators C/D 16x8 (both):         c[i] = C[g + 8(i >> 1)][2t + (i & 1)]
// A pair packs its lower column (or row) index in the low 16 bits.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#define TRI_FULL_WARP 0xffffffffu

// ---- element conversions -------------------------------------------------------------------------------

// Two floats as a packed bf16 pair (round to nearest even), `lo` in the low half.
__device__ __forceinline__ uint32_t tri_pack_bf16x2(float lo, float hi) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
}

// Two floats as a packed fp16 pair (round to nearest even), `lo` in the low half.
__device__ __forceinline__ uint32_t tri_pack_f16x2(float lo, float hi) {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
}

// x rounded to TF32 (10 explicit mantissa bits, round to nearest, ties away from zero), as a 32-bit
// pattern whose low 13 bits are zero: cvt.rna.tf32.f32.
__device__ __forceinline__ uint32_t tri_to_tf32(float x) {
#if defined(TRI_EMU)
    uint32_t b;
    memcpy(&b, &x, 4);
    if ((b & 0x7f800000u) == 0x7f800000u) return b;  // inf and NaN pass unchanged
    b += 0x1000u;                                     // half of the dropped 13 bits: ties away from zero
    return b & 0xffffe000u;
#else
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
    return r;
#endif
}

// The 3xTF32 split: x = big + small with both TF32, so big·big' + big·small' + small·big' recovers
// an fp32-accurate product (the small·small' term is below fp32's precision).
__device__ __forceinline__ void tri_split_tf32(float x, uint32_t& big, uint32_t& small) {
    big = tri_to_tf32(x);
    small = tri_to_tf32(x - __uint_as_float(big));
}

#if defined(TRI_EMU)
// ---- the emulated twins' helpers -----------------------------------------------------------------------

static inline float tri_emu_bf16_bits_to_float(uint32_t h) {
    const uint32_t b = h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static inline float tri_emu_f16_bits_to_float(uint32_t h) {
    __half v;
    const uint16_t bits = (uint16_t)h;
    memcpy(&v, &bits, 2);
    return __half2float(v);
}

static inline float tri_emu_bits_to_float(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

// Every lane's WORDS 32-bit words, gathered by every lane of the warp: all[src][i] is lane src's
// mine[i]. One exchange for the whole fragment set (two warp barriers) instead of a shuffle per word:
// the fibers of a warp run on one OS thread, so a thread-local scratch per warp is theirs alone, and
// the second barrier keeps a fast lane from overwriting it before the others have read.
template <int WORDS>
static inline void tri_emu_warp_gather(const uint32_t (&mine)[WORDS], uint32_t (&all)[32][WORDS]) {
    static thread_local uint32_t scratch[32][32][WORDS];  // [warp][lane][word]; 1024 threads at most
    const unsigned w = tri_emu_cur->warp, l = tri_emu_cur->lane;
    for (int i = 0; i < WORDS; ++i) scratch[w][l][i] = mine[i];
    __syncwarp();
    memcpy(all, scratch[w], sizeof all);
    __syncwarp();
}

// D = A·B + C for one m16n8 tile whose A (16 x K) and B (K x 8) the whole warp gathered; each lane
// keeps its four accumulators. The sum runs in k order in fp32 with fused multiply-adds.
template <int K>
static inline void tri_emu_mma_tile(float d[4], const float (&A)[16][K], const float (&B)[K][8], const float c[4]) {
    const unsigned lane = tri_emu_cur->lane, g = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; ++i) {
        const unsigned row = g + 8 * (i >> 1), col = 2 * t + (i & 1);
        float acc = c[i];
        for (int k = 0; k < K; ++k) acc = fmaf(A[row][k], B[k][col], acc);
        d[i] = acc;
    }
}

// The m16n8k16 operands of the warp, gathered from every lane's fragments (bf16 or fp16 pairs).
static inline void tri_emu_mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4],
                                     float (*to_float)(uint32_t)) {
    const uint32_t mine[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
    uint32_t all[32][6];
    tri_emu_warp_gather<6>(mine, all);
    float A[16][16], B[16][8];
    for (unsigned src = 0; src < 32; ++src) {
        const unsigned g = src >> 2, t = src & 3;
        for (int r = 0; r < 4; ++r) {
            const uint32_t v = all[src][r];
            const unsigned row = g + 8 * (r & 1), col = 2 * t + 8 * (r >> 1);
            A[row][col] = to_float(v & 0xffffu);
            A[row][col + 1] = to_float(v >> 16);
        }
        for (int r = 0; r < 2; ++r) {
            const uint32_t v = all[src][4 + r];
            const unsigned k = 2 * t + 8 * r;
            B[k][g] = to_float(v & 0xffffu);
            B[k + 1][g] = to_float(v >> 16);
        }
    }
    tri_emu_mma_tile<16>(d, A, B, c);
}

// A warp's MT x NT tiles of one k step from one exchange of all their fragments: acc[mt][nt] =
// A_mt · B_nt + acc[mt][nt]. 16-bit operands (m16n8k16) when K = 16, TF32 bit patterns (m16n8k8) when
// K = 8.
template <int K, int MT, int NT>
static inline void tri_emu_mma_tiles(float (&acc)[MT][NT][4], const uint32_t (&a)[MT][4], const uint32_t (&b)[NT][2],
                                     float (*to_float)(uint32_t)) {
    constexpr int W = MT * 4 + NT * 2;
    uint32_t mine[W];
    for (int mt = 0; mt < MT; ++mt)
        for (int r = 0; r < 4; ++r) mine[4 * mt + r] = a[mt][r];
    for (int nt = 0; nt < NT; ++nt)
        for (int r = 0; r < 2; ++r) mine[4 * MT + 2 * nt + r] = b[nt][r];
    uint32_t all[32][W];
    tri_emu_warp_gather<W>(mine, all);
    float B[NT][K][8];
    for (int nt = 0; nt < NT; ++nt)
        for (unsigned src = 0; src < 32; ++src) {
            const unsigned g = src >> 2, t = src & 3;
            for (int r = 0; r < 2; ++r) {
                const uint32_t v = all[src][4 * MT + 2 * nt + r];
                if (K == 16) {
                    B[nt][2 * t + 8 * r][g] = to_float(v & 0xffffu);
                    B[nt][2 * t + 8 * r + 1][g] = to_float(v >> 16);
                } else {
                    B[nt][t + 4 * r][g] = to_float(v);
                }
            }
        }
    for (int mt = 0; mt < MT; ++mt) {
        float A[16][K];
        for (unsigned src = 0; src < 32; ++src) {
            const unsigned g = src >> 2, t = src & 3;
            for (int r = 0; r < 4; ++r) {
                const uint32_t v = all[src][4 * mt + r];
                if (K == 16) {
                    const unsigned row = g + 8 * (r & 1), col = 2 * t + 8 * (r >> 1);
                    A[row][col] = to_float(v & 0xffffu);
                    A[row][col + 1] = to_float(v >> 16);
                } else {
                    A[g + 8 * (r & 1)][t + 4 * (r >> 1)] = to_float(v);
                }
            }
        }
        for (int nt = 0; nt < NT; ++nt) tri_emu_mma_tile<K>(acc[mt][nt], A, B[nt], acc[mt][nt]);
    }
}
#endif

// ---- mma.sync ------------------------------------------------------------------------------------------

// d = A·B + c, m16n8k16, bf16 operands (packed pairs), fp32 accumulators. All 32 lanes.
__device__ __forceinline__ void tri_mma_bf16_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
#if defined(TRI_EMU)
    tri_emu_mma_16816(d, a, b, c, tri_emu_bf16_bits_to_float);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%10, %11, %12, %13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
#endif
}

// d = A·B + c, m16n8k16, fp16 operands (packed pairs), fp32 accumulators. All 32 lanes.
__device__ __forceinline__ void tri_mma_f16_16816(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
#if defined(TRI_EMU)
    tri_emu_mma_16816(d, a, b, c, tri_emu_f16_bits_to_float);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%10, %11, %12, %13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
#endif
}

// d = A·B + c, m16n8k8, TF32 operands (tri_to_tf32 patterns), fp32 accumulators. All 32 lanes.
__device__ __forceinline__ void tri_mma_tf32_1688(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
#if defined(TRI_EMU)
    const uint32_t mine[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
    uint32_t all[32][6];
    tri_emu_warp_gather<6>(mine, all);
    float A[16][8], B[8][8];
    for (unsigned src = 0; src < 32; ++src) {
        const unsigned g = src >> 2, t = src & 3;
        for (int r = 0; r < 4; ++r) A[g + 8 * (r & 1)][t + 4 * (r >> 1)] = tri_emu_bits_to_float(all[src][r]);
        for (int r = 0; r < 2; ++r) B[t + 4 * r][g] = tri_emu_bits_to_float(all[src][4 + r]);
    }
    tri_emu_mma_tile<8>(d, A, B, c);
#else
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%10, %11, %12, %13};\n"
        : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
          "f"(c[3]));
#endif
}

// d = A·B + c to fp32 accuracy on TF32 tensor cores (3xTF32): fp32 operand fragments in the tf32
// layout, each split into big + small; the small·small term is dropped. All 32 lanes.
__device__ __forceinline__ void tri_mma_3xtf32_1688(float d[4], const float a[4], const float b[2], const float c[4]) {
    uint32_t a_big[4], a_small[4], b_big[2], b_small[2];
    for (int r = 0; r < 4; ++r) tri_split_tf32(a[r], a_big[r], a_small[r]);
    for (int r = 0; r < 2; ++r) tri_split_tf32(b[r], b_big[r], b_small[r]);
    // The small corrections first, so they are not lost against the big product's magnitude.
    float acc[4];
    tri_mma_tf32_1688(acc, a_small, b_big, c);
    tri_mma_tf32_1688(acc, a_big, b_small, acc);
    tri_mma_tf32_1688(d, a_big, b_big, acc);
}

// ---- a warp's tile of one k step ------------------------------------------------------------------------
// acc[mt][nt] = A_mt · B_nt + acc[mt][nt] for MT x NT mma tiles: what a mainloop's warp does per k
// step. On the GPU, MT·NT mma instructions; on the emulator one exchange of all the fragments (a
// twin's cost is its exchange, not its arithmetic).

template <int MT, int NT>
__device__ __forceinline__ void tri_mma_bf16_16816_tiles(float (&acc)[MT][NT][4], const uint32_t (&a)[MT][4],
                                                         const uint32_t (&b)[NT][2]) {
#if defined(TRI_EMU)
    tri_emu_mma_tiles<16, MT, NT>(acc, a, b, tri_emu_bf16_bits_to_float);
#else
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) tri_mma_bf16_16816(acc[mt][nt], a[mt], b[nt], acc[mt][nt]);
#endif
}

template <int MT, int NT>
__device__ __forceinline__ void tri_mma_f16_16816_tiles(float (&acc)[MT][NT][4], const uint32_t (&a)[MT][4],
                                                        const uint32_t (&b)[NT][2]) {
#if defined(TRI_EMU)
    tri_emu_mma_tiles<16, MT, NT>(acc, a, b, tri_emu_f16_bits_to_float);
#else
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) tri_mma_f16_16816(acc[mt][nt], a[mt], b[nt], acc[mt][nt]);
#endif
}

template <int MT, int NT>
__device__ __forceinline__ void tri_mma_tf32_1688_tiles(float (&acc)[MT][NT][4], const uint32_t (&a)[MT][4],
                                                        const uint32_t (&b)[NT][2]) {
#if defined(TRI_EMU)
    tri_emu_mma_tiles<8, MT, NT>(acc, a, b, tri_emu_bits_to_float);
#else
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) tri_mma_tf32_1688(acc[mt][nt], a[mt], b[nt], acc[mt][nt]);
#endif
}

// The 3xTF32 tile of fp32 fragments: per tile the same three products in the same order as
// tri_mma_3xtf32_1688 (small·big, big·small, big·big). On the GPU one m16 row of A is split at a time
// (8 registers live instead of 8·MT: the 128 × 128 tile's pipelined mainloop needs them); the emulator
// splits everything first, for one exchange per product.
template <int MT, int NT>
__device__ __forceinline__ void tri_mma_3xtf32_1688_tiles(float (&acc)[MT][NT][4], const float (&a)[MT][4],
                                                          const float (&b)[NT][2]) {
    uint32_t b_big[NT][2], b_small[NT][2];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int r = 0; r < 2; ++r) tri_split_tf32(b[nt][r], b_big[nt][r], b_small[nt][r]);
#if defined(TRI_EMU)
    uint32_t a_big[MT][4], a_small[MT][4];
    for (int mt = 0; mt < MT; ++mt)
        for (int r = 0; r < 4; ++r) tri_split_tf32(a[mt][r], a_big[mt][r], a_small[mt][r]);
    tri_mma_tf32_1688_tiles<MT, NT>(acc, a_small, b_big);
    tri_mma_tf32_1688_tiles<MT, NT>(acc, a_big, b_small);
    tri_mma_tf32_1688_tiles<MT, NT>(acc, a_big, b_big);
#else
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
        uint32_t a_big[4], a_small[4];
#pragma unroll
        for (int r = 0; r < 4; ++r) tri_split_tf32(a[mt][r], a_big[r], a_small[r]);
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
            tri_mma_tf32_1688(acc[mt][nt], a_small, b_big[nt], acc[mt][nt]);
            tri_mma_tf32_1688(acc[mt][nt], a_big, b_small[nt], acc[mt][nt]);
            tri_mma_tf32_1688(acc[mt][nt], a_big, b_big[nt], acc[mt][nt]);
        }
    }
#endif
}

// ---- ldmatrix ------------------------------------------------------------------------------------------
// Loads N (1, 2 or 4) 8x8 matrices of 16-bit elements from shared memory. Lane 8j + i gives the address
// of row i of matrix j (lanes past 8N give none that is used; every lane must pass a valid pointer).
// Register j of each lane receives matrix j's elements (row lane/4, columns 2(lane%4) + {0, 1});
// transposed, (rows 2(lane%4) + {0, 1}, column lane/4): the layout of an mma operand fragment.

#if defined(TRI_EMU)
template <int N, bool TRANS>
static inline void tri_emu_ldmatrix(uint32_t* r, const void* row_address) {
    const unsigned lane = tri_emu_cur->lane;
    uint32_t mine[2], all[32][2];
    memcpy(mine, &row_address, sizeof row_address);
    tri_emu_warp_gather<2>(mine, all);
    auto row = [&](unsigned src) {
        const void* p;
        memcpy(&p, all[src], sizeof p);
        return (const uint16_t*)p;
    };
    for (int j = 0; j < N; ++j) {
        uint16_t e[2];
        for (int i = 0; i < 2; ++i)
            e[i] = TRANS ? row(8 * j + 2 * (lane & 3) + i)[lane >> 2] : row(8 * j + (lane >> 2))[2 * (lane & 3) + i];
        r[j] = (uint32_t)e[0] | ((uint32_t)e[1] << 16);
    }
}
#else
__device__ __forceinline__ unsigned tri_shared_address(const void* p) {
    return (unsigned)__cvta_generic_to_shared(p);
}
#endif

__device__ __forceinline__ void tri_ldmatrix_x1(uint32_t r[1], const void* row_address) {
#if defined(TRI_EMU)
    tri_emu_ldmatrix<1, false>(r, row_address);
#else
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(tri_shared_address(row_address)));
#endif
}

__device__ __forceinline__ void tri_ldmatrix_x2(uint32_t r[2], const void* row_address) {
#if defined(TRI_EMU)
    tri_emu_ldmatrix<2, false>(r, row_address);
#else
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(tri_shared_address(row_address)));
#endif
}

__device__ __forceinline__ void tri_ldmatrix_x4(uint32_t r[4], const void* row_address) {
#if defined(TRI_EMU)
    tri_emu_ldmatrix<4, false>(r, row_address);
#else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(tri_shared_address(row_address)));
#endif
}

__device__ __forceinline__ void tri_ldmatrix_x1_trans(uint32_t r[1], const void* row_address) {
#if defined(TRI_EMU)
    tri_emu_ldmatrix<1, true>(r, row_address);
#else
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0])
                 : "r"(tri_shared_address(row_address)));
#endif
}

__device__ __forceinline__ void tri_ldmatrix_x2_trans(uint32_t r[2], const void* row_address) {
#if defined(TRI_EMU)
    tri_emu_ldmatrix<2, true>(r, row_address);
#else
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(tri_shared_address(row_address)));
#endif
}

__device__ __forceinline__ void tri_ldmatrix_x4_trans(uint32_t r[4], const void* row_address) {
#if defined(TRI_EMU)
    tri_emu_ldmatrix<4, true>(r, row_address);
#else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(tri_shared_address(row_address)));
#endif
}

// ---- cp.async ------------------------------------------------------------------------------------------
// Copies BYTES (4, 8 or 16; .cg takes 16 only) from global to shared memory without passing through
// registers; the first `src_bytes` (0..BYTES) come from `src`, the rest of `dst` is zero-filled (so a
// padding tap passes src_bytes = 0 with any valid pointer). `dst` and `src` are BYTES-aligned. The copies
// a thread issued since its last commit form a group at tri_cp_async_commit(); tri_cp_async_wait<N>()
// returns once at most N of its committed groups are still in flight. Other threads see the data only
// after a barrier that follows the wait.

template <int BYTES>
__device__ __forceinline__ void tri_cp_async_ca(void* dst, const void* src, int src_bytes = BYTES) {
    static_assert(BYTES == 4 || BYTES == 8 || BYTES == 16, "cp.async copies 4, 8 or 16 bytes");
#if defined(TRI_EMU)
    tri_emu_cp_async(dst, src, BYTES, (unsigned)src_bytes);
#else
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(tri_shared_address(dst)), "l"(src), "n"(BYTES),
                 "r"(src_bytes));
#endif
}

// 16 bytes through L2 only (.cg): for tiles each CTA reads once.
__device__ __forceinline__ void tri_cp_async_cg16(void* dst, const void* src, int src_bytes = 16) {
#if defined(TRI_EMU)
    tri_emu_cp_async(dst, src, 16, (unsigned)src_bytes);
#else
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(tri_shared_address(dst)), "l"(src),
                 "r"(src_bytes));
#endif
}

__device__ __forceinline__ void tri_cp_async_commit() {
#if defined(TRI_EMU)
    tri_emu_cp_async_commit();
#else
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}

template <int N>
__device__ __forceinline__ void tri_cp_async_wait() {
#if defined(TRI_EMU)
    tri_emu_cp_async_wait((unsigned)N);
#else
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#endif
}
