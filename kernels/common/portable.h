// portable.h — qualifiers that let one header compile as CUDA device code (nvcc) and as host C++ (cc
// crate), so the CPU reference runs the kernels' own arithmetic.
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define TRI_HD __host__ __device__ __forceinline__
#else
#define TRI_HD static inline
#endif
