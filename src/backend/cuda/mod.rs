//! The CUDA backend: device storage and the launch wrappers of the kernels in `kernels/`, one file per
//! kernel file (`kernels/X.cu` ↔ `X.rs`), the helpers they share in [`launch`].

mod attention;
mod cld_em;
mod cld_sscs;
mod conv2d;
mod ddgan_posterior;
mod elementwise;
mod finite;
mod group_norm;
mod launch;
mod layout;
mod philox_normal;
mod pointwise;
mod resample;
mod storage;

pub use storage::CudaStorage;

use super::geometry::{
    Activation, BinaryOp, ChannelAffine, Conv2dGeometry, GroupNormGeometry, Nhwc, Resample2x,
    UpFirDnGeometry,
};
use super::BackendStorage;
use crate::dtype::DType;
use crate::error::Result;
use crate::kernels::params::{
    TriCldEmParams, TriDdganPosteriorParams, TriRandnParams, TriSscsStepParams,
};

impl BackendStorage for CudaStorage {
    fn randn_philox(&mut self, p: &TriRandnParams) -> Result<()> {
        philox_normal::randn_philox(self, p)
    }

    fn axpby(&mut self, x: &Self, a: f32, b: f32) -> Result<()> {
        elementwise::axpby(self, x, a, b)
    }

    fn cast(&self, dtype: DType) -> Result<Self> {
        elementwise::cast(self, dtype)
    }

    fn watch_nonfinite(&self, slot: &mut Self, step: u32) -> Result<()> {
        finite::watch_nonfinite(self, slot, step)
    }

    fn ddgan_posterior_step(
        x0: &Self,
        x_t: &Self,
        noise: Option<&Self>,
        p: &TriDdganPosteriorParams,
    ) -> Result<Self> {
        ddgan_posterior::posterior_step(x0, x_t, noise, p)
    }

    fn ddgan_posterior_philox(
        x0: &Self,
        x_t: &Self,
        p: &TriDdganPosteriorParams,
        r: &TriRandnParams,
    ) -> Result<Self> {
        ddgan_posterior::posterior_philox(x0, x_t, p, r)
    }

    fn cld_sscs_half_step(
        x: &Self,
        v: &Self,
        noise: Option<&Self>,
        p: &TriSscsStepParams,
    ) -> Result<(Self, Self)> {
        cld_sscs::sscs_half_step(x, v, noise, p)
    }

    fn cld_em_step(
        x: &Self,
        v: &Self,
        alpha: &Self,
        noise: Option<&Self>,
        p: &TriCldEmParams,
    ) -> Result<(Self, Self)> {
        cld_em::cld_em_step(x, v, alpha, noise, p)
    }

    fn conv2d(x: &Self, w: &Self, bias: Option<&Self>, g: &Conv2dGeometry) -> Result<Self> {
        conv2d::conv2d(x, w, bias, g)
    }

    fn linear(
        x: &Self,
        w: &Self,
        bias: Option<&Self>,
        rows: usize,
        in_f: usize,
        out_f: usize,
    ) -> Result<Self> {
        conv2d::linear(x, w, bias, rows, in_f, out_f)
    }

    fn group_norm(x: &Self, g: &GroupNormGeometry, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        group_norm::group_norm(x, g, a)
    }

    fn channel_affine(x: &Self, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        pointwise::channel_affine(x, a)
    }

    fn activation(x: &Self, act: Activation) -> Result<Self> {
        pointwise::activation(x, act)
    }

    fn binary(a: &Self, b: &Self, op: BinaryOp) -> Result<Self> {
        pointwise::binary(a, b, op)
    }

    fn attention(qkv: &Self, n: usize, positions: usize, c: usize) -> Result<Self> {
        attention::attention(qkv, n, positions, c)
    }

    fn upfirdn2d(x: &Self, g: &UpFirDnGeometry, kernel: &[f32]) -> Result<Self> {
        resample::upfirdn2d(x, g, kernel)
    }

    fn resample2x(x: &Self, s: &Nhwc, mode: Resample2x) -> Result<Self> {
        resample::resample2x(x, s, mode)
    }

    fn concat_channels(a: &Self, b: &Self, pixels: usize, ca: usize, cb: usize) -> Result<Self> {
        layout::concat_channels(a, b, pixels, ca, cb)
    }

    fn slice_channels(x: &Self, pixels: usize, c: usize, start: usize, len: usize) -> Result<Self> {
        layout::slice_channels(x, pixels, c, start, len)
    }

    fn crop(x: &Self, s: &Nhwc, top: usize, left: usize, ho: usize, wo: usize) -> Result<Self> {
        layout::crop(x, s, top, left, ho, wo)
    }

    fn channel_mean(x: &Self, n: usize, pixels: usize, c: usize) -> Result<Self> {
        layout::channel_mean(x, n, pixels, c)
    }

    fn pixel_norm(x: &Self, rows: usize, dim: usize) -> Result<Self> {
        layout::pixel_norm(x, rows, dim)
    }

    fn permute_nchw(x: &Self, s: &Nhwc, to_nhwc: bool) -> Result<Self> {
        layout::permute_nchw(x, s, to_nhwc)
    }
}
