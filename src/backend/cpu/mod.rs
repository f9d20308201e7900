//! The CPU backend: plain, PyTorch-semantics implementations, one file per kernel file
//! (`kernels/X.cu` ↔ `X.rs`). They are the oracle the CUDA kernels are tested against and the fallback
//! for machines without a GPU. Network ops are fp32 (the reference precision; the bf16/f16 paths are
//! the GPU's), multi-threaded (rayon) and use a GEMM crate for the matrix products.

mod attention;
mod cld_em;
mod cld_sscs;
mod conv2d;
mod ddgan_posterior;
mod elementwise;
mod finite;
mod gemm;
mod group_norm;
mod layout;
mod philox_normal;
mod pointwise;
mod resample;
mod storage;

pub use storage::CpuStorage;

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

impl BackendStorage for CpuStorage {
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
        const OP: &str = "conv2d";
        let bias = bias.map(|b| b.f32s(OP)).transpose()?;
        conv2d::conv2d(x.f32s(OP)?, w.f32s(OP)?, bias, g).map(CpuStorage::F32)
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
        const OP: &str = "group_norm";
        let a = pointwise::affine(a, OP)?;
        Ok(CpuStorage::F32(group_norm::group_norm(x.f32s(OP)?, g, &a)))
    }

    fn channel_affine(x: &Self, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        const OP: &str = "channel_affine";
        let af = pointwise::affine(a, OP)?;
        let y = pointwise::channel_affine(x.f32s(OP)?, a.n, a.pixels, a.c, &af);
        Ok(CpuStorage::F32(y))
    }

    fn activation(x: &Self, act: Activation) -> Result<Self> {
        let y = pointwise::activation(x.f32s("activation")?, act);
        Ok(CpuStorage::F32(y))
    }

    fn binary(a: &Self, b: &Self, op: BinaryOp) -> Result<Self> {
        const OP: &str = "binary";
        Ok(CpuStorage::F32(pointwise::binary(
            a.f32s(OP)?,
            b.f32s(OP)?,
            op,
        )))
    }

    fn attention(qkv: &Self, n: usize, positions: usize, c: usize) -> Result<Self> {
        attention::attention(qkv.f32s("attention")?, n, positions, c).map(CpuStorage::F32)
    }

    fn upfirdn2d(x: &Self, g: &UpFirDnGeometry, kernel: &[f32]) -> Result<Self> {
        let y = resample::upfirdn2d(x.f32s("upfirdn2d")?, g, kernel);
        Ok(CpuStorage::F32(y))
    }

    fn resample2x(x: &Self, s: &Nhwc, mode: Resample2x) -> Result<Self> {
        let y = resample::resample2x(x.f32s("resample2x")?, s, mode);
        Ok(CpuStorage::F32(y))
    }

    fn concat_channels(a: &Self, b: &Self, pixels: usize, ca: usize, cb: usize) -> Result<Self> {
        const OP: &str = "concat_channels";
        let y = layout::concat_channels(a.f32s(OP)?, b.f32s(OP)?, pixels, ca, cb);
        Ok(CpuStorage::F32(y))
    }

    fn slice_channels(x: &Self, pixels: usize, c: usize, start: usize, len: usize) -> Result<Self> {
        let y = layout::slice_channels(x.f32s("slice_channels")?, pixels, c, start, len);
        Ok(CpuStorage::F32(y))
    }

    fn crop(x: &Self, s: &Nhwc, top: usize, left: usize, ho: usize, wo: usize) -> Result<Self> {
        let y = layout::crop(x.f32s("crop")?, s, top, left, ho, wo);
        Ok(CpuStorage::F32(y))
    }

    fn channel_mean(x: &Self, n: usize, pixels: usize, c: usize) -> Result<Self> {
        let y = layout::channel_mean(x.f32s("channel_mean")?, n, pixels, c);
        Ok(CpuStorage::F32(y))
    }

    fn pixel_norm(x: &Self, rows: usize, dim: usize) -> Result<Self> {
        let v = x.f32s("pixel_norm")?;
        debug_assert_eq!(v.len(), rows * dim);
        Ok(CpuStorage::F32(layout::pixel_norm(v, dim)))
    }

    fn permute_nchw(x: &Self, s: &Nhwc, to_nhwc: bool) -> Result<Self> {
        let y = layout::permute_nchw(x.f32s("permute_nchw")?, s, to_nhwc);
        Ok(CpuStorage::F32(y))
    }
}
