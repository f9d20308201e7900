// resample.cu — NCSN++'s FIR resamplers (upfirdn2d) and the fixed 2x resamplers (nearest up, 2x2 mean
// down, bilinear up with align_corners=True) over NHWC activations, one kernel per storage type (_f32,
// _bf16, _f16: widened on load, fp32 arithmetic, rounded on store). CPU twins:
// src/backend/cpu/resample.rs.
// Launch: 1-D grid-stride over the output, 256 threads per CTA; consecutive threads take consecutive
// channels of one output pixel, so the loads of every tap coalesce.
#include "common/params.h"
#include "common/nhwc.cuh"
#include "common/storage.cuh"

// The source index along one axis of padded-grid index i, or -1 where the grid holds an inserted zero
// or padding.
__device__ __forceinline__ int64_t upfirdn_src(int64_t i, int64_t pad0, int64_t up, int64_t extent) {
    const int64_t u = i - pad0;
    if (u < 0 || u >= extent || u % up != 0) return -1;
    return u / up;
}

// Taps in the CPU twin's order (rows, then columns, of the flipped kernel), summed in fp32 with
// separately rounded products: the same result, bit for bit, for the same order of additions.
template <typename T>
__device__ __forceinline__ void upfirdn2d_body(const T* __restrict__ x, T* __restrict__ y, const TriUpFirDnParams& p) {
    const TriNhwc s = p.in;
    const uint64_t n = (uint64_t)s.n * p.ho * p.wo * s.c;
    const int64_t hu = (int64_t)s.h * p.up, wu = (int64_t)s.w * p.up;
    const int k = (int)p.k;
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        const TriNhwcAt at = tri_nhwc_at(i, p.ho, p.wo, s.c);
        const uint64_t b = at.b;
        const uint32_t oy = at.y, ox = at.x, ch = at.ch;
        float acc = 0.0f;
        for (int ty = 0; ty < k; ++ty) {
            const int64_t iy = upfirdn_src((int64_t)oy * p.down + ty, p.pad0, p.up, hu);
            if (iy < 0) continue;
            for (int tx = 0; tx < k; ++tx) {
                const int64_t ix = upfirdn_src((int64_t)ox * p.down + tx, p.pad0, p.up, wu);
                if (ix < 0) continue;
                const float w = p.taps[(k - 1 - ty) * k + (k - 1 - tx)];
                acc = __fadd_rn(acc, __fmul_rn(tri_load_f32(x + ((b * s.h + iy) * s.w + ix) * s.c + ch), w));
            }
        }
        tri_store_f32(y + i, acc);
    }
}
#define TRI_UPFIRDN2D(NAME, T)                                                                           \
    extern "C" __global__ void upfirdn2d_##NAME(const T* __restrict__ x, T* __restrict__ y, const TriUpFirDnParams p) { \
        upfirdn2d_body(x, y, p);                                                                         \
    }
TRI_UPFIRDN2D(f32, float)
TRI_UPFIRDN2D(bf16, __nv_bfloat16)
TRI_UPFIRDN2D(f16, __half)

template <typename T>
__device__ __forceinline__ void resample2x_body(const T* __restrict__ x, T* __restrict__ y,
                                                const TriResample2xParams& p) {
    const TriNhwc s = p.in;
    const bool down = p.mode == TRI_RESAMPLE_MEAN_DOWN;
    const uint32_t ho = down ? s.h / 2 : s.h * 2, wo = down ? s.w / 2 : s.w * 2;
    const uint64_t n = (uint64_t)s.n * ho * wo * s.c;
    for (uint64_t i = tri_global_thread(); i < n; i += tri_grid_threads()) {
        const TriNhwcAt at = tri_nhwc_at(i, ho, wo, s.c);
        const uint64_t b = at.b;
        const uint32_t oy = at.y, ox = at.x, ch = at.ch;
        auto in = [&](uint32_t yy, uint32_t xx) { return tri_load_f32(x + ((b * s.h + yy) * s.w + xx) * s.c + ch); };
        if (p.mode == TRI_RESAMPLE_NEAREST_UP) {
            tri_store_f32(y + i, in(oy / 2, ox / 2));
        } else if (down) {
            // The CPU twin sums the four in row order, then divides.
            float sum = __fadd_rn(__fadd_rn(__fadd_rn(in(2 * oy, 2 * ox), in(2 * oy, 2 * ox + 1)),
                                            in(2 * oy + 1, 2 * ox)),
                                  in(2 * oy + 1, 2 * ox + 1));
            tri_store_f32(y + i, sum / 4.0f);
        } else {
            // align_corners=True: output i samples input i·(in − 1)/(out − 1).
            auto pos = [](uint32_t o, uint32_t n_in, uint32_t n_out, uint32_t& i0, uint32_t& i1, float& f) {
                if (n_out <= 1 || n_in <= 1) {
                    i0 = i1 = 0;
                    f = 0.0f;
                    return;
                }
                const float src = __fmul_rn((float)o, (float)(n_in - 1) / (float)(n_out - 1));
                i0 = min((uint32_t)floorf(src), n_in - 1);
                i1 = min(i0 + 1, n_in - 1);
                f = __fsub_rn(src, (float)i0);
            };
            uint32_t y0, y1, x0, x1;
            float fy, fx;
            pos(oy, s.h, ho, y0, y1, fy);
            pos(ox, s.w, wo, x0, x1, fx);
            const float top = __fadd_rn(__fmul_rn(in(y0, x0), 1.0f - fx), __fmul_rn(in(y0, x1), fx));
            const float bot = __fadd_rn(__fmul_rn(in(y1, x0), 1.0f - fx), __fmul_rn(in(y1, x1), fx));
            tri_store_f32(y + i, __fadd_rn(__fmul_rn(top, 1.0f - fy), __fmul_rn(bot, fy)));
        }
    }
}
#define TRI_RESAMPLE2X(NAME, T)                                                                          \
    extern "C" __global__ void resample2x_##NAME(const T* __restrict__ x, T* __restrict__ y,             \
                                                 const TriResample2xParams p) {                          \
        resample2x_body(x, y, p);                                                                        \
    }
TRI_RESAMPLE2X(f32, float)
TRI_RESAMPLE2X(bf16, __nv_bfloat16)
TRI_RESAMPLE2X(f16, __half)
