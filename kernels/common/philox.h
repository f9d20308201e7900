// philox.h — Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11) and the
// Box–Muller transform that turns its words into standard normals.
//
// Compiled by nvcc for the kernels and by the host C++ compiler for the CPU path, so both run this one
// implementation. The 32-bit words are bit-identical on host and device (integer arithmetic only). The
// normals use logf, sqrtf and sin/cos(pi x), whose host (glibc) and device (CUDA, no fast-math) results
// can differ by a few ulp; tests compare them with a tolerance stated there.
#pragma once

#include "portable.h"
#include "params.h"

#if !defined(__CUDACC__)
#include <math.h>
#endif

#define TRI_PHILOX_M0 0xD2511F53u
#define TRI_PHILOX_M1 0xCD9E8D57u
#define TRI_PHILOX_W0 0x9E3779B9u  // golden ratio
#define TRI_PHILOX_W1 0xBB67AE85u  // sqrt(3) - 1

typedef struct TriU32x4 {
    uint32_t v[4];
} TriU32x4;

TRI_HD uint32_t tri_mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
#if defined(__CUDA_ARCH__)
    *hi = __umulhi(a, b);
    return a * b;
#else
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
#endif
}

TRI_HD TriU32x4 tri_philox4x32_round(TriU32x4 c, uint32_t k0, uint32_t k1) {
    uint32_t hi0, hi1;
    uint32_t lo0 = tri_mulhilo32(TRI_PHILOX_M0, c.v[0], &hi0);
    uint32_t lo1 = tri_mulhilo32(TRI_PHILOX_M1, c.v[2], &hi1);
    TriU32x4 r;
    r.v[0] = hi1 ^ c.v[1] ^ k0;
    r.v[1] = lo1;
    r.v[2] = hi0 ^ c.v[3] ^ k1;
    r.v[3] = lo0;
    return r;
}

// Ten rounds, the key bumped by the Weyl constants between rounds (Random123's philox4x32_R(10, ...)).
TRI_HD TriU32x4 tri_philox4x32_10(TriU32x4 ctr, uint32_t k0, uint32_t k1) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += TRI_PHILOX_W0;
            k1 += TRI_PHILOX_W1;
        }
        ctr = tri_philox4x32_round(ctr, k0, k1);
    }
    return ctr;
}

// A word to a float in the open interval (0, 1): the top 23 bits k give (k + 0.5) * 2^-23, which is
// exact in fp32, never 0 (so logf is finite) and never 1.
TRI_HD float tri_u32_to_open_unit(uint32_t x) {
    return ((float)(x >> 9) + 0.5f) * 1.1920928955078125e-07f;
}

// sin(pi x) and cos(pi x) for x in (0, 2). On the device sincospif needs no Payne–Hanek range
// reduction (which sinf/cosf would carry, with its local-memory table, for arguments the compiler
// cannot bound). The host has no sinpi, so it evaluates in double and rounds once: correctly rounded
// in practice, within the device's documented 1-ulp error of it.
TRI_HD void tri_sincospi(float x, float* s, float* c) {
#if defined(__CUDA_ARCH__)
    sincospif(x, s, c);
#else
    const double pi = 3.14159265358979323846;
    *s = (float)sin(pi * (double)x);
    *c = (float)cos(pi * (double)x);
#endif
}

// Box–Muller: two open-unit uniforms to two independent standard normals,
// z0 = r cos(2 pi u2), z1 = r sin(2 pi u2) with r = sqrt(-2 ln u1).
TRI_HD void tri_box_muller(uint32_t a, uint32_t b, float* z0, float* z1) {
    float u1 = tri_u32_to_open_unit(a);
    float u2 = tri_u32_to_open_unit(b);
    float r = sqrtf(-2.0f * logf(u1));
    float s, c;
    tri_sincospi(2.0f * u2, &s, &c);
    *z0 = r * c;
    *z1 = r * s;
}

// The global index of local sample `sample`: first_sample, plus the device word at first_sample_at
// on the GPU (a graph's per-batch base; the host reference never has one).
TRI_HD uint32_t tri_global_sample(const TriRandnParams* p, uint32_t sample) {
#if defined(__CUDACC__) || defined(TRI_EMU)
    const uint32_t base = p->first_sample_at ? *(const uint32_t*)(uintptr_t)p->first_sample_at : 0u;
#else
    const uint32_t base = 0u;
#endif
    return base + p->first_sample + sample;
}

// The four normals of Philox block `block` (elements 4*block .. 4*block+3) of one sample.
// Counter = (block, stream, global sample index, step); key = the 64-bit seed.
TRI_HD void tri_randn_block(const TriRandnParams* p, uint32_t global_sample, uint32_t block,
                            float out[4]) {
    TriU32x4 ctr;
    ctr.v[0] = block;
    ctr.v[1] = p->stream;
    ctr.v[2] = global_sample;
    ctr.v[3] = p->step;
    TriU32x4 w = tri_philox4x32_10(ctr, (uint32_t)p->seed, (uint32_t)(p->seed >> 32));
    tri_box_muller(w.v[0], w.v[1], &out[0], &out[1]);
    tri_box_muller(w.v[2], w.v[3], &out[2], &out[3]);
}
