//! Launch of `kernels/cld_sscs.cu`: CLD's fused SSCS analytic half step, and what the Euler–Maruyama
//! step's launch (`cld_em.rs`) shares with it: the state and noise checks and the two-output launch.

use std::sync::Arc;

use cudarc::driver::{DeviceRepr, PushKernelArg};

use super::launch::{check, launch_error};
use super::CudaStorage;
use crate::backend::{CldSscsOps, CldState};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::names;
use crate::kernels::params::{TriRandnParams, TriSscsStepParams};
use crate::kernels::Kernel;
use crate::rng::MAX_ELEMS_PER_SAMPLE;

/// A Philox draw `r` describes the [pixels, 2c] u-shaped draw of `n` = pixels·c values, whole pixels
/// per sample.
pub(super) fn philox_layout_ok(r: &TriRandnParams, c: u32, n: usize) -> bool {
    r.elems_per_sample > 0
        && r.elems_per_sample % (2 * c as u64) == 0
        && r.num_samples as u64 * r.elems_per_sample == 2 * n as u64
        && r.elems_per_sample <= MAX_ELEMS_PER_SAMPLE
}

/// Checks the state's x and v (`n` f32 values each), the `extra` inputs (also `n`) and a noise tensor
/// (`2n`) against x's device.
pub(super) fn check_state(
    op: &'static str,
    s: &CldState<'_, CudaStorage>,
    extra: &[(&'static str, &CudaStorage)],
    n: usize,
) -> Result<()> {
    let dev = s.x.device();
    for (name, t) in [("x", s.x), ("v", s.v)].iter().chain(extra) {
        check(op, name, t, n, dev)?;
    }
    if let Some(z) = s.noise {
        check(op, "noise", z, 2 * n, dev)?;
    }
    Ok(())
}

/// Launches `kernel(const float* inputs..., const float* noise, float* x_out, float* v_out, P p)`
/// over `n` = pixels·c threads: the CLD steps' common tail. `inputs` start with x; the caller has
/// checked them (and the noise tensor or the Philox layout) with [`check_state`].
pub(super) fn launch_step<P: DeviceRepr>(
    op: &'static str,
    kernel: Kernel,
    inputs: &[&CudaStorage],
    noise: Option<&CudaStorage>,
    n: usize,
    p: &P,
) -> Result<[CudaStorage; 2]> {
    let x = inputs[0];
    let dev = Arc::clone(x.device());
    let mut xo = CudaStorage::alloc(&dev, n, DType::F32)?;
    let mut vo = CudaStorage::alloc(&dev, n, DType::F32)?;
    if n == 0 {
        return Ok([xo, vo]);
    }
    let f = dev.function(kernel)?;
    let cfg = dev.launch_1d(n as u64);
    let views: Vec<_> = inputs.iter().map(|t| t.view()).collect();
    // Without a noise tensor the kernel never reads its pointer (its mode or flag says so); x stands
    // in so that the argument is a valid device pointer all the same.
    let zv = noise.unwrap_or(x).view();
    let (mut xov, mut vov) = (xo.view_mut(), vo.view_mut());
    let mut l = dev.stream().launch_builder(&f);
    for v in &views {
        l.arg(v);
    }
    l.arg(&zv).arg(&mut xov).arg(&mut vov).arg(p);
    // SAFETY: see the shared argument in `launch.rs`. Signature: the inputs, then the noise pointer,
    // the two outputs and the params, in the kernel's order (`cld_sscs_half_step_f32(x, v, noise, ..)`,
    // `cld_em_step_f32(x, v, alpha, noise, ..)`), all f32 (checked). Bounds: every input and both
    // outputs hold n = pixels·c values and the kernel indexes them below n; the noise tensor holds 2n
    // and is read at px·2c + ch (+ c) < 2n; Philox indices stay in the described draw (checked).
    // Aliasing: the outputs are fresh, distinct blocks.
    unsafe { l.launch(cfg) }.map_err(launch_error(op))?;
    Ok([xo, vo])
}

impl CldSscsOps for CudaStorage {
    fn cld_sscs_half_step(s: CldState<'_, Self>, p: &TriSscsStepParams) -> Result<[Self; 2]> {
        const OP: &str = "sscs half step (cuda)";
        let n = (p.pixels * p.c as u64) as usize;
        check_state(OP, &s, &[], n)?;
        if s.noise.is_none() && !philox_layout_ok(&p.noise, p.c, n) {
            return Err(Error::InvalidParam {
                op: OP,
                what: "noise layout",
                rule: "num_samples × elems_per_sample = the [pixels, 2c] draw, whole pixels per sample",
                found: format!("{} × {}", p.noise.num_samples, p.noise.elems_per_sample),
            });
        }
        let p = TriSscsStepParams {
            noise: s.x.device().philox_params(&p.noise),
            ..*p
        };
        launch_step(
            OP,
            names::cld_sscs::CLD_SSCS_HALF_STEP_F32,
            &[s.x, s.v],
            s.noise,
            n,
            &p,
        )
    }
}
