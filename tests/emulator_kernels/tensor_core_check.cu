// tensor_core_check.cu — one-warp kernels that exercise the tensor-core building blocks of
// kernels/common/tensor_core.cuh (tests/tensor_core.rs): ldmatrix's register layouts, one mma tile
// against a scalar GEMM for each operand type, and cp.async's zero-fill and groups. They run on the
// emulator (where the building blocks are emulated twins) and on a GPU (where they are the PTX
// instructions), against the same expectations, so a twin that drifts from the hardware shows there.
#include <stdint.h>

#include "../../kernels/common/shared.cuh"
#include "../../kernels/common/tensor_core.cuh"

// out[variant][lane][reg] for variants x1, x2, x4, x1.trans, x2.trans, x4.trans (4 regs each, unused
// ones 0) of four 8x8 matrices m (row-major, 16-bit elements, matrix j at m + 64j). One warp. Lane
// 8j + i passes the address of row i of matrix j.
extern "C" __global__ void __launch_bounds__(32) ldmatrix_layouts(const uint16_t* m, uint32_t* out) {
    TRI_SHARED_ALIGNED(16, uint16_t, tile, [256]);
    const unsigned lane = threadIdx.x;
    for (unsigned i = lane; i < 256; i += 32) tile[i] = m[i];
    __syncwarp();
    const uint16_t* row = &tile[64 * (lane / 8) + 8 * (lane % 8)];
    uint32_t r[6][4] = {};
    tri_ldmatrix_x1(r[0], row);
    tri_ldmatrix_x2(r[1], row);
    tri_ldmatrix_x4(r[2], row);
    tri_ldmatrix_x1_trans(r[3], row);
    tri_ldmatrix_x2_trans(r[4], row);
    tri_ldmatrix_x4_trans(r[5], row);
    for (int v = 0; v < 6; ++v)
        for (int k = 0; k < 4; ++k) out[(v * 32 + lane) * 4 + k] = r[v][k];
}

enum { MMA_BF16 = 0, MMA_F16 = 1, MMA_TF32 = 2, MMA_3XTF32 = 3 };

// d (16x8, row-major) = a (16xK, row-major) · b (Kx8, row-major) + c, one warp, K = 16 for the 16-bit
// types and 8 for TF32. The 16-bit operands go through shared memory and ldmatrix, as a GEMM mainloop
// loads them (A with x4, B with x2.trans from its row-major K x N tile); the TF32 ones are read from
// shared memory by the fragment layout itself (ldmatrix moves 16-bit elements only).
extern "C" __global__ void __launch_bounds__(32) mma_tile(int kind, const float* a, const float* b, const float* c,
                                                          float* d) {
    TRI_SHARED_ALIGNED(16, uint16_t, a16, [16 * 16]);
    TRI_SHARED_ALIGNED(16, uint16_t, b16, [16 * 8]);
    TRI_SHARED_ALIGNED(16, float, a32, [16 * 8]);
    TRI_SHARED_ALIGNED(16, float, b32, [8 * 8]);
    const unsigned lane = threadIdx.x, g = lane / 4, t = lane % 4;
    float cf[4], df[4];
    for (int i = 0; i < 4; ++i) cf[i] = c[(g + 8 * (i / 2)) * 8 + 2 * t + (i % 2)];
    if (kind == MMA_BF16 || kind == MMA_F16) {
        for (unsigned i = lane; i < 256; i += 32) {
            const float v = a[i];
            const uint32_t p = kind == MMA_BF16 ? tri_pack_bf16x2(v, 0.0f) : tri_pack_f16x2(v, 0.0f);
            a16[i] = (uint16_t)(p & 0xffffu);
        }
        for (unsigned i = lane; i < 128; i += 32) {
            const float v = b[i];
            const uint32_t p = kind == MMA_BF16 ? tri_pack_bf16x2(v, 0.0f) : tri_pack_f16x2(v, 0.0f);
            b16[i] = (uint16_t)(p & 0xffffu);
        }
        __syncwarp();
        // A: matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15).
        const unsigned j = lane / 8, i = lane % 8;
        uint32_t af[4], bf[2];
        tri_ldmatrix_x4(af, &a16[(i + 8 * (j % 2)) * 16 + 8 * (j / 2)]);
        // B (K x N row-major): matrices (k 0-7), (k 8-15); transposed, each lane gets its column.
        tri_ldmatrix_x2_trans(bf, &b16[(i + 8 * (j % 2)) * 8]);
        if (kind == MMA_BF16)
            tri_mma_bf16_16816(df, af, bf, cf);
        else
            tri_mma_f16_16816(df, af, bf, cf);
    } else {
        for (unsigned i = lane; i < 128; i += 32) a32[i] = a[i];
        for (unsigned i = lane; i < 64; i += 32) b32[i] = b[i];
        __syncwarp();
        float af[4], bf[2];
        for (int r = 0; r < 4; ++r) af[r] = a32[(g + 8 * (r % 2)) * 8 + t + 4 * (r / 2)];
        for (int r = 0; r < 2; ++r) bf[r] = b32[(t + 4 * r) * 8 + g];
        if (kind == MMA_TF32) {
            uint32_t at[4], bt[2];
            for (int r = 0; r < 4; ++r) at[r] = tri_to_tf32(af[r]);
            for (int r = 0; r < 2; ++r) bt[r] = tri_to_tf32(bf[r]);
            tri_mma_tf32_1688(df, at, bt, cf);
        } else {
            tri_mma_3xtf32_1688(df, af, bf, cf);
        }
    }
    for (int i = 0; i < 4; ++i) d[(g + 8 * (i / 2)) * 8 + 2 * t + (i % 2)] = df[i];
}

// cp.async from src (n floats) into shared memory and back out to dst (128 floats), one warp:
// - lanes 0-15: one 16-byte .cg copy each of src[4 lane .. 4 lane + 4), clipped to the first n floats
//   (the rest zero-filled), in group 0;
// - lanes 16-31: two .ca copies each (8 bytes, then 4 + 4 bytes as two 4-byte copies) of the next 64
//   floats, in group 1, full.
// dst[128 + i] is shared word i read after waiting for group 0 only: group 0's words have landed; group
// 1's may have on a GPU, and have not on the emulator (its copies land at the wait that covers them).
extern "C" __global__ void __launch_bounds__(32) cp_async_groups(const float* src, unsigned n, float* dst) {
    TRI_SHARED_ALIGNED(16, float, s, [128]);
    const unsigned lane = threadIdx.x;
    for (unsigned i = lane; i < 128; i += 32) s[i] = -1.0f;
    __syncwarp();
    if (lane < 16) {
        const unsigned first = 4 * lane;
        const int valid = first >= n ? 0 : (int)((n - first < 4 ? n - first : 4) * 4);
        // A fully clipped copy still passes a valid address (the start of src).
        tri_cp_async_cg16(&s[first], valid > 0 ? src + first : src, valid);
    }
    tri_cp_async_commit();
    if (lane >= 16) {
        const unsigned first = 64 + 4 * (lane - 16);
        tri_cp_async_ca<8>(&s[first], src + first);
        tri_cp_async_ca<4>(&s[first + 2], src + first + 2);
        tri_cp_async_ca<4>(&s[first + 3], src + first + 3);
    }
    tri_cp_async_commit();
    tri_cp_async_wait<1>();
    __syncwarp();
    for (unsigned i = lane; i < 128; i += 32) dst[128 + i] = s[i];
    __syncwarp();
    tri_cp_async_wait<0>();
    __syncwarp();
    for (unsigned i = lane; i < 128; i += 32) dst[i] = s[i];
}
