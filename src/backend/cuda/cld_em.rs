//! Launch of `kernels/cld_em.cu`: CLD's fused Euler–Maruyama step (also the final denoising step).

use std::sync::Arc;

use cudarc::driver::PushKernelArg;

use super::cld_sscs::{outputs, philox_layout_ok};
use super::launch::check;
use super::CudaStorage;
use crate::backend::CldEmOps;
use crate::error::{Error, Result};
use crate::kernels::params::{
    TriCldEmParams, TRI_CLD_NOISE_NONE, TRI_CLD_NOISE_PHILOX, TRI_CLD_NOISE_TENSOR,
};

impl CldEmOps for CudaStorage {
    /// The fused Euler–Maruyama step: (x', v') from x, v, alpha ([pixels, c] f32 each) and, by
    /// `p.noise_mode`, the noise tensor ([pixels, 2c]), the Philox draw `p.noise`, or no noise.
    fn cld_em_step(
        x: &Self,
        v: &Self,
        alpha: &Self,
        noise: Option<&Self>,
        p: &TriCldEmParams,
    ) -> Result<(Self, Self)> {
        const OP: &str = "cld em step (cuda)";
        let n = (p.pixels * p.c as u64) as usize;
        check(OP, "x", x, n, x.device())?;
        check(OP, "v", v, n, x.device())?;
        check(OP, "alpha", alpha, n, x.device())?;
        match (p.noise_mode, noise) {
            (TRI_CLD_NOISE_TENSOR, Some(z)) => check(OP, "noise", z, 2 * n, x.device())?,
            (TRI_CLD_NOISE_NONE, None) => {}
            (TRI_CLD_NOISE_PHILOX, None) if philox_layout_ok(&p.noise, p.c, n) => {}
            _ => return Err(Error::InvalidParam {
                op: OP,
                what: "noise",
                rule:
                    "a [pixels, 2c] tensor, a Philox draw of that layout, or none, as noise_mode says",
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
        // Without a noise tensor the kernel never reads its pointer (noise_mode is not TRI_CLD_NOISE_TENSOR); x stands in.
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
}
