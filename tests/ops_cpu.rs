//! The CPU backend's elementwise ops and the op-level validation every backend shares.

mod common;

use common::{max_abs_err, random_vec, rel_err};
use half::{bf16, f16};
use trilemma::ops::{axpby, cast};
use trilemma::{DType, Device, Error, Tensor};

#[test]
fn axpby_f32_matches_f64_reference() {
    let n = 1000;
    let x = random_vec(n, 1);
    let y0 = random_vec(n, 2);
    let (a, b) = (0.37f32, -1.25f32);
    let xt = Tensor::from_f32(&x, &[10, 100], DType::F32, &Device::Cpu).unwrap();
    let mut yt = Tensor::from_f32(&y0, &[10, 100], DType::F32, &Device::Cpu).unwrap();
    axpby(a, &xt, b, &mut yt).unwrap();
    let out = yt.to_vec_f32().unwrap();
    let reference: Vec<f32> = x
        .iter()
        .zip(&y0)
        .map(|(&x, &y)| (a as f64 * x as f64 + b as f64 * y as f64) as f32)
        .collect();
    // fp32 CPU: two rounded products and a rounded sum, within a few ulp of the f64 result.
    assert!(
        rel_err(&out, &reference) <= 1e-6,
        "rel {}",
        rel_err(&out, &reference)
    );
    assert!(
        max_abs_err(&out, &reference) <= 2e-6,
        "max {}",
        max_abs_err(&out, &reference)
    );
}

#[test]
fn axpby_reduced_precision_rounds_the_fp32_result_once() {
    let x = random_vec(257, 3);
    let y0 = random_vec(257, 4);
    let (a, b) = (0.5f32, 0.75f32);
    for dtype in [DType::BF16, DType::F16] {
        let xt = Tensor::from_f32(&x, &[257], dtype, &Device::Cpu).unwrap();
        let mut yt = Tensor::from_f32(&y0, &[257], dtype, &Device::Cpu).unwrap();
        let xs = xt.to_vec_f32().unwrap();
        let ys = yt.to_vec_f32().unwrap();
        axpby(a, &xt, b, &mut yt).unwrap();
        let out = yt.to_vec_f32().unwrap();
        for i in 0..257 {
            let exact = a * xs[i] + b * ys[i];
            let rounded = match dtype {
                DType::BF16 => bf16::from_f32(exact).to_f32(),
                _ => f16::from_f32(exact).to_f32(),
            };
            assert_eq!(out[i].to_bits(), rounded.to_bits(), "{dtype} element {i}");
        }
    }
}

#[test]
fn cast_round_trips_and_rounds_to_nearest_even() {
    let x = random_vec(500, 5);
    let t = Tensor::from_f32(&x, &[5, 100], DType::F32, &Device::Cpu).unwrap();
    for dtype in [DType::BF16, DType::F16] {
        let c = cast(&t, dtype).unwrap();
        assert_eq!(c.dtype(), dtype);
        assert_eq!(c.shape(), &[5, 100]);
        let back = cast(&c, DType::F32).unwrap().to_vec_f32().unwrap();
        // bf16 keeps 8 significant bits (relative rounding error <= 2^-9), f16 11 (<= 2^-12) for |x| < 2.
        let bound = if dtype == DType::BF16 {
            2f64.powi(-9)
        } else {
            2f64.powi(-11)
        };
        assert!(
            rel_err(&back, &x) <= bound,
            "{dtype}: {}",
            rel_err(&back, &x)
        );
    }
    // Ties go to even: 1 + 2^-8 is halfway between two bf16 values; the even one is 1.0.
    let tie = Tensor::from_f32(&[1.0 + 2f32.powi(-8)], &[1], DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        cast(&tie, DType::BF16).unwrap().to_vec_f32().unwrap(),
        vec![1.0]
    );
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

#[test]
fn tensor_constructors_validate_lengths() {
    let e = Tensor::from_f32(&[1.0, 2.0, 3.0], &[2, 2], DType::F32, &Device::Cpu).unwrap_err();
    assert!(matches!(e, Error::InvalidParam { .. }), "{e}");
    let e = Tensor::full(0.0, &[usize::MAX, 3], DType::F32, &Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("fits in usize"), "{e}");
}
