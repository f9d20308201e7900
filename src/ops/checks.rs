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
