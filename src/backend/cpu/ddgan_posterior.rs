//! CPU reference of `kernels/ddgan_posterior.cu`: one draw from DDGAN's Gaussian posterior.

use super::CpuStorage;
use crate::backend::DdganPosteriorOps;
use crate::backend::PhiloxNormalOps;
use crate::error::Result;
use crate::kernels::params::{TriDdganPosteriorParams, TriRandnParams};

impl DdganPosteriorOps for CpuStorage {
    fn ddgan_posterior_philox(
        x0: &Self,
        x_t: &Self,
        p: &TriDdganPosteriorParams,
        r: &TriRandnParams,
    ) -> Result<Self> {
        // The unfused path: the noise tensor, then the step; the CUDA kernel fuses the two.
        let mut noise = CpuStorage::zeros(x_t.len(), x_t.dtype());
        noise.randn_philox(r)?;
        Self::ddgan_posterior_step(x0, x_t, Some(&noise), p)
    }

    fn ddgan_posterior_step(
        x0: &Self,
        x_t: &Self,
        noise: Option<&Self>,
        p: &TriDdganPosteriorParams,
    ) -> Result<Self> {
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
}
