// attention.cu — NCSN++'s single-head self-attention over the H×W positions of one image, fused: the
// scores live in registers and are never written to memory. CPU twin: src/backend/cpu/attention.rs
// (logits by GEMM, row softmax, GEMM with the values).
//
// Correct-first version: one warp per query row. The lane holding channels lane, lane + 32, ... keeps
// its slice of q and of the output accumulator in registers (c <= 1024: 32 each); for every key the
// warp reduces q·k with shuffles and updates an online softmax (running max m, running sum l, the
// accumulator rescaled by exp(m_old − m_new)), so one pass over the keys and values suffices. Every
// warp of a CTA reads the same sample's keys and values, which L1/L2 serve; the tiled tensor-core
// version (keys staged in shared memory for a block of queries) is the performance issue's work.
//
// The online softmax sums the same terms as the CPU's two-pass softmax in a different order and
// rescales partial sums, so results agree to fp32 rounding, not bit for bit.
#include "common/params.h"
#include "common/storage.cuh"

#define ATT_WARPS 4
#define ATT_PER_LANE (TRI_ATTENTION_MAX_C / 32)

// Per activation storage type (_f32, _bf16, _f16: widened on load, fp32 arithmetic, rounded on store).
template <typename T>
__device__ __forceinline__ void attention_body(const T* __restrict__ qkv, T* __restrict__ y, const TriAttentionParams& p) {
    const uint32_t lane = threadIdx.x & 31;
    const uint64_t row = (uint64_t)blockIdx.x * ATT_WARPS + (threadIdx.x >> 5);
    if (row >= (uint64_t)p.n * p.positions) return;  // whole warps exit together
    const uint64_t stride = 3ull * p.c;
    const uint64_t b = row / p.positions;
    const T* q = qkv + row * stride;
    const T* keys = qkv + b * p.positions * stride + p.c;
    const T* values = keys + p.c;
    const uint32_t per = (p.c + 31) / 32;

    float qr[ATT_PER_LANE], acc[ATT_PER_LANE];
#pragma unroll
    for (int i = 0; i < ATT_PER_LANE; ++i) {
        const uint32_t e = lane + 32 * i;
        qr[i] = (i < per && e < p.c) ? tri_load_f32(q + e) : 0.0f;
        acc[i] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (uint32_t j = 0; j < p.positions; ++j) {
        const T* k = keys + j * stride;
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < ATT_PER_LANE; ++i) {
            const uint32_t e = lane + 32 * i;
            if (i < per && e < p.c) s = fmaf(qr[i], tri_load_f32(k + e), s);
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        s *= p.scale;
        const float m_new = fmaxf(m, s);
        const float corr = expf(m - m_new);  // 0 on the first key (m = -inf)
        const float pj = expf(s - m_new);
        l = fmaf(l, corr, pj);
        const T* v = values + j * stride;
#pragma unroll
        for (int i = 0; i < ATT_PER_LANE; ++i) {
            const uint32_t e = lane + 32 * i;
            if (i < per && e < p.c) acc[i] = fmaf(pj, tri_load_f32(v + e), acc[i] * corr);
        }
        m = m_new;
    }
    const float inv = 1.0f / l;
#pragma unroll
    for (int i = 0; i < ATT_PER_LANE; ++i) {
        const uint32_t e = lane + 32 * i;
        if (i < per && e < p.c) tri_store_f32(y + row * p.c + e, acc[i] * inv);
    }
}
#define TRI_ATTENTION(NAME, T)                                                                           \
    extern "C" __global__ void __launch_bounds__(ATT_WARPS * 32)                                         \
    attention_##NAME(const T* __restrict__ qkv, T* __restrict__ y, const TriAttentionParams p) {         \
        attention_body(qkv, y, p);                                                                       \
    }
TRI_ATTENTION(f32, float)
TRI_ATTENTION(bf16, __nv_bfloat16)
TRI_ATTENTION(f16, __half)
