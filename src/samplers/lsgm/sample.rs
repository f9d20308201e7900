//! LSGM sampling (evaluate_vada.py with the ODE sampler): z(1) = temp·noise in the score model's latent
//! space, the probability-flow ODE of the mixed prediction integrated from t = 1 to t = ode_eps with RK45
//! (SciPy's controller, rtol = atol = ode_solver_tol, as `sample_model_ode`), then the NVAE decoder and
//! the mean of its output distribution. All drift arithmetic in f32 at the f32-rounded solver time, in
//! the official op order (tools/reference/lsgm_sde.py).
//!
//! Draws (replay names, NCHW; Philox stream and step): `prior.z` [B, C, h, w] (Prior, 0), and for
//! models with lower latent scales (CelebA-HQ), `noise.{k}` for the k-th group the score model does
//! not produce (Latent, k), multiplied by `vae_temp`.

use super::sde::LsgmSde;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::models::nvae::output::{image_from_logits, DecoderDist};
use crate::models::{Config, Ncsnpp, Nvae};
use crate::ops;
use crate::rng::NoiseStream;
use crate::samplers::noise::Noise;
use crate::samplers::ode::{rk4, rk45, TensorSpace, Tolerances};
use crate::tensor::{Tensor, WideVec};

/// LSGM's sampling settings (official args and evaluation settings).
#[derive(Clone, Copy, Debug)]
pub struct LsgmConfig {
    pub sde: LsgmSde,
    pub ode_eps: f64,
    pub ode_solver_tol: f64,
    pub temp: f32,
    pub vae_temp: f32,
}

impl LsgmConfig {
    pub fn from_config(cfg: &Config) -> Result<LsgmConfig> {
        let sde_type = cfg.str_or("sde_type", "vpsde")?;
        let sigma2_0 = cfg.f64_or("sigma2_0", 0.0)?;
        let sde = match sde_type.as_str() {
            "vpsde" => LsgmSde::vp(
                cfg.f64_or("beta_start", 0.1)?,
                cfg.f64_or("beta_end", 20.0)?,
                sigma2_0,
            )?,
            "geometric_sde" => LsgmSde::geometric(
                cfg.f64_or("sigma2_min", 3e-5)?,
                cfg.f64_or("sigma2_max", 0.999)?,
                sigma2_0,
            )?,
            o => {
                return Err(cfg.error(
                    "sde_type",
                    format!("unsupported `{o}` (vpsde, geometric_sde)"),
                ))
            }
        };
        let c = LsgmConfig {
            sde,
            ode_eps: cfg.f64("ode_eps")?,
            ode_solver_tol: cfg.f64("ode_solver_tol")?,
            temp: cfg.f64_or("temp", 1.0)? as f32,
            vae_temp: cfg.f64_or("vae_temp", 1.0)? as f32,
        };
        if !(c.ode_eps > 0.0 && c.ode_eps < 1.0 && c.ode_solver_tol > 0.0) {
            return Err(cfg.error("ode_eps", "needs 0 < ode_eps < 1 and ode_solver_tol > 0"));
        }
        Ok(c)
    }
}

/// What the latent ODE needs from a score model.
pub trait LatentScore {
    /// The network's prediction ε′ at z (NHWC) and time t, before mixing.
    fn eps(&self, z: &Tensor, t: f32) -> Result<Tensor>;
    /// (H, W, C) of the latent.
    fn latent_shape(&self) -> [usize; 3];
    /// Per-channel mixing logits; None: no mixed prediction (ε′ used as is).
    fn mixing_logit(&self) -> Option<Vec<f32>>;
}

impl LatentScore for Ncsnpp {
    fn eps(&self, z: &Tensor, t: f32) -> Result<Tensor> {
        self.forward_nhwc(z, &[t], None)
    }

    fn latent_shape(&self) -> [usize; 3] {
        let a = self.arch();
        [a.image_size, a.image_size, a.in_channels]
    }

    fn mixing_logit(&self) -> Option<Vec<f32>> {
        Ncsnpp::mixing_logit(self).map(<[f32]>::to_vec)
    }
}

/// How the latent probability-flow ODE is integrated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LsgmSolver {
    /// The official adaptive RK45 at `ode_solver_tol`. The batch is one ODE system, as in the official
    /// code, so step sizes (and results, to the tolerance) depend on the batch's other samples.
    Rk45,
    /// Classical RK4 on `steps` uniform steps in t (4 network evaluations each): a fixed cost, and each
    /// sample's result independent of the rest of the batch.
    Rk4 { steps: usize },
}

/// An LSGM run's result.
pub struct LsgmSample {
    /// The latent at t = ode_eps, NCHW.
    pub z: Tensor,
    /// Decoder logits, NCHW.
    pub logits: Tensor,
    /// The image in [0, 1], NCHW.
    pub image: Tensor,
    pub nfe: usize,
}

/// Solves the latent probability-flow ODE from z(1) = temp · noise down to t = ode_eps; returns
/// z(ode_eps) (NHWC) and the network evaluations.
pub fn sample_latent(
    score: &dyn LatentScore,
    cfg: &LsgmConfig,
    solver: LsgmSolver,
    batch: usize,
    noise: &Noise<'_>,
    device: &Device,
) -> Result<(Tensor, usize)> {
    if batch == 0 || solver == (LsgmSolver::Rk4 { steps: 0 }) {
        return Err(Error::InvalidParam {
            op: "lsgm sample",
            what: "batch, steps",
            rule: "at least 1",
            found: format!("{batch}, {solver:?}"),
        });
    }
    let [h, w, c] = score.latent_shape();
    let logit: Vec<f32> = match score.mixing_logit() {
        Some(l) => l,
        // Without mixed prediction the network's ε′ is used as is: a = 1.
        None => vec![f32::INFINITY; c],
    };
    let z1 = noise.image("prior.z", NoiseStream::Prior, 0, [batch, h, w, c], device)?;
    // z(1) = temp · noise in f32, then the solver's f64 state.
    let mut z = z1.to_device(device)?;
    ops::axpby(0.0, &z1, cfg.temp, &mut z)?;
    let y0 = ops::ode::widen(&z)?;
    // The mixing weight per channel, as `mixed_eps` computes it.
    let mix: Vec<f32> = logit.iter().map(|&l| 1.0 / (1.0 + (-l).exp())).collect();
    let mix = Tensor::from_f32(&mix, &[c], DType::F32, device)?;
    let sde = cfg.sde;
    // The solver's variable is τ = −t (torchdiffeq flips the decreasing grid): dy/dτ = −drift(−τ).
    let rhs = |tau: f64, z: &Tensor| -> Result<WideVec> {
        let t = -(tau as f32);
        let eps = score.eps(z, t)?;
        let (var, g2) = (sde.var(t), sde.g2(t));
        let k = ops::LsgmOdeDrift {
            ft: -0.5 * g2,
            half_g2: 0.5 * g2,
            sd: var.sqrt(),
        };
        ops::lsgm_ode_drift(z, &eps, &mix, &k)
    };
    let space = TensorSpace {
        shape: vec![batch, h, w, c],
    };
    let t1 = -((cfg.ode_eps as f32) as f64);
    let (z, nfe, steps) = match solver {
        LsgmSolver::Rk45 => {
            let tol = Tolerances {
                atol: cfg.ode_solver_tol,
                rtol: cfg.ode_solver_tol,
            };
            let (z, st) = rk45::solve_in(&space, rhs, -1.0, t1, y0, tol)?;
            (z, st.nfev, st.accepted)
        }
        LsgmSolver::Rk4 { steps } => {
            let (z, nfe) = rk4::solve_in(&space, rhs, -1.0, t1, y0, steps)?;
            (z, nfe, steps)
        }
    };
    // One word read back (the latent is not copied back to be checked).
    let mut watch = ops::FiniteWatch::new(&["z"]);
    watch.check(&z, "z", steps)?;
    watch.finish()?;
    Ok((z, nfe))
}

/// Samples a batch: latent ODE, then decoder.
pub fn sample(
    vae: &Nvae,
    score: &Ncsnpp,
    cfg: &LsgmConfig,
    solver: LsgmSolver,
    batch: usize,
    noise: &Noise<'_>,
    device: &Device,
) -> Result<LsgmSample> {
    let (z, nfe) = sample_latent(score, cfg, solver, batch, noise, device)?;
    let (logits, image) = decode(vae, &z, cfg.vae_temp, noise, device)?;
    Ok(LsgmSample {
        z: ops::nhwc_to_nchw(&z)?,
        logits,
        image,
        nfe,
    })
}

/// The NVAE decoder on a score-model latent z (NHWC): z split into the top scale's groups along
/// channels, lower scales from `noise` × `vae_temp`; returns (logits, image in [0, 1]), both NCHW.
pub fn decode(
    vae: &Nvae,
    z: &Tensor,
    vae_temp: f32,
    noise: &Noise<'_>,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let [batch, _, _, c] = z.dims("lsgm decode", "z", "an NHWC latent")?;
    let va = vae.arch();
    let groups = va.num_groups_per_scale;
    let nz = va.num_latent_per_group;
    if c != groups * nz {
        return Err(Error::InvalidParam {
            op: "lsgm sample",
            what: "latent channels",
            rule: "num_groups_per_scale × num_latent_per_group of the VAE",
            found: format!("{c} for {groups} × {nz}"),
        });
    }
    let eps: Vec<Tensor> = (0..groups)
        .map(|g| ops::slice_channels(z, g * nz, nz))
        .collect::<Result<_>>()?;
    let shapes = &vae.group_shapes(batch)[groups..];
    let lower = group_noise(shapes, "noise", NoiseStream::Latent, noise, device)?;
    let logits = ops::nhwc_to_nchw(&vae.decode(&eps, &lower, vae_temp)?)?;
    let image = image_of(vae, &logits)?;
    Ok((logits, image))
}

/// One NHWC normal draw per latent group of NCHW shape `shapes[k]`: the noise `{name}.{k}`, Philox
/// stream `stream`, step k.
fn group_noise(
    shapes: &[[usize; 4]],
    name: &str,
    stream: NoiseStream,
    noise: &Noise<'_>,
    device: &Device,
) -> Result<Vec<Tensor>> {
    let draw = |(k, sh): (usize, &[usize; 4])| {
        let nhwc = [sh[0], sh[2], sh[3], sh[1]];
        noise.image(&format!("{name}.{k}"), stream, k as u32, nhwc, device)
    };
    shapes.iter().enumerate().map(draw).collect()
}

/// The mean of the decoder's output distribution for NCHW `logits`, in [0, 1].
fn image_of(vae: &Nvae, logits: &Tensor) -> Result<Tensor> {
    let va = vae.arch();
    let dist = DecoderDist::parse(&va.decoder_dist).ok_or_else(|| Error::InvalidParam {
        op: "lsgm decode",
        what: "decoder_dist",
        rule: "dml, bin, normal or dl",
        found: va.decoder_dist.clone(),
    })?;
    image_from_logits(dist, logits)
}

/// An image's trip through the VAE: its posterior sample and the decoder's reconstruction.
pub struct Reconstruction {
    /// The score model's latent: the top scale's posterior samples (ε after the flows), groups
    /// concatenated along channels, NCHW: the z(0) the latent ODE starts from when encoding data.
    pub z: Tensor,
    /// Decoder logits, NCHW.
    pub logits: Tensor,
    /// The reconstruction in [0, 1], NCHW.
    pub image: Tensor,
}

/// Encodes `image` (NCHW in [0, 1]) to a posterior sample of every latent group (noise `posterior.{g}`,
/// Philox stream Step, step g) and decodes all of them back.
pub fn reconstruct(
    vae: &Nvae,
    image: &Tensor,
    noise: &Noise<'_>,
    device: &Device,
) -> Result<Reconstruction> {
    let x = ops::nchw_to_nhwc(image)?;
    let scaled: Vec<f32> = x.to_vec_f32()?.iter().map(|&v| 2.0 * v - 1.0).collect();
    let x = Tensor::from_f32(&scaled, x.shape(), DType::F32, device)?;
    let batch = x.shape()[0];
    let shapes = vae.group_shapes(batch);
    let draws = group_noise(&shapes, "posterior", NoiseStream::Step, noise, device)?;
    let post = vae.encode(&x, &draws)?;
    let top = vae.arch().num_groups_per_scale.min(post.eps.len());
    let mut z = post.eps[0].to_device(device)?;
    for e in &post.eps[1..top] {
        z = ops::concat_channels(&z, e)?;
    }
    let logits = ops::nhwc_to_nchw(&vae.decode(&post.eps, &[], 1.0)?)?;
    let image = image_of(vae, &logits)?;
    Ok(Reconstruction {
        z: ops::nhwc_to_nchw(&z)?,
        logits,
        image,
    })
}
