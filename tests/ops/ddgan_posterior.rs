//! DDGAN's posterior draw (`kernels/ddgan_posterior.cu`): the CPU reference against the PyTorch
//! fixture, every GPU against the CPU (the same bits: same fp32 operations in the same order, no fma;
//! with in-kernel Philox, the normals' host/device ulps), and bad arguments as errors.

use crate::common;
use crate::common::devices::devices;
use crate::common::{fixture_values as values, max_abs_err, random_vec, rel_err};
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
fn is_bit_identical_to_the_cpu_on_every_device() {
    let devices = devices("is_bit_identical_to_the_cpu_on_every_device");
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
            for gpu in devices.iter().filter(|d| d.is_cuda()) {
                let (ga, gb, gc) = (
                    a.to_device(gpu).unwrap(),
                    b.to_device(gpu).unwrap(),
                    c.to_device(gpu).unwrap(),
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
}

/// The fused-noise step on `dev` and the unfused one (randn with the same key, then the step) on the CPU.
fn philox_pair(dev: &Device, dtype: DType, step: usize) -> (Vec<f32>, Vec<f32>) {
    use trilemma::ops::{ddgan_posterior_step_philox, randn};
    use trilemma::rng::{NoiseKey, NoiseStream};
    let coefs = PosteriorCoefficients::new(4, 0.1, 20.0).unwrap();
    let shape = [3, 5, 7, 3]; // 105 elements per sample: a partial Philox block at each sample's end
    let n: usize = shape.iter().product();
    let make = |seed| Tensor::from_f32(&random_vec(n, seed), &shape, dtype, &Device::Cpu).unwrap();
    let (x0, xt) = (make(1), make(2));
    let key = NoiseKey::new(77, NoiseStream::Step, 2);
    let noise = randn(&shape, dtype, &Device::Cpu, key, 40).unwrap();
    let want = ddgan_posterior_step(&coefs, step, &x0, &xt, Some(&noise))
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let got = ddgan_posterior_step_philox(
        &coefs,
        step,
        &x0.to_device(dev).unwrap(),
        &xt.to_device(dev).unwrap(),
        key,
        40,
    )
    .unwrap()
    .to_vec_f32()
    .unwrap();
    (got, want)
}

#[test]
fn philox_step_matches_the_unfused_cpu_step_on_every_device() {
    for dev in devices("philox_step_matches_the_unfused_cpu_step_on_every_device") {
        for dtype in DType::ALL {
            for step in 1..4 {
                let (got, want) = philox_pair(&dev, dtype, step);
                if !dev.is_cuda() {
                    // The CPU's fused-noise step is the unfused one, bit for bit.
                    assert!(
                        got.iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{dtype} step {step}"
                    );
                    continue;
                }
                assert!(got.iter().all(|v| v.is_finite()), "{dtype}: unwritten");
                // The device's normals differ from glibc's by a few fp32 ulp (philox_normal.rs), which
                // the noise_std product carries into the result; reduced precision rounds once more.
                let tol = if dtype == DType::F32 { 1e-6 } else { 1e-2 };
                let rel = rel_err(&got, &want);
                println!(
                    "{dtype} step {step}: rel {rel:.2e}, max abs {:.2e}",
                    max_abs_err(&got, &want)
                );
                assert!(rel <= tol, "{dtype} step {step}: rel {rel:.3e}");
            }
        }
    }
}

#[test]
fn philox_step_rejects_bad_arguments() {
    let coefs = PosteriorCoefficients::new(4, 0.1, 20.0).unwrap();
    let t = Tensor::from_f32(&random_vec(8, 3), &[2, 4], DType::F32, &Device::Cpu).unwrap();
    let u = Tensor::from_f32(&random_vec(6, 4), &[2, 3], DType::F32, &Device::Cpu).unwrap();
    let key = trilemma::rng::NoiseKey::new(1, trilemma::rng::NoiseStream::Step, 0);
    for (step, x0, first, needle) in [
        (0, &t, 0, "noisy step"),
        (4, &t, 0, "noisy step"),
        (1, &u, 0, "x0_hat"),
        (1, &t, u32::MAX, "first_sample"),
    ] {
        let err = trilemma::ops::ddgan_posterior_step_philox(&coefs, step, x0, &t, key, first)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
}
