//! DDGAN's posterior draw: the CPU reference against the PyTorch fixture, CUDA against the CPU (the
//! same bits: same fp32 operations in the same order, no fma), and bad arguments as errors.

mod common;

use common::{fixture_values as values, gpu_or_skip, max_abs_err, random_vec, rel_err};
use trilemma::ops::ddgan_posterior_step;
use trilemma::samplers::ddgan::PosteriorCoefficients;
use trilemma::{DType, Device, Error, Tensor};

#[test]
fn cpu_matches_the_reference_fixture() {
    let st = common::open_fixture("sampler_ddgan_posterior_step");
    let coefs = PosteriorCoefficients::new(4, 0.1, 20.0).unwrap();
    let (x0, xt, noise, steps, want) = (
        values(&st, "in.x0_hat"),
        values(&st, "in.x_t"),
        values(&st, "in.noise"),
        values(&st, "in.i"),
        values(&st, "out.x"),
    );
    let per = x0.len() / steps.len();
    for (s, &step) in steps.iter().enumerate() {
        let part = |v: &[f32]| {
            Tensor::from_f32(
                &v[s * per..(s + 1) * per],
                &[1, 3, 8, 8],
                DType::F32,
                &Device::Cpu,
            )
            .unwrap()
        };
        let step = step as usize;
        let noise_t = part(&noise);
        let got = ddgan_posterior_step(&coefs, step, &part(&x0), &part(&xt), Some(&noise_t))
            .unwrap()
            .to_vec_f32()
            .unwrap();
        let want = &want[s * per..(s + 1) * per];
        // fp32 CPU: the same rounded operations as PyTorch; exp of the log-variance may differ by an ulp.
        assert!(
            rel_err(&got, want) <= 1e-6,
            "step {step}: rel {}",
            rel_err(&got, want)
        );
        assert!(
            max_abs_err(&got, want) <= 1e-6,
            "step {step}: max {}",
            max_abs_err(&got, want)
        );
        if step == 0 {
            let none = ddgan_posterior_step(&coefs, 0, &part(&x0), &part(&xt), None)
                .unwrap()
                .to_vec_f32()
                .unwrap();
            assert_eq!(none, got, "the last step ignores noise");
        }
    }
}

#[test]
fn bad_arguments_are_errors() {
    let coefs = PosteriorCoefficients::new(4, 0.1, 20.0).unwrap();
    let x = Tensor::full(0.5, &[2, 3, 4, 4], DType::F32, &Device::Cpu).unwrap();
    let y = Tensor::full(0.5, &[2, 3, 4, 5], DType::F32, &Device::Cpu).unwrap();
    let h = Tensor::full(0.5, &[2, 3, 4, 4], DType::BF16, &Device::Cpu).unwrap();
    let e = ddgan_posterior_step(&coefs, 4, &x, &x, Some(&x)).unwrap_err();
    assert!(matches!(e, Error::InvalidParam { what: "step", .. }), "{e}");
    let e = ddgan_posterior_step(&coefs, 2, &x, &x, None).unwrap_err();
    assert!(
        matches!(e, Error::InvalidParam { what: "noise", .. }),
        "{e}"
    );
    let e = ddgan_posterior_step(&coefs, 2, &y, &x, Some(&x)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::ShapeMismatch {
                tensor: "x0_hat",
                ..
            }
        ),
        "{e}"
    );
    let e = ddgan_posterior_step(&coefs, 2, &x, &x, Some(&h)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DTypeMismatch {
                tensor: "noise",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn cuda_is_bit_identical_to_cpu() {
    let Some(gpu) = gpu_or_skip("cuda_is_bit_identical_to_cpu") else {
        return;
    };
    let coefs = PosteriorCoefficients::new(4, 0.1, 20.0).unwrap();
    let shape = [5, 3, 32, 32];
    let n: usize = shape.iter().product();
    let (x0, xt, z) = (random_vec(n, 31), random_vec(n, 32), random_vec(n, 33));
    for dtype in DType::ALL {
        for step in 0..4 {
            let cpu = |v: &[f32]| Tensor::from_f32(v, &shape, dtype, &Device::Cpu).unwrap();
            let (a, b, c) = (cpu(&x0), cpu(&xt), cpu(&z));
            let want = ddgan_posterior_step(&coefs, step, &a, &b, Some(&c))
                .unwrap()
                .to_vec_f32()
                .unwrap();
            let (ga, gb, gc) = (
                a.to_device(&gpu).unwrap(),
                b.to_device(&gpu).unwrap(),
                c.to_device(&gpu).unwrap(),
            );
            let got = ddgan_posterior_step(&coefs, step, &ga, &gb, Some(&gc))
                .unwrap()
                .to_vec_f32()
                .unwrap();
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(g, w)| g.to_bits() == w.to_bits()),
                "{dtype} step {step}: rel {}",
                rel_err(&got, &want)
            );
        }
    }
}
