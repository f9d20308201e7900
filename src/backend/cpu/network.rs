//! The CPU side of [`NetworkOps`]: fp32 only (the reference precision); the bf16/f16 paths are the
//! GPU's. Each method unpacks host slices and calls the op's own file.

use rayon::prelude::*;

use super::gemm::{sgemm, MatRef};
use super::group_norm::{Affine, Vector};
use super::{attention, conv2d, group_norm, layout, resample, CpuStorage};
use crate::backend::network::{
    Activation, BinaryOp, ChannelAffine, ChannelVector, Conv2dGeometry, GroupNormGeometry,
    NetworkOps, Nhwc, Resample2x, UpFirDnGeometry,
};
use crate::error::{Error, Result};
use crate::tensor::DType;

impl CpuStorage {
    /// The fp32 elements, or an error naming the op: the CPU network ops compute in fp32 only.
    pub(crate) fn f32s(&self, op: &'static str) -> Result<&[f32]> {
        match self {
            CpuStorage::F32(v) => Ok(v),
            other => Err(Error::DTypeMismatch {
                op,
                tensor: "input (the CPU backend runs networks in f32)",
                expected: DType::F32,
                found: other.dtype(),
            }),
        }
    }
}

fn vector<'a>(
    v: Option<ChannelVector<'a, CpuStorage>>,
    op: &'static str,
) -> Result<Option<Vector<'a>>> {
    v.map(|v| {
        Ok(Vector {
            data: v.data.f32s(op)?,
            per_sample: v.per_sample,
        })
    })
    .transpose()
}

fn affine<'a>(a: &ChannelAffine<'a, CpuStorage>, op: &'static str) -> Result<Affine<'a>> {
    Ok(Affine {
        center: vector(a.center, op)?,
        scale: vector(a.scale, op)?,
        shift: vector(a.shift, op)?,
        act: a.act,
    })
}

impl NetworkOps for CpuStorage {
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
        const OP: &str = "linear";
        let mut out = vec![0.0f32; rows * out_f];
        let beta = match bias {
            Some(b) => {
                let b = b.f32s(OP)?;
                out.chunks_exact_mut(out_f.max(1))
                    .for_each(|r| r.copy_from_slice(b));
                1.0
            }
            None => 0.0,
        };
        let a = MatRef {
            data: x.f32s(OP)?,
            rs: in_f,
            cs: 1,
        };
        let b = MatRef {
            data: w.f32s(OP)?,
            rs: 1,
            cs: in_f,
        };
        sgemm(rows, in_f, out_f, 1.0, a, b, beta, &mut out, out_f, 1)?;
        Ok(CpuStorage::F32(out))
    }

    fn group_norm(x: &Self, g: &GroupNormGeometry, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        const OP: &str = "group_norm";
        let a = affine(a, OP)?;
        Ok(CpuStorage::F32(group_norm::group_norm(x.f32s(OP)?, g, &a)))
    }

    fn channel_affine(x: &Self, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        const OP: &str = "channel_affine";
        let af = affine(a, OP)?;
        Ok(CpuStorage::F32(group_norm::channel_affine(
            x.f32s(OP)?,
            a.n,
            a.pixels,
            a.c,
            &af,
        )))
    }

    fn activation(x: &Self, act: Activation) -> Result<Self> {
        let x = x.f32s("activation")?;
        Ok(CpuStorage::F32(
            x.par_iter().map(|&v| act.apply(v)).collect(),
        ))
    }

    fn binary(a: &Self, b: &Self, op: BinaryOp) -> Result<Self> {
        const OP: &str = "binary";
        let (a, b) = (a.f32s(OP)?, b.f32s(OP)?);
        let f = match op {
            BinaryOp::Add => |x: f32, y: f32| x + y,
            BinaryOp::Sub => |x: f32, y: f32| x - y,
            BinaryOp::Mul => |x: f32, y: f32| x * y,
        };
        Ok(CpuStorage::F32(
            a.par_iter().zip(b).map(|(&x, &y)| f(x, y)).collect(),
        ))
    }

    fn attention(qkv: &Self, n: usize, positions: usize, c: usize) -> Result<Self> {
        attention::attention(qkv.f32s("attention")?, n, positions, c).map(CpuStorage::F32)
    }

    fn upfirdn2d(x: &Self, g: &UpFirDnGeometry, kernel: &[f32]) -> Result<Self> {
        Ok(CpuStorage::F32(resample::upfirdn2d(
            x.f32s("upfirdn2d")?,
            g,
            kernel,
        )))
    }

    fn resample2x(x: &Self, s: &Nhwc, mode: Resample2x) -> Result<Self> {
        Ok(CpuStorage::F32(resample::resample2x(
            x.f32s("resample2x")?,
            s,
            mode,
        )))
    }

    fn concat_channels(a: &Self, b: &Self, pixels: usize, ca: usize, cb: usize) -> Result<Self> {
        const OP: &str = "concat_channels";
        Ok(CpuStorage::F32(layout::concat_channels(
            a.f32s(OP)?,
            b.f32s(OP)?,
            pixels,
            ca,
            cb,
        )))
    }

    fn slice_channels(x: &Self, pixels: usize, c: usize, start: usize, len: usize) -> Result<Self> {
        Ok(CpuStorage::F32(layout::slice_channels(
            x.f32s("slice_channels")?,
            pixels,
            c,
            start,
            len,
        )))
    }

    fn crop(x: &Self, s: &Nhwc, top: usize, left: usize, ho: usize, wo: usize) -> Result<Self> {
        Ok(CpuStorage::F32(layout::crop(
            x.f32s("crop")?,
            s,
            top,
            left,
            ho,
            wo,
        )))
    }

    fn channel_mean(x: &Self, n: usize, pixels: usize, c: usize) -> Result<Self> {
        Ok(CpuStorage::F32(layout::channel_mean(
            x.f32s("channel_mean")?,
            n,
            pixels,
            c,
        )))
    }

    fn pixel_norm(x: &Self, rows: usize, dim: usize) -> Result<Self> {
        let v = x.f32s("pixel_norm")?;
        debug_assert_eq!(v.len(), rows * dim);
        Ok(CpuStorage::F32(crate::nn::embedding::pixel_norm(v, dim)))
    }

    fn permute_nchw(x: &Self, s: &Nhwc, to_nhwc: bool) -> Result<Self> {
        Ok(CpuStorage::F32(layout::permute_nchw(
            x.f32s("permute_nchw")?,
            s,
            to_nhwc,
        )))
    }
}
