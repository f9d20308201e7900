//! The op-level validation every backend shares: bad arguments are errors naming the problem, never
//! panics, whatever device the tensors are on.

use trilemma::ops::{self, axpby, Activation, AffineArgs, Conv2dParams};
use trilemma::{DType, Device, Error, Tensor};

use crate::common::random_vec;

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_f32(data, shape, DType::F32, &Device::Cpu).unwrap()
}

#[test]
fn bad_op_arguments_are_errors_not_panics() {
    let x = t(&random_vec(2 * 4 * 4 * 6, 1), &[2, 4, 4, 6]);
    let w = t(&random_vec(3 * 3 * 4 * 8, 2), &[3, 3, 4, 8]);
    let err = ops::conv2d(&x, &w, None, &Conv2dParams::same(3)).unwrap_err();
    assert!(err.to_string().contains("in/groups"), "{err}");
    let err =
        ops::group_norm(&x, 4, 1e-6, &AffineArgs::default(), Activation::Identity).unwrap_err();
    assert!(err.to_string().contains("divisor"), "{err}");
    let x5 = t(&random_vec(2 * 4 * 4 * 5, 3), &[2, 4, 4, 5]);
    let err = ops::attention(&x5).unwrap_err();
    assert!(err.to_string().contains("multiple of 3"), "{err}");
    let err = ops::upfirdn2d(&x, &[1.0; 16], 1, 2, (-3, -3)).unwrap_err();
    assert!(err.to_string().contains("padding"), "{err}");
    let bf = ops::cast(&x, DType::BF16).unwrap();
    let err = ops::activation(&bf, Activation::Silu).unwrap_err();
    assert!(err.to_string().contains("f32"), "{err}");
}

#[test]
fn ops_reject_mismatched_operands() {
    let x = Tensor::full(1.0, &[2, 3], DType::F32, &Device::Cpu).unwrap();
    let mut y = Tensor::full(1.0, &[3, 2], DType::F32, &Device::Cpu).unwrap();
    let e = axpby(1.0, &x, 1.0, &mut y).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "axpby", .. }), "{e}");
    assert!(
        e.to_string().contains("[2, 3]") && e.to_string().contains("[3, 2]"),
        "{e}"
    );
    let mut z = Tensor::full(1.0, &[2, 3], DType::BF16, &Device::Cpu).unwrap();
    let e = axpby(1.0, &x, 1.0, &mut z).unwrap_err();
    assert!(matches!(e, Error::DTypeMismatch { op: "axpby", .. }), "{e}");
}
