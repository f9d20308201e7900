//! CPU reference of `kernels/elementwise.cu`, and the CPU side of [`BackendStorage`].

use half::{bf16, f16};

use super::{randn, CpuStorage};
use crate::backend::BackendStorage;
use crate::error::{Error, Result};
use crate::kernels::params::{TriDdganPosteriorParams, TriRandnParams};
use crate::tensor::DType;

/// a*x + b*y as two rounded products and a rounded sum, as the kernel computes it (no fma).
#[inline]
fn axpby_f32(a: f32, x: f32, b: f32, y: f32) -> f32 {
    let ax = a * x;
    let by = b * y;
    ax + by
}

impl BackendStorage for CpuStorage {
    fn randn_philox(&mut self, p: &TriRandnParams) -> Result<()> {
        randn::randn_philox(self, p)
    }

    fn axpby(&mut self, x: &Self, a: f32, b: f32) -> Result<()> {
        match (self, x) {
            (CpuStorage::F32(y), CpuStorage::F32(x)) => {
                y.iter_mut()
                    .zip(x)
                    .for_each(|(y, &x)| *y = axpby_f32(a, x, b, *y));
            }
            (CpuStorage::BF16(y), CpuStorage::BF16(x)) => y
                .iter_mut()
                .zip(x)
                .for_each(|(y, x)| *y = bf16::from_f32(axpby_f32(a, x.to_f32(), b, y.to_f32()))),
            (CpuStorage::F16(y), CpuStorage::F16(x)) => y
                .iter_mut()
                .zip(x)
                .for_each(|(y, x)| *y = f16::from_f32(axpby_f32(a, x.to_f32(), b, y.to_f32()))),
            (y, x) => {
                return Err(Error::DTypeMismatch {
                    op: "axpby",
                    tensor: "x",
                    expected: y.dtype(),
                    found: x.dtype(),
                })
            }
        }
        Ok(())
    }

    fn cast(&self, dtype: DType) -> Result<Self> {
        Ok(CpuStorage::from_f32(&self.to_f32_vec(), dtype))
    }

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
