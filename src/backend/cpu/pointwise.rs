//! CPU reference of `kernels/pointwise.cu`: activations, binary ops and the per-channel affine map
//! (which group_norm applies after its normalisation).

use rayon::prelude::*;

use super::gemm::rows_per_task;
use super::CpuStorage;
use crate::backend::geometry::{Activation, BinaryOp, ChannelAffine, ChannelVector};
use crate::backend::PointwiseOps;
use crate::error::Result;

/// A resolved per-channel or per-sample vector (host slice).
#[derive(Clone, Copy)]
pub(crate) struct Vector<'a> {
    pub data: &'a [f32],
    pub per_sample: bool,
}

impl<'a> Vector<'a> {
    #[inline]
    pub(super) fn row(self, sample: usize, c: usize) -> &'a [f32] {
        if self.per_sample {
            &self.data[sample * c..(sample + 1) * c]
        } else {
            &self.data[..c]
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Affine<'a> {
    pub center: Option<Vector<'a>>,
    pub scale: Option<Vector<'a>>,
    pub shift: Option<Vector<'a>>,
    pub act: Activation,
}

/// y = act((x − center)·scale + shift), each term optional, per row of `c` channels.
pub(crate) fn channel_affine(
    x: &[f32],
    n: usize,
    pixels: usize,
    c: usize,
    a: &Affine<'_>,
) -> Vec<f32> {
    let mut out = vec![0.0f32; n * pixels * c];
    if out.is_empty() {
        return out;
    }
    let rows = rows_per_task(n * pixels, 64, 4096);
    out.par_chunks_mut(rows * c)
        .zip(x.par_chunks(rows * c))
        .enumerate()
        .for_each(|(blk, (o, xs))| {
            for (r, (orow, xrow)) in o.chunks_exact_mut(c).zip(xs.chunks_exact(c)).enumerate() {
                let sample = (blk * rows + r) / pixels;
                let center = a.center.map(|v| v.row(sample, c));
                let scale = a.scale.map(|v| v.row(sample, c));
                let shift = a.shift.map(|v| v.row(sample, c));
                for ch in 0..c {
                    let mut v = xrow[ch];
                    if let Some(m) = center {
                        v -= m[ch];
                    }
                    if let Some(s) = scale {
                        v *= s[ch];
                    }
                    if let Some(b) = shift {
                        v += b[ch];
                    }
                    orow[ch] = a.act.apply(v);
                }
            }
        });
    out
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

pub(super) fn affine<'a>(
    a: &ChannelAffine<'a, CpuStorage>,
    op: &'static str,
) -> Result<Affine<'a>> {
    Ok(Affine {
        center: vector(a.center, op)?,
        scale: vector(a.scale, op)?,
        shift: vector(a.shift, op)?,
        act: a.act,
    })
}

impl PointwiseOps for CpuStorage {
    fn channel_affine(x: &Self, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        const OP: &str = "channel_affine";
        let af = affine(a, OP)?;
        Ok(CpuStorage::F32(channel_affine(
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
        let (a, b) = (a.f32s("binary")?, b.f32s("binary")?);
        let f = match op {
            BinaryOp::Add => |x: f32, y: f32| x + y,
            BinaryOp::Sub => |x: f32, y: f32| x - y,
            BinaryOp::Mul => |x: f32, y: f32| x * y,
        };
        Ok(CpuStorage::F32(
            a.par_iter().zip(b).map(|(&x, &y)| f(x, y)).collect(),
        ))
    }
}
