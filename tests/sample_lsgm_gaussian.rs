//! LSGM's latent probability-flow ODE with the exact score of Gaussian latents z0 ~ N(μ, s²) per
//! element, under the VP-SDE (β from 0.1 to 20, σ²₀ = 0). The marginal at t is N(m_t μ, V_t) with
//! V_t = m_t² s² + 1 − m_t², and the exact ODE flow is the affine map
//! z_t = m_t μ + √(V_t / V_1) (z_1 − m_1 μ). So every sample's end point is known exactly from its own
//! prior draw: the solver's error is measured per sample, with no statistical noise, and the output's
//! moments must be those of the data.
//!
//! The stand-in network returns the ε′ that, mixed with a non-trivial logit, gives the exact
//! ε = √var · (z − m μ) / V_t, computed here in f64 from the schedule's formula, independently of the
//! engine's SDE header.
//!
//! Tolerances: the drift is evaluated in f32 (as the official code does), which leaves a floor of about
//! 1e-5 on the end points. RK45 at tol 1e-5 must land within 1e-4 of the exact map (measured 1.4e-5;
//! its error control is local, so the global error may exceed the tolerance by the step count); RK4's
//! error must fall by at least 8× per doubling of steps (4th order gives 16×) until it reaches that
//! floor (measured: 8.5e-4 at 10 steps, 2.0e-5 at 20, 7.9e-6 at 40), and be below 1e-4 at 40 steps.
//! Moments over 2000 × 16 = 32 000 values: |mean − μ| ≤ 0.015 (5 standard errors of 0.0028
//! plus the exact map's 0.0023 offset from m_1 ≠ 0) and |var/s² − 1| ≤ 0.04 (5 standard errors).

use trilemma::rng::NoiseStream;
use trilemma::samplers::lsgm::LsgmSde;
use trilemma::samplers::lsgm::{sample_latent, LatentScore, LsgmConfig, LsgmSolver};
use trilemma::samplers::Noise;
use trilemma::{DType, Device, Result, Tensor};

const MU: f64 = 0.7;
const S2: f64 = 0.25;
const SIDE: usize = 4;
const BATCH: usize = 2000;
const LOGIT: f32 = 0.5;

/// m_t = exp(−(β₀ t + (β₁ − β₀) t²/2) / 2).
fn mean_coeff(t: f64) -> f64 {
    (-0.5 * (0.1 * t + 0.5 * (20.0 - 0.1) * t * t)).exp()
}

fn marginal_var(t: f64) -> f64 {
    let m = mean_coeff(t);
    m * m * S2 + 1.0 - m * m
}

struct GaussianLatents;

impl LatentScore for GaussianLatents {
    fn eps(&self, z: &Tensor, t: f32) -> Result<Tensor> {
        let t = t as f64;
        let m = mean_coeff(t);
        let sd = (1.0 - m * m).sqrt();
        let a = 1.0 / (1.0 + (-(LOGIT as f64)).exp());
        let out: Vec<f32> = z
            .to_vec_f32()?
            .iter()
            .map(|&z| {
                let exact = sd * (z as f64 - m * MU) / marginal_var(t);
                // mixed = (1 − a) sd z + a ε′ = exact.
                ((exact - (1.0 - a) * sd * z as f64) / a) as f32
            })
            .collect();
        Tensor::from_f32(&out, z.shape(), DType::F32, &Device::Cpu)
    }

    fn latent_shape(&self) -> [usize; 3] {
        [SIDE, SIDE, 1]
    }

    fn mixing_logit(&self) -> Option<Vec<f32>> {
        Some(vec![LOGIT])
    }
}

fn cfg() -> LsgmConfig {
    LsgmConfig {
        sde: LsgmSde::vp(0.1, 20.0, 0.0).unwrap(),
        ode_eps: 1e-5,
        ode_solver_tol: 1e-5,
        temp: 1.0,
        vae_temp: 1.0,
    }
}

/// (largest error against the exact flow of each sample's own prior draw, mean, variance, NFE).
fn run(solver: LsgmSolver) -> (f64, f64, f64, usize) {
    let noise = Noise::Philox {
        seed: 9,
        first_sample: 0,
    };
    let (z, nfe) = sample_latent(
        &GaussianLatents,
        &cfg(),
        solver,
        BATCH,
        &noise,
        &Device::Cpu,
    )
    .unwrap_or_else(|e| panic!("{solver:?}: {e}"));
    let z: Vec<f64> = z.to_vec_f32().unwrap().iter().map(|&v| v as f64).collect();
    let shape = [BATCH, SIDE, SIDE, 1];
    let z1 = noise
        .image("prior.z", NoiseStream::Prior, 0, shape, &Device::Cpu)
        .unwrap()
        .to_vec_f32()
        .unwrap();
    assert_eq!(z.len(), z1.len());
    let t_end = (1e-5f32) as f64;
    let scale = (marginal_var(t_end) / marginal_var(1.0)).sqrt();
    let exact = |z1: f32| mean_coeff(t_end) * MU + scale * (z1 as f64 - mean_coeff(1.0) * MU);
    let err = z
        .iter()
        .zip(&z1)
        .map(|(&z, &z1)| (z - exact(z1)).abs())
        .fold(0.0, f64::max);
    let n = z.len() as f64;
    let mean = z.iter().sum::<f64>() / n;
    let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    println!("{solver:?}: max error {err:.3e}, mean {mean:.4}, var {var:.4}, nfe {nfe}");
    (err, mean, var, nfe)
}

fn assert_data_moments(mean: f64, var: f64, what: &str) {
    assert!((mean - MU).abs() <= 0.015, "{what}: mean {mean} vs {MU}");
    assert!((var / S2 - 1.0).abs() <= 0.04, "{what}: var {var} vs {S2}");
}

#[test]
fn adaptive_rk45_follows_the_exact_flow() {
    let (err, mean, var, nfe) = run(LsgmSolver::Rk45);
    assert!(err <= 1e-4, "max error {err:.3e}");
    assert!(nfe > 6, "nfe {nfe}");
    assert_data_moments(mean, var, "rk45");
}

#[test]
fn fixed_step_rk4_converges_at_fourth_order() {
    let runs: Vec<_> = [10, 20, 40]
        .iter()
        .map(|&steps| (steps, run(LsgmSolver::Rk4 { steps })))
        .collect();
    for w in runs.windows(2) {
        let ((s0, (e0, ..)), (s1, (e1, ..))) = (w[0], w[1]);
        assert!(
            e1 * 8.0 <= e0 || e1 <= 1e-5,
            "{s0} → {s1} steps: error {e0:.3e} → {e1:.3e}"
        );
    }
    for &(steps, (err, mean, var, nfe)) in &runs {
        assert_eq!(nfe, 4 * steps);
        if steps == 40 {
            assert!(err <= 1e-4, "40 steps: max error {err:.3e}");
            assert_data_moments(mean, var, "rk4 40 steps");
        }
    }
}

#[test]
fn zero_steps_and_empty_batches_are_errors() {
    let noise = Noise::Philox {
        seed: 0,
        first_sample: 0,
    };
    for (solver, batch) in [(LsgmSolver::Rk4 { steps: 0 }, 2), (LsgmSolver::Rk45, 0)] {
        let err = sample_latent(
            &GaussianLatents,
            &cfg(),
            solver,
            batch,
            &noise,
            &Device::Cpu,
        )
        .err()
        .unwrap_or_else(|| panic!("{solver:?} with batch {batch} ran"));
        assert!(err.to_string().contains("at least 1"), "{err}");
    }
}
