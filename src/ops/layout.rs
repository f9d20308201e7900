//! Layout ops (`kernels/layout.cu`): channel concat and slice, crops, per-channel means, PixelNorm and
//! NCHW ↔ NHWC.

use super::checks::{compatible, nhwc};
use super::dispatch::{dispatch, wrap};
use crate::backend::geometry::{Nhwc, Window};
use crate::backend::LayoutOps;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Concatenation along the last (channel) axis; all other dimensions must agree.
pub fn concat_channels(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    const OP: &str = "concat_channels";
    let (ra, rb) = (a.shape().len(), b.shape().len());
    if ra == 0 || ra != rb || a.shape()[..ra - 1] != b.shape()[..rb - 1] {
        return Err(Error::ShapeMismatch {
            op: OP,
            tensor: "b",
            expected: a.shape().to_vec(),
            found: b.shape().to_vec(),
        });
    }
    compatible(OP, "b", b, a)?;
    let (ca, cb) = (a.shape()[ra - 1], b.shape()[rb - 1]);
    let pixels = a.shape()[..ra - 1].iter().product();
    let storage = dispatch!(OP, [a, b], |sa, sb| S::concat_channels(
        sa, sb, pixels, ca, cb
    )?);
    let mut shape = a.shape().to_vec();
    shape[ra - 1] = ca + cb;
    wrap(storage, &shape)
}

/// Channels `start..start + len` (last axis).
pub fn slice_channels(x: &Tensor, start: usize, len: usize) -> Result<Tensor> {
    const OP: &str = "slice_channels";
    let r = x.shape().len();
    let c = x.shape().last().copied().unwrap_or(0);
    if r == 0 || start + len > c {
        return Err(Error::InvalidParam {
            op: OP,
            what: "channel range",
            rule: "inside the last axis",
            found: format!("{start}..{} of shape {:?}", start + len, x.shape()),
        });
    }
    let pixels = x.shape()[..r - 1].iter().product();
    let storage = dispatch!(OP, [x], |xs| S::slice_channels(xs, pixels, c, start, len)?);
    let mut shape = x.shape().to_vec();
    shape[r - 1] = len;
    wrap(storage, &shape)
}

/// The `ho`×`wo` window at (`top`, `left`).
pub fn crop(x: &Tensor, top: usize, left: usize, ho: usize, wo: usize) -> Result<Tensor> {
    const OP: &str = "crop";
    let s = nhwc(OP, "x", x)?;
    let window = Window { top, left, ho, wo };
    window.check(OP, &s)?;
    let storage = dispatch!(OP, [x], |xs| S::crop(xs, &s, &window)?);
    wrap(storage, &[s.n, ho, wo, s.c])
}

/// Mean over all pixels: [n, h, w, c] → [n, c].
pub fn channel_mean(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "channel_mean";
    let s = nhwc(OP, "x", x)?;
    let storage = dispatch!(OP, [x], |xs| S::channel_mean(xs, s.n, s.pixels(), s.c)?);
    wrap(storage, &[s.n, s.c])
}

/// DDGAN's PixelNorm of `[rows, dim]`: z / √(mean(z²) + 1e-8) per row, on the tensor's device (the
/// sampler keeps its state on the GPU, with no host round trip per step).
pub fn pixel_norm(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "pixel_norm";
    let [rows, dim] = x.dims(OP, "x", "a 2-D [rows, features] tensor")?;
    let storage = dispatch!(OP, [x], |xs| S::pixel_norm(xs, rows, dim)?);
    wrap(storage, &[rows, dim])
}

/// [n, c, h, w] → [n, h, w, c].
pub fn nchw_to_nhwc(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "nchw_to_nhwc";
    let [n, c, h, w] = x.dims(OP, "x", "a 4-D NCHW tensor")?;
    let s = Nhwc { n, h, w, c };
    let storage = dispatch!(OP, [x], |xs| S::permute_nchw(xs, &s, true)?);
    wrap(storage, &[n, h, w, c])
}

/// [n, h, w, c] → [n, c, h, w].
pub fn nhwc_to_nchw(x: &Tensor) -> Result<Tensor> {
    const OP: &str = "nhwc_to_nchw";
    let s = nhwc(OP, "x", x)?;
    let storage = dispatch!(OP, [x], |xs| S::permute_nchw(xs, &s, false)?);
    wrap(storage, &[s.n, s.c, s.h, s.w])
}
