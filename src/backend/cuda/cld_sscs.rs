//! Launch of `kernels/cld_sscs.cu`: CLD's fused SSCS analytic half step, and what the Euler–Maruyama
//! step's launch (`cld_em.rs`) shares with it: the u-shaped Philox draw's layout and the two outputs.

use std::sync::Arc;

use cudarc::driver::PushKernelArg;

use super::launch::check;
use super::CudaStorage;
use crate::backend::CldSscsOps;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::params::{TriRandnParams, TriSscsStepParams};
use crate::rng::MAX_ELEMS_PER_SAMPLE;

/// A Philox draw `r` describes the [pixels, 2c] u-shaped draw of `n` = pixels·c values, whole pixels
/// per sample.
pub(super) fn philox_layout_ok(r: &TriRandnParams, c: u32, n: usize) -> bool {
    r.elems_per_sample > 0
        && r.elems_per_sample % (2 * c as u64) == 0
        && r.num_samples as u64 * r.elems_per_sample == 2 * n as u64
        && r.elems_per_sample <= MAX_ELEMS_PER_SAMPLE
}

/// Two fresh f32 outputs of `n` values.
pub(super) fn outputs(x: &CudaStorage, n: usize) -> Result<(CudaStorage, CudaStorage)> {
    Ok((
        CudaStorage::alloc(x.device(), n, DType::F32)?,
        CudaStorage::alloc(x.device(), n, DType::F32)?,
    ))
}

impl CldSscsOps for CudaStorage {
    /// The fused SSCS half step: (x', v') from x, v ([pixels, c] f32 each) and the noise tensor
    /// ([pixels, 2c]) or, without one, the Philox draw `p.noise`.
    fn cld_sscs_half_step(
        x: &Self,
        v: &Self,
        noise: Option<&Self>,
        p: &TriSscsStepParams,
    ) -> Result<(Self, Self)> {
        const OP: &str = "sscs half step (cuda)";
        let n = (p.pixels * p.c as u64) as usize;
        check(OP, "x", x, n, x.device())?;
        check(OP, "v", v, n, x.device())?;
        if let Some(z) = noise {
            check(OP, "noise", z, 2 * n, x.device())?;
        } else if !philox_layout_ok(&p.noise, p.c, n) {
            return Err(Error::InvalidParam {
                op: OP,
                what: "noise layout",
                rule: "num_samples × elems_per_sample = the [pixels, 2c] draw, whole pixels per sample",
                found: format!("{} × {}", p.noise.num_samples, p.noise.elems_per_sample),
            });
        }
        let dev = Arc::clone(x.device());
        let (mut xo, mut vo) = outputs(x, n)?;
        if n == 0 {
            return Ok((xo, vo));
        }
        let f = dev.function("cld_sscs", "cld_sscs_half_step_f32")?;
        let cfg = dev.launch_1d(n as u64);
        let (xv, vv) = (x.view(), v.view());
        // Without a noise tensor the kernel never reads its pointer (has_noise = 0); x stands in.
        let zv = noise.unwrap_or(x).view();
        let (mut xov, mut vov) = (xo.view_mut(), vo.view_mut());
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&xv)
            .arg(&vv)
            .arg(&zv)
            .arg(&mut xov)
            .arg(&mut vov)
            .arg(p);
        // SAFETY: `cld_sscs_half_step_f32(const float* x, const float* v, const float* noise, float* x_out,
        // float* v_out, TriSscsStepParams p)`: order and types fixed here, all f32 (checked). Bounds: the
        // kernel touches x, v, x_out, v_out at i < pixels·c = n, their lengths (checked or allocated), and the
        // noise tensor at px·2c + ch + c < 2n, its length (checked); Philox indices stay inside the
        // described draw (layout checked). Aliasing: both outputs are fresh, distinct blocks. Ordering and
        // lifetime: one stream; blocks are recycled in stream order.
        unsafe { l.launch(cfg) }.map_err(Error::driver(OP, "cuLaunchKernel"))?;
        Ok((xo, vo))
    }
}
