//! LSGM's NVAE (encoder and decoder towers) from official args and `vae_state_dict` names, mirroring
//! tools/reference/nvae.py. Batch norms use running statistics (eval mode); weight norms and the AR
//! flows' masks are folded into plain kernels once, at load time.
//!
//! - [`Nvae::encode`]: image in [−1, 1] → per latent group μ, log σ (soft-clamped) and
//!   ε = μ + σ·noise, then the AR flow cells when `num_nf > 0`.
//! - [`Nvae::decode`]: latent groups (decoder order: top scale first) → output logits; groups not given
//!   are t·noise, the official draw from N(0, t²I).
//!
//! Activations are NHWC here; the `*_nchw` wrappers take and return PyTorch's layout.

mod cells;
mod flows;
mod load;
pub mod output;

pub use cells::SqueezeExcitation;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::nn::layers::{BatchNorm, Conv2d};
use crate::ops::{self, Activation, AffineArgs};
use crate::tensor::Tensor;
use cells::Cell;
use flows::CellAr;

/// The NVAE fields LSGM's args hold, normalised.
#[derive(Clone, Debug)]
pub struct NvaeArch {
    pub dataset: String,
    pub image_size: usize,
    pub image_channels: usize,
    pub num_latent_scales: usize,
    pub num_groups_per_scale: usize,
    pub num_latent_per_group: usize,
    pub num_flows: usize,
    pub log_sig_q_scale: f32,
    pub num_x_bits: u32,
    pub decoder_dist: String,
    pub input_skip: bool,
    pub use_se: bool,
    pub top_size: usize,
    pub out_channels: usize,
}

// Built once per model and held in vectors; the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum EncItem {
    Cell(Cell),
    Combiner(Conv2d),
    Down(Cell),
}

// Built once per model and held in vectors; the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum DecItem {
    Combiner(Conv2d),
    Cell(Cell),
}

pub struct Nvae {
    arch: NvaeArch,
    /// prior_ftr0 as one NHWC image [top, top, C].
    prior: Vec<f32>,
    prior_c: usize,
    stem: Conv2d,
    pre: Vec<Cell>,
    enc: Vec<EncItem>,
    input_skip: Vec<(BatchNorm, Conv2d)>,
    enc_sampler: Vec<Conv2d>,
    flows: Vec<(CellAr, CellAr)>,
    eps_conv: Vec<Conv2d>,
    dec: Vec<DecItem>,
    post: Vec<Cell>,
    head: Conv2d,
}

/// What [`Nvae::encode`] returns per latent group (decoder order), NHWC.
pub struct Posterior {
    pub mu: Vec<Tensor>,
    pub log_sigma: Vec<Tensor>,
    pub eps: Vec<Tensor>,
}

impl Nvae {
    pub fn arch(&self) -> &NvaeArch {
        &self.arch
    }

    /// [B, nz, H, W] of every latent group in decoder order (top scale first), NCHW.
    pub fn group_shapes(&self, batch: usize) -> Vec<[usize; 4]> {
        let a = &self.arch;
        let mut out = Vec::new();
        let mut hw = a.top_size;
        for _ in 0..a.num_latent_scales {
            for _ in 0..a.num_groups_per_scale {
                out.push([batch, a.num_latent_per_group, hw, hw]);
            }
            hw *= 2;
        }
        out
    }

    fn initial_state(&self, batch: usize, like: &Tensor) -> Result<Tensor> {
        let t = self.arch.top_size;
        let data: Vec<f32> = (0..batch)
            .flat_map(|_| self.prior.iter().copied())
            .collect();
        Tensor::from_f32(
            &data,
            &[batch, t, t, self.prior_c],
            DType::F32,
            &like.device(),
        )
    }

    fn check_group(&self, what: &'static str, g: usize, x: &Tensor, batch: usize) -> Result<()> {
        let s = self.group_shapes(batch)[g];
        let expected = [s[0], s[2], s[3], s[1]];
        if x.shape() != expected {
            return Err(Error::ShapeMismatch {
                op: "nvae",
                tensor: what,
                expected: expected.to_vec(),
                found: x.shape().to_vec(),
            });
        }
        Ok(())
    }

    /// `x` [B, H, W, C] in [−1, 1] and one N(0, I) noise tensor per group (NHWC) → the posterior.
    pub fn encode(&self, x: &Tensor, noise: &[Tensor]) -> Result<Posterior> {
        let a = &self.arch;
        let b = x.shape().first().copied().unwrap_or(0);
        let expected = [b, a.image_size, a.image_size, a.image_channels];
        if x.shape() != expected {
            return Err(Error::ShapeMismatch {
                op: "nvae.encode",
                tensor: "x (NHWC)",
                expected: expected.to_vec(),
                found: x.shape().to_vec(),
            });
        }
        let n_groups = self.enc_sampler.len();
        if noise.len() != n_groups {
            return Err(Error::InvalidParam {
                op: "nvae.encode",
                what: "noise",
                rule: "one tensor per latent group",
                found: format!("{} tensors for {n_groups} groups", noise.len()),
            });
        }
        for (g, n) in noise.iter().enumerate() {
            self.check_group("noise", g, n, b)?;
        }
        let mut s = self.stem.forward(x)?;
        for c in &self.pre {
            s = c.forward(&s)?;
        }
        let mut pyramid = s.to_device(&s.device())?;
        let mut p_idx = 0;
        let mut combiners: Vec<(&Conv2d, Tensor)> = Vec::new();
        for item in &self.enc {
            match item {
                EncItem::Combiner(c) => combiners.push((c, s.to_device(&s.device())?)),
                EncItem::Cell(c) => s = c.forward(&s)?,
                EncItem::Down(c) => {
                    s = c.forward(&s)?;
                    if let Some((bn, conv)) = self.input_skip.get(p_idx) {
                        let p = conv.forward(&bn.forward(&pyramid, Activation::Silu)?)?;
                        s = ops::add(&s, &p)?;
                        pyramid = p;
                        p_idx += 1;
                    }
                }
            }
        }
        combiners.reverse();
        let mut ftr = s;
        let mut d = self.initial_state(b, x)?;
        let mut post = Posterior {
            mu: Vec::new(),
            log_sigma: Vec::new(),
            eps: Vec::new(),
        };
        let mut g = 0usize;
        let nz = a.num_latent_per_group;
        for item in &self.dec {
            let comb = match item {
                DecItem::Cell(c) => {
                    d = c.forward(&d)?;
                    continue;
                }
                DecItem::Combiner(c) => c,
            };
            if g > 0 {
                let (conv, feature) = &combiners[g - 1];
                ftr = ops::add(feature, &conv.forward(&d)?)?;
            }
            let params = self.enc_sampler[g].forward(&ops::activation(&ftr, Activation::Elu)?)?;
            let mu = ops::activation(
                &ops::slice_channels(&params, 0, nz)?,
                Activation::SoftClamp(5.0),
            )?;
            let log_sig = ops::activation(
                &ops::slice_channels(&params, nz, nz)?,
                Activation::SoftClamp(a.log_sig_q_scale),
            )?;
            let sigma = ops::activation(&log_sig, Activation::Exp)?;
            let mut eps = ops::add(&mu, &ops::mul(&sigma, &noise[g])?)?;
            for (c1, c2) in &self.flows[g * a.num_flows..(g + 1) * a.num_flows] {
                eps = c2.forward(&c1.forward(&eps)?)?;
            }
            d = comb.forward(&ops::concat_channels(&d, &self.eps_conv[g].forward(&eps)?)?)?;
            post.mu.push(mu);
            post.log_sigma.push(log_sig);
            post.eps.push(eps);
            g += 1;
        }
        Ok(post)
    }

    /// Latent groups (NHWC, decoder order) → output logits [B, H, W, out]. Groups past `eps.len()`
    /// are `t·noise[i − eps.len()]`.
    pub fn decode(&self, eps: &[Tensor], noise: &[Tensor], t: f32) -> Result<Tensor> {
        let n_groups = self.eps_conv.len();
        if eps.len() + noise.len() != n_groups || n_groups == 0 {
            return Err(Error::InvalidParam {
                op: "nvae.decode",
                what: "latent groups",
                rule: "given groups plus noise groups = the model's group count",
                found: format!("{} + {} for {n_groups} groups", eps.len(), noise.len()),
            });
        }
        let first = eps
            .first()
            .or(noise.first())
            .ok_or_else(|| Error::InvalidParam {
                op: "nvae.decode",
                what: "latent groups",
                rule: "at least one",
                found: "none".into(),
            })?;
        let b = first.shape().first().copied().unwrap_or(0);
        let mut s = self.initial_state(b, first)?;
        let mut g = 0usize;
        for item in &self.dec {
            match item {
                DecItem::Cell(c) => s = c.forward(&s)?,
                DecItem::Combiner(c) => {
                    let z_owned;
                    let z = if g < eps.len() {
                        &eps[g]
                    } else {
                        let n = &noise[g - eps.len()];
                        self.check_group("noise", g, n, b)?;
                        z_owned = scale(n, t)?;
                        &z_owned
                    };
                    self.check_group("eps", g, z, b)?;
                    s = c.forward(&ops::concat_channels(&s, &self.eps_conv[g].forward(z)?)?)?;
                    g += 1;
                }
            }
        }
        for c in &self.post {
            s = c.forward(&s)?;
        }
        self.head.forward(&ops::activation(&s, Activation::Elu)?)
    }

    /// [`Nvae::encode`] with NCHW tensors in and out.
    pub fn encode_nchw(&self, x: &Tensor, noise: &[Tensor]) -> Result<Posterior> {
        let noise = noise
            .iter()
            .map(ops::nchw_to_nhwc)
            .collect::<Result<Vec<_>>>()?;
        let p = self.encode(&ops::nchw_to_nhwc(x)?, &noise)?;
        let back = |v: Vec<Tensor>| v.iter().map(ops::nhwc_to_nchw).collect::<Result<Vec<_>>>();
        Ok(Posterior {
            mu: back(p.mu)?,
            log_sigma: back(p.log_sigma)?,
            eps: back(p.eps)?,
        })
    }

    /// [`Nvae::decode`] with NCHW tensors in and out.
    pub fn decode_nchw(&self, eps: &[Tensor], noise: &[Tensor], t: f32) -> Result<Tensor> {
        let eps = eps
            .iter()
            .map(ops::nchw_to_nhwc)
            .collect::<Result<Vec<_>>>()?;
        let noise = noise
            .iter()
            .map(ops::nchw_to_nhwc)
            .collect::<Result<Vec<_>>>()?;
        ops::nhwc_to_nchw(&self.decode(&eps, &noise, t)?)
    }
}

/// x·s elementwise (a per-channel scale of the same value).
fn scale(x: &Tensor, s: f32) -> Result<Tensor> {
    let c = x.shape().last().copied().unwrap_or(0);
    let v = Tensor::full(s, &[c], DType::F32, &x.device())?;
    ops::channel_affine(
        x,
        &AffineArgs {
            scale: Some(&v),
            ..Default::default()
        },
        Activation::Identity,
    )
}
