//! Launches of `kernels/resample.cu`: upfirdn2d (the FIR up/down-sampling of NCSN++) and the fixed
//! 2× resamplers.

use std::sync::Arc;

use super::launch::{check_placed, for_dtype, launch_1d, nhwc, u32_of};
use super::CudaStorage;
use crate::backend::geometry::{Nhwc, Resample2x, UpFirDnGeometry};
use crate::backend::ResampleOps;
use crate::error::{Error, Result};
use crate::kernels::names;
use crate::kernels::params::{
    TriResample2xParams, TriUpFirDnParams, TRI_RESAMPLE_BILINEAR_UP_ALIGNED,
    TRI_RESAMPLE_MEAN_DOWN, TRI_RESAMPLE_NEAREST_UP, TRI_UPFIRDN_MAX_K,
};

impl ResampleOps for CudaStorage {
    fn upfirdn2d(x: &Self, g: &UpFirDnGeometry, kernel: &[f32]) -> Result<Self> {
        const OP: &str = "upfirdn2d (cuda)";
        let dev = Arc::clone(x.device());
        let max_k = TRI_UPFIRDN_MAX_K as usize;
        if g.k == 0 || g.k > max_k || kernel.len() != g.k * g.k {
            return Err(Error::InvalidParam {
                op: OP,
                what: "kernel",
                rule: "k × k taps with 1 <= k <= 8",
                found: format!("{} taps for k = {}", kernel.len(), g.k),
            });
        }
        check_placed(OP, "x", x, g.n * g.h * g.w * g.c, &dev)?;
        let pad = |v: isize| {
            i32::try_from(v).map_err(|_| Error::InvalidParam {
                op: OP,
                what: "padding",
                rule: "within i32",
                found: v.to_string(),
            })
        };
        let mut taps = [0f32; (TRI_UPFIRDN_MAX_K * TRI_UPFIRDN_MAX_K) as usize];
        taps[..kernel.len()].copy_from_slice(kernel);
        let p = TriUpFirDnParams {
            in_: nhwc(OP, &g.input())?,
            up: u32_of(OP, "up", g.up)?,
            down: u32_of(OP, "down", g.down)?,
            pad0: pad(g.pad0)?,
            pad1: pad(g.pad1)?,
            k: g.k as u32,
            ho: u32_of(OP, "output height", g.ho)?,
            wo: u32_of(OP, "output width", g.wo)?,
            pad: 0,
            taps,
        };
        // The kernel's own bounds: the kernel reads only input pixels that its source mapping
        // places inside [0, h) × [0, w) (padding and inserted zeros are skipped).
        use names::resample as k;
        let kernel = for_dtype([k::UPFIRDN2D_F32, k::UPFIRDN2D_BF16, k::UPFIRDN2D_F16], x.dtype());
        launch_1d(OP, kernel, &[x], g.n * g.ho * g.wo * g.c, &p)
    }

    fn resample2x(x: &Self, s: &Nhwc, mode: Resample2x) -> Result<Self> {
        const OP: &str = "resample2x (cuda)";
        let dev = Arc::clone(x.device());
        check_placed(OP, "x", x, s.len(), &dev)?;
        let (out_len, code) = match mode {
            Resample2x::NearestUp => (s.len() * 4, TRI_RESAMPLE_NEAREST_UP),
            Resample2x::MeanDown => (s.n * (s.h / 2) * (s.w / 2) * s.c, TRI_RESAMPLE_MEAN_DOWN),
            Resample2x::BilinearUpAligned => (s.len() * 4, TRI_RESAMPLE_BILINEAR_UP_ALIGNED),
        };
        let p = TriResample2xParams {
            in_: nhwc(OP, s)?,
            mode: code,
            pad: 0,
        };
        use names::resample as k;
        let kernel = for_dtype([k::RESAMPLE2X_F32, k::RESAMPLE2X_BF16, k::RESAMPLE2X_F16], x.dtype());
        launch_1d(OP, kernel, &[x], out_len, &p)
    }
}
