// layout.cu — data movement between NHWC activations: channel concat and slice (NCSN++'s skip
// concatenations, the CLD u = [x; v] halves, NVAE's latent groups), spatial crop, NCHW <-> NHWC, and the
// per-channel spatial mean (squeeze-excitation's pooling), and DDGAN's PixelNorm, which reduces the same
// way. CPU twin: src/backend/cpu/layout.rs. Concat, slice, crop and the channel mean exist per
// activation storage type (_f32, _bf16, _f16; a copy keeps the bits, the mean sums widened values in
// f64 and rounds once); the NCHW boundary permute and PixelNorm (of the fp32 latent z) are fp32.
// Launch: 1-D grid-stride over the output, 256 threads per CTA; each thread computes its source index,
// so every store is coalesced (loads too, except for the transpose).
#include "common/params.h"
#include "common/nhwc.cuh"
#include "common/storage.cuh"

#define TRI_CONCAT_CHANNELS(NAME, T)                                                                     \
    extern "C" __global__ void concat_channels_##NAME(const T* __restrict__ a, const T* __restrict__ b,  \
                                                      T* __restrict__ y, const TriChannelCopyParams p) { \
        const uint32_t c = p.ca + p.cb;                                                                  \
        const uint64_t n = p.pixels * c;                                                                 \
        for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {                         \
            const uint64_t px = i / c;                                                                   \
            const uint32_t ch = (uint32_t)(i - px * c);                                                  \
            y[i] = ch < p.ca ? a[px * p.ca + ch] : b[px * p.cb + (ch - p.ca)];                           \
        }                                                                                                \
    }
TRI_CONCAT_CHANNELS(f32, float)
TRI_CONCAT_CHANNELS(bf16, __nv_bfloat16)
TRI_CONCAT_CHANNELS(f16, __half)

#define TRI_SLICE_CHANNELS(NAME, T)                                                                      \
    extern "C" __global__ void slice_channels_##NAME(const T* __restrict__ x, T* __restrict__ y,         \
                                                     const TriChannelCopyParams p) {                     \
        const uint64_t n = p.pixels * p.len;                                                             \
        for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {                         \
            const uint64_t px = i / p.len;                                                               \
            const uint32_t ch = (uint32_t)(i - px * p.len);                                              \
            y[i] = x[px * p.ca + p.start + ch];                                                          \
        }                                                                                                \
    }
TRI_SLICE_CHANNELS(f32, float)
TRI_SLICE_CHANNELS(bf16, __nv_bfloat16)
TRI_SLICE_CHANNELS(f16, __half)

#define TRI_CROP(NAME, T)                                                                                \
    extern "C" __global__ void crop_##NAME(const T* __restrict__ x, T* __restrict__ y, const TriCropParams p) { \
        const uint32_t c = p.in.c;                                                                       \
        const uint64_t n = (uint64_t)p.in.n * p.ho * p.wo * c;                                           \
        for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {                         \
            const TriNhwcAt at = tri_nhwc_at(i, p.ho, p.wo, c);                                          \
            const uint64_t b = at.b;                                                                     \
            const uint32_t oy = at.y, ox = at.x, ch = at.ch;                                             \
            y[i] = x[((b * p.in.h + oy + p.top) * p.in.w + ox + p.left) * c + ch];                       \
        }                                                                                                \
    }
TRI_CROP(f32, float)
TRI_CROP(bf16, __nv_bfloat16)
TRI_CROP(f16, __half)

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
#define TRI_CHANNEL_MEAN(NAME, T)                                                                        \
    extern "C" __global__ void channel_mean_##NAME(const T* __restrict__ x, T* __restrict__ y,           \
                                                   const TriChannelMeanParams p) {                       \
        const uint64_t n = (uint64_t)p.n * p.c;                                                          \
        for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {                         \
            const uint64_t b = i / p.c;                                                                  \
            const uint32_t ch = (uint32_t)(i - b * p.c);                                                 \
            const T* xs = x + b * p.pixels * p.c + ch;                                                   \
            double s = 0.0;                                                                              \
            for (uint32_t px = 0; px < p.pixels; ++px) s += (double)tri_load_f32(xs + (uint64_t)px * p.c); \
            tri_store_f32(y + i, (float)(s / (double)p.pixels));                                         \
        }                                                                                                \
    }
TRI_CHANNEL_MEAN(f32, float)
TRI_CHANNEL_MEAN(bf16, __nv_bfloat16)
TRI_CHANNEL_MEAN(f16, __half)

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
