//! Activations and binary ops (`kernels/pointwise.cu`). On every device: the CPU against the
//! activation's formula in float64 (relative L2 ≤ 1e-5), every GPU against the CPU (bit for bit for
//! the data-exact ones and the binary ops; the transcendental activations to 1e-4, libm ulps).

use trilemma::backend::geometry::{Activation, BinaryOp};
use trilemma::ops;
use trilemma::{DType, Device, Tensor};

use crate::common::devices::{devices, on, on_every_device, Agree};
use crate::common::{random_vec, rel_err};

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_f32(&random_vec(n, seed), shape, DType::F32, &Device::Cpu).unwrap()
}

const ACTIVATIONS: [Activation; 9] = [
    Activation::Identity,
    Activation::Silu,
    Activation::Elu,
    Activation::Relu,
    Activation::LeakyRelu(0.2),
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::SoftClamp(5.0),
    Activation::Exp,
];

/// The activation in float64, from its definition.
fn activation_ref(act: Activation, x: f64) -> f64 {
    match act {
        Activation::Identity => x,
        Activation::Silu => x / (1.0 + (-x).exp()),
        Activation::Elu => {
            if x > 0.0 {
                x
            } else {
                x.exp_m1()
            }
        }
        Activation::Relu => x.max(0.0),
        Activation::LeakyRelu(s) => {
            if x > 0.0 {
                x
            } else {
                s as f64 * x
            }
        }
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::SoftClamp(a) => (x / a as f64).tanh() * a as f64,
        Activation::Exp => x.exp(),
    }
}

#[test]
fn pointwise_ops_match_their_reference_on_every_device() {
    let devices = devices("pointwise_ops_match_their_reference_on_every_device");
    let x = tensor(&[3, 7, 5, 13], 1);
    let y = tensor(&[3, 7, 5, 13], 2);
    let (xs, ys) = (x.to_vec_f32().unwrap(), y.to_vec_f32().unwrap());
    for act in ACTIVATIONS {
        let exact = matches!(
            act,
            Activation::Identity | Activation::Relu | Activation::LeakyRelu(_)
        );
        let agree = if exact { Agree::Exact } else { Agree::Fp32 };
        on_every_device(
            &devices,
            &format!("activation {act:?}"),
            agree,
            |d| ops::activation(&on(d, &x), act).unwrap(),
            |out| {
                let want: Vec<f32> = xs
                    .iter()
                    .map(|&v| activation_ref(act, v as f64) as f32)
                    .collect();
                let rel = rel_err(&out.to_vec_f32().unwrap(), &want);
                assert!(rel <= 1e-5, "activation {act:?}: rel {rel:.3e}");
            },
        );
    }
    for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul] {
        on_every_device(
            &devices,
            &format!("binary {op:?}"),
            Agree::Exact,
            |d| ops::binary(&on(d, &x), &on(d, &y), op).unwrap(),
            |out| {
                let f = |a: f32, b: f32| match op {
                    BinaryOp::Add => a + b,
                    BinaryOp::Sub => a - b,
                    BinaryOp::Mul => a * b,
                };
                let want: Vec<f32> = xs.iter().zip(&ys).map(|(&a, &b)| f(a, b)).collect();
                assert_eq!(out.to_vec_f32().unwrap(), want, "binary {op:?}");
            },
        );
    }
}
