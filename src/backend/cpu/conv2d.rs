//! CPU conv2d over NHWC with HWIO weights: im2col by blocks of output pixels, then GEMMs
//! (`matrixmultiply`) against the weight matrix `[K, out]`, which HWIO stores row-major so the GEMM
//! packs it with contiguous reads. Work is split over pixel blocks and, when there are too few blocks
//! to keep every thread busy (low resolutions, batch 1), also over output-channel chunks. 1×1 stride-1
//! convs skip im2col; depthwise convs (one channel per group) are direct loops vectorised over channels.

use rayon::prelude::*;

use super::gemm::{sgemm, MatRef};
use super::CpuStorage;
use crate::backend::geometry::{Conv2dGeometry, LinearGeometry};
use crate::backend::{Conv2dOps, ConvEpilogue};
use crate::error::Result;

/// Output channels per task when a pixel block is split by columns: narrower GEMMs lose efficiency.
const MIN_COLS_PER_TASK: usize = 64;

/// `x` [n, h, w, ci], `w` [kh, kw, ci/groups, co], `bias` [co] → [n, ho, wo, co].
fn conv2d(x: &[f32], w: &[f32], bias: Option<&[f32]>, g: &Conv2dGeometry) -> Result<Vec<f32>> {
    let pixels = g.n * g.ho * g.wo;
    let mut out = vec![0.0f32; pixels * g.co];
    if out.is_empty() {
        return Ok(out);
    }
    if g.groups == g.ci && g.groups == g.co && g.groups > 1 {
        depthwise(x, w, bias, g, &mut out);
        return Ok(out);
    }
    let cig = g.ci / g.groups;
    let cog = g.co / g.groups;
    let kg = g.kh * g.kw * cig;
    let pointwise = g.kh == 1
        && g.kw == 1
        && g.stride == 1
        && g.pad_top == 0
        && g.pad_left == 0
        && g.groups == 1
        && g.ho == g.h
        && g.wo == g.w;
    // Pixel blocks of at most 256 rows, as tall as possible: the GEMM packs the weight matrix once per
    // block, so short blocks pay for packing what little they compute. The block count is rounded up to
    // a multiple of the thread count so the blocks balance; when there are fewer blocks than threads
    // (low resolutions, batch 1) each block's GEMM is split by output-channel chunks instead.
    let threads = rayon::current_num_threads().max(1);
    let max_rows = 256;
    let blocks = if pixels > max_rows * threads {
        pixels.div_ceil(max_rows).div_ceil(threads) * threads
    } else {
        pixels.div_ceil(max_rows)
    };
    let rows = pixels.div_ceil(blocks);
    let blocks = pixels.div_ceil(rows);
    let chunks = if blocks >= threads {
        1
    } else {
        threads.div_ceil(blocks).min(cog / MIN_COLS_PER_TASK).max(1)
    };
    let chunk_cols = cog.div_ceil(chunks);
    out.par_chunks_mut(rows * g.co)
        .enumerate()
        .try_for_each(|(block, o)| -> Result<()> {
            let p0 = block * rows;
            let m = o.len() / g.co;
            if let Some(b) = bias {
                o.chunks_exact_mut(g.co).for_each(|r| r.copy_from_slice(b));
            }
            let mut col = Vec::new();
            for grp in 0..g.groups {
                let a = if pointwise {
                    MatRef {
                        data: &x[p0 * g.ci..(p0 + m) * g.ci],
                        rs: g.ci,
                        cs: 1,
                    }
                } else {
                    col.resize(m * kg, 0.0);
                    im2col(x, g, p0, m, grp * cig, cig, &mut col);
                    MatRef {
                        data: &col,
                        rs: kg,
                        cs: 1,
                    }
                };
                // B[l, j] = w[l·co + grp·cog + j]: this group's columns of the HWIO matrix.
                let b_at = |j0: usize| MatRef {
                    data: &w[grp * cog + j0..],
                    rs: g.co,
                    cs: 1,
                };
                if chunks == 1 {
                    sgemm(
                        m,
                        kg,
                        cog,
                        1.0,
                        a,
                        b_at(0),
                        1.0,
                        &mut o[grp * cog..],
                        g.co,
                        1,
                    )?;
                    continue;
                }
                // Column chunks in parallel, each into its own buffer, then added to the output
                // (which already holds the bias).
                let parts: Vec<Result<(usize, Vec<f32>)>> = (0..cog.div_ceil(chunk_cols))
                    .into_par_iter()
                    .map(|c| {
                        let j0 = c * chunk_cols;
                        let nc = chunk_cols.min(cog - j0);
                        let mut tmp = vec![0.0f32; m * nc];
                        sgemm(m, kg, nc, 1.0, a, b_at(j0), 0.0, &mut tmp, nc, 1)?;
                        Ok((j0, tmp))
                    })
                    .collect();
                for part in parts {
                    let (j0, tmp) = part?;
                    let nc = tmp.len() / m;
                    for (r, src) in tmp.chunks_exact(nc).enumerate() {
                        let dst = &mut o[r * g.co + grp * cog + j0..r * g.co + grp * cog + j0 + nc];
                        dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                    }
                }
            }
            Ok(())
        })?;
    Ok(out)
}

/// Rows `p0..p0+m` of the im2col matrix for channels `c0..c0+cig`: row p holds, for each tap (ky, kx),
/// the `cig` input channels under it (zeros outside the image), the K order of HWIO weights.
fn im2col(
    x: &[f32],
    g: &Conv2dGeometry,
    p0: usize,
    m: usize,
    c0: usize,
    cig: usize,
    col: &mut [f32],
) {
    let kg = g.kh * g.kw * cig;
    for r in 0..m {
        let p = p0 + r;
        let b = p / (g.ho * g.wo);
        let oy = (p / g.wo) % g.ho;
        let ox = p % g.wo;
        let row = &mut col[r * kg..(r + 1) * kg];
        for ky in 0..g.kh {
            let iy = (oy * g.stride + ky) as isize - g.pad_top as isize;
            for kx in 0..g.kw {
                let ix = (ox * g.stride + kx) as isize - g.pad_left as isize;
                let dst = &mut row[(ky * g.kw + kx) * cig..(ky * g.kw + kx + 1) * cig];
                if iy < 0 || ix < 0 || iy as usize >= g.h || ix as usize >= g.w {
                    dst.fill(0.0);
                } else {
                    let src = ((b * g.h + iy as usize) * g.w + ix as usize) * g.ci + c0;
                    dst.copy_from_slice(&x[src..src + cig]);
                }
            }
        }
    }
}

/// groups == ci == co: out[p, c] = bias[c] + Σ_taps x[tap(p), c]·w[tap, c], looping over channels
/// innermost so every load is contiguous (HWIO with one input channel per group is tap-major).
fn depthwise(x: &[f32], w: &[f32], bias: Option<&[f32]>, g: &Conv2dGeometry, out: &mut [f32]) {
    let c = g.co;
    out.par_chunks_mut(g.wo * c)
        .enumerate()
        .for_each(|(row, o)| {
            let b = row / g.ho;
            let oy = row % g.ho;
            for ox in 0..g.wo {
                let acc = &mut o[ox * c..(ox + 1) * c];
                match bias {
                    Some(bv) => acc.copy_from_slice(bv),
                    None => acc.fill(0.0),
                }
                for ky in 0..g.kh {
                    let iy = (oy * g.stride + ky) as isize - g.pad_top as isize;
                    if iy < 0 || iy as usize >= g.h {
                        continue;
                    }
                    for kx in 0..g.kw {
                        let ix = (ox * g.stride + kx) as isize - g.pad_left as isize;
                        if ix < 0 || ix as usize >= g.w {
                            continue;
                        }
                        let src = ((b * g.h + iy as usize) * g.w + ix as usize) * c;
                        let xs = &x[src..src + c];
                        let ws = &w[(ky * g.kw + kx) * c..(ky * g.kw + kx + 1) * c];
                        for ((a, &xv), &wv) in acc.iter_mut().zip(xs).zip(ws) {
                            *a += xv * wv;
                        }
                    }
                }
            }
        });
}

impl Conv2dOps for CpuStorage {
    fn conv2d(
        x: &Self,
        w: &Self,
        bias: Option<&Self>,
        e: ConvEpilogue<'_, Self>,
        g: &Conv2dGeometry,
    ) -> Result<Self> {
        const OP: &str = "conv2d";
        let bias = bias.map(|b| b.f32s(OP)).transpose()?;
        let normed;
        let x = match e.prologue {
            None => x.f32s(OP)?,
            Some((fold, act)) => {
                normed = super::group_norm::apply_fold(
                    x.f32s(OP)?,
                    g.n,
                    g.h * g.w,
                    g.ci,
                    fold.f32s(OP)?,
                    act,
                );
                &normed
            }
        };
        let mut y = conv2d(x, w.f32s(OP)?, bias, g)?;
        // The epilogue after the GEMM, in the kernels' order: (acc + bias + sample_bias + residual)
        // · scale.
        if let Some(sb) = e.sample_bias {
            let (sb, per_image) = (sb.f32s(OP)?, g.ho * g.wo * g.co);
            for (img, ys) in y.chunks_mut(per_image.max(1)).enumerate() {
                let row = &sb[img * g.co..(img + 1) * g.co];
                ys.chunks_mut(g.co.max(1))
                    .for_each(|px| px.iter_mut().zip(row).for_each(|(v, b)| *v += b));
            }
        }
        if let Some(r) = e.residual {
            y.iter_mut().zip(r.f32s(OP)?).for_each(|(v, r)| *v += r);
        }
        if e.scale != 1.0 {
            y.iter_mut().for_each(|v| *v *= e.scale);
        }
        Ok(CpuStorage::F32(y))
    }

    /// `[rows, in]` · `[out, in]`ᵀ + bias, one GEMM reading the weight transposed.
    fn linear(x: &Self, w: &Self, bias: Option<&Self>, g: &LinearGeometry) -> Result<Self> {
        const OP: &str = "linear";
        let LinearGeometry { rows, in_f, out_f } = *g;
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
}
