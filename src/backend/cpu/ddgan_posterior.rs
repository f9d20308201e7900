//! CPU reference of `kernels/ddgan_posterior.cu`: one draw from DDGAN's Gaussian posterior.

use super::{philox_normal, CpuStorage};
use crate::error::Result;
use crate::kernels::params::{TriDdganPosteriorParams, TriRandnParams};

pub(super) fn posterior_philox(
    x0: &CpuStorage,
    x_t: &CpuStorage,
    p: &TriDdganPosteriorParams,
    r: &TriRandnParams,
) -> Result<CpuStorage> {
    // The unfused path: the noise tensor, then the step; the CUDA kernel fuses the two.
    let mut noise = CpuStorage::zeros(x_t.len(), x_t.dtype());
    philox_normal::randn_philox(&mut noise, r)?;
    posterior_step(x0, x_t, Some(&noise), p)
}

pub(super) fn posterior_step(
    x0: &CpuStorage,
    x_t: &CpuStorage,
    noise: Option<&CpuStorage>,
    p: &TriDdganPosteriorParams,
) -> Result<CpuStorage> {
    let (x0, xt) = (x0.to_f32_vec(), x_t.to_f32_vec());
    let noise = noise.map(CpuStorage::to_f32_vec);
    let out: Vec<f32> = (0..xt.len())
        .map(|i| {
            // Same rounded operations in the same order as kernels/ddgan_posterior.cu.
            let mean = p.coef1 * x0[i] + p.coef2 * xt[i];
            match &noise {
                Some(z) if p.noise_std != 0.0 => mean + p.noise_std * z[i],
                _ => mean,
            }
        })
        .collect();
    Ok(CpuStorage::from_f32(&out, x_t.dtype()))
}
