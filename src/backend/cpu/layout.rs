//! CPU data movement over NHWC: channel concat and slice, spatial crop, per-channel means and the
//! NCHW ↔ NHWC permutes at the API boundary.

use rayon::prelude::*;

use super::CpuStorage;
use crate::backend::geometry::{Nhwc, Window};
use crate::backend::LayoutOps;
use crate::error::Result;

fn concat_channels(a: &[f32], b: &[f32], pixels: usize, ca: usize, cb: usize) -> Vec<f32> {
    let c = ca + cb;
    let mut out = vec![0.0f32; pixels * c];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(c).enumerate().for_each(|(p, o)| {
        o[..ca].copy_from_slice(&a[p * ca..(p + 1) * ca]);
        o[ca..].copy_from_slice(&b[p * cb..(p + 1) * cb]);
    });
    out
}

fn slice_channels(x: &[f32], pixels: usize, c: usize, start: usize, len: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; pixels * len];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(len).enumerate().for_each(|(p, o)| {
        o.copy_from_slice(&x[p * c + start..p * c + start + len]);
    });
    out
}

fn crop(x: &[f32], s: &Nhwc, win: &Window) -> Vec<f32> {
    let Window { top, left, ho, wo } = *win;
    let mut out = vec![0.0f32; s.n * ho * wo * s.c];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(wo * s.c)
        .enumerate()
        .for_each(|(row, o)| {
            let (b, y) = (row / ho, row % ho);
            let start = ((b * s.h + top + y) * s.w + left) * s.c;
            o.copy_from_slice(&x[start..start + wo * s.c]);
        });
    out
}

fn channel_mean(x: &[f32], n: usize, pixels: usize, c: usize) -> Vec<f32> {
    (0..n)
        .into_par_iter()
        .flat_map_iter(|s| {
            let mut sums = vec![0.0f64; c];
            for row in x[s * pixels * c..(s + 1) * pixels * c].chunks_exact(c) {
                for (a, &v) in sums.iter_mut().zip(row) {
                    *a += v as f64;
                }
            }
            sums.into_iter().map(move |v| (v / pixels as f64) as f32)
        })
        .collect()
}

fn permute_nchw(x: &[f32], s: &Nhwc, to_nhwc: bool) -> Vec<f32> {
    let (hw, c) = (s.pixels(), s.c);
    let mut out = vec![0.0f32; s.len()];
    if out.is_empty() {
        return out;
    }
    out.par_chunks_mut(hw * c).enumerate().for_each(|(b, o)| {
        let xs = &x[b * hw * c..(b + 1) * hw * c];
        for p in 0..hw {
            for ch in 0..c {
                if to_nhwc {
                    o[p * c + ch] = xs[ch * hw + p];
                } else {
                    o[ch * hw + p] = xs[p * c + ch];
                }
            }
        }
    });
    out
}

/// DDGAN's PixelNorm: z / √(mean(z²) + 1e-8) per row of `dim` features (f64 sums).
fn pixel_norm(z: &[f32], dim: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; z.len()];
    for (o, row) in out
        .chunks_exact_mut(dim.max(1))
        .zip(z.chunks_exact(dim.max(1)))
    {
        let ms = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / dim as f64;
        let inv = 1.0 / (ms + 1e-8).sqrt();
        for (d, &v) in o.iter_mut().zip(row) {
            *d = (v as f64 * inv) as f32;
        }
    }
    out
}

impl LayoutOps for CpuStorage {
    fn concat_channels(a: &Self, b: &Self, pixels: usize, ca: usize, cb: usize) -> Result<Self> {
        const OP: &str = "concat_channels";
        let y = concat_channels(a.f32s(OP)?, b.f32s(OP)?, pixels, ca, cb);
        Ok(CpuStorage::F32(y))
    }

    fn slice_channels(x: &Self, pixels: usize, c: usize, start: usize, len: usize) -> Result<Self> {
        let y = slice_channels(x.f32s("slice_channels")?, pixels, c, start, len);
        Ok(CpuStorage::F32(y))
    }

    fn crop(x: &Self, s: &Nhwc, window: &Window) -> Result<Self> {
        Ok(CpuStorage::F32(crop(x.f32s("crop")?, s, window)))
    }

    fn channel_mean(x: &Self, n: usize, pixels: usize, c: usize) -> Result<Self> {
        Ok(CpuStorage::F32(channel_mean(
            x.f32s("channel_mean")?,
            n,
            pixels,
            c,
        )))
    }

    fn pixel_norm(x: &Self, rows: usize, dim: usize) -> Result<Self> {
        let v = x.f32s("pixel_norm")?;
        debug_assert_eq!(v.len(), rows * dim);
        Ok(CpuStorage::F32(pixel_norm(v, dim)))
    }

    fn permute_nchw(x: &Self, s: &Nhwc, to_nhwc: bool) -> Result<Self> {
        Ok(CpuStorage::F32(permute_nchw(
            x.f32s("permute_nchw")?,
            s,
            to_nhwc,
        )))
    }
}
