//! axpby and dtype casts (`kernels/elementwise.cu`): the CPU against f64 and the rounding rules, every
//! GPU bit for bit against the CPU (the same fp32 operations in the same order, no contraction).

use half::{bf16, f16};
use trilemma::ops::{axpby, cast};
use trilemma::{DType, Device, Tensor};

use crate::common::devices::devices;
use crate::common::{max_abs_err, random_vec, rel_err};

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
fn axpby_is_bit_identical_to_the_cpu_on_every_device() {
    let devices = devices("axpby_is_bit_identical_to_the_cpu_on_every_device");
    for n in [1usize, 1000, 1 << 20] {
        let x = random_vec(n, 11);
        let y = random_vec(n, 12);
        for dtype in DType::ALL {
            let (a, b) = (0.731f32, -0.25f32);
            let xc = Tensor::from_f32(&x, &[n], dtype, &Device::Cpu).unwrap();
            let mut yc = Tensor::from_f32(&y, &[n], dtype, &Device::Cpu).unwrap();
            axpby(a, &xc, b, &mut yc).unwrap();
            let c = yc.to_vec_f32().unwrap();
            for dev in devices.iter().filter(|d| d.is_cuda()) {
                let xg = Tensor::from_f32(&x, &[n], dtype, dev).unwrap();
                let mut yg = Tensor::from_f32(&y, &[n], dtype, dev).unwrap();
                axpby(a, &xg, b, &mut yg).unwrap();
                let g = yg.to_vec_f32().unwrap();
                // Same fp32 operations in the same order with no contraction: exact equality.
                assert!(
                    g.iter().zip(&c).all(|(g, c)| g.to_bits() == c.to_bits()),
                    "n={n} {dtype}: rel {}",
                    rel_err(&g, &c)
                );
            }
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
fn cast_is_bit_identical_to_the_cpu_on_every_device() {
    let devices = devices("cast_is_bit_identical_to_the_cpu_on_every_device");
    let mut x = random_vec(4099, 13);
    x.extend_from_slice(&[70000.0, -70000.0, 1e-8, 1.0 + 2f32.powi(-8), 3.0e38]);
    let n = x.len();
    for from in DType::ALL {
        for to in DType::ALL {
            let c = Tensor::from_f32(&x, &[n], from, &Device::Cpu).unwrap();
            let want = cast(&c, to).unwrap().to_vec_f32().unwrap();
            for dev in devices.iter().filter(|d| d.is_cuda()) {
                let g = c.to_device(dev).unwrap();
                let out = cast(&g, to).unwrap();
                assert_eq!(out.dtype(), to);
                let got = out.to_vec_f32().unwrap();
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(g, w)| g.to_bits() == w.to_bits()),
                    "{from}->{to}"
                );
            }
        }
    }
}
