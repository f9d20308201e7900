//! DDGAN's sampling loop with an exact generator for Gaussian data: x0 ~ N(μ, s²) per pixel, so
//! q(x0 | x_{i+1}) is Gaussian in closed form and a "generator" that draws from it (its z is the
//! per-pixel standard normal) makes the T-step chain exact. The output must then have the moments that
//! follow from propagating x_T ~ N(0, 1) through the chain, computed here in f64 from the schedule's
//! formula (train_ddgan.py: var_func_vp, Posterior_Coefficients), independently of the engine's
//! coefficient header; and those moments are (μ, s²) up to x_T not being exactly the t = 1 marginal.
//!
//! Tolerances (4000 samples × 16 independent pixels = 64 000 values): the sample mean's standard error
//! is √(V/64000) ≤ 0.002 and the variance's V·√(2/64000) ≈ 0.0056·V, so |mean − M| ≤ 0.01 and
//! |var/V − 1| ≤ 0.03 (about 5 standard errors); against the data, |mean − μ| ≤ 0.02 and
//! |var/s² − 1| ≤ 0.04.

use trilemma::samplers::ddgan::{sample, Generator, PosteriorCoefficients};
use trilemma::samplers::Noise;
use trilemma::{DType, Device, Result, Tensor};

const MU: f64 = 0.7;
const S2: f64 = 0.25;
const SIDE: usize = 4;
const BETA: (f64, f64) = (0.1, 20.0);

/// ᾱ(t) of the VP schedule: exp(−t²(β_max − β_min)/2 − t β_min).
fn alpha_bar_vp(t: f64) -> f64 {
    (-0.5 * t * t * (BETA.1 - BETA.0) - t * BETA.0).exp()
}

/// Per step i = 0..T−1: (ᾱ of x_{i+1}, posterior coef1, coef2, variance), in f64.
fn chain(steps: usize) -> Vec<(f64, f64, f64, f64)> {
    let time = |k: usize| k as f64 / steps as f64 * (1.0 - 1e-3) + 1e-3;
    let ab = |k: usize| alpha_bar_vp(time(k)) / alpha_bar_vp(time(0));
    (0..steps)
        .map(|i| {
            let (cum, prev) = (ab(i + 1), if i == 0 { 1.0 } else { ab(i) });
            let beta = 1.0 - cum / prev;
            let c1 = beta * prev.sqrt() / (1.0 - cum);
            let c2 = (1.0 - prev) * (1.0 - beta).sqrt() / (1.0 - cum);
            let var = beta * (1.0 - prev) / (1.0 - cum);
            (cum, c1, c2, var)
        })
        .collect()
}

/// x0 | x_{i+1} ~ N(μ + c (x − √ᾱ μ), σ0²) with c = √ᾱ s² / (ᾱ s² + 1 − ᾱ), σ0² = s²(1 − ᾱ) / (ᾱ s² + 1 − ᾱ).
fn x0_posterior(ab: f64) -> (f64, f64) {
    let d = ab * S2 + 1.0 - ab;
    (ab.sqrt() * S2 / d, S2 * (1.0 - ab) / d)
}

struct GaussianGenerator {
    steps: usize,
}

impl Generator for GaussianGenerator {
    fn predict_x0(&self, x: &Tensor, i: usize, z: &Tensor) -> Result<Tensor> {
        let ab = chain(self.steps)[i].0;
        let (c, v0) = x0_posterior(ab);
        let out: Vec<f32> = x
            .to_vec_f32()?
            .iter()
            .zip(z.to_vec_f32()?)
            .map(|(&x, z)| (MU + c * (x as f64 - ab.sqrt() * MU) + v0.sqrt() * z as f64) as f32)
            .collect();
        Tensor::from_f32(&out, x.shape(), DType::F32, &Device::Cpu)
    }

    fn image_shape(&self) -> [usize; 3] {
        [SIDE, SIDE, 1]
    }

    fn nz(&self) -> Result<usize> {
        Ok(SIDE * SIDE)
    }
}

/// The output moments of the chain started at N(0, 1), propagated exactly.
fn propagated(steps: usize) -> (f64, f64) {
    let (mut m, mut v) = (0.0, 1.0);
    for (i, &(ab, c1, c2, var)) in chain(steps).iter().enumerate().rev() {
        let (c, v0) = x0_posterior(ab);
        let a = c1 * c + c2;
        m = a * m + c1 * (MU - c * ab.sqrt() * MU);
        v = a * a * v + c1 * c1 * v0 + if i > 0 { var } else { 0.0 };
    }
    (m, v)
}

#[test]
fn engine_coefficients_match_the_schedule_formula() {
    for steps in [1, 2, 4, 8] {
        let engine = PosteriorCoefficients::new(steps, BETA.0, BETA.1).unwrap();
        for (i, &(_, c1, c2, var)) in chain(steps).iter().enumerate() {
            let close = |a: f32, b: f64| ((a as f64 - b) / b.abs().max(1e-6)).abs() <= 1e-5;
            assert!(close(engine.coef1[i], c1), "T={steps} i={i} coef1");
            assert!(
                close(engine.coef2[i], c2) || c2 == 0.0,
                "T={steps} i={i} coef2"
            );
            if i > 0 {
                let want = var.ln();
                assert!(
                    (engine.log_var[i] as f64 - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "T={steps} i={i} log_var {} vs {want}",
                    engine.log_var[i]
                );
            }
        }
    }
}

#[test]
fn exact_generator_gives_the_data_distribution_for_every_step_count() {
    let n = 4000;
    for steps in [1, 2, 4, 8] {
        let coefs = PosteriorCoefficients::new(steps, BETA.0, BETA.1).unwrap();
        let gen = GaussianGenerator { steps };
        let noise = Noise::Philox {
            seed: 5,
            first_sample: 0,
        };
        let mut x: Vec<f64> = sample(&gen, &coefs, n, &noise, &Device::Cpu)
            .unwrap()
            .to_vec_f32()
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .collect();
        assert_eq!(x.len(), n * SIDE * SIDE);
        let len = x.len() as f64;
        let mean = x.iter().sum::<f64>() / len;
        x.iter_mut().for_each(|v| *v -= mean);
        let var = x.iter().map(|v| v * v).sum::<f64>() / (len - 1.0);
        let (m, v) = propagated(steps);
        println!(
            "T={steps}: mean {mean:.4} (chain {m:.4}, data {MU}), var {var:.4} (chain {v:.4}, data {S2})"
        );
        assert!((mean - m).abs() <= 0.01, "T={steps}: mean {mean} vs {m}");
        assert!((var / v - 1.0).abs() <= 0.03, "T={steps}: var {var} vs {v}");
        assert!((mean - MU).abs() <= 0.02, "T={steps}: mean {mean} vs {MU}");
        assert!(
            (var / S2 - 1.0).abs() <= 0.04,
            "T={steps}: var {var} vs {S2}"
        );
    }
}
