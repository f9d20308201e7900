//! Launches of `kernels/layout.cu`: channel concat and slice, crops, NCHW ↔ NHWC, per-channel means
//! and PixelNorm.

use std::sync::Arc;

use super::launch::{check, check_as, check_placed, for_dtype, launch_1d, nhwc, u32_of};
use super::CudaStorage;
use crate::backend::geometry::{Nhwc, Window};
use crate::backend::LayoutOps;
use crate::error::{Error, Result};
use crate::kernels::names;
use crate::kernels::params::{
    TriChannelCopyParams, TriChannelMeanParams, TriCropParams, TriPermuteParams,
};

impl LayoutOps for CudaStorage {
    fn concat_channels(a: &Self, b: &Self, pixels: usize, ca: usize, cb: usize) -> Result<Self> {
        const OP: &str = "concat_channels (cuda)";
        let dev = Arc::clone(a.device());
        check_placed(OP, "a", a, pixels * ca, &dev)?;
        check_as(OP, "b", b, pixels * cb, &dev, a.dtype())?;
        let p = TriChannelCopyParams {
            pixels: pixels as u64,
            ca: u32_of(OP, "channels", ca)?,
            cb: u32_of(OP, "channels", cb)?,
            start: 0,
            len: 0,
        };
        use names::layout as k;
        let kernel = [k::CONCAT_CHANNELS_F32, k::CONCAT_CHANNELS_BF16, k::CONCAT_CHANNELS_F16];
        launch_1d(OP, for_dtype(kernel, a.dtype()), &[a, b], pixels * (ca + cb), &p)
    }

    fn slice_channels(x: &Self, pixels: usize, c: usize, start: usize, len: usize) -> Result<Self> {
        const OP: &str = "slice_channels (cuda)";
        let dev = Arc::clone(x.device());
        check_placed(OP, "x", x, pixels * c, &dev)?;
        if start + len > c {
            return Err(Error::InvalidParam {
                op: OP,
                what: "channel range",
                rule: "inside the input's channels",
                found: format!("{start}..{} of {c}", start + len),
            });
        }
        let p = TriChannelCopyParams {
            pixels: pixels as u64,
            ca: u32_of(OP, "channels", c)?,
            cb: 0,
            start: start as u32,
            len: len as u32,
        };
        // The kernel's own bounds: start + len <= c (checked).
        use names::layout as k;
        let kernel = [k::SLICE_CHANNELS_F32, k::SLICE_CHANNELS_BF16, k::SLICE_CHANNELS_F16];
        launch_1d(OP, for_dtype(kernel, x.dtype()), &[x], pixels * len, &p)
    }

    fn crop(x: &Self, s: &Nhwc, window: &Window) -> Result<Self> {
        const OP: &str = "crop (cuda)";
        let dev = Arc::clone(x.device());
        check_placed(OP, "x", x, s.len(), &dev)?;
        window.check(OP, s)?;
        let Window { top, left, ho, wo } = *window;
        // The window lies inside the image (checked), so its offsets fit the u32 dimensions.
        let p = TriCropParams {
            in_: nhwc(OP, s)?,
            top: top as u32,
            left: left as u32,
            ho: ho as u32,
            wo: wo as u32,
        };
        // The kernel's own bounds: the window lies inside the image (checked).
        use names::layout as k;
        let kernel = for_dtype([k::CROP_F32, k::CROP_BF16, k::CROP_F16], x.dtype());
        launch_1d(OP, kernel, &[x], s.n * ho * wo * s.c, &p)
    }

    fn channel_mean(x: &Self, n: usize, pixels: usize, c: usize) -> Result<Self> {
        const OP: &str = "channel_mean (cuda)";
        let dev = Arc::clone(x.device());
        check_placed(OP, "x", x, n * pixels * c, &dev)?;
        let p = TriChannelMeanParams {
            n: u32_of(OP, "batch", n)?,
            pixels: u32_of(OP, "pixels", pixels)?,
            c: u32_of(OP, "channels", c)?,
            pad: 0,
        };
        use names::layout as k;
        let kernel = [k::CHANNEL_MEAN_F32, k::CHANNEL_MEAN_BF16, k::CHANNEL_MEAN_F16];
        launch_1d(OP, for_dtype(kernel, x.dtype()), &[x], n * c, &p)
    }

    fn pixel_norm(x: &Self, rows: usize, dim: usize) -> Result<Self> {
        const OP: &str = "pixel_norm (cuda)";
        let dev = Arc::clone(x.device());
        check(OP, "x", x, rows * dim, &dev)?;
        // A row of `dim` features is a sample of `dim` one-channel pixels.
        let p = TriChannelMeanParams {
            n: u32_of(OP, "rows", rows)?,
            pixels: u32_of(OP, "features", dim)?,
            c: 1,
            pad: 0,
        };
        launch_1d(OP, names::layout::PIXEL_NORM_F32, &[x], rows * dim, &p)
    }

    fn permute_nchw(x: &Self, s: &Nhwc, to_nhwc: bool) -> Result<Self> {
        const OP: &str = "permute_nchw (cuda)";
        let dev = Arc::clone(x.device());
        check(OP, "x", x, s.len(), &dev)?;
        let p = TriPermuteParams {
            s: nhwc(OP, s)?,
            to_nhwc: to_nhwc as u32,
            pad: 0,
        };
        launch_1d(OP, names::layout::PERMUTE_NCHW_F32, &[x], s.len(), &p)
    }
}
