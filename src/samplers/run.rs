//! A sampling run of any model: the sampler chosen and checked against the family, batches of images in
//! [0, 1] with the official output transform, shards of a run by global sample index.

use super::cld_sample::{self, CldConfig, CldSampler};
use super::ddgan::PosteriorCoefficients;
use super::lsgm_sample::{self, LsgmConfig, LsgmSolver};
use super::noise::Noise;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::models::{Model, Network};
use crate::tensor::{DType, Tensor};

/// The samplers by name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SamplerKind {
    /// DDGAN's T-step posterior sampler.
    Ddgan,
    /// CLD's symmetric splitting sampler.
    Sscs,
    /// CLD's Euler–Maruyama.
    Em,
    /// The probability-flow ODE with the adaptive RK45 (CLD, LSGM).
    Ode,
    /// LSGM's probability-flow ODE with fixed-step RK4.
    Rk4,
}

impl SamplerKind {
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Ddgan => "ddgan",
            SamplerKind::Sscs => "sscs",
            SamplerKind::Em => "em",
            SamplerKind::Ode => "ode",
            SamplerKind::Rk4 => "rk4",
        }
    }
}

/// What a run will do, validated before any work.
#[derive(Clone, Debug)]
pub struct Plan {
    pub sampler: SamplerKind,
    /// Steps of fixed-step samplers (CLD's n_discrete_steps, DDGAN's T, RK4 steps); None for adaptive
    /// ODE solves.
    pub steps: Option<usize>,
    ddgan: Option<PosteriorCoefficients>,
    cld: Option<CldConfig>,
    lsgm: Option<LsgmConfig>,
    center: bool,
}

fn bad(what: &'static str, rule: &'static str, found: String) -> Error {
    Error::InvalidParam {
        op: "sample",
        what,
        rule,
        found,
    }
}

/// Default SSCS/EM network evaluations when the config has no `n_discrete_steps` (the CLD paper's
/// CIFAR-10 SSCS runs use 150).
pub const CLD_DEFAULT_STEPS: usize = 150;

/// Default RK4 steps for LSGM's fixed-step ODE (100 network evaluations).
pub const RK4_DEFAULT_STEPS: usize = 25;

impl Plan {
    /// The sampler named `sampler` (or the family's default) with `steps`, checked against `model`.
    pub fn new(model: &Model, sampler: Option<&str>, steps: Option<usize>) -> Result<Plan> {
        if steps == Some(0) {
            return Err(bad("--steps", "at least 1", "0".into()));
        }
        let cfg = &model.config;
        let mut plan = Plan {
            sampler: SamplerKind::Ode,
            steps: None,
            ddgan: None,
            cld: None,
            lsgm: None,
            center: true,
        };
        match &model.network {
            Network::Ddgan(_) => {
                if let Some(s) = sampler.filter(|s| *s != "ddgan") {
                    return Err(bad("--sampler", "ddgan for a DDGAN model", s.into()));
                }
                let t = cfg.usize("num_timesteps")?;
                if let Some(s) = steps.filter(|&s| s != t) {
                    return Err(bad(
                        "--steps",
                        "the model's num_timesteps (a DDGAN generator is trained for its own step count)",
                        format!("{s} for a {t}-step model"),
                    ));
                }
                plan.sampler = SamplerKind::Ddgan;
                plan.steps = Some(t);
                plan.ddgan = Some(PosteriorCoefficients::new(
                    t,
                    cfg.f64_or("beta_min", 0.1)?,
                    cfg.f64_or("beta_max", 20.0)?,
                )?);
            }
            Network::Cld(_) => {
                let default = cfg.str_or("sampling_method", "ode")?;
                let name = sampler.unwrap_or(&default);
                plan.sampler = match name {
                    "sscs" => SamplerKind::Sscs,
                    "em" => SamplerKind::Em,
                    "ode" => SamplerKind::Ode,
                    other => {
                        return Err(bad(
                            "--sampler",
                            "sscs, em or ode for a CLD model",
                            other.into(),
                        ))
                    }
                };
                plan.cld = Some(CldConfig::from_config(cfg)?);
                plan.center = cfg.bool_or("center_image", true)?;
                match plan.sampler {
                    SamplerKind::Ode => {
                        if let Some(s) = steps {
                            return Err(bad(
                                "--steps",
                                "absent for the adaptive ODE sampler (its tolerances set the steps)",
                                s.to_string(),
                            ));
                        }
                    }
                    _ => {
                        let n = match steps {
                            Some(n) => n,
                            None => cfg.usize("n_discrete_steps").unwrap_or(CLD_DEFAULT_STEPS),
                        };
                        if n < 2 {
                            return Err(bad(
                                "--steps",
                                "at least 2 for SSCS/EM (one step plus the denoising step)",
                                n.to_string(),
                            ));
                        }
                        plan.steps = Some(n);
                    }
                }
            }
            Network::Lsgm { .. } => {
                plan.sampler = match sampler.unwrap_or("ode") {
                    "ode" => SamplerKind::Ode,
                    "rk4" => SamplerKind::Rk4,
                    other => {
                        return Err(bad(
                            "--sampler",
                            "ode or rk4 for an LSGM model",
                            other.into(),
                        ))
                    }
                };
                match (plan.sampler, steps) {
                    (SamplerKind::Ode, Some(s)) => {
                        return Err(bad(
                            "--steps",
                            "absent for the adaptive ODE sampler (its tolerances set the steps; \
                             `--sampler rk4` takes a step count)",
                            s.to_string(),
                        ))
                    }
                    (SamplerKind::Rk4, s) => plan.steps = Some(s.unwrap_or(RK4_DEFAULT_STEPS)),
                    _ => {}
                }
                plan.lsgm = Some(LsgmConfig::from_config(cfg)?);
            }
        }
        Ok(plan)
    }

    /// One batch of images in [0, 1] (NCHW) and the network evaluations it took.
    pub fn sample(
        &self,
        model: &Model,
        batch: usize,
        noise: &Noise<'_>,
        device: &Device,
    ) -> Result<(Tensor, usize)> {
        match (&model.network, self.sampler) {
            (Network::Ddgan(g), SamplerKind::Ddgan) => {
                let coefs = self.ddgan.as_ref().ok_or_else(|| {
                    bad("plan", "built for this model", "no DDGAN schedule".into())
                })?;
                let x = super::ddgan::sample(g, coefs, batch, noise, device)?;
                Ok((to_unit_range(&x, true)?, coefs.steps()))
            }
            (Network::Cld(net), kind) => {
                let cfg = self
                    .cld
                    .as_ref()
                    .ok_or_else(|| bad("plan", "built for this model", "no CLD config".into()))?;
                let (sampler, steps) = match kind {
                    SamplerKind::Sscs => {
                        (CldSampler::Sscs, self.steps.unwrap_or(CLD_DEFAULT_STEPS))
                    }
                    SamplerKind::Em => (
                        CldSampler::EulerMaruyama,
                        self.steps.unwrap_or(CLD_DEFAULT_STEPS),
                    ),
                    _ => (
                        CldSampler::Ode {
                            rtol: model.config.f64_or("sampling_rtol", 1e-5)?,
                            atol: model.config.f64_or("sampling_atol", 1e-5)?,
                        },
                        0,
                    ),
                };
                let out = cld_sample::sample(net, cfg, sampler, steps, batch, noise, device)?;
                Ok((to_unit_range(&out.x, self.center)?, out.nfe))
            }
            (Network::Lsgm { vae, score }, kind) => {
                let cfg = self
                    .lsgm
                    .as_ref()
                    .ok_or_else(|| bad("plan", "built for this model", "no LSGM config".into()))?;
                let solver = match (kind, self.steps) {
                    (SamplerKind::Rk4, Some(steps)) => LsgmSolver::Rk4 { steps },
                    _ => LsgmSolver::Rk45,
                };
                let out = lsgm_sample::sample(vae, score, cfg, solver, batch, noise, device)?;
                Ok((out.image, out.nfe))
            }
            _ => Err(bad(
                "plan",
                "built for this model",
                format!("{:?}", self.sampler),
            )),
        }
    }
}

/// x in [−1, 1] (or [0, 1] when `centered` is false) → [0, 1], clamped.
fn to_unit_range(x: &Tensor, centered: bool) -> Result<Tensor> {
    let v: Vec<f32> = x
        .to_vec_f32()?
        .iter()
        .map(|&v| if centered { (v + 1.0) / 2.0 } else { v }.clamp(0.0, 1.0))
        .collect();
    Tensor::from_f32(&v, x.shape(), DType::F32, &Device::Cpu)
}

/// `i/n`: shard i (0-based) of n.
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let parsed = s.split_once('/').and_then(|(i, n)| {
        Some((
            i.trim().parse::<usize>().ok()?,
            n.trim().parse::<usize>().ok()?,
        ))
    });
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => Err(bad("--shard", "i/n with 0 <= i < n", s.into())),
    }
}

/// The global sample indices of shard `i` of `n` over `num` images.
pub fn shard_range(num: usize, (i, n): (usize, usize)) -> std::ops::Range<usize> {
    (i * num / n)..((i + 1) * num / n)
}
