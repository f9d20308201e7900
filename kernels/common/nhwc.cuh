// nhwc.cuh — the coordinates of element i of an NHWC tensor [n, h, w, c] (channels fastest), for the
// grid-stride kernels that compute one output element per thread.
#pragma once

#include <stdint.h>

struct TriNhwcAt {
    uint64_t b;
    uint32_t y, x, ch;
};

__device__ __forceinline__ TriNhwcAt tri_nhwc_at(uint64_t i, uint32_t h, uint32_t w, uint32_t c) {
    TriNhwcAt a;
    a.ch = (uint32_t)(i % c);
    i /= c;
    a.x = (uint32_t)(i % w);
    i /= w;
    a.y = (uint32_t)(i % h);
    a.b = i / h;
    return a;
}
