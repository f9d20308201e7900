// layout.cu — data movement between fp32 NHWC activations: channel concat and slice (NCSN++'s skip
// concatenations, the CLD u = [x; v] halves, NVAE's latent groups), spatial crop, NCHW <-> NHWC, and the
// per-channel spatial mean (squeeze-excitation's pooling), and DDGAN's PixelNorm, which reduces the same
// way. CPU twin: src/backend/cpu/layout.rs.
// Launch: 1-D grid-stride over the output, 256 threads per CTA; each thread computes its source index,
// so every store is coalesced (loads too, except for the transpose).
#include "common/params.h"
#include "common/nhwc.cuh"
#include "common/storage.cuh"

extern "C" __global__ void concat_channels_f32(const float* __restrict__ a, const float* __restrict__ b,
                                               float* __restrict__ y, const TriChannelCopyParams p) {
    const uint32_t c = p.ca + p.cb;
    const uint64_t n = p.pixels * c;
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        const uint64_t px = i / c;
        const uint32_t ch = (uint32_t)(i - px * c);
        y[i] = ch < p.ca ? a[px * p.ca + ch] : b[px * p.cb + (ch - p.ca)];
    }
}

extern "C" __global__ void slice_channels_f32(const float* __restrict__ x, float* __restrict__ y,
                                              const TriChannelCopyParams p) {
    const uint64_t n = p.pixels * p.len;
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        const uint64_t px = i / p.len;
        const uint32_t ch = (uint32_t)(i - px * p.len);
        y[i] = x[px * p.ca + p.start + ch];
    }
}

extern "C" __global__ void crop_f32(const float* __restrict__ x, float* __restrict__ y, const TriCropParams p) {
    const uint32_t c = p.in.c;
    const uint64_t n = (uint64_t)p.in.n * p.ho * p.wo * c;
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        const TriNhwcAt at = tri_nhwc_at(i, p.ho, p.wo, c);
        const uint64_t b = at.b;
        const uint32_t oy = at.y, ox = at.x, ch = at.ch;
        y[i] = x[((b * p.in.h + oy + p.top) * p.in.w + ox + p.left) * c + ch];
    }
}

// Output-ordered: to_nhwc writes NHWC reading NCHW, otherwise the reverse. A tiled transpose through
// shared memory would coalesce the loads too; these run once per network call at the boundaries.
extern "C" __global__ void permute_nchw_f32(const float* __restrict__ x, float* __restrict__ y,
                                            const TriPermuteParams p) {
    const TriNhwc s = p.s;
    const uint64_t hw = (uint64_t)s.h * s.w;
    const uint64_t n = (uint64_t)s.n * hw * s.c;
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        if (p.to_nhwc) {  // i = (b·hw + px)·c + ch
            const uint32_t ch = (uint32_t)(i % s.c);
            const uint64_t bp = i / s.c;
            const uint64_t b = bp / hw, px = bp - b * hw;
            y[i] = x[(b * s.c + ch) * hw + px];
        } else {  // i = (b·c + ch)·hw + px
            const uint64_t px = i % hw;
            const uint64_t bc = i / hw;
            const uint64_t b = bc / s.c;
            const uint32_t ch = (uint32_t)(bc - b * s.c);
            y[i] = x[(b * hw + px) * s.c + ch];
        }
    }
}

// One thread per (sample, channel): consecutive threads read consecutive channels of each pixel.
// The sum runs in float64 in pixel order, as the CPU twin's.
extern "C" __global__ void channel_mean_f32(const float* __restrict__ x, float* __restrict__ y,
                                            const TriChannelMeanParams p) {
    const uint64_t n = (uint64_t)p.n * p.c;
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        const uint64_t b = i / p.c;
        const uint32_t ch = (uint32_t)(i - b * p.c);
        const float* xs = x + b * p.pixels * p.c + ch;
        double s = 0.0;
        for (uint32_t px = 0; px < p.pixels; ++px) s += (double)xs[(uint64_t)px * p.c];
        y[i] = (float)(s / (double)p.pixels);
    }
}

// DDGAN's PixelNorm of z: every (sample, channel) column over sqrt(mean of its squares + 1e-8), for
// z [rows, nz] as rows of nz one-channel pixels. One thread per column, f64 sums in pixel order and an
// f64 scale, as the CPU twin: bit-identical results. z has a few rows: this is about keeping the
// sampler's state on the device, not about speed.
extern "C" __global__ void pixel_norm_f32(const float* __restrict__ x, float* __restrict__ y,
                                          const TriChannelMeanParams p) {
    const uint64_t n = (uint64_t)p.n * p.c;
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        const uint64_t b = i / p.c;
        const uint32_t ch = (uint32_t)(i - b * p.c);
        const float* xs = x + b * p.pixels * p.c + ch;
        float* ys = y + b * p.pixels * p.c + ch;
        double s = 0.0;
        for (uint32_t px = 0; px < p.pixels; ++px) {
            const double v = (double)xs[(uint64_t)px * p.c];
            s += v * v;
        }
        const double inv = 1.0 / sqrt(s / (double)p.pixels + 1e-8);
        for (uint32_t px = 0; px < p.pixels; ++px) ys[(uint64_t)px * p.c] = (float)((double)xs[(uint64_t)px * p.c] * inv);
    }
}
