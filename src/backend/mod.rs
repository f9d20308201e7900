//! The backend split: every op is one method of [`BackendStorage`], implemented once for host memory
//! ([`cpu::CpuStorage`], the reference and fallback) and once for GPU memory ([`cuda::CudaStorage`],
//! the kernels). Each op X has the same stem everywhere: `kernels/X.cu`, `backend/cuda/X.rs` (its
//! launch), `backend/cpu/X.rs` (its reference) and `ops/X.rs` (its validation). The ops layer validates
//! arguments and dispatches; by then shapes and dtypes are known to be consistent, so backends only
//! check what they alone can (e.g. what an `unsafe` launch relies on, driver errors).

pub mod cpu;
pub mod cuda;
pub mod geometry;

use crate::dtype::DType;
use crate::error::Result;
use crate::kernels::params::{
    TriCldEmParams, TriDdganPosteriorParams, TriRandnParams, TriSscsStepParams,
};
use geometry::{
    Activation, BinaryOp, ChannelAffine, Conv2dGeometry, GroupNormGeometry, Nhwc, Resample2x,
    UpFirDnGeometry,
};

pub trait BackendStorage: Sized {
    // ---- philox_normal --------------------------------------------------------------------------
    /// Overwrites every element with Philox normals (see `crate::rng`), rounded to the storage type.
    fn randn_philox(&mut self, p: &TriRandnParams) -> Result<()>;

    // ---- elementwise ----------------------------------------------------------------------------
    /// self = a * x + b * self, in fp32, rounded once to the storage type.
    fn axpby(&mut self, x: &Self, a: f32, b: f32) -> Result<()>;
    /// A copy converted to `dtype` (round to nearest even).
    fn cast(&self, dtype: DType) -> Result<Self>;

    // ---- finite ---------------------------------------------------------------------------------
    /// Writes `step` into `slot` (one 4-byte word, u32::MAX for none, kept in an F32 storage of one
    /// element and handled as raw bits) if `self` (f32) holds a non-finite value and the slot holds a
    /// later step.
    fn watch_nonfinite(&self, slot: &mut Self, step: u32) -> Result<()>;

    // ---- ddgan_posterior ------------------------------------------------------------------------
    /// One DDGAN posterior draw: (coef1 x0 + coef2 x_t) + noise_std noise, in fp32, rounded once.
    /// `noise` may be None only when `p.noise_std` is 0 (the last step).
    fn ddgan_posterior_step(
        x0: &Self,
        x_t: &Self,
        noise: Option<&Self>,
        p: &TriDdganPosteriorParams,
    ) -> Result<Self>;
    /// The same draw with the noise of `r` (the normals `randn_philox(r)` would write, rounded to the
    /// storage type) instead of a noise tensor; r describes x_t's [num_samples, elems_per_sample].
    fn ddgan_posterior_philox(
        x0: &Self,
        x_t: &Self,
        p: &TriDdganPosteriorParams,
        r: &TriRandnParams,
    ) -> Result<Self>;

    // ---- cld_sscs, cld_em -----------------------------------------------------------------------
    /// CLD's SSCS analytic half step: (x', v') from x, v (`[pixels, c]` f32 each) and the u-shaped
    /// noise tensor (`[pixels, 2c]`, x half first) or, without one, the Philox draw `p.noise`.
    fn cld_sscs_half_step(
        x: &Self,
        v: &Self,
        noise: Option<&Self>,
        p: &TriSscsStepParams,
    ) -> Result<(Self, Self)>;
    /// CLD's Euler–Maruyama step: (x', v') from x, v, the network output alpha (`[pixels, c]` f32
    /// each) and, by `p.noise_mode`, the noise tensor (`[pixels, 2c]`), the Philox draw or no noise.
    fn cld_em_step(
        x: &Self,
        v: &Self,
        alpha: &Self,
        noise: Option<&Self>,
        p: &TriCldEmParams,
    ) -> Result<(Self, Self)>;

    // ---- conv2d ---------------------------------------------------------------------------------
    fn conv2d(x: &Self, w: &Self, bias: Option<&Self>, g: &Conv2dGeometry) -> Result<Self>;
    /// `[rows, in]` · `[out, in]`ᵀ + bias → `[rows, out]`.
    fn linear(
        x: &Self,
        w: &Self,
        bias: Option<&Self>,
        rows: usize,
        in_f: usize,
        out_f: usize,
    ) -> Result<Self>;

    // ---- group_norm -----------------------------------------------------------------------------
    /// Normalises each (sample, group), then applies `affine` (the same struct as `channel_affine`,
    /// with `center` unused) and its activation.
    fn group_norm(
        x: &Self,
        g: &GroupNormGeometry,
        affine: &ChannelAffine<'_, Self>,
    ) -> Result<Self>;

    // ---- pointwise ------------------------------------------------------------------------------
    fn channel_affine(x: &Self, a: &ChannelAffine<'_, Self>) -> Result<Self>;
    fn activation(x: &Self, act: Activation) -> Result<Self>;
    fn binary(a: &Self, b: &Self, op: BinaryOp) -> Result<Self>;

    // ---- attention ------------------------------------------------------------------------------
    /// Single-head attention over `positions`, from packed `[n, positions, 3c]` q|k|v:
    /// softmax(q·kᵀ·c^-½)·v → `[n, positions, c]`.
    fn attention(qkv: &Self, n: usize, positions: usize, c: usize) -> Result<Self>;

    // ---- resample -------------------------------------------------------------------------------
    fn upfirdn2d(x: &Self, g: &UpFirDnGeometry, kernel: &[f32]) -> Result<Self>;
    fn resample2x(x: &Self, s: &Nhwc, mode: Resample2x) -> Result<Self>;

    // ---- layout ---------------------------------------------------------------------------------
    /// `[pixels, ca]` ++ `[pixels, cb]` → `[pixels, ca + cb]`.
    fn concat_channels(a: &Self, b: &Self, pixels: usize, ca: usize, cb: usize) -> Result<Self>;
    /// Channels `start..start + len` of `[pixels, c]`.
    fn slice_channels(x: &Self, pixels: usize, c: usize, start: usize, len: usize) -> Result<Self>;
    /// The `ho`×`wo` window at (`top`, `left`) of every image.
    fn crop(x: &Self, s: &Nhwc, top: usize, left: usize, ho: usize, wo: usize) -> Result<Self>;
    /// Mean over pixels: `[n, pixels, c]` → `[n, c]` (f64 sums).
    fn channel_mean(x: &Self, n: usize, pixels: usize, c: usize) -> Result<Self>;
    /// DDGAN's PixelNorm of `[rows, dim]`: each row over √(mean(row²) + 1e-8) (f64 sums).
    fn pixel_norm(x: &Self, rows: usize, dim: usize) -> Result<Self>;
    /// NCHW ↔ NHWC (`s` is the logical shape); `to_nhwc` picks the direction.
    fn permute_nchw(x: &Self, s: &Nhwc, to_nhwc: bool) -> Result<Self>;
}
