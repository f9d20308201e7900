//! Launch of `kernels/cld_sscs.cu`.

use std::sync::Arc;

use cudarc::driver::PushKernelArg;

use super::CudaStorage;
use crate::error::{Error, Result};
use crate::kernels::params::TriSscsStepParams;
use crate::tensor::DType;

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
    let check = |tensor: &'static str, s: &CudaStorage, len: usize| -> Result<()> {
        if s.dtype() != DType::F32 || s.len() != len || !Arc::ptr_eq(s.device(), x.device()) {
            return Err(Error::ShapeMismatch {
                op: OP,
                tensor,
                expected: vec![len],
                found: vec![s.len()],
            });
        }
        Ok(())
    };
    check("x", x, n)?;
    check("v", v, n)?;
    if let Some(z) = noise {
        check("noise", z, 2 * n)?;
    } else if p.noise.elems_per_sample == 0
        || p.noise.elems_per_sample % (2 * p.c as u64) != 0
        || p.noise.num_samples as u64 * p.noise.elems_per_sample != 2 * n as u64
        || p.noise.elems_per_sample > 4 << 32
    {
        return Err(Error::InvalidParam {
            op: OP,
            what: "noise layout",
            rule: "num_samples × elems_per_sample = the [pixels, 2c] draw, whole pixels per sample",
            found: format!("{} × {}", p.noise.num_samples, p.noise.elems_per_sample),
        });
    }
    let dev = Arc::clone(x.device());
    let mut xo = CudaStorage::alloc(&dev, n, DType::F32)?;
    let mut vo = CudaStorage::alloc(&dev, n, DType::F32)?;
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
