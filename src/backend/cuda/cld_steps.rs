//! Launches of `kernels/cld_sscs.cu` and `kernels/cld_em.cu`: CLD's fused sampler steps.

use std::sync::Arc;

use cudarc::driver::PushKernelArg;

use super::CudaStorage;
use crate::error::{Error, Result};
use crate::kernels::params::{TriCldEmParams, TriRandnParams, TriSscsStepParams};
use crate::tensor::DType;

/// `s` is f32 with `len` values on `x`'s device.
fn check(
    op: &'static str,
    tensor: &'static str,
    s: &CudaStorage,
    len: usize,
    x: &CudaStorage,
) -> Result<()> {
    if s.dtype() != DType::F32 || s.len() != len || !Arc::ptr_eq(s.device(), x.device()) {
        return Err(Error::ShapeMismatch {
            op,
            tensor,
            expected: vec![len],
            found: vec![s.len()],
        });
    }
    Ok(())
}

/// A Philox draw `r` describes the [pixels, 2c] u-shaped draw of `n` = pixels·c values, whole pixels
/// per sample.
fn philox_layout_ok(r: &TriRandnParams, c: u32, n: usize) -> bool {
    r.elems_per_sample > 0
        && r.elems_per_sample % (2 * c as u64) == 0
        && r.num_samples as u64 * r.elems_per_sample == 2 * n as u64
        && r.elems_per_sample <= 4 << 32
}

/// Two fresh f32 outputs of `n` values.
fn outputs(x: &CudaStorage, n: usize) -> Result<(CudaStorage, CudaStorage)> {
    Ok((
        CudaStorage::alloc(x.device(), n, DType::F32)?,
        CudaStorage::alloc(x.device(), n, DType::F32)?,
    ))
}

/// The fused SSCS half step: (x', v') from x, v ([pixels, c] f32 each) and the noise tensor
/// ([pixels, 2c]) or, without one, the Philox draw `p.noise`.
pub(crate) fn sscs_half_step(
    x: &CudaStorage,
    v: &CudaStorage,
    noise: Option<&CudaStorage>,
    p: &TriSscsStepParams,
) -> Result<(CudaStorage, CudaStorage)> {
    const OP: &str = "sscs half step (cuda)";
    let n = (p.pixels * p.c as u64) as usize;
    check(OP, "x", x, n, x)?;
    check(OP, "v", v, n, x)?;
    if let Some(z) = noise {
        check(OP, "noise", z, 2 * n, x)?;
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

/// The fused Euler–Maruyama step: (x', v') from x, v, alpha ([pixels, c] f32 each) and, by
/// `p.noise_mode`, the noise tensor ([pixels, 2c]), the Philox draw `p.noise`, or no noise.
pub(crate) fn cld_em_step(
    x: &CudaStorage,
    v: &CudaStorage,
    alpha: &CudaStorage,
    noise: Option<&CudaStorage>,
    p: &TriCldEmParams,
) -> Result<(CudaStorage, CudaStorage)> {
    const OP: &str = "cld em step (cuda)";
    let n = (p.pixels * p.c as u64) as usize;
    check(OP, "x", x, n, x)?;
    check(OP, "v", v, n, x)?;
    check(OP, "alpha", alpha, n, x)?;
    match (p.noise_mode, noise) {
        (1, Some(z)) => check(OP, "noise", z, 2 * n, x)?,
        (2, None) => {}
        (0, None) if philox_layout_ok(&p.noise, p.c, n) => {}
        _ => return Err(Error::InvalidParam {
            op: OP,
            what: "noise",
            rule:
                "a [pixels, 2c] tensor (mode 1), a Philox draw of that layout (mode 0) or none (2)",
            found: format!("mode {} with a tensor: {}", p.noise_mode, noise.is_some()),
        }),
    }
    let dev = Arc::clone(x.device());
    let (mut xo, mut vo) = outputs(x, n)?;
    if n == 0 {
        return Ok((xo, vo));
    }
    let f = dev.function("cld_em", "cld_em_step_f32")?;
    let cfg = dev.launch_1d(n as u64);
    let (xv, vv, av) = (x.view(), v.view(), alpha.view());
    // Without a noise tensor the kernel never reads its pointer (noise_mode != 1); x stands in.
    let zv = noise.unwrap_or(x).view();
    let (mut xov, mut vov) = (xo.view_mut(), vo.view_mut());
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&xv)
        .arg(&vv)
        .arg(&av)
        .arg(&zv)
        .arg(&mut xov)
        .arg(&mut vov)
        .arg(p);
    // SAFETY: `cld_em_step_f32(const float* x, const float* v, const float* alpha, const float* noise,
    // float* x_out, float* v_out, TriCldEmParams p)`: order and types fixed here, all f32 (checked).
    // Bounds: x, v, alpha and both outputs hold n = pixels·c values (checked or allocated) and the kernel
    // indexes them below n; the noise tensor holds 2n and is indexed at px·2c + c + ch < 2n; Philox
    // indices stay in the described draw (checked). Aliasing: the outputs are fresh, distinct blocks.
    // Ordering and lifetime: one stream; blocks recycled in stream order.
    unsafe { l.launch(cfg) }.map_err(Error::driver(OP, "cuLaunchKernel"))?;
    Ok((xo, vo))
}
