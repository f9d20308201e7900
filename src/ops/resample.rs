//! Resampling (`kernels/resample.cu`): upfirdn2d with the FIR kernels of NCSN++, and the fixed 2×
//! resamplers.

use super::checks::{nhwc, positive};
use super::conv2d::{conv2d, Conv2dParams, Padding};
use super::dispatch::{dispatch, wrap};
use crate::backend::geometry::{Resample2x, UpFirDnGeometry};
use crate::backend::ResampleOps;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// upfirdn2d (see [`UpFirDnGeometry`]) with the `k`×`k` row-major `kernel`.
pub fn upfirdn2d(
    x: &Tensor,
    kernel: &[f32],
    up: usize,
    down: usize,
    pad: (isize, isize),
) -> Result<Tensor> {
    const OP: &str = "upfirdn2d";
    let s = nhwc(OP, "x", x)?;
    positive(OP, "up", up)?;
    positive(OP, "down", down)?;
    let k = (kernel.len() as f64).sqrt() as usize;
    if k == 0 || k * k != kernel.len() {
        return Err(Error::InvalidParam {
            op: OP,
            what: "kernel",
            rule: "a non-empty square k*k kernel",
            found: format!("{} taps", kernel.len()),
        });
    }
    let extent = |n: usize| (n * up) as isize + pad.0 + pad.1 - k as isize;
    let (eh, ew) = (extent(s.h), extent(s.w));
    if eh < 0 || ew < 0 {
        return Err(Error::InvalidParam {
            op: OP,
            what: "padding",
            rule: "leaving at least one kernel-sized window",
            found: format!(
                "pads {pad:?} on a {}x{} input with a {k}x{k} kernel",
                s.h, s.w
            ),
        });
    }
    let g = UpFirDnGeometry {
        n: s.n,
        h: s.h,
        w: s.w,
        c: s.c,
        up,
        down,
        pad0: pad.0,
        pad1: pad.1,
        k,
        ho: eh as usize / down + 1,
        wo: ew as usize / down + 1,
    };
    let storage = dispatch!(OP, [x], |xs| S::upfirdn2d(xs, &g, kernel)?);
    wrap(storage, &[s.n, g.ho, g.wo, s.c])
}

/// The normalised 2-D FIR kernel outer(k, k) / sum², times `gain`, rounded to f32 as the official code
/// builds it (numpy float32).
pub fn fir_kernel_2d(k: &[f32], gain: f32) -> Vec<f32> {
    let n = k.len();
    let mut out = vec![0.0f32; n * n];
    let mut sum = 0.0f32;
    for i in 0..n {
        for j in 0..n {
            out[i * n + j] = k[i] * k[j];
        }
    }
    for v in &out {
        sum += v;
    }
    for v in out.iter_mut() {
        *v = *v / sum * gain;
    }
    out
}

/// FIR upsample by 2 (layers.fir_upsample_2d): gain 4 keeps a constant image constant.
pub fn fir_upsample2x(x: &Tensor, k: &[f32]) -> Result<Tensor> {
    let kk = fir_kernel_2d(k, 4.0);
    let p = k.len() as isize - 2;
    upfirdn2d(x, &kk, 2, 1, ((p + 1) / 2 + 1, p / 2))
}

/// FIR downsample by 2 (layers.fir_downsample_2d).
pub fn fir_downsample2x(x: &Tensor, k: &[f32]) -> Result<Tensor> {
    let kk = fir_kernel_2d(k, 1.0);
    let p = k.len() as isize - 2;
    upfirdn2d(x, &kk, 1, 2, ((p + 1) / 2, p / 2))
}

/// FIR filter then a stride-2 valid conv with `w` [kw, kw, ci, co] (layers.fir_conv_downsample_2d).
pub fn fir_conv_downsample2x(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    k: &[f32],
) -> Result<Tensor> {
    let kk = fir_kernel_2d(k, 1.0);
    let kw = w.shape().get(1).copied().unwrap_or(1) as isize;
    let p = (k.len() as isize - 2) + (kw - 1);
    let filtered = upfirdn2d(x, &kk, 1, 1, ((p + 1) / 2, p / 2))?;
    conv2d(
        &filtered,
        w,
        bias,
        &Conv2dParams {
            stride: 2,
            padding: Padding::default(),
            groups: 1,
        },
    )
}

pub fn resample2x(x: &Tensor, mode: Resample2x) -> Result<Tensor> {
    const OP: &str = "resample2x";
    let s = nhwc(OP, "x", x)?;
    let shape = match mode {
        Resample2x::MeanDown => {
            if s.h % 2 != 0 || s.w % 2 != 0 {
                return Err(Error::InvalidParam {
                    op: OP,
                    what: "x",
                    rule: "even height and width for a 2x2 mean",
                    found: format!("{}x{}", s.h, s.w),
                });
            }
            [s.n, s.h / 2, s.w / 2, s.c]
        }
        _ => [s.n, s.h * 2, s.w * 2, s.c],
    };
    let storage = dispatch!(OP, [x], |xs| S::resample2x(xs, &s, mode)?);
    wrap(storage, &shape)
}

// ---- layout ------------------------------------------------------------------------------------
