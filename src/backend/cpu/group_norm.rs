//! CPU reference of `kernels/group_norm.cu`: group norm over NHWC `[n, pixels, c]`. Statistics are
//! two-pass in f64 (mean, then the mean squared deviation), the biased variance PyTorch uses.

use rayon::prelude::*;

use super::pointwise::{channel_affine, Affine, Vector};
use super::CpuStorage;
use crate::backend::geometry::ChannelAffine;
use crate::backend::geometry::GroupNormGeometry;
use crate::backend::GroupNormOps;
use crate::error::Result;

/// Per (sample, group) mean and 1/sqrt(var + eps), as f32 vectors `[n, c]` (each channel carries its
/// group's values) so the normalisation is a `channel_affine` with per-sample center and scale.
pub(crate) fn group_stats(x: &[f32], g: &GroupNormGeometry) -> (Vec<f32>, Vec<f32>) {
    let cg = g.c / g.groups;
    let count = (g.pixels * cg) as f64;
    let per_sample: Vec<(Vec<f32>, Vec<f32>)> = (0..g.n)
        .into_par_iter()
        .map(|s| {
            let xs = &x[s * g.pixels * g.c..(s + 1) * g.pixels * g.c];
            let mut sums = vec![0.0f64; g.c];
            for row in xs.chunks_exact(g.c) {
                for (acc, &v) in sums.iter_mut().zip(row) {
                    *acc += v as f64;
                }
            }
            let means: Vec<f64> = (0..g.groups)
                .map(|grp| sums[grp * cg..(grp + 1) * cg].iter().sum::<f64>() / count)
                .collect();
            let mut sq = vec![0.0f64; g.c];
            for row in xs.chunks_exact(g.c) {
                for (ch, (acc, &v)) in sq.iter_mut().zip(row).enumerate() {
                    let d = v as f64 - means[ch / cg];
                    *acc += d * d;
                }
            }
            let mut mean = vec![0.0f32; g.c];
            let mut rstd = vec![0.0f32; g.c];
            for grp in 0..g.groups {
                let var = sq[grp * cg..(grp + 1) * cg].iter().sum::<f64>() / count;
                let r = 1.0 / (var + g.eps as f64).sqrt();
                for ch in grp * cg..(grp + 1) * cg {
                    mean[ch] = means[grp] as f32;
                    rstd[ch] = r as f32;
                }
            }
            (mean, rstd)
        })
        .collect();
    let mut mean = Vec::with_capacity(g.n * g.c);
    let mut rstd = Vec::with_capacity(g.n * g.c);
    for (m, r) in per_sample {
        mean.extend(m);
        rstd.extend(r);
    }
    (mean, rstd)
}

/// GroupNorm followed by the affine `a` (its `center` is ignored): the scale folds rstd·scale in f64
/// per (sample, channel), so y = (x − mean)·(rstd·scale) + shift rounds like PyTorch's.
pub(crate) fn group_norm(x: &[f32], g: &GroupNormGeometry, a: &Affine<'_>) -> Vec<f32> {
    let (mean, rstd) = group_stats(x, g);
    let scale: Vec<f32> = match a.scale {
        None => rstd,
        Some(v) => (0..g.n * g.c)
            .map(|i| {
                let (s, ch) = (i / g.c, i % g.c);
                (rstd[i] as f64 * v.row(s, g.c)[ch] as f64) as f32
            })
            .collect(),
    };
    let folded = Affine {
        center: Some(Vector {
            data: &mean,
            per_sample: true,
        }),
        scale: Some(Vector {
            data: &scale,
            per_sample: true,
        }),
        shift: a.shift,
        act: a.act,
    };
    channel_affine(x, g.n, g.pixels, g.c, &folded)
}

/// `GroupNormOps::group_norm_fold`: (mean, rstd·scale, shift, has_shift) per (sample, channel), the
/// scale folded in f64 and rounded once, as `group_norm`.
pub(crate) fn group_norm_fold(x: &[f32], g: &GroupNormGeometry, a: &Affine<'_>) -> Vec<f32> {
    let (mean, rstd) = group_stats(x, g);
    let mut fold = vec![0.0f32; g.n * g.c * 4];
    for (i, f) in fold.chunks_exact_mut(4).enumerate() {
        let (s, ch) = (i / g.c, i % g.c);
        f[0] = mean[i];
        f[1] = match a.scale {
            None => rstd[i],
            Some(v) => (rstd[i] as f64 * v.row(s, g.c)[ch] as f64) as f32,
        };
        if let Some(v) = a.shift {
            f[2] = v.row(s, g.c)[ch];
            f[3] = 1.0;
        }
    }
    fold
}

/// The prologue of a convolution over a GroupNorm's input: `act((x − f0)·f1 + f2)` with the fold of
/// [`group_norm_fold`], through the same `channel_affine` as `group_norm` (the same rounding).
pub(crate) fn apply_fold(
    x: &[f32],
    n: usize,
    pixels: usize,
    c: usize,
    fold: &[f32],
    act: crate::backend::geometry::Activation,
) -> Vec<f32> {
    let column = |k: usize| -> Vec<f32> { fold.chunks_exact(4).map(|f| f[k]).collect() };
    let (mean, scale, shift) = (column(0), column(1), column(2));
    let has_shift = fold.chunks_exact(4).any(|f| f[3] != 0.0);
    let per_sample = |data| Vector {
        data,
        per_sample: true,
    };
    let a = Affine {
        center: Some(per_sample(&mean)),
        scale: Some(per_sample(&scale)),
        shift: has_shift.then(|| per_sample(&shift)),
        act,
    };
    channel_affine(x, n, pixels, c, &a)
}

impl GroupNormOps for CpuStorage {
    fn group_norm_fold(x: &Self, g: &GroupNormGeometry, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        const OP: &str = "group_norm_fold";
        let a = super::pointwise::affine(a, OP)?;
        Ok(CpuStorage::F32(group_norm_fold(x.f32s(OP)?, g, &a)))
    }

    fn group_norm(x: &Self, g: &GroupNormGeometry, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        const OP: &str = "group_norm";
        let a = super::pointwise::affine(a, OP)?;
        Ok(CpuStorage::F32(group_norm(x.f32s(OP)?, g, &a)))
    }
}
