//! Launches of `kernels/elementwise.cu`: axpby and dtype casts, in every storage type.

use cudarc::driver::{DeviceRepr, PushKernelArg};

use super::CudaStorage;
use crate::backend::ElementwiseOps;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::names::elementwise as K;
use crate::kernels::params::{TriAxpbyParams, TriCastParams};
use crate::kernels::Kernel;

/// Launches `elementwise::kernel(const S* x, D* y, P p)` over the `n` elements of both (one thread
/// each, grid-stride); the caller has checked that `x` and `y` hold `n` elements of the types the
/// kernel's name says.
fn launch<P: DeviceRepr>(
    op: &'static str,
    kernel: Kernel,
    x: &CudaStorage,
    y: &mut CudaStorage,
    n: u64,
    p: &P,
) -> Result<()> {
    let dev = std::sync::Arc::clone(y.device());
    let f = dev.function(kernel)?;
    let cfg = dev.launch_1d(n);
    let xv = x.view();
    let mut yv = y.view_mut();
    let mut launch = dev.stream().launch_builder(&f);
    launch.arg(&xv).arg(&mut yv).arg(p);
    // SAFETY: `axpby_<dtype>(const T* x, T* y, TriAxpbyParams)` and `cast_<from>_to_<to>(const S* x,
    // D* y, TriCastParams)`: order and types fixed here; the kernel is named by the storages' dtypes
    // (checked or chosen by the caller), so S, D and T match them. Bounds: both views hold exactly the
    // n elements p describes. Aliasing: `x` and `y` are distinct storages (`&` and `&mut` borrows
    // cannot be the same object), so the kernel's __restrict__ holds. Ordering and lifetime: one
    // stream per device; both blocks return to the pool only after this call, so reuse queues behind.
    unsafe { launch.launch(cfg) }.map_err(Error::driver(op, "cuLaunchKernel"))?;
    Ok(())
}

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
        let n = y.len() as u64;
        let kernel = match y.dtype() {
            DType::F32 => K::AXPBY_F32,
            DType::BF16 => K::AXPBY_BF16,
            DType::F16 => K::AXPBY_F16,
        };
        launch("axpby", kernel, x, y, n, &TriAxpbyParams { n, a, b })
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
        let n = x.len() as u64;
        let kernel = match (x.dtype(), dtype) {
            (DType::F32, DType::BF16) => K::CAST_F32_TO_BF16,
            (DType::F32, DType::F16) => K::CAST_F32_TO_F16,
            (DType::BF16, DType::F32) => K::CAST_BF16_TO_F32,
            (DType::F16, DType::F32) => K::CAST_F16_TO_F32,
            (DType::BF16, DType::F16) => K::CAST_BF16_TO_F16,
            (DType::F16, DType::BF16) => K::CAST_F16_TO_BF16,
            // Equal dtypes returned a copy above.
            (DType::F32, DType::F32) | (DType::BF16, DType::BF16) | (DType::F16, DType::F16) => {
                return x.try_clone()
            }
        };
        launch("cast", kernel, x, &mut out, n, &TriCastParams { n })?;
        Ok(out)
    }
}
