//! Launches of `kernels/elementwise.cu`: axpby and dtype casts, in every storage type.

use cudarc::driver::PushKernelArg;

use super::CudaStorage;
use crate::backend::ElementwiseOps;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::params::{TriAxpbyParams, TriCastParams};

impl ElementwiseOps for CudaStorage {
    fn axpby(&mut self, x: &Self, a: f32, b: f32) -> Result<()> {
        let y = self;
        if x.dtype() != y.dtype() || x.len() != y.len() {
            return Err(Error::ShapeMismatch {
                op: "axpby",
                tensor: "x",
                expected: vec![y.len()],
                found: vec![x.len()],
            });
        }
        if y.is_empty() {
            return Ok(());
        }
        let dev = std::sync::Arc::clone(y.device());
        let f = dev.function("elementwise", &format!("axpby_{}", y.dtype().name()))?;
        let p = TriAxpbyParams {
            n: y.len() as u64,
            a,
            b,
        };
        let cfg = dev.launch_1d(p.n);
        let xv = x.view();
        let mut yv = y.view_mut();
        let mut launch = dev.stream().launch_builder(&f);
        launch.arg(&xv).arg(&mut yv).arg(&p);
        // SAFETY: `axpby_<dtype>(const T* x, T* y, TriAxpbyParams p)`: order and types fixed here, T from
        // the shared dtype checked above. Bounds: both views hold exactly p.n elements (lengths equal,
        // checked above). Aliasing: `x` and `y` are distinct storages (`&` and `&mut` borrows cannot
        // be the same object), so the kernel's __restrict__ holds. Ordering and lifetime: one stream
        // per device; both blocks return to the pool only after this call, so reuse queues behind it.
        unsafe { launch.launch(cfg) }.map_err(Error::driver("axpby", "cuLaunchKernel"))?;
        Ok(())
    }

    fn cast(&self, dtype: DType) -> Result<Self> {
        let x = self;
        if dtype == x.dtype() {
            return x.try_clone();
        }
        let mut out = CudaStorage::alloc(x.device(), x.len(), dtype)?;
        if x.is_empty() {
            return Ok(out);
        }
        let dev = std::sync::Arc::clone(x.device());
        let f = dev.function(
            "elementwise",
            &format!("cast_{}_to_{}", x.dtype().name(), dtype.name()),
        )?;
        let p = TriCastParams { n: x.len() as u64 };
        let cfg = dev.launch_1d(p.n);
        let xv = x.view();
        let mut yv = out.view_mut();
        let mut launch = dev.stream().launch_builder(&f);
        launch.arg(&xv).arg(&mut yv).arg(&p);
        // SAFETY: `cast_<from>_to_<to>(const S* x, D* y, TriCastParams p)`: the kernel is chosen by the
        // two dtypes, so S and D match the storages. Bounds: `out` was allocated with x.len()
        // elements and both views hold exactly p.n elements. Aliasing: `out` is a fresh block, distinct
        // from x. Ordering and lifetime: one stream; blocks are recycled only in stream order.
        unsafe { launch.launch(cfg) }.map_err(Error::driver("cast", "cuLaunchKernel"))?;
        Ok(out)
    }
}
