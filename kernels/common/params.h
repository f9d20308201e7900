// params.h — launch-parameter structs shared by the kernels and the Rust host.
//
// This header is the single declaration of every struct passed by value to a kernel. The Rust side
// (src/kernels/params_bindings.rs) is generated from it by bindgen and committed; the test
// `tests/bindings_fresh.rs` regenerates it and fails when the committed copy is stale
// (TRILEMMA_BLESS=1 rewrites it). Keep fields naturally aligned and padding explicit, so the layout
// is the same for nvcc, the host C++ compiler and Rust's #[repr(C)].
#pragma once

#include <stdint.h>

// Standard-normal noise from Philox4x32-10 (kernels/philox_normal.cu; CPU reference: the same header
// compiled by csrc/host_math.cpp). The tensor is [num_samples, elems_per_sample], row-major.
// Element e of local sample s is a pure function of
//   (seed, stream, first_sample + s, step, e)
// so any split of a batch across launches, processes or devices reproduces the same noise.
typedef struct TriRandnParams {
    uint64_t seed;              // Philox key (low word = key[0], high word = key[1])
    uint64_t elems_per_sample;  // elements in one sample; at most 4 * 2^32
    uint32_t num_samples;       // samples in this tensor
    uint32_t first_sample;      // global index of this tensor's first sample
    uint32_t step;              // sampler step (counter word 3)
    uint32_t stream;            // noise purpose, e.g. sampler noise vs. DDGAN latent z (counter word 1)
    // Device address of a uint32 added to first_sample, or 0. A CUDA graph's arguments are fixed at
    // capture; its per-batch sample base lives in this device word, written before each replay.
    uint64_t first_sample_at;
} TriRandnParams;

// y[i] = a * x[i] + b * y[i], computed in fp32 whatever the storage type.
typedef struct TriAxpbyParams {
    uint64_t n;
    float a;
    float b;
} TriAxpbyParams;

// y[i] = convert(x[i]) between storage types, round-to-nearest-even.
typedef struct TriCastParams {
    uint64_t n;
} TriCastParams;

// The CLD SDE settings the SSCS coefficients depend on (kernels/common/cld_sscs.h); linear
// beta(t) = beta0 + beta1 t.
typedef struct TriCldSde {
    double beta0;
    double beta1;
    double m_inv;          // M^-1
    double sscs_num_stab;  // added to the half step's two variances (0 in every released config)
} TriCldSde;

// One SSCS analytic half step: x' = e1 (cxx x + cxv v) + l11 z_x, v' = e1 (cvx x + cvv v) + l21 z_x + l22 z_v.
typedef struct TriSscsHalfStep {
    double e1, cxx, cxv, cvx, cvv;
    double l11, l21, l22;
} TriSscsHalfStep;

// LSGM's latent SDE (kernels/common/lsgm_sde.h). geometric = 0: the VP-SDE with linear beta
// (beta_start, beta_end); geometric = 1: the geometric SDE (sigma2_min, sigma2_max). sigma2_0 is the
// variance at t = 0 in both.
typedef struct TriLsgmSde {
    int32_t geometric;
    int32_t pad;
    double beta_start;
    double beta_end;
    double sigma2_0;
    double sigma2_min;
    double sigma2_max;
} TriLsgmSde;

// One DDGAN posterior draw for a batch at one step (kernels/ddgan_posterior.cu):
// out = coef1 * x0_hat + coef2 * x_t + noise_std * noise, noise_std = 0 on the last step (no noise).
typedef struct TriDdganPosteriorParams {
    uint64_t n;
    float coef1;
    float coef2;
    float noise_std;
    uint32_t pad;
} TriDdganPosteriorParams;

// ------------------------------------------------------------------------------------------------
// Network ops (fp32 NHWC activations; src/backend/mod.rs describes each op, src/backend/cpu/ holds
// its CPU twin).

// Pointwise activations (src/backend/geometry.rs `Activation`); `arg` is LeakyReLU's slope or the soft
// clamp's bound.
#define TRI_ACT_IDENTITY 0
#define TRI_ACT_SILU 1
#define TRI_ACT_ELU 2
#define TRI_ACT_RELU 3
#define TRI_ACT_LEAKY_RELU 4
#define TRI_ACT_TANH 5
#define TRI_ACT_SIGMOID 6
#define TRI_ACT_SOFT_CLAMP 7
#define TRI_ACT_EXP 8

// y = act(x) over n elements (kernels/pointwise.cu).
typedef struct TriActivationParams {
    uint64_t n;
    int32_t act;  // TRI_ACT_*
    float arg;
} TriActivationParams;

// Elementwise binary ops (src/backend/geometry.rs `BinaryOp`).
#define TRI_BINARY_ADD 0
#define TRI_BINARY_SUB 1
#define TRI_BINARY_MUL 2

// y = a op b over n elements.
typedef struct TriBinaryParams {
    uint64_t n;
    int32_t op;  // TRI_BINARY_*
    uint32_t pad;
} TriBinaryParams;

// y = act((x - center) * scale + shift) over rows of c channels ([n, pixels, c]). Each vector is
// absent (has_* = 0, its pointer unused), per channel [c], or per sample [n, c] (*_per_sample = 1).
typedef struct TriChannelAffineParams {
    uint64_t rows;  // n * pixels
    uint32_t pixels;
    uint32_t c;
    uint32_t has_center, center_per_sample;
    uint32_t has_scale, scale_per_sample;
    uint32_t has_shift, shift_per_sample;
    int32_t act;  // TRI_ACT_*
    float act_arg;
} TriChannelAffineParams;

// GroupNorm over [n, pixels, c] with `groups` groups, then the per-channel or per-sample scale and
// shift of TriChannelAffineParams (center unused) and the activation (kernels/group_norm.cu).
typedef struct TriGroupNormParams {
    TriChannelAffineParams affine;
    uint32_t groups;
    float eps;
} TriGroupNormParams;

// The shape of an NHWC activation.
typedef struct TriNhwc {
    uint32_t n, h, w, c;
} TriNhwc;

// Channel-range copies (kernels/layout.cu). concat: [pixels, ca] ++ [pixels, cb]; slice: channels
// start..start + len of [pixels, c].
typedef struct TriChannelCopyParams {
    uint64_t pixels;
    uint32_t ca, cb;       // concat: the two widths; slice: the input width c and 0
    uint32_t start, len;   // slice only
} TriChannelCopyParams;

// crop: the ho x wo window at (top, left) of every image of shape `in`.
typedef struct TriCropParams {
    TriNhwc in;
    uint32_t top, left, ho, wo;
} TriCropParams;

// NCHW <-> NHWC of the logical shape `s`; to_nhwc picks the direction.
typedef struct TriPermuteParams {
    TriNhwc s;
    uint32_t to_nhwc;
    uint32_t pad;
} TriPermuteParams;

// Mean over pixels: [n, pixels, c] -> [n, c], accumulated in float64 as on the CPU.
typedef struct TriChannelMeanParams {
    uint32_t n, pixels, c, pad;
} TriChannelMeanParams;

// Fixed 2x resamplers (kernels/resample.cu; src/backend/geometry.rs `Resample2x`).
#define TRI_RESAMPLE_NEAREST_UP 0
#define TRI_RESAMPLE_MEAN_DOWN 1
#define TRI_RESAMPLE_BILINEAR_UP_ALIGNED 2  // bilinear with align_corners=True

typedef struct TriResample2xParams {
    TriNhwc in;
    uint32_t mode;  // TRI_RESAMPLE_*
    uint32_t pad;
} TriResample2xParams;

// upfirdn2d per channel over NHWC (kernels/resample.cu): zero-insert by `up`, pad pad0 before and
// pad1 after (negative: crop), true convolution with the k x k taps (k <= TRI_UPFIRDN_MAX_K), keep
// every `down`-th sample; output ho x wo.
#define TRI_UPFIRDN_MAX_K 8
typedef struct TriUpFirDnParams {
    TriNhwc in;
    uint32_t up, down;
    int32_t pad0, pad1;
    uint32_t k, ho, wo, pad;
    float taps[TRI_UPFIRDN_MAX_K * TRI_UPFIRDN_MAX_K];  // row-major, as given (flipped in the kernel)
} TriUpFirDnParams;

// Convolution as an implicit GEMM over NHWC input and HWIO weights (kernels/conv2d.cu,
// kernels/conv2d_tc.cu): per group g, out[m, g·cog + j] = (bias[g·cog + j] + Σ_k A[m, k] · B[k, j]
// + sample_bias[image of m, g·cog + j] + residual[m, g·cog + j]) · out_scale, where m runs over the n·ho·wo output pixels, k over
// (ky, kx, ci) of the kh·kw·cig window, A is the input pixel under the window (zero outside the padded
// image) and B[k, j] = w[k·b_k_stride + (g·cog + j)·b_n_stride]. HWIO weights have b_k_stride = co,
// b_n_stride = 1; a linear layer (weights [out, in]) is the 1x1 case with b_k_stride = 1,
// b_n_stride = in.
// Prologue (has_prologue): the input is normalised and activated as it is loaded, from the per-(image,
// channel) fold [n, c, 4] that group_norm_fold_f32 writes: act((x − f0)·f1 (+ f2 when f3 ≠ 0)), the
// same operations as group_norm_f32, so the GEMM sees the bits GroupNorm would have stored; taps
// outside the image stay 0 (PyTorch pads the activated tensor).
// Split-K: with splits > 1 the grid's z is groups · splits, CTA z = g · splits + s sums only
// k in [s · k_split, (s + 1) · k_split) and stores its partial at y + s · (n·ho·wo·co); the launcher
// then passes has_bias = has_residual = 0, out_scale = 1, and conv2d_splitk_reduce_f32 adds the
// partials in split order and applies the epilogue.
typedef struct TriConv2dParams {
    TriNhwc in;
    uint32_t co, kh, kw, stride;
    uint32_t pad_top, pad_left, ho, wo;
    uint32_t groups;
    uint32_t has_bias;
    uint32_t has_residual;
    float out_scale;
    uint32_t splits;   // >= 1
    uint32_t k_split;  // a multiple of 16 (the K step), >= 16
    uint32_t has_prologue;
    int32_t pro_act;  // TRI_ACT_*
    float pro_act_arg;
    uint32_t has_sample_bias;  // a second bias [n, co] per image, after bias[co]
    uint64_t b_k_stride, b_n_stride;
} TriConv2dParams;

// Single-head attention over `positions` from packed [n, positions, 3c] q|k|v (kernels/attention.cu):
// out[b, i] = Σ_j softmax_j(scale · q_i·k_j) v_j, scale = c^-1/2 as the host rounds it.
#define TRI_ATTENTION_MAX_C 1024
typedef struct TriAttentionParams {
    uint32_t n, positions, c;
    float scale;
} TriAttentionParams;

// One SSCS analytic half step over fp32 NHWC x and v ([B, H, W, C] each; kernels/cld_sscs.cu), with the
// coefficients of TriSscsHalfStep rounded to fp32 as the host sampler rounds them:
//   x' = (a_xx x + a_xv v) + l11 z_x,   v' = ((a_vx x + a_vv v) + l21 z_x) + l22 z_v,
// where z = [z_x; z_v] is the [B, H, W, 2C] draw: read from the noise tensor (has_noise = 1) or generated
// in the kernel from `noise` (element p·2C + ch of sample b is z_x, p·2C + C + ch is z_v).
typedef struct TriSscsStepParams {
    TriRandnParams noise;
    uint64_t pixels;      // B·H·W
    uint32_t c;
    uint32_t has_noise;
    float a_xx, a_xv, a_vx, a_vv;
    float l11, l21, l22;
    uint32_t pad;
} TriSscsStepParams;

// One Euler–Maruyama step of CLD's reverse SDE (or, without noise, the denoising step) over fp32 NHWC
// x, v and the network output alpha ([B, H, W, C] each; kernels/cld_em.cu), with coefficients rounded
// to fp32 as the host sampler rounds them:
//   s  = neg_ell·alpha + neg_inv_svv·v                       (the v-score)
//   x' = a_xv·v + x
//   v' = ((c_vx·x + c_vv·v) + c_vs·s) + diffusion·z_v        (the last term only with noise)
// z_v is the v half of a [B, H, W, 2C] draw: element p·2C + C + ch, generated from `noise`
// (TRI_CLD_NOISE_PHILOX), read from the noise tensor (TRI_CLD_NOISE_TENSOR), or absent
// (TRI_CLD_NOISE_NONE).
#define TRI_CLD_NOISE_PHILOX 0
#define TRI_CLD_NOISE_TENSOR 1
#define TRI_CLD_NOISE_NONE 2

typedef struct TriCldEmParams {
    TriRandnParams noise;
    uint64_t pixels;  // B·H·W
    uint32_t c;
    uint32_t noise_mode;  // TRI_CLD_NOISE_*
    float neg_ell, neg_inv_svv;
    float a_xv, c_vx, c_vv, c_vs, diffusion;
    uint32_t pad;
} TriCldEmParams;

// The ODE solvers' f64 vector arithmetic (kernels/ode.cu), over vectors of n doubles. A combination
// writes base + h · Σ_{j < terms} w_j k_j, summed in j order from −0 with separately rounded products
// (no fma), rounded to float for the network and, with write_wide, kept in double as the next state.
#define TRI_ODE_MAX_TERMS 7
typedef struct TriOdeCombineParams {
    uint64_t n;
    double h;
    double w[TRI_ODE_MAX_TERMS];
    uint32_t terms;
    uint32_t write_wide;
} TriOdeCombineParams;

// A step's scaled error, squared and summed over the n elements (kernels/ode.cu):
//   Σ_i (h · Σ_j w_j k_j[i] / (atol + rtol · max(|a_i|, |b_i|)))²
// in `blocks` partial sums of TRI_ODE_NORM_THREADS threads each, then one sum of the partials. The grid
// is a function of n alone, so the sum is the same on every GPU.
#define TRI_ODE_NORM_THREADS 256
#define TRI_ODE_NORM_MAX_BLOCKS 256
typedef struct TriOdeNormParams {
    uint64_t n;
    double h;
    double w[TRI_ODE_MAX_TERMS];
    double atol;
    double rtol;
    uint32_t terms;
    uint32_t blocks;
} TriOdeNormParams;

// CLD's probability-flow drift in reverse time over the f32 NHWC state u = [x; v] ([B, H, W, 2C]) and
// the network output alpha ([B, H, W, C]), into the solver's f64 derivative k ([B, H, W, 2C];
// kernels/ode_drift.cu). With the host's f64 products a_xv = M⁻¹β, c_vv = ΓM⁻¹β, c_vs = 2Γβ:
//   s    = (−v) / svv + alpha · neg_ell                  (f32, the official mixed score)
//   k_x  = −(a_xv · v)
//   k_v  = −(neg_b · x − c_vv · v) + (c_vs · s) · 0.5      (f64)
typedef struct TriCldOdeDriftParams {
    uint64_t pixels;  // B·H·W
    uint32_t c;
    uint32_t pad;
    double a_xv, neg_b, c_vv, c_vs;
    float svv, neg_ell;
} TriCldOdeDriftParams;

// LSGM's probability-flow drift over the f32 NHWC latent z and the network output eps ([B, H, W, C]
// each), with the per-channel mixing weight a = sigmoid(logit) (kernels/ode_drift.cu), in f32, widened
// into the solver's f64 derivative:
//   e = (1 − a) · (sd · z) + a · eps,   k = −(ft · z + (half_g2 · e) / sd)
typedef struct TriLsgmOdeDriftParams {
    uint64_t n;  // B·H·W·C
    uint32_t c;
    float ft, half_g2, sd;
} TriLsgmOdeDriftParams;
