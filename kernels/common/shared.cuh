// shared.cuh — shared-memory declarations, one spelling for the GPU and for the driver emulator:
//   TRI_SHARED(float, tile, [16][64]);               static shared array of a CTA
//   TRI_SHARED_ALIGNED(16, float, tile, [16][64]);   the same with a stronger alignment (float4 reads)
//   TRI_DYNAMIC_SHARED(float, smem);                 the launch's dynamic shared memory
// nvcc sees plain __shared__ declarations. The emulator (crates/cuda-emu/include/tri_emu.h, where a raw
// __shared__ does not compile) places each declaration in its per-block arena, which it fills with a
// NaN pattern at block start and bounds-checks byte by byte, so uninitialised and out-of-bounds shared
// accesses are caught on the CPU.
#pragma once

#if defined(TRI_EMU)
#define TRI_SHARED_ALIGNED(A, T, name, dims) TRI_EMU_SHARED_DECL(T, name, dims, A)
#define TRI_SHARED(T, name, dims) TRI_EMU_SHARED_DECL(T, name, dims, 1)
#define TRI_DYNAMIC_SHARED(T, name) TRI_EMU_DYNAMIC_SHARED(T, name)
#else
#define TRI_SHARED_ALIGNED(A, T, name, dims) __shared__ __align__(A) T name dims
#define TRI_SHARED(T, name, dims) __shared__ T name dims
#define TRI_DYNAMIC_SHARED(T, name) extern __shared__ __align__(16) T name[]
#endif
