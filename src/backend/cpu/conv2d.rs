//! CPU conv2d over NHWC: im2col by blocks of output pixels, then one GEMM per block and group
//! (`matrixmultiply`), blocks in parallel (rayon). 1×1 stride-1 convs skip im2col; depthwise convs
//! (one channel per group) are direct loops vectorised over channels.

use rayon::prelude::*;

use super::gemm::{rows_per_task, sgemm, MatRef};
use crate::backend::network::Conv2dGeometry;
use crate::error::Result;

/// `x` [n, h, w, ci], `w` [co, kh, kw, ci/groups], `bias` [co] → [n, ho, wo, co].
pub(crate) fn conv2d(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    g: &Conv2dGeometry,
) -> Result<Vec<f32>> {
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
    // Blocks of ~16-256 output pixels: the im2col block (rows × kg floats) stays cache-sized.
    let rows = rows_per_task(pixels, 16, 256);
    out.par_chunks_mut(rows * g.co)
        .enumerate()
        .try_for_each(|(block, o)| -> Result<()> {
            let p0 = block * rows;
            let m = o.len() / g.co;
            let beta = match bias {
                Some(b) => {
                    o.chunks_exact_mut(g.co).for_each(|r| r.copy_from_slice(b));
                    1.0
                }
                None => 0.0,
            };
            if pointwise {
                let a = MatRef {
                    data: &x[p0 * g.ci..(p0 + m) * g.ci],
                    rs: g.ci,
                    cs: 1,
                };
                let b = MatRef {
                    data: w,
                    rs: 1,
                    cs: g.ci,
                };
                return sgemm(m, g.ci, g.co, 1.0, a, b, beta, o, g.co, 1);
            }
            let mut col = vec![0.0f32; m * kg];
            for grp in 0..g.groups {
                im2col(x, g, p0, m, grp * cig, cig, &mut col);
                let a = MatRef {
                    data: &col,
                    rs: kg,
                    cs: 1,
                };
                // B[l, j] = w[grp*cog + j, l]: the weight rows of this group, transposed by strides.
                let b = MatRef {
                    data: &w[grp * cog * kg..(grp + 1) * cog * kg],
                    rs: 1,
                    cs: kg,
                };
                sgemm(m, kg, cog, 1.0, a, b, beta, &mut o[grp * cog..], g.co, 1)?;
            }
            Ok(())
        })?;
    Ok(out)
}

/// Rows `p0..p0+m` of the im2col matrix for channels `c0..c0+cig`: row p holds, for each tap (ky, kx),
/// the `cig` input channels under it (zeros outside the image).
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

/// groups == ci == co: out[p, c] = bias[c] + Σ_taps x[tap(p), c]·w[c, tap], looping over channels
/// innermost so the loads are contiguous.
fn depthwise(x: &[f32], w: &[f32], bias: Option<&[f32]>, g: &Conv2dGeometry, out: &mut [f32]) {
    let c = g.co;
    let taps = g.kh * g.kw;
    // Tap-major copy of the weights: wt[tap * c + ch].
    let mut wt = vec![0.0f32; taps * c];
    for ch in 0..c {
        for t in 0..taps {
            wt[t * c + ch] = w[ch * taps + t];
        }
    }
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
                        let ws = &wt[(ky * g.kw + kx) * c..(ky * g.kw + kx + 1) * c];
                        for ((a, &xv), &wv) in acc.iter_mut().zip(xs).zip(ws) {
                            *a += xv * wv;
                        }
                    }
                }
            }
        });
}
