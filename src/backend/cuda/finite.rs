//! Launch of `kernels/finite.cu` and its one-word slots.

use std::sync::Arc;

use cudarc::driver::PushKernelArg;

use super::CudaStorage;
use crate::backend::cpu::CpuStorage;
use crate::error::{Error, Result};
use crate::tensor::DType;

/// A slot: one 4-byte word holding the first bad step, u32::MAX (none) to start. It is kept in an
/// F32 storage of one element and only ever handled as raw bits.
pub(crate) fn new_slot(device: &Arc<crate::device::CudaDevice>) -> Result<CudaStorage> {
    CudaStorage::from_cpu(device, &CpuStorage::F32(vec![f32::from_bits(u32::MAX)]))
}

/// The step recorded in `slot` (u32::MAX: none).
pub(crate) fn read_slot(slot: &CudaStorage) -> Result<u32> {
    match slot.to_cpu()? {
        CpuStorage::F32(v) if v.len() == 1 => Ok(v[0].to_bits()),
        _ => Err(Error::InvalidParam {
            op: "finite watch",
            what: "slot",
            rule: "one 4-byte word",
            found: format!("{} elements", slot.len()),
        }),
    }
}

/// Records `step` in `slot` if `x` (f32) holds a non-finite value and the slot holds a later step.
pub(crate) fn watch(x: &CudaStorage, slot: &mut CudaStorage, step: u32) -> Result<()> {
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
    let f = dev.function("finite", "watch_nonfinite_f32")?;
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
