//! CLD-SGM's samplers over a score network α_θ: the symmetric splitting sampler (SSCS), Euler–Maruyama
//! and the final denoising step, with the official time grid, prior and coefficients
//! (tools/reference/cld_sde.py; float64 scalars, fp32 state).
//!
//! State u = [x; v] (x first along channels), kept as two NHWC tensors. The samplers run in reverse time
//! τ ∈ [0, 1 − ε]; the network and β see forward time t = 1 − τ. The mixed score is
//! s = −v/Σ_vv(t) − ℓ_t·α_θ(u, t).
//!
//! Draws (replay names, NCHW; Philox stream and step): `prior.x`, `prior.v` [B, C, H, W] standard normals
//! (Prior, steps 0 and 1; v = z/√M⁻¹); SSCS step i: `noise_a.{i}`, `noise_b.{i}` [B, 2C, H, W] (Step,
//! 2i and 2i + 1); Euler–Maruyama step i: `noise.{i}` [B, 2C, H, W] (Step, i; its x half is unused, as
//! in the official code).

use super::sde::CldSde;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::models::{Config, Ncsnpp};
use crate::ops;
use crate::ops::FiniteWatch;
use crate::ops::UDraw;
use crate::rng::{NoiseKey, NoiseStream};
use crate::samplers::noise::Noise;
use crate::samplers::ode::{rk45, TensorSpace, Tolerances};
use crate::tensor::{Tensor, WideVec};

/// The SDE and sampler settings of a CLD model (official config names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CldConfig {
    pub beta0: f64,
    pub beta1: f64,
    pub m_inv: f64,
    pub gamma: f64,
    pub numerical_eps: f64,
    pub sampling_eps: f64,
    pub sscs_num_stab: f64,
    pub quadratic_striding: bool,
}

impl CldConfig {
    /// The CIFAR-10 SDE of the released CLD model (configs/default_cifar10.txt and
    /// specific_cifar10.txt): β = 4, M⁻¹ = 4, γ = 0.04, numerical ε 1e-9, sampling ε 1e-3, linear
    /// striding.
    pub fn cifar10() -> CldConfig {
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

    pub fn from_config(cfg: &Config) -> Result<CldConfig> {
        let striding = cfg.str_or("striding", "linear")?;
        let c = CldConfig {
            beta0: cfg.f64("beta0")?,
            beta1: cfg.f64("beta1")?,
            m_inv: cfg.f64("m_inv")?,
            gamma: cfg.f64("gamma")?,
            numerical_eps: cfg.f64("numerical_eps")?,
            sampling_eps: cfg.f64("sampling_eps")?,
            sscs_num_stab: cfg.f64_or("sscs_num_stab", 0.0)?,
            quadratic_striding: match striding.as_str() {
                "linear" => false,
                "quadratic" => true,
                o => {
                    return Err(cfg.error("striding", format!("unknown `{o}` (linear, quadratic)")))
                }
            },
        };
        if !(c.m_inv > 0.0 && c.gamma >= 0.0 && c.sampling_eps > 0.0 && c.sampling_eps < 1.0) {
            return Err(cfg.error(
                "m_inv",
                "needs m_inv > 0, gamma >= 0 and 0 < sampling_eps < 1",
            ));
        }
        Ok(c)
    }

    /// Γ = 2/√M⁻¹ (critical damping).
    fn f(&self) -> f64 {
        2.0 / self.m_inv.sqrt()
    }

    fn g(&self) -> f64 {
        1.0 / self.f()
    }

    fn beta(&self, t: f64) -> f64 {
        self.beta0 + self.beta1 * t
    }

    fn beta_int(&self, t: f64) -> f64 {
        self.beta0 * t + 0.5 * self.beta1 * t * t
    }

    /// (Σ_xx, Σ_xv, Σ_vv) of the HSM perturbation kernel at forward time t, with initial velocity
    /// variance `var0v`, numerical_eps on the diagonal.
    fn kernel_var(&self, t: f64, var0v: f64) -> (f64, f64, f64) {
        let (g, f) = (self.g(), self.f());
        let b = self.beta_int(t);
        let m = (-4.0 * b * g).exp();
        let var0x = 0.0;
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
            sxx * m + self.numerical_eps,
            sxv * m,
            svv * m + self.numerical_eps,
        )
    }

    /// The two scalars of the mixed score at forward time t, rounded to f32 as the official code
    /// combines them with f32 tensors: (Σ_vv, −ℓ_t). Σ_vv is evaluated with var0v passed as an f32
    /// tensor, −ℓ_t with var0v in f64, as there.
    fn score_scalars(&self, t: f64) -> Result<(f32, f32)> {
        let var0v = self.gamma / self.m_inv;
        let (sxx, sxv, svv) = self.kernel_var(t, var0v);
        let neg_ell = -(sxx / (sxx * svv - sxv * sxv)).sqrt();
        let svv32 = self.kernel_var(t, (var0v as f32) as f64).2 as f32;
        if !(neg_ell.is_finite() && svv32 > 0.0) {
            return Err(Error::InvalidParam {
                op: "cld score",
                what: "perturbation kernel",
                rule: "positive definite at this time",
                found: format!("t = {t}"),
            });
        }
        Ok((svv32, neg_ell as f32))
    }

    /// The reverse-time grid τ_0..τ_n over [0, 1 − ε].
    pub fn time_grid(&self, n: usize) -> Vec<f64> {
        let t_final = 1.0 - self.sampling_eps;
        let lin: Vec<f64> = (0..=n)
            .map(|i| {
                if n == 0 {
                    0.0
                } else {
                    t_final * i as f64 / n as f64
                }
            })
            .collect();
        if self.quadratic_striding {
            lin.iter()
                .rev()
                .map(|&tau| t_final * (1.0 - (tau / t_final).powi(2)))
                .collect()
        } else {
            lin
        }
    }

    fn sde(&self) -> CldSde {
        CldSde {
            beta0: self.beta0,
            beta1: self.beta1,
            m_inv: self.m_inv,
            sscs_num_stab: self.sscs_num_stab,
        }
    }
}

/// The network a CLD sampler queries: α_θ(u, t) for NHWC u [B, H, W, 2C] at forward time t (shared by
/// the batch), returning [B, H, W, C].
pub trait CldScore {
    fn alpha(&self, u: &Tensor, t: f32) -> Result<Tensor>;
    /// (H, W, C) of the data half x.
    fn image_shape(&self) -> [usize; 3];
}

impl CldScore for Ncsnpp {
    fn alpha(&self, u: &Tensor, t: f32) -> Result<Tensor> {
        self.forward_nhwc(u, &[t], None)
    }

    fn image_shape(&self) -> [usize; 3] {
        let a = self.arch();
        [a.image_size, a.image_size, a.out_channels]
    }
}

/// a·x + b·y as a new tensor.
fn lin2(a: f32, x: &Tensor, b: f32, y: &Tensor) -> Result<Tensor> {
    let mut out = y.to_device(&y.device())?;
    ops::axpby(a, x, b, &mut out)?;
    Ok(out)
}

/// A half step's [B, H, W, 2C] draw: Philox noise is left to the step (drawn inside the fused
/// kernel on the GPU), replayed noise is read here.
enum Draw {
    Tensor(Tensor),
    Philox { key: NoiseKey, first_sample: u32 },
}

impl Draw {
    fn new(
        noise: &Noise<'_>,
        name: &str,
        step: u32,
        shape: [usize; 4],
        device: &Device,
    ) -> Result<Draw> {
        Ok(match noise {
            Noise::Philox { seed, first_sample } => Draw::Philox {
                key: NoiseKey::new(*seed, NoiseStream::Step, step),
                first_sample: *first_sample,
            },
            Noise::Replay(_) => {
                Draw::Tensor(noise.image(name, NoiseStream::Step, step, shape, device)?)
            }
        })
    }

    fn as_noise(&self) -> UDraw<'_> {
        match self {
            Draw::Tensor(t) => UDraw::Tensor(t),
            Draw::Philox { key, first_sample } => UDraw::Philox {
                key: *key,
                first_sample: *first_sample,
            },
        }
    }
}

/// The CLD state and the network that scores it.
struct Chain<'a> {
    net: &'a dyn CldScore,
    cfg: CldConfig,
    c: usize,
}

impl Chain<'_> {
    fn score(&self, x: &Tensor, v: &Tensor, t: f64) -> Result<Tensor> {
        let alpha = self.net.alpha(&ops::concat_channels(x, v)?, t as f32)?;
        let (svv, neg_ell) = self.cfg.score_scalars(t)?;
        lin2(neg_ell, &alpha, -1.0 / svv, v)
    }

    /// The x and v halves of a u-shaped draw.
    fn halves(&self, z: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            ops::slice_channels(z, 0, self.c)?,
            ops::slice_channels(z, self.c, self.c)?,
        ))
    }

    /// SSCS's analytic half step A(dt_half) from τ with draw z (one fused kernel on the GPU).
    fn half_step(
        &self,
        x: &Tensor,
        v: &Tensor,
        tau: f64,
        dt_half: f64,
        z: &Draw,
    ) -> Result<(Tensor, Tensor)> {
        let k = self.cfg.sde().sscs_half_step(tau, dt_half)?;
        ops::cld_sscs_half_step(x, v, &k, z.as_noise())
    }

    /// SSCS's score step S(dt): v ← v + 2Γ(s + M⁻¹v)β(1 − τ)dt, s at forward time 1 − τ.
    fn score_step(&self, x: &Tensor, v: &Tensor, tau: f64, dt: f64) -> Result<Tensor> {
        let s = self.score(x, v, 1.0 - tau)?;
        let k = 2.0 * self.cfg.f() * self.cfg.beta(1.0 - tau) * dt;
        lin2(k as f32, &s, (1.0 + k * self.cfg.m_inv) as f32, v)
    }

    /// One Euler–Maruyama step of the reverse SDE (λ = 1) over dt from τ, with the v half of `noise`
    /// as the diffusion draw; without noise, the drift step alone (the final denoiser). One fused
    /// kernel on the GPU after the network call.
    fn em_step(
        &self,
        x: &Tensor,
        v: &Tensor,
        tau: f64,
        dt: f64,
        noise: Option<&Draw>,
    ) -> Result<(Tensor, Tensor)> {
        let t = 1.0 - tau;
        let alpha = self.net.alpha(&ops::concat_channels(x, v)?, t as f32)?;
        let (svv, neg_ell) = self.cfg.score_scalars(t)?;
        let (b, f, m_inv) = (self.cfg.beta(t), self.cfg.f(), self.cfg.m_inv);
        // s = −ℓ α − v/Σ_vv;  x' = x − dt M⁻¹ β v;  v' = v + dt (β x + Γ M⁻¹ β v + 2Γβ s) + √(2Γβ dt) z_v.
        let k = ops::CldEmCoefficients {
            neg_ell,
            neg_inv_svv: -1.0 / svv,
            a_xv: (-dt * m_inv * b) as f32,
            c_vx: (dt * b) as f32,
            c_vv: (1.0 + dt * f * m_inv * b) as f32,
            c_vs: (dt * 2.0 * f * b) as f32,
            diffusion: ((2.0 * f * b).sqrt() * dt.sqrt()) as f32,
        };
        ops::cld_em_step(x, v, &alpha, &k, noise.map(Draw::as_noise))
    }
}

/// Which CLD sampler to run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CldSampler {
    Sscs,
    EulerMaruyama,
    /// The probability-flow ODE with adaptive RK45 (the official `sampling_rtol`/`sampling_atol`);
    /// `n_discrete_steps` is ignored and the NFE is the solver's plus the denoising step.
    Ode {
        rtol: f64,
        atol: f64,
    },
}

/// A CLD run's result: the data half x (NCHW), the velocity v, and the network evaluations used.
pub struct CldSample {
    pub x: Tensor,
    pub v: Tensor,
    pub nfe: usize,
}

/// Runs `sampler` with `n_discrete_steps` network evaluations (the last is the denoising step, as in
/// the official `n_discrete_steps`), on a batch of `batch`.
pub fn sample(
    net: &dyn CldScore,
    cfg: &CldConfig,
    sampler: CldSampler,
    n_discrete_steps: usize,
    batch: usize,
    noise: &Noise<'_>,
    device: &Device,
) -> Result<CldSample> {
    let (out, watch) = sample_watched(net, cfg, sampler, n_discrete_steps, batch, noise, device)?;
    watch.finish()?;
    Ok(out)
}

/// [`sample`]'s device work alone: the result and the unread watch of x and v, whose slots the
/// caller reads after the work ran. For SSCS and Euler–Maruyama with Philox noise on a GPU nothing
/// here copies to or from the host, so a CUDA graph can capture it; the ODE reads its error norms
/// and returns a watch already read.
#[allow(clippy::too_many_arguments)]
pub fn sample_watched(
    net: &dyn CldScore,
    cfg: &CldConfig,
    sampler: CldSampler,
    n_discrete_steps: usize,
    batch: usize,
    noise: &Noise<'_>,
    device: &Device,
) -> Result<(CldSample, FiniteWatch)> {
    let [h, w, c] = net.image_shape();
    let is_ode = matches!(sampler, CldSampler::Ode { .. });
    if (!is_ode && n_discrete_steps < 2) || batch == 0 {
        return Err(Error::InvalidParam {
            op: "cld sample",
            what: "steps, batch",
            rule: "at least 2 steps (one plus the denoising step) and a batch of at least 1",
            found: format!("{n_discrete_steps} steps, batch {batch}"),
        });
    }
    let chain = Chain { net, cfg: *cfg, c };
    let half = [batch, h, w, c];
    let full = [batch, h, w, 2 * c];
    let x0 = noise.image("prior.x", NoiseStream::Prior, 0, half, device)?;
    let zv = noise.image("prior.v", NoiseStream::Prior, 1, half, device)?;
    let mut v = lin2((1.0 / cfg.m_inv.sqrt()) as f32, &zv, 0.0, &zv)?;
    let mut x = x0;
    if let CldSampler::Ode { rtol, atol } = sampler {
        return Ok((ode(&chain, x, v, rtol, atol)?, FiniteWatch::new(&[])));
    }
    let n = n_discrete_steps - 1;
    let tau = cfg.time_grid(n);
    let mut watch = FiniteWatch::new(&["x", "v"]);
    for i in 0..n {
        let dt = tau[i + 1] - tau[i];
        match sampler {
            CldSampler::Sscs => {
                let za = Draw::new(noise, &format!("noise_a.{i}"), 2 * i as u32, full, device)?;
                let zb = Draw::new(
                    noise,
                    &format!("noise_b.{i}"),
                    2 * i as u32 + 1,
                    full,
                    device,
                )?;
                let (x1, v1) = chain.half_step(&x, &v, tau[i], dt / 2.0, &za)?;
                let v2 = chain.score_step(&x1, &v1, tau[i], dt)?;
                (x, v) = chain.half_step(&x1, &v2, tau[i], dt / 2.0, &zb)?;
            }
            CldSampler::EulerMaruyama => {
                let z = Draw::new(noise, &format!("noise.{i}"), i as u32, full, device)?;
                (x, v) = chain.em_step(&x, &v, tau[i], dt, Some(&z))?;
            }
            // Returned above, before the fixed-step loop.
            CldSampler::Ode { .. } => break,
        }
        watch.check(&x, "x", i)?;
        watch.check(&v, "v", i)?;
    }
    let (x, v) = chain.em_step(&x, &v, 1.0 - cfg.sampling_eps, cfg.sampling_eps, None)?;
    watch.check(&x, "x", n)?;
    let out = CldSample {
        x: ops::nhwc_to_nchw(&x)?,
        v: ops::nhwc_to_nchw(&v)?,
        nfe: n_discrete_steps,
    };
    Ok((out, watch))
}

/// The probability-flow ODE from τ = 0 to 1 − ε: RK45 over the f64 state on the network's device
/// (every right-hand side sees the state and τ rounded to f32, as through the official torchdiffeq
/// SciPy wrapper; the drift is one fused pass into the f64 derivative), then the state rounded to f32
/// and denoised. The host reads one error norm per step.
fn ode(chain: &Chain<'_>, x: Tensor, v: Tensor, rtol: f64, atol: f64) -> Result<CldSample> {
    let cfg = chain.cfg;
    let u0 = ops::concat_channels(&x, &v)?;
    let space = TensorSpace {
        shape: u0.shape().to_vec(),
    };
    let (f, m_inv) = (cfg.f(), cfg.m_inv);
    let rhs = |tau: f64, u: &Tensor| -> Result<WideVec> {
        let t = 1.0 - tau as f32 as f64;
        let alpha = chain.net.alpha(u, t as f32)?;
        let (svv, neg_ell) = cfg.score_scalars(t)?;
        let b = cfg.beta(t);
        // Reverse probability-flow drift: −f_x, and −f_v + (2Γβ) s / 2, s the mixed score.
        let k = ops::CldOdeDrift {
            svv,
            neg_ell,
            a_xv: m_inv * b,
            neg_b: -b,
            c_vv: f * m_inv * b,
            c_vs: 2.0 * f * b,
        };
        ops::cld_ode_drift(u, &alpha, &k)
    };
    let tol = Tolerances { atol, rtol };
    let y0 = ops::ode::widen(&u0)?;
    let (u, stats) = rk45::solve_in(&space, rhs, 0.0, 1.0 - cfg.sampling_eps, y0, tol)?;
    // One word read back per watched tensor (a GPU's state is not copied back to be checked).
    let mut watch = FiniteWatch::new(&["u", "x"]);
    watch.check(&u, "u", stats.accepted)?;
    let (x, v) = chain.halves(&u)?;
    let (x, v) = chain.em_step(&x, &v, 1.0 - cfg.sampling_eps, cfg.sampling_eps, None)?;
    watch.check(&x, "x", stats.accepted)?;
    watch.finish()?;
    Ok(CldSample {
        x: ops::nhwc_to_nchw(&x)?,
        v: ops::nhwc_to_nchw(&v)?,
        nfe: stats.nfev + 1,
    })
}
