// tri_emu.h — force-included (g++ -include) when a kernels/*.cu file is compiled as host C++ for the
// CUDA driver emulator. It gives the CUDA C++ that the kernels use a host meaning:
//   - qualifiers (__global__, __device__, __forceinline__, __launch_bounds__, __align__, __restrict__);
//   - threadIdx/blockIdx/blockDim/gridDim of the emulated thread that is running (tri_emu_cur);
//   - __syncthreads as a block barrier and the warp collectives (shuffles, votes, __syncwarp) as
//     exchanges among the 32 lanes of a warp, both carried out by the emulator's fiber scheduler, which
//     also checks them (synccheck);
//   - atomics as host atomics, the fp32 intrinsics that round as the GPU does, half/bf16 from the
//     CUDA headers (round to nearest even, as the hardware converts);
//   - shared memory through the helpers of kernels/common/shared.cuh (a raw `__shared__` does not
//     compile here, so every shared declaration goes through the per-block arena the emulator fills
//     with a NaN pattern and bounds-checks).
// Not defined: __CUDACC__ and __CUDA_ARCH__ (kernels have no device/host forks).
#pragma once
#define TRI_EMU 1

// crt/host_defines.h defines these only where they are not defined yet: define them first.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static_assert(false, "declare shared memory with TRI_SHARED / TRI_DYNAMIC_SHARED (kernels/common/shared.cuh)");
#define __constant__ static_assert(false, "__constant__ memory is not emulated yet");

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmath>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <vector_functions.h>
#include <vector_types.h>

using std::isfinite;
using std::isinf;
using std::isnan;

#include "tri_emu_abi.h"

// The ABI struct holds plain {x, y, z} triples; CUDA's uint3 and dim3 have that layout.
#define threadIdx (reinterpret_cast<const uint3&>(tri_emu_cur->thread_idx))
#define blockIdx (reinterpret_cast<const uint3&>(tri_emu_cur->block_idx))
#define blockDim (reinterpret_cast<const dim3&>(tri_emu_cur->block_dim))
#define gridDim (reinterpret_cast<const dim3&>(tri_emu_cur->grid_dim))
static const int warpSize = 32;

// ---- barriers and warp collectives ------------------------------------------------------------------
enum TriEmuWarpOp {
    TRI_EMU_SHFL = 0,
    TRI_EMU_SHFL_UP = 1,
    TRI_EMU_SHFL_DOWN = 2,
    TRI_EMU_SHFL_XOR = 3,
    TRI_EMU_BALLOT = 4,
    TRI_EMU_ANY = 5,
    TRI_EMU_ALL = 6,
    TRI_EMU_SYNCWARP = 7,
    TRI_EMU_ACTIVEMASK = 8,
};

// The call site (file, line) identifies a barrier, so threads waiting at different barriers are a
// divergence error instead of a silent mis-synchronisation.
inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    tri_emu_syncthreads(file, line);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    tri_emu_warp_op(TRI_EMU_SYNCWARP, mask, 0, 0, 32, file, line);
}

template <typename T>
inline uint64_t tri_emu_bits(T v) {
    static_assert(sizeof(T) <= 8, "warp shuffles of types wider than 8 bytes are not emulated");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof(T));
    return b;
}
template <typename T>
inline T tri_emu_from_bits(uint64_t b) {
    T v;
    memcpy(&v, &b, sizeof(T));
    return v;
}

#define TRI_EMU_SHUFFLE(NAME, OP)                                                                         \
    template <typename T>                                                                                 \
    inline T NAME(unsigned mask, T v, int arg, int width = 32, const char* file = __builtin_FILE(),     \
                  int line = __builtin_LINE()) {                                                          \
        return tri_emu_from_bits<T>(tri_emu_warp_op(OP, mask, tri_emu_bits(v), arg, width, file, line)); \
    }
TRI_EMU_SHUFFLE(__shfl_sync, TRI_EMU_SHFL)
TRI_EMU_SHUFFLE(__shfl_up_sync, TRI_EMU_SHFL_UP)
TRI_EMU_SHUFFLE(__shfl_down_sync, TRI_EMU_SHFL_DOWN)
TRI_EMU_SHUFFLE(__shfl_xor_sync, TRI_EMU_SHFL_XOR)
#undef TRI_EMU_SHUFFLE

inline unsigned __ballot_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return (unsigned)tri_emu_warp_op(TRI_EMU_BALLOT, mask, pred != 0, 0, 32, file, line);
}
inline int __any_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return (int)tri_emu_warp_op(TRI_EMU_ANY, mask, pred != 0, 0, 32, file, line);
}
inline int __all_sync(unsigned mask, int pred, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    return (int)tri_emu_warp_op(TRI_EMU_ALL, mask, pred != 0, 0, 32, file, line);
}
// The lanes of this warp that have not exited (the emulator runs no lanes in lock-step, so "converged"
// means "live").
inline unsigned __activemask() { return (unsigned)tri_emu_warp_op(TRI_EMU_ACTIVEMASK, 0, 0, 0, 32, "", 0); }

inline void __trap() { tri_emu_fault_here(6, 0, 0, 0); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// ---- atomics (device-scope atomics are host atomics; checked like any access) ------------------------
#if TRI_EMU_CHECKED
#define TRI_EMU_ATOMIC_CHECK(p) tri_emu_check_access((const void*)(p), sizeof(*(p)), 1)
#else
#define TRI_EMU_ATOMIC_CHECK(p) ((void)0)
#endif

#define TRI_EMU_ATOMIC_INT(NAME, BUILTIN)                                              \
    template <typename T>                                                              \
    inline T NAME(T* p, T v) {                                                         \
        TRI_EMU_ATOMIC_CHECK(p);                                                       \
        return BUILTIN(p, v, __ATOMIC_RELAXED);                                        \
    }
TRI_EMU_ATOMIC_INT(tri_emu_atomic_add_int, __atomic_fetch_add)
TRI_EMU_ATOMIC_INT(atomicSub, __atomic_fetch_sub)
TRI_EMU_ATOMIC_INT(atomicAnd, __atomic_fetch_and)
TRI_EMU_ATOMIC_INT(atomicOr, __atomic_fetch_or)
TRI_EMU_ATOMIC_INT(atomicXor, __atomic_fetch_xor)
TRI_EMU_ATOMIC_INT(atomicExch, __atomic_exchange_n)
#undef TRI_EMU_ATOMIC_INT

template <typename T>
inline T tri_emu_atomic_update(T* p, T (*f)(T, T), T v) {
    TRI_EMU_ATOMIC_CHECK(p);
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(p, &old, f(old, v), true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}
inline int atomicAdd(int* p, int v) { return tri_emu_atomic_add_int(p, v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return tri_emu_atomic_add_int(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return tri_emu_atomic_add_int(p, v); }
inline float atomicAdd(float* p, float v) {
    return tri_emu_from_bits<float>(tri_emu_atomic_update<uint32_t>(
        reinterpret_cast<uint32_t*>(p),
        [](uint32_t a, uint32_t b) { return (uint32_t)tri_emu_bits(tri_emu_from_bits<float>(a) + tri_emu_from_bits<float>(b)); },
        (uint32_t)tri_emu_bits(v)));
}
inline double atomicAdd(double* p, double v) {
    return tri_emu_from_bits<double>(tri_emu_atomic_update<uint64_t>(
        reinterpret_cast<uint64_t*>(p),
        [](uint64_t a, uint64_t b) { return tri_emu_bits(tri_emu_from_bits<double>(a) + tri_emu_from_bits<double>(b)); },
        tri_emu_bits(v)));
}
template <typename T>
inline T atomicMin(T* p, T v) {
    return tri_emu_atomic_update<T>(p, [](T a, T b) { return b < a ? b : a; }, v);
}
template <typename T>
inline T atomicMax(T* p, T v) {
    return tri_emu_atomic_update<T>(p, [](T a, T b) { return b > a ? b : a; }, v);
}
template <typename T>
inline T atomicCAS(T* p, T compare, T v) {
    TRI_EMU_ATOMIC_CHECK(p);
    __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return compare;
}

// ---- arithmetic intrinsics: IEEE fp32 with round-to-nearest (the host build has no fp contraction) ---
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __frcp_rn(float a) { return 1.0f / a; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __saturatef(float a) { return a < 0.0f ? 0.0f : (a > 1.0f ? 1.0f : (a == a ? a : 0.0f)); }
inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }
inline float __expf(float a) { return expf(a); }
inline float __logf(float a) { return logf(a); }
inline float __sinf(float a) { return sinf(a); }
inline float __cosf(float a) { return cosf(a); }
inline float __fdividef(float a, float b) { return a / b; }
inline unsigned __float_as_uint(float a) { return (unsigned)tri_emu_bits(a); }
inline float __uint_as_float(unsigned a) { return tri_emu_from_bits<float>(a); }
inline int __float_as_int(float a) { return (int)(unsigned)tri_emu_bits(a); }
inline float __int_as_float(int a) { return tri_emu_from_bits<float>((unsigned)a); }
inline long long __double_as_longlong(double a) { return (long long)tri_emu_bits(a); }
inline double __longlong_as_double(long long a) { return tri_emu_from_bits<double>((uint64_t)a); }
inline int __popc(unsigned a) { return __builtin_popcount(a); }
inline int __popcll(unsigned long long a) { return __builtin_popcountll(a); }
inline int __clz(int a) { return a == 0 ? 32 : __builtin_clz((unsigned)a); }
inline int __ffs(int a) { return __builtin_ffs(a); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((uint64_t)a * b) >> 32); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
template <typename T>
inline T __ldg(const T* p) { return *p; }

// CUDA's overloaded min/max for integers (floats use fminf/fmaxf).
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }

// ---- shared memory (used by kernels/common/shared.cuh) ------------------------------------------------
// Every thread of a block asks for the declaration at `tag` and gets the same block-arena address.
#define TRI_EMU_SHARED_DECL(T, name, dims, A)                                                           \
    static const char tri_emu_tag_##name = 0;                                                           \
    typedef T tri_emu_type_##name dims;                                                                 \
    tri_emu_type_##name& name = *reinterpret_cast<tri_emu_type_##name*>(tri_emu_shared(                 \
        &tri_emu_tag_##name, sizeof(tri_emu_type_##name),                                               \
        (A) > alignof(tri_emu_type_##name) ? (A) : alignof(tri_emu_type_##name)))
#define TRI_EMU_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(tri_emu_cur->dynamic_shared)

// ---- the registration of a module's kernels (generated by build.rs, see src/registry.rs) ------------
#include <type_traits>

namespace tri_emu {
template <typename F, F f>
struct Kernel;
template <typename... A, void (*f)(A...)>
struct Kernel<void (*)(A...), f> {
    template <size_t... I>
    static void call(void** p, std::index_sequence<I...>) {
        f(*reinterpret_cast<std::remove_cv_t<A>*>(p[I])...);
    }
    // Arguments are read from the driver's `void**` exactly as the GPU would copy them: each by the
    // size of its C++ type.
    static void launch(void** p) { call(p, std::index_sequence_for<A...>{}); }
    static constexpr unsigned num_params = sizeof...(A);
    static constexpr unsigned sizes[sizeof...(A) + 1] = {(unsigned)sizeof(A)..., 0};
    static constexpr unsigned char pointers[sizeof...(A) + 1] = {(unsigned char)std::is_pointer<A>::value..., 0};
};
}  // namespace tri_emu

#define TRI_EMU_KERNEL(NAME, FN)                                                                   \
    {NAME, &tri_emu::Kernel<decltype(&FN), &FN>::launch, tri_emu::Kernel<decltype(&FN), &FN>::num_params, \
     tri_emu::Kernel<decltype(&FN), &FN>::sizes, tri_emu::Kernel<decltype(&FN), &FN>::pointers}
