//! The backend split: every op is a method of [`BackendStorage`], implemented once for host memory
//! ([`cpu::CpuStorage`], the reference and fallback) and once for GPU memory ([`cuda::CudaStorage`],
//! the kernels). `crate::ops` validates arguments and dispatches; by then shapes and dtypes are known
//! to be consistent, so backends only check what they alone can (e.g. driver errors).

pub mod cpu;
pub mod cuda;
pub mod network;

use crate::error::Result;
use crate::kernels::params::{TriDdganPosteriorParams, TriRandnParams};
use crate::tensor::DType;

pub trait BackendStorage: Sized {
    /// Overwrites every element with Philox normals (see `crate::rng`), rounded to the storage type.
    fn randn_philox(&mut self, p: &TriRandnParams) -> Result<()>;
    /// self = a * x + b * self, in fp32, rounded once to the storage type.
    fn axpby(&mut self, x: &Self, a: f32, b: f32) -> Result<()>;
    /// A copy converted to `dtype` (round to nearest even).
    fn cast(&self, dtype: DType) -> Result<Self>;
    /// One DDGAN posterior draw: (coef1 x0 + coef2 x_t) + noise_std noise, in fp32, rounded once.
    /// `noise` may be None only when `p.noise_std` is 0 (the last step).
    fn ddgan_posterior_step(
        x0: &Self,
        x_t: &Self,
        noise: Option<&Self>,
        p: &TriDdganPosteriorParams,
    ) -> Result<Self>;
    /// The same draw with the noise of `r` (the normals `randn_philox(r)` would write, rounded to the
    /// storage type) instead of a noise tensor; r describes x_t's [num_samples, elems_per_sample].
    fn ddgan_posterior_philox(
        x0: &Self,
        x_t: &Self,
        p: &TriDdganPosteriorParams,
        r: &TriRandnParams,
    ) -> Result<Self>;
}
