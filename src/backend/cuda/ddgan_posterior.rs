//! Launch of `kernels/ddgan_posterior.cu`.

use cudarc::driver::PushKernelArg;

use super::CudaStorage;
use crate::backend::DdganPosteriorOps;
use crate::error::{Error, Result};
use crate::kernels::params::{TriDdganPosteriorParams, TriRandnParams};

impl DdganPosteriorOps for CudaStorage {
    fn ddgan_posterior_step(
        x0: &Self,
        x_t: &Self,
        noise: Option<&Self>,
        p: &TriDdganPosteriorParams,
    ) -> Result<Self> {
        let n = x_t.len();
        for (name, s) in [("x0_hat", Some(x0)), ("noise", noise)] {
            if let Some(s) = s {
                if s.len() != n || s.dtype() != x_t.dtype() {
                    return Err(Error::ShapeMismatch {
                        op: "ddgan posterior",
                        tensor: name,
                        expected: vec![n],
                        found: vec![s.len()],
                    });
                }
            }
        }
        if noise.is_none() && p.noise_std != 0.0 {
            return Err(Error::InvalidParam {
                op: "ddgan posterior",
                what: "noise",
                rule: "given when noise_std > 0",
                found: "none".into(),
            });
        }
        let dev = std::sync::Arc::clone(x_t.device());
        let mut out = CudaStorage::alloc(&dev, n, x_t.dtype())?;
        if n == 0 {
            return Ok(out);
        }
        let f = dev.function(
            "ddgan_posterior",
            &format!("ddgan_posterior_step_{}", x_t.dtype().name()),
        )?;
        let p = TriDdganPosteriorParams { n: n as u64, ..*p };
        let cfg = dev.launch_1d(p.n);
        let (x0v, xtv) = (x0.view(), x_t.view());
        // Without noise (the last step) the kernel never reads its noise pointer (noise_std == 0); x_t's
        // buffer stands in so that the argument is a valid device pointer all the same.
        let zv = noise.unwrap_or(x_t).view();
        let mut yv = out.view_mut();
        let mut launch = dev.stream().launch_builder(&f);
        launch.arg(&x0v).arg(&xtv).arg(&zv).arg(&mut yv).arg(&p);
        // SAFETY: `ddgan_posterior_step_<dtype>(const T* x0, const T* xt, const T* noise, T* out, params)`:
        // argument order and types are fixed here and T is x_t's dtype, which x0 and noise share (checked
        // above). Bounds: every view holds exactly p.n elements (lengths checked above; `out` allocated with
        // n). Aliasing: `out` is a fresh block, so the kernel's __restrict__ on its inputs holds; the inputs
        // are only read. Ordering and lifetime: all work is on the device's one stream and blocks are
        // recycled only in stream order.
        unsafe { launch.launch(cfg) }
            .map_err(Error::driver("ddgan posterior", "cuLaunchKernel"))?;
        Ok(out)
    }

    /// The draw with in-kernel Philox noise (`ddgan_posterior_philox_<dtype>`).
    fn ddgan_posterior_philox(
        x0: &Self,
        x_t: &Self,
        p: &TriDdganPosteriorParams,
        r: &TriRandnParams,
    ) -> Result<Self> {
        let n = x_t.len();
        let described = (r.num_samples as u64).checked_mul(r.elems_per_sample);
        if x0.len() != n || x0.dtype() != x_t.dtype() || described != Some(n as u64) {
            return Err(Error::ShapeMismatch {
                op: "ddgan posterior (philox)",
                tensor: "x0_hat, noise layout",
                expected: vec![n],
                found: vec![x0.len(), described.unwrap_or(u64::MAX) as usize],
            });
        }
        if !std::sync::Arc::ptr_eq(x0.device(), x_t.device()) {
            return Err(Error::DeviceMismatch {
                op: "ddgan posterior (philox)",
                a: format!("cuda:{}", x0.device().ordinal()),
                b: format!("cuda:{}", x_t.device().ordinal()),
            });
        }
        let dev = std::sync::Arc::clone(x_t.device());
        let mut out = CudaStorage::alloc(&dev, n, x_t.dtype())?;
        if n == 0 {
            return Ok(out);
        }
        let f = dev.function(
            "ddgan_posterior",
            &format!("ddgan_posterior_philox_{}", x_t.dtype().name()),
        )?;
        let p = TriDdganPosteriorParams { n: n as u64, ..*p };
        let cfg = dev.launch_1d(r.elems_per_sample.div_ceil(4) * r.num_samples as u64);
        let (x0v, xtv) = (x0.view(), x_t.view());
        let mut yv = out.view_mut();
        let mut launch = dev.stream().launch_builder(&f);
        launch.arg(&x0v).arg(&xtv).arg(&mut yv).arg(&p).arg(r);
        // SAFETY: `ddgan_posterior_philox_<dtype>(const T* x0, const T* xt, T* out, posterior params,
        // randn params)`: order and types fixed here, T is x_t's dtype, shared by x0 (checked). Bounds: the
        // kernel touches elements s·elems_per_sample + e for s < num_samples, e < elems_per_sample, which
        // is below n = num_samples·elems_per_sample, the length of every view (checked above). Aliasing:
        // `out` is a fresh block. Ordering and lifetime: one stream; blocks recycled in stream order.
        unsafe { launch.launch(cfg) }
            .map_err(Error::driver("ddgan posterior", "cuLaunchKernel"))?;
        Ok(out)
    }
}
