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

impl GroupNormOps for CpuStorage {
    fn group_norm(x: &Self, g: &GroupNormGeometry, a: &ChannelAffine<'_, Self>) -> Result<Self> {
        const OP: &str = "group_norm";
        let a = super::pointwise::affine(a, OP)?;
        Ok(CpuStorage::F32(group_norm(x.f32s(OP)?, g, &a)))
    }
}
