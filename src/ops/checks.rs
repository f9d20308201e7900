//! Shared argument checks of the network ops.

use crate::backend::geometry::Nhwc;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// `x` as an NHWC activation `[n, h, w, c]`.
pub(crate) fn nhwc(op: &'static str, tensor: &'static str, x: &Tensor) -> Result<Nhwc> {
    match *x.shape() {
        [n, h, w, c] => Ok(Nhwc { n, h, w, c }),
        _ => Err(Error::InvalidParam {
            op,
            what: tensor_what(tensor),
            rule: "a 4-D NHWC activation [n, h, w, c]",
            found: format!("shape {:?}", x.shape()),
        }),
    }
}

/// "`x`" style names for `InvalidParam::what`, which is a static str.
fn tensor_what(tensor: &'static str) -> &'static str {
    tensor
}

pub(crate) fn expect_shape(
    op: &'static str,
    tensor: &'static str,
    x: &Tensor,
    expected: &[usize],
) -> Result<()> {
    if x.shape() == expected {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            op,
            tensor,
            expected: expected.to_vec(),
            found: x.shape().to_vec(),
        })
    }
}

pub(crate) fn same_dtype(
    op: &'static str,
    tensor: &'static str,
    x: &Tensor,
    like: &Tensor,
) -> Result<()> {
    if x.dtype() == like.dtype() {
        Ok(())
    } else {
        Err(Error::DTypeMismatch {
            op,
            tensor,
            expected: like.dtype(),
            found: x.dtype(),
        })
    }
}

/// `x` beside `like`: same device and dtype.
pub(crate) fn compatible(
    op: &'static str,
    tensor: &'static str,
    x: &Tensor,
    like: &Tensor,
) -> Result<()> {
    super::dispatch::check_same_device(op, x, like)?;
    same_dtype(op, tensor, x, like)
}

/// A parameter vector of an op on `x` (a bias, an affine's scale, a GroupNorm fold): on x's device
/// and f32 whatever the activations' storage type (the kernels read parameters in f32).
pub(crate) fn f32_parameter(
    op: &'static str,
    tensor: &'static str,
    v: &Tensor,
    x: &Tensor,
) -> Result<()> {
    super::dispatch::check_same_device(op, v, x)?;
    if v.dtype() == crate::dtype::DType::F32 {
        Ok(())
    } else {
        Err(Error::DTypeMismatch {
            op,
            tensor,
            expected: crate::dtype::DType::F32,
            found: v.dtype(),
        })
    }
}

pub(crate) fn positive(op: &'static str, what: &'static str, v: usize) -> Result<()> {
    if v == 0 {
        Err(Error::InvalidParam {
            op,
            what,
            rule: "at least 1",
            found: "0".into(),
        })
    } else {
        Ok(())
    }
}
