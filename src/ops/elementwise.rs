//! Elementwise ops on whole tensors of any storage type (`kernels/elementwise.cu`): y = a·x + b·y, the
//! building block of every linear sampler update, and dtype casts (round to nearest even).

use super::dispatch::{check_same_device, dispatch, mixed, wrap};
use crate::backend::ElementwiseOps;
use crate::dtype::DType;
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
        _ => mixed(OP),
    }
}

/// `x` converted to `dtype`.
pub fn cast(x: &Tensor, dtype: DType) -> Result<Tensor> {
    let storage = dispatch!("cast", [x], |xs| xs.cast(dtype)?);
    wrap(storage, x.shape())
}
