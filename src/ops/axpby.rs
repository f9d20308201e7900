//! y = a * x + b * y: the building block of every linear sampler update.

use super::check_same_device;
use crate::backend::BackendStorage;
use crate::error::{Error, Result};
use crate::tensor::{Storage, Tensor};

pub fn axpby(a: f32, x: &Tensor, b: f32, y: &mut Tensor) -> Result<()> {
    const OP: &str = "axpby";
    if x.shape() != y.shape() {
        return Err(Error::ShapeMismatch {
            op: OP,
            tensor: "x",
            expected: y.shape().to_vec(),
            found: x.shape().to_vec(),
        });
    }
    if x.dtype() != y.dtype() {
        return Err(Error::DTypeMismatch {
            op: OP,
            tensor: "x",
            expected: y.dtype(),
            found: x.dtype(),
        });
    }
    check_same_device(OP, x, y)?;
    match (x.storage(), y.storage_mut()) {
        (Storage::Cpu(x), Storage::Cpu(y)) => y.axpby(x, a, b),
        (Storage::Cuda(x), Storage::Cuda(y)) => y.axpby(x, a, b),
        _ => unreachable_device_mix(OP),
    }
}

/// Device agreement was checked; reaching a mixed pair would be a bug in that check, reported as an
/// error rather than a panic.
pub(crate) fn unreachable_device_mix(op: &'static str) -> Result<()> {
    Err(Error::DeviceMismatch {
        op,
        a: "cpu".into(),
        b: "cuda".into(),
    })
}
