//! The backend split: the ops of each kernel stem X are one trait here (`XOps`), implemented once for
//! host memory in `backend/cpu/X.rs` ([`cpu::CpuStorage`], the reference and fallback) and once for GPU
//! memory in `backend/cuda/X.rs` ([`cuda::CudaStorage`], the kernels); [`BackendStorage`] is all of
//! them together. Each op X has the same stem everywhere: `kernels/X.cu`, `backend/cuda/X.rs` (its
//! launch), `backend/cpu/X.rs` (its reference) and `ops/X.rs` (its validation). The ops layer validates
//! arguments and dispatches; by then shapes and dtypes are known to be consistent, so backends only
//! check what they alone can (e.g. what an `unsafe` launch relies on, driver errors).

pub mod conv_plan;
pub mod cpu;
pub mod cuda;
pub mod geometry;

use crate::dtype::DType;
use crate::error::Result;
use crate::kernels::params::{
    TriCldEmParams, TriCldOdeDriftParams, TriDdganPosteriorParams, TriLsgmOdeDriftParams,
    TriRandnParams, TriSscsStepParams,
};
use geometry::{
    Activation, BinaryOp, ChannelAffine, Conv2dGeometry, GroupNormGeometry, LinearGeometry, Nhwc,
    Resample2x, UpFirDnGeometry, Window,
};

/// The ops of `kernels/philox_normal.cu`.
pub trait PhiloxNormalOps: Sized {
    /// Overwrites every element with Philox normals (see `crate::rng`), rounded to the storage type.
    fn randn_philox(&mut self, p: &TriRandnParams) -> Result<()>;
}

/// The ops of `kernels/elementwise.cu`.
pub trait ElementwiseOps: Sized {
    /// self = a * x + b * self, in fp32, rounded once to the storage type.
    fn axpby(&mut self, x: &Self, a: f32, b: f32) -> Result<()>;
    /// A copy converted to `dtype` (round to nearest even).
    fn cast(&self, dtype: DType) -> Result<Self>;
}

/// The ops of `kernels/finite.cu`.
pub trait FiniteOps: Sized {
    /// Writes `step` into `slot` (one 4-byte word, u32::MAX for none, kept in an F32 storage of one
    /// element and handled as raw bits) if `self` (f32) holds a non-finite value and the slot holds a
    /// later step.
    fn watch_nonfinite(&self, slot: &mut Self, step: u32) -> Result<()>;
}

/// The ops of `kernels/ddgan_posterior.cu`.
pub trait DdganPosteriorOps: Sized {
    /// One DDGAN posterior draw: (coef1 x0 + coef2 x_t) + noise_std noise, in fp32, rounded once to
    /// x_t's storage type.
    fn ddgan_posterior(d: PosteriorDraw<'_, Self>, p: &TriDdganPosteriorParams) -> Result<Self>;
}

/// The ops of `kernels/cld_sscs.cu`.
pub trait CldSscsOps: Sized {
    /// CLD's SSCS analytic half step: (x', v') from the state and the u-shaped noise tensor or,
    /// without one, the Philox draw `p.noise`.
    fn cld_sscs_half_step(s: CldState<'_, Self>, p: &TriSscsStepParams) -> Result<[Self; 2]>;
}

/// The ops of `kernels/cld_em.cu`.
pub trait CldEmOps: Sized {
    /// CLD's Euler–Maruyama step: (x', v') from the state, the network output alpha (`[pixels, c]`
    /// f32) and, by `p.noise_mode`, the noise tensor, the Philox draw or no noise.
    fn cld_em_step(s: CldState<'_, Self>, alpha: &Self, p: &TriCldEmParams) -> Result<[Self; 2]>;
}

/// What a convolution fuses around its GEMM: the prologue normalises and activates its input as it
/// is loaded, `act((x − f0)·f1 + f2)` from a GroupNorm fold `[n, cin, 4]`
/// ([`GroupNormOps::group_norm_fold`]); the epilogue adds and scales after the bias, in this order:
/// `y = (acc + bias + sample_bias + residual) · scale`, `sample_bias` `[n, co]` per image.
pub struct ConvEpilogue<'a, S> {
    pub prologue: Option<(&'a S, Activation)>,
    pub sample_bias: Option<&'a S>,
    pub residual: Option<&'a S>,
    pub scale: f32,
}

impl<S> ConvEpilogue<'_, S> {
    /// Nothing added, scale 1: the plain convolution.
    pub fn none() -> Self {
        ConvEpilogue {
            prologue: None,
            sample_bias: None,
            residual: None,
            scale: 1.0,
        }
    }
}

/// The ops of `kernels/conv2d.cu`.
pub trait Conv2dOps: Sized {
    /// `(x ⋆ w + bias + residual) · e.scale`, the residual `[n, ho, wo, co]` like the output.
    fn conv2d(
        x: &Self,
        w: &Self,
        bias: Option<&Self>,
        e: ConvEpilogue<'_, Self>,
        g: &Conv2dGeometry,
    ) -> Result<Self>;
    fn linear(x: &Self, w: &Self, bias: Option<&Self>, g: &LinearGeometry) -> Result<Self>;
}

/// The ops of `kernels/group_norm.cu`.
pub trait GroupNormOps: Sized {
    /// Normalises each (sample, group), then applies `affine` (the same struct as `channel_affine`,
    /// with `center` unused) and its activation.
    fn group_norm(
        x: &Self,
        g: &GroupNormGeometry,
        affine: &ChannelAffine<'_, Self>,
    ) -> Result<Self>;

    /// The same statistics and affine, folded for a convolution's prologue instead of applied:
    /// `[n, c, 4]` = (mean, rstd·scale, shift, 1 if there is a shift else 0) per sample and channel.
    /// `affine.act` is not applied (the convolution applies its own).
    fn group_norm_fold(
        x: &Self,
        g: &GroupNormGeometry,
        affine: &ChannelAffine<'_, Self>,
    ) -> Result<Self>;
}

/// The ops of `kernels/pointwise.cu`.
pub trait PointwiseOps: Sized {
    fn channel_affine(x: &Self, a: &ChannelAffine<'_, Self>) -> Result<Self>;
    fn activation(x: &Self, act: Activation) -> Result<Self>;
    fn binary(a: &Self, b: &Self, op: BinaryOp) -> Result<Self>;
}

/// The ops of `kernels/attention.cu`.
pub trait AttentionOps: Sized {
    /// Single-head attention over `positions`, from packed `[n, positions, 3c]` q|k|v:
    /// softmax(q·kᵀ·c^-½)·v → `[n, positions, c]`.
    fn attention(qkv: &Self, n: usize, positions: usize, c: usize) -> Result<Self>;
}

/// The ops of `kernels/resample.cu`.
pub trait ResampleOps: Sized {
    fn upfirdn2d(x: &Self, g: &UpFirDnGeometry, kernel: &[f32]) -> Result<Self>;
    fn resample2x(x: &Self, s: &Nhwc, mode: Resample2x) -> Result<Self>;
}

/// The ops of `kernels/layout.cu`.
pub trait LayoutOps: Sized {
    /// `[pixels, ca]` ++ `[pixels, cb]` → `[pixels, ca + cb]`.
    fn concat_channels(a: &Self, b: &Self, pixels: usize, ca: usize, cb: usize) -> Result<Self>;
    /// Channels `start..start + len` of `[pixels, c]`.
    fn slice_channels(x: &Self, pixels: usize, c: usize, start: usize, len: usize) -> Result<Self>;
    fn crop(x: &Self, s: &Nhwc, window: &Window) -> Result<Self>;
    /// Mean over pixels: `[n, pixels, c]` → `[n, c]` (f64 sums).
    fn channel_mean(x: &Self, n: usize, pixels: usize, c: usize) -> Result<Self>;
    /// DDGAN's PixelNorm of `[rows, dim]`: each row over √(mean(row²) + 1e-8) (f64 sums).
    fn pixel_norm(x: &Self, rows: usize, dim: usize) -> Result<Self>;
    /// NCHW ↔ NHWC (`s` is the logical shape); `to_nhwc` picks the direction.
    fn permute_nchw(x: &Self, s: &Nhwc, to_nhwc: bool) -> Result<Self>;
}

/// `base + h · Σ_j w_j k_j` over a solver's f64 vectors (one length), each product rounded before it is
/// added, the sum in j order from −0: a Runge–Kutta stage or step.
pub struct OdeCombination<'a, W> {
    pub base: &'a W,
    pub h: f64,
    pub terms: &'a [(f64, &'a W)],
}

/// `Σ_i (h · Σ_j w_j k_j[i] / (atol + rtol · max(|a_i|, |b_i|)))²` with `[a, b] = scale_of`: an
/// embedded error estimate's squared norm, scaled by the tolerances (SciPy's RK45), before the mean and
/// the square root the host takes.
pub struct OdeScaledNorm<'a, W> {
    pub h: f64,
    pub terms: &'a [(f64, &'a W)],
    pub scale_of: [&'a W; 2],
    pub atol: f64,
    pub rtol: f64,
}

/// `kernels/ode.cu`: the ODE solvers' f64 vector arithmetic. `Wide` is the backend's f64 vector.
pub trait OdeOps: Sized {
    type Wide;
    /// An f32 storage widened to f64 (exact).
    fn ode_widen(x: &Self) -> Result<Self::Wide>;
    /// The combination rounded to f32 (what the network reads) and, with `keep_wide`, in f64 too.
    fn ode_combine(
        c: &OdeCombination<'_, Self::Wide>,
        keep_wide: bool,
    ) -> Result<(Self, Option<Self::Wide>)>;
    fn ode_scaled_sq_sum(n: &OdeScaledNorm<'_, Self::Wide>) -> Result<f64>;
}

/// `kernels/ode_drift.cu`: the probability-flow drifts from a network's f32 output to an f64
/// derivative.
pub trait OdeDriftOps: OdeOps {
    /// CLD: u `[pixels, 2c]`, alpha `[pixels, c]` (f32) → k `[pixels, 2c]`.
    fn cld_ode_drift(u: &Self, alpha: &Self, p: &TriCldOdeDriftParams) -> Result<Self::Wide>;
    /// LSGM: z and eps `[n / c, c]`, mix `[c]` (f32) → k `[n]`.
    fn lsgm_ode_drift(
        z: &Self,
        eps: &Self,
        mix: &Self,
        p: &TriLsgmOdeDriftParams,
    ) -> Result<Self::Wide>;
}

/// A storage type every op is implemented for: what the ops layer dispatches to (implemented in
/// `cpu/mod.rs` and `cuda/mod.rs`, so a backend missing an op does not compile).
/// The state tensors a CLD step reads: x and v (`[pixels, c]` f32 each) and, when the step draws from
/// a tensor rather than from Philox or not at all, the u-shaped noise (`[pixels, 2c]`, x half first).
pub struct CldState<'a, S> {
    pub x: &'a S,
    pub v: &'a S,
    pub noise: Option<&'a S>,
}

/// Where a DDGAN posterior draw takes its noise from.
pub enum PosteriorNoise<'a, S> {
    /// None: the last step (`noise_std` is 0).
    Zero,
    /// A tensor of x_t's shape and storage type.
    Tensor(&'a S),
    /// The normals `randn_philox(r)` would write, rounded to the storage type; `r` describes x_t as
    /// `[num_samples, elems_per_sample]`.
    Philox(&'a TriRandnParams),
}

/// The inputs of one DDGAN posterior draw: the predicted x0 and x_t (one shape and storage type).
pub struct PosteriorDraw<'a, S> {
    pub x0: &'a S,
    pub x_t: &'a S,
    pub noise: PosteriorNoise<'a, S>,
}

pub trait BackendStorage:
    PhiloxNormalOps
    + ElementwiseOps
    + FiniteOps
    + DdganPosteriorOps
    + CldSscsOps
    + CldEmOps
    + Conv2dOps
    + GroupNormOps
    + PointwiseOps
    + AttentionOps
    + ResampleOps
    + LayoutOps
    + OdeOps
    + OdeDriftOps
{
}
