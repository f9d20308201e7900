//! CPU reference of `kernels/ddgan_posterior.cu`: one draw from DDGAN's Gaussian posterior.

use super::CpuStorage;
use crate::backend::PhiloxNormalOps;
use crate::backend::{DdganPosteriorOps, PosteriorDraw, PosteriorNoise};
use crate::error::Result;
use crate::kernels::params::TriDdganPosteriorParams;

impl DdganPosteriorOps for CpuStorage {
    fn ddgan_posterior(d: PosteriorDraw<'_, Self>, p: &TriDdganPosteriorParams) -> Result<Self> {
        let (x0, xt) = (d.x0.to_f32_vec(), d.x_t.to_f32_vec());
        let noise = match d.noise {
            PosteriorNoise::Zero => None,
            PosteriorNoise::Tensor(z) => Some(z.to_f32_vec()),
            // The unfused path: the noise tensor, then the step; the CUDA kernel fuses the two.
            PosteriorNoise::Philox(r) => {
                let mut z = CpuStorage::zeros(d.x_t.len(), d.x_t.dtype());
                z.randn_philox(r)?;
                Some(z.to_f32_vec())
            }
        };
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
        Ok(CpuStorage::from_f32(&out, d.x_t.dtype()))
    }
}
