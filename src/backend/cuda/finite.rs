//! Launch of `kernels/finite.cu`: a sampling loop's non-finite watch, one atomicMin into a one-word
//! slot per check, read once after the loop.

use std::sync::Arc;

use cudarc::driver::PushKernelArg;

use super::CudaStorage;
use crate::backend::FiniteOps;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::names;

impl FiniteOps for CudaStorage {
    /// Records `step` in `slot` if `x` (f32) holds a non-finite value and the slot holds a later step.
    fn watch_nonfinite(&self, slot: &mut Self, step: u32) -> Result<()> {
        let x = self;
        const OP: &str = "finite watch (cuda)";
        if x.dtype() != DType::F32 || slot.len() != 1 || !Arc::ptr_eq(x.device(), slot.device()) {
            return Err(Error::InvalidParam {
                op: OP,
                what: "state, slot",
                rule: "an f32 state and a one-word slot on one device",
                found: format!("{:?}, {:?}", x, slot),
            });
        }
        if x.is_empty() {
            return Ok(());
        }
        let dev = Arc::clone(x.device());
        let f = dev.function(names::finite::WATCH_NONFINITE_F32)?;
        let cfg = dev.launch_1d(x.len() as u64);
        let (n, step) = (x.len() as u64, step);
        let xv = x.view();
        let mut sv = slot.view_mut();
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&xv).arg(&mut sv).arg(&n).arg(&step);
        // SAFETY: `watch_nonfinite_f32(const float* x, unsigned* first_bad, u64 n, u32 step)`: order and
        // types fixed here; x is f32 with n elements (checked), the slot one 4-byte word that only this
        // kernel's atomicMin writes. Ordering and lifetime: one stream; blocks recycled in stream order.
        unsafe { l.launch(cfg) }.map_err(Error::driver(OP, "cuLaunchKernel"))?;
        Ok(())
    }
}
