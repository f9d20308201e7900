//! Launch of `kernels/cld_em.cu`.

use std::sync::Arc;

use cudarc::driver::PushKernelArg;

use super::CudaStorage;
use crate::error::{Error, Result};
use crate::kernels::params::TriCldEmParams;
use crate::tensor::DType;

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
    check("alpha", alpha, n)?;
    match (p.noise_mode, noise) {
        (1, Some(z)) => check("noise", z, 2 * n)?,
        (2, None) => {}
        (0, None)
            if p.noise.elems_per_sample > 0
                && p.noise.elems_per_sample % (2 * p.c as u64) == 0
                && p.noise.num_samples as u64 * p.noise.elems_per_sample == 2 * n as u64
                && p.noise.elems_per_sample <= 4 << 32 => {}
        _ => return Err(Error::InvalidParam {
            op: OP,
            what: "noise",
            rule:
                "a [pixels, 2c] tensor (mode 1), a Philox draw of that layout (mode 0) or none (2)",
            found: format!("mode {} with a tensor: {}", p.noise_mode, noise.is_some()),
        }),
    }
    let dev = Arc::clone(x.device());
    let mut xo = CudaStorage::alloc(&dev, n, DType::F32)?;
    let mut vo = CudaStorage::alloc(&dev, n, DType::F32)?;
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
