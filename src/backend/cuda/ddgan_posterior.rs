//! Launch of `kernels/ddgan_posterior.cu`: the posterior draw with a noise tensor, without noise (the
//! last step) or with in-kernel Philox noise.

use std::sync::Arc;

use cudarc::driver::PushKernelArg;

use super::launch::launch_error;
use super::CudaStorage;
use crate::backend::{DdganPosteriorOps, PosteriorDraw, PosteriorNoise};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::names::ddgan_posterior as K;
use crate::kernels::params::TriDdganPosteriorParams;

const OP: &str = "ddgan posterior (cuda)";

/// `s` holds `n` values of `dtype` on `dev`.
fn check_like(
    tensor: &'static str,
    s: &CudaStorage,
    n: usize,
    dtype: DType,
    dev: &Arc<crate::device::CudaDevice>,
) -> Result<()> {
    if s.len() != n || s.dtype() != dtype {
        return Err(Error::ShapeMismatch {
            op: OP,
            tensor,
            expected: vec![n],
            found: vec![s.len()],
        });
    }
    if !Arc::ptr_eq(s.device(), dev) {
        return Err(Error::DeviceMismatch {
            op: OP,
            a: format!("cuda:{}", dev.ordinal()),
            b: format!("cuda:{}", s.device().ordinal()),
        });
    }
    Ok(())
}

impl DdganPosteriorOps for CudaStorage {
    fn ddgan_posterior(d: PosteriorDraw<'_, Self>, p: &TriDdganPosteriorParams) -> Result<Self> {
        let (x_t, n, dtype) = (d.x_t, d.x_t.len(), d.x_t.dtype());
        let dev = Arc::clone(x_t.device());
        check_like("x0_hat", d.x0, n, dtype, &dev)?;
        match d.noise {
            PosteriorNoise::Tensor(z) => check_like("noise", z, n, dtype, &dev)?,
            PosteriorNoise::Zero if p.noise_std != 0.0 => {
                return Err(Error::InvalidParam {
                    op: OP,
                    what: "noise",
                    rule: "given when noise_std > 0",
                    found: "none".into(),
                })
            }
            PosteriorNoise::Zero => {}
            PosteriorNoise::Philox(r) => {
                let described = (r.num_samples as u64).checked_mul(r.elems_per_sample);
                if described != Some(n as u64) {
                    return Err(Error::ShapeMismatch {
                        op: OP,
                        tensor: "noise layout",
                        expected: vec![n],
                        found: vec![described.unwrap_or(u64::MAX) as usize],
                    });
                }
            }
        }
        let mut out = CudaStorage::alloc(&dev, n, dtype)?;
        if n == 0 {
            return Ok(out);
        }
        let p = TriDdganPosteriorParams { n: n as u64, ..*p };
        let (x0v, xtv) = (d.x0.view(), x_t.view());
        let mut yv = out.view_mut();
        match d.noise {
            PosteriorNoise::Philox(r) => {
                let f = dev.function(match dtype {
                    DType::F32 => K::DDGAN_POSTERIOR_PHILOX_F32,
                    DType::BF16 => K::DDGAN_POSTERIOR_PHILOX_BF16,
                    DType::F16 => K::DDGAN_POSTERIOR_PHILOX_F16,
                })?;
                let cfg = dev.launch_1d(r.elems_per_sample.div_ceil(4) * r.num_samples as u64);
                let r = dev.philox_params(r);
                let mut l = dev.stream().launch_builder(&f);
                l.arg(&x0v).arg(&xtv).arg(&mut yv).arg(&p).arg(&r);
                // SAFETY: see the shared argument in `launch.rs`.
                // `ddgan_posterior_philox_<dtype>(const T* x0, const T* xt, T* out, posterior params,
                // randn params)`, T is x_t's dtype, shared by x0 (checked). Bounds: the kernel touches
                // elements s·elems_per_sample + e for s < num_samples, e < elems_per_sample, below
                // n = num_samples·elems_per_sample, the length of every view (checked above).
                unsafe { l.launch(cfg) }.map_err(launch_error(OP))?;
            }
            PosteriorNoise::Tensor(_) | PosteriorNoise::Zero => {
                let f = dev.function(match dtype {
                    DType::F32 => K::DDGAN_POSTERIOR_STEP_F32,
                    DType::BF16 => K::DDGAN_POSTERIOR_STEP_BF16,
                    DType::F16 => K::DDGAN_POSTERIOR_STEP_F16,
                })?;
                let cfg = dev.launch_1d(p.n);
                // Without noise (the last step) the kernel never reads its noise pointer
                // (noise_std == 0); x_t's buffer stands in so the argument is a valid device pointer.
                let zv = match d.noise {
                    PosteriorNoise::Tensor(z) => z.view(),
                    _ => x_t.view(),
                };
                let mut l = dev.stream().launch_builder(&f);
                l.arg(&x0v).arg(&xtv).arg(&zv).arg(&mut yv).arg(&p);
                // SAFETY: see the shared argument in `launch.rs`.
                // `ddgan_posterior_step_<dtype>(const T* x0, const T* xt, const T* noise, T* out,
                // params)`, T is x_t's dtype, which x0 and noise share (checked). Bounds: every view
                // holds exactly p.n elements (lengths checked above; `out` allocated with n).
                unsafe { l.launch(cfg) }.map_err(launch_error(OP))?;
            }
        }
        Ok(out)
    }
}
