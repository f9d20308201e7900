// elementwise.cu — memory-bound elementwise kernels: axpby and storage-type casts.
//
// Every kernel computes in fp32 and converts on load and store (common/storage.cuh), so the result for
// a bf16 or f16 tensor is the fp32 result rounded once, exactly as the CPU reference
// (src/backend/cpu/elementwise.rs) computes it.
// Launch: 1-D grid-stride over n elements, 256 threads per CTA.
#include "common/params.h"
#include "common/storage.cuh"

// y = a * x + b * y. Written as two products and a sum (no fma contraction: __fmul_rn/__fadd_rn) so
// the fp32 result is bit-identical to the CPU reference.
template <typename T>
__device__ __forceinline__ void axpby_body(const T* __restrict__ x, T* __restrict__ y,
                                           const TriAxpbyParams p) {
    for (uint64_t i = tri_global_thread(); i < p.n; i += tri_grid_threads()) {
        const float ax = __fmul_rn(p.a, tri_load_f32(x + i));
        const float by = __fmul_rn(p.b, tri_load_f32(y + i));
        tri_store_f32(y + i, __fadd_rn(ax, by));
    }
}

extern "C" __global__ void axpby_f32(const float* x, float* y, const TriAxpbyParams p) {
    axpby_body(x, y, p);
}
extern "C" __global__ void axpby_bf16(const __nv_bfloat16* x, __nv_bfloat16* y, const TriAxpbyParams p) {
    axpby_body(x, y, p);
}
extern "C" __global__ void axpby_f16(const __half* x, __half* y, const TriAxpbyParams p) {
    axpby_body(x, y, p);
}

template <typename S, typename D>
__device__ __forceinline__ void cast_body(const S* __restrict__ x, D* __restrict__ y,
                                          const TriCastParams p) {
    for (uint64_t i = tri_global_thread(); i < p.n; i += tri_grid_threads()) {
        tri_store_f32(y + i, tri_load_f32(x + i));
    }
}

// cast_<from>_to_<to>. bf16 <-> f16 goes through fp32, which is exact for the widening half and
// rounds once for the narrowing half.
#define TRI_CAST(FROM, TO, S, D)                                                        \
    extern "C" __global__ void cast_##FROM##_to_##TO(const S* x, D* y, const TriCastParams p) { \
        cast_body(x, y, p);                                                             \
    }
TRI_CAST(f32, bf16, float, __nv_bfloat16)
TRI_CAST(f32, f16, float, __half)
TRI_CAST(bf16, f32, __nv_bfloat16, float)
TRI_CAST(f16, f32, __half, float)
TRI_CAST(bf16, f16, __nv_bfloat16, __half)
TRI_CAST(f16, bf16, __half, __nv_bfloat16)
