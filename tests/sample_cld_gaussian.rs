//! CLD's samplers with the exact score of Gaussian data: x0 ~ N(μ, s²) per pixel (HSM: v0 ~ N(0, γM)).
//! The marginal of u_t is then Gaussian, N(A(t)[μ; 0], Σ(t) with var0x = s²), so the v-score is known in
//! closed form; the stand-in network returns the α that makes the mixed score equal it. Each sampler's
//! output x must have mean μ and variance s² as the step count grows.
//!
//! Tolerances (4000 samples): the sample mean's standard error is s/√4000 ≈ 0.016·s, so |mean − μ| ≤ 0.06
//! (≈ 4 standard errors at s = 1, plus discretisation); the variance's standard error is s²·√(2/4000) ≈
//! 0.022·s², so |var/s² − 1| ≤ 0.1 for SSCS/EM at 100 steps and the ODE, ≤ 0.06 for SSCS at 400 steps, and
//! SSCS's error must shrink from 20 to 100 to 400 steps.

mod common;

use trilemma::samplers::cld::{sample, CldConfig, CldSampler, CldScore};
use trilemma::samplers::Noise;
use trilemma::{DType, Device, Result, Tensor};

const MU: f64 = 0.7;
const S2: f64 = 0.25;

fn cfg() -> CldConfig {
    CldConfig {
        beta0: 4.0,
        beta1: 0.0,
        m_inv: 4.0,
        gamma: 0.04,
        numerical_eps: 1e-9,
        sampling_eps: 1e-3,
        sscs_num_stab: 0.0,
        quadratic_striding: false,
    }
}

/// Σ(t) of the CLD kernel with initial variances (var0x, var0v), as the reference writes it.
fn kernel_var(c: &CldConfig, t: f64, var0x: f64, var0v: f64) -> (f64, f64, f64) {
    let f = 2.0 / c.m_inv.sqrt();
    let g = 1.0 / f;
    let b = c.beta0 * t + 0.5 * c.beta1 * t * t;
    let m = (-4.0 * b * g).exp();
    let sxx = var0x + 1.0 / m - 1.0
        + 4.0 * b * g * (var0x - 1.0)
        + 4.0 * b * b * g * g * (var0x - 2.0)
        + 16.0 * g.powi(4) * b * b * var0v;
    let sxv = -var0x * b + 4.0 * g * g * b * var0v
        - 2.0 * g * b * b * (var0x - 2.0)
        - 8.0 * g.powi(3) * b * b * var0v;
    let svv = f * f * (1.0 / m - 1.0) / 4.0 + f * b - 4.0 * g * b * var0v
        + 4.0 * g * g * b * b * var0v
        + var0v
        + b * b * (var0x - 2.0);
    (
        sxx * m + c.numerical_eps,
        sxv * m,
        svv * m + c.numerical_eps,
    )
}

/// α such that −v/Σ_vv − ℓ·α is the exact v-score of the Gaussian marginal.
struct GaussianScore {
    cfg: CldConfig,
    n: usize,
}

impl CldScore for GaussianScore {
    fn alpha(&self, u: &Tensor, t: f32) -> Result<Tensor> {
        let c = &self.cfg;
        let t = t as f64;
        let var0v = c.gamma / c.m_inv;
        let f = 2.0 / c.m_inv.sqrt();
        let g = 1.0 / f;
        let b = c.beta0 * t + 0.5 * c.beta1 * t * t;
        let e = (-2.0 * b * g).exp();
        let (mx, mv) = (e * (2.0 * b * g + 1.0) * MU, e * (-b) * MU);
        let (pxx, pxv, pvv) = kernel_var(c, t, S2, var0v);
        let det = pxx * pvv - pxv * pxv;
        let (sxx, sxv, svv) = kernel_var(c, t, 0.0, var0v);
        let ell = (sxx / (sxx * svv - sxv * sxv)).sqrt();
        let svv32 = kernel_var(c, t, 0.0, (var0v as f32) as f64).2;
        let uv = u.to_vec_f32()?;
        let alpha: Vec<f32> = uv
            .chunks_exact(2)
            .map(|p| {
                let (dx, dv) = (p[0] as f64 - mx, p[1] as f64 - mv);
                // v-row of −Σ'⁻¹ (u − m).
                let score_v = -(-pxv * dx + pxx * dv) / det;
                ((score_v + p[1] as f64 / svv32) / -ell) as f32
            })
            .collect();
        Tensor::from_f32(&alpha, &[self.n, 1, 1, 1], DType::F32, &Device::Cpu)
    }

    fn image_shape(&self) -> [usize; 3] {
        [1, 1, 1]
    }
}

fn moments(sampler: CldSampler, steps: usize) -> (f64, f64) {
    let n = 4000;
    let net = GaussianScore { cfg: cfg(), n };
    let out = sample(
        &net,
        &cfg(),
        sampler,
        steps,
        n,
        &Noise::Philox {
            seed: 11,
            first_sample: 0,
        },
        &Device::Cpu,
    )
    .unwrap();
    let x: Vec<f64> = out
        .x
        .to_vec_f32()
        .unwrap()
        .iter()
        .map(|&v| v as f64)
        .collect();
    let mean = x.iter().sum::<f64>() / n as f64;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    println!("{sampler:?} {steps} steps: mean {mean:.4} (want {MU}), var {var:.4} (want {S2})");
    (mean, var)
}

#[test]
fn sscs_recovers_the_gaussian_and_converges_with_steps() {
    let err = |(m, v): (f64, f64)| ((m - MU).abs(), (v / S2 - 1.0).abs());
    let (e20, e100, e400) = (
        err(moments(CldSampler::Sscs, 20)),
        err(moments(CldSampler::Sscs, 100)),
        err(moments(CldSampler::Sscs, 400)),
    );
    assert!(e100.0 <= 0.06 && e100.1 <= 0.1, "100 steps: {e100:?}");
    assert!(e400.0 <= 0.06 && e400.1 <= 0.06, "400 steps: {e400:?}");
    // The variance error shrinks as steps grow (20 steps are far from converged at this beta).
    assert!(
        e100.1 < e20.1 && e400.1 <= e100.1 + 0.02,
        "no convergence: {e20:?} {e100:?} {e400:?}"
    );
}

#[test]
fn euler_maruyama_recovers_the_gaussian() {
    let (m, v) = moments(CldSampler::EulerMaruyama, 100);
    assert!((m - MU).abs() <= 0.06, "mean {m}");
    assert!((v / S2 - 1.0).abs() <= 0.1, "var {v}");
}

#[test]
fn probability_flow_ode_recovers_the_gaussian() {
    let (m, v) = moments(
        CldSampler::Ode {
            rtol: 1e-5,
            atol: 1e-5,
        },
        0,
    );
    assert!((m - MU).abs() <= 0.06, "mean {m}");
    assert!((v / S2 - 1.0).abs() <= 0.1, "var {v}");
}
