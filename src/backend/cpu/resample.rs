//! CPU resampling over NHWC: upfirdn2d (the FIR up/down-samplers of NCSN++) and the fixed 2× resamplers.

use rayon::prelude::*;

use super::CpuStorage;
use crate::backend::geometry::{Nhwc, Resample2x, UpFirDnGeometry};
use crate::backend::ResampleOps;
use crate::error::Result;

/// upfirdn2d with a `k`×`k` kernel (row-major, applied as a true convolution, i.e. flipped).
fn upfirdn2d(x: &[f32], g: &UpFirDnGeometry, kernel: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; g.n * g.ho * g.wo * g.c];
    if out.is_empty() {
        return out;
    }
    let (hu, wu) = ((g.h * g.up) as isize, (g.w * g.up) as isize);
    let k = g.k;
    // Source row/column of padded-grid index i, or None where it is an inserted or padding zero.
    let src = |i: isize, extent: isize| -> Option<usize> {
        let u = i - g.pad0;
        if u < 0 || u >= extent || u % g.up as isize != 0 {
            None
        } else {
            Some((u / g.up as isize) as usize)
        }
    };
    out.par_chunks_mut(g.wo * g.c)
        .enumerate()
        .for_each(|(row, o)| {
            let b = row / g.ho;
            let oy = row % g.ho;
            for ox in 0..g.wo {
                let acc = &mut o[ox * g.c..(ox + 1) * g.c];
                for ty in 0..k {
                    let Some(iy) = src((oy * g.down + ty) as isize, hu) else {
                        continue;
                    };
                    for tx in 0..k {
                        let Some(ix) = src((ox * g.down + tx) as isize, wu) else {
                            continue;
                        };
                        let wv = kernel[(k - 1 - ty) * k + (k - 1 - tx)];
                        let s = ((b * g.h + iy) * g.w + ix) * g.c;
                        for (a, &xv) in acc.iter_mut().zip(&x[s..s + g.c]) {
                            *a += xv * wv;
                        }
                    }
                }
            }
        });
    out
}

fn resample2x(x: &[f32], s: &Nhwc, mode: Resample2x) -> Vec<f32> {
    let c = s.c;
    let (ho, wo) = match mode {
        Resample2x::MeanDown => (s.h / 2, s.w / 2),
        _ => (s.h * 2, s.w * 2),
    };
    let mut out = vec![0.0f32; s.n * ho * wo * c];
    if out.is_empty() {
        return out;
    }
    let at = |b: usize, y: usize, xx: usize| ((b * s.h + y) * s.w + xx) * c;
    out.par_chunks_mut(wo * c).enumerate().for_each(|(row, o)| {
        let b = row / ho;
        let oy = row % ho;
        for ox in 0..wo {
            let dst = &mut o[ox * c..(ox + 1) * c];
            match mode {
                Resample2x::NearestUp => {
                    let i = at(b, oy / 2, ox / 2);
                    dst.copy_from_slice(&x[i..i + c]);
                }
                Resample2x::MeanDown => {
                    let idx = [
                        at(b, 2 * oy, 2 * ox),
                        at(b, 2 * oy, 2 * ox + 1),
                        at(b, 2 * oy + 1, 2 * ox),
                        at(b, 2 * oy + 1, 2 * ox + 1),
                    ];
                    for (ch, d) in dst.iter_mut().enumerate() {
                        let sum: f32 = idx.iter().map(|&i| x[i + ch]).sum();
                        *d = sum / 4.0;
                    }
                }
                Resample2x::BilinearUpAligned => {
                    // align_corners=True: output i samples input i·(in−1)/(out−1).
                    let pos = |i: usize, n_in: usize, n_out: usize| -> (usize, usize, f32) {
                        if n_out <= 1 || n_in <= 1 {
                            return (0, 0, 0.0);
                        }
                        let src = i as f32 * ((n_in - 1) as f32 / (n_out - 1) as f32);
                        let i0 = (src.floor() as usize).min(n_in - 1);
                        let i1 = (i0 + 1).min(n_in - 1);
                        (i0, i1, src - i0 as f32)
                    };
                    let (y0, y1, fy) = pos(oy, s.h, ho);
                    let (x0, x1, fx) = pos(ox, s.w, wo);
                    let (a, bb, cc, dd) =
                        (at(b, y0, x0), at(b, y0, x1), at(b, y1, x0), at(b, y1, x1));
                    for (ch, d) in dst.iter_mut().enumerate() {
                        let top = x[a + ch] * (1.0 - fx) + x[bb + ch] * fx;
                        let bot = x[cc + ch] * (1.0 - fx) + x[dd + ch] * fx;
                        *d = top * (1.0 - fy) + bot * fy;
                    }
                }
            }
        }
    });
    out
}

impl ResampleOps for CpuStorage {
    fn upfirdn2d(x: &Self, g: &UpFirDnGeometry, kernel: &[f32]) -> Result<Self> {
        Ok(CpuStorage::F32(upfirdn2d(x.f32s("upfirdn2d")?, g, kernel)))
    }

    fn resample2x(x: &Self, s: &Nhwc, mode: Resample2x) -> Result<Self> {
        Ok(CpuStorage::F32(resample2x(x.f32s("resample2x")?, s, mode)))
    }
}
