//! Launches of `kernels/elementwise.cu`, and the CUDA side of [`BackendStorage`].

use cudarc::driver::PushKernelArg;

use super::{ddgan_posterior, randn, CudaStorage};
use crate::backend::BackendStorage;
use crate::error::{Error, Result};
use crate::kernels::params::{
    TriAxpbyParams, TriCastParams, TriDdganPosteriorParams, TriRandnParams,
};
use crate::tensor::DType;

impl BackendStorage for CudaStorage {
    fn randn_philox(&mut self, p: &TriRandnParams) -> Result<()> {
        randn::randn_philox(self, p)
    }

    fn axpby(&mut self, x: &Self, a: f32, b: f32) -> Result<()> {
        if x.dtype() != self.dtype() || x.len() != self.len() {
            return Err(Error::ShapeMismatch {
                op: "axpby",
                tensor: "x",
                expected: vec![self.len()],
                found: vec![x.len()],
            });
        }
        if self.is_empty() {
            return Ok(());
        }
        let dev = std::sync::Arc::clone(self.device());
        let f = dev.function("elementwise", &format!("axpby_{}", self.dtype().name()))?;
        let p = TriAxpbyParams {
            n: self.len() as u64,
            a,
            b,
        };
        let cfg = dev.launch_1d(p.n);
        let xv = x.view();
        let mut yv = self.view_mut();
        let mut launch = dev.stream().launch_builder(&f);
        launch.arg(&xv).arg(&mut yv).arg(&p);
        // SAFETY: `axpby_<dtype>(const T* x, T* y, TriAxpbyParams p)`: order and types fixed here, T from
        // the shared dtype checked above. Bounds: both views hold exactly p.n elements (lengths equal,
        // checked above). Aliasing: `x` and `y` are distinct storages (`&Self` and `&mut self` cannot
        // be the same object), so the kernel's __restrict__ holds. Ordering and lifetime: one stream
        // per device; both blocks return to the pool only after this call, so reuse queues behind it.
        unsafe { launch.launch(cfg) }.map_err(Error::driver("axpby", "cuLaunchKernel"))?;
        Ok(())
    }

    fn cast(&self, dtype: DType) -> Result<Self> {
        if dtype == self.dtype() {
            return self.try_clone();
        }
        let mut out = CudaStorage::alloc(self.device(), self.len(), dtype)?;
        if self.is_empty() {
            return Ok(out);
        }
        let dev = std::sync::Arc::clone(self.device());
        let f = dev.function(
            "elementwise",
            &format!("cast_{}_to_{}", self.dtype().name(), dtype.name()),
        )?;
        let p = TriCastParams {
            n: self.len() as u64,
        };
        let cfg = dev.launch_1d(p.n);
        let xv = self.view();
        let mut yv = out.view_mut();
        let mut launch = dev.stream().launch_builder(&f);
        launch.arg(&xv).arg(&mut yv).arg(&p);
        // SAFETY: `cast_<from>_to_<to>(const S* x, D* y, TriCastParams p)`: the kernel is chosen by the
        // two dtypes, so S and D match the storages. Bounds: `out` was allocated with self.len()
        // elements and both views hold exactly p.n elements. Aliasing: `out` is a fresh block, distinct
        // from self. Ordering and lifetime: one stream; blocks are recycled only in stream order.
        unsafe { launch.launch(cfg) }.map_err(Error::driver("cast", "cuLaunchKernel"))?;
        Ok(out)
    }

    fn ddgan_posterior_step(
        x0: &Self,
        x_t: &Self,
        noise: Option<&Self>,
        p: &TriDdganPosteriorParams,
    ) -> Result<Self> {
        ddgan_posterior::posterior_step(x0, x_t, noise, p)
    }

    fn ddgan_posterior_philox(
        x0: &Self,
        x_t: &Self,
        p: &TriDdganPosteriorParams,
        r: &TriRandnParams,
    ) -> Result<Self> {
        ddgan_posterior::posterior_philox(x0, x_t, p, r)
    }
}
