//! NCSN++, the U-Net of all three families, built from an official config and official weight names
//! (`all_modules.{i}.…` in construction order, `z_transform.{i}.…` for DDGAN, `mixing_logit` for LSGM).
//! Mirrors tools/reference/ncsnpp.py, which is checked bit for bit against the official code.
//!
//! - cld: (u = \[x; v\] \[B, 2C, H, W\], t \[B\] forward time) → α_θ \[B, C, H, W\]; Fourier features of
//!   log t, or the sinusoid of t.
//! - ddgan: (x_t \[B, C, H, W\], t \[B\] integer step index, z \[B, nz\]) → x0 (tanh), AdaGN everywhere.
//! - lsgm: (z_t \[B, C, H, W\], t \[B\]) → ε′ \[B, C, H, W\]; sinusoid of 1000·t. The mixing logit is kept
//!   for the sampler, not applied here (as in the official forward).
//!
//! Options no released model uses and the official code cannot run (resblock_type="ddpm" for CLD,
//! progressive="residual") are rejected with an error naming the key, as are unknown values.

mod arch;
mod input_cache;
mod load;

use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::nn::blocks::{AttnBlock, Combine, PyramidDown, ResBlock, ZMapping};
use crate::nn::embedding;
use crate::nn::layers::{Conv2d, Dense, GroupNorm};
use crate::ops::{self, Activation};
use crate::tensor::Tensor;
use input_cache::InputKey;

pub use arch::{Arch, ProgressiveInput, TimeEmbedding};

struct DownLevel {
    blocks: Vec<(ResBlock, Option<AttnBlock>)>,
    /// The downsampling block and the pyramid op after it (all but the last level).
    down: Option<(ResBlock, Option<PyramidOp>)>,
}

enum PyramidOp {
    Combine(Combine),
    Residual(PyramidDown),
}

struct UpLevel {
    blocks: Vec<ResBlock>,
    attn: Option<AttnBlock>,
    out_skip: Option<(GroupNorm, Conv2d)>,
    up: Option<ResBlock>,
}

pub struct Ncsnpp {
    arch: Arch,
    fourier_w: Option<Vec<f32>>,
    temb: Option<(Dense, Dense)>,
    stem: Conv2d,
    down: Vec<DownLevel>,
    mid: (ResBlock, AttnBlock, ResBlock),
    up: Vec<UpLevel>,
    head: Option<(GroupNorm, Conv2d)>,
    z_transform: Option<ZMapping>,
    mixing_logit: Option<Vec<f32>>,
    inputs: input_cache::InputCache,
    /// Calls of [`Ncsnpp::forward_nhwc`] so far (issued: on a GPU the work may still be queued); a
    /// run's progress reads it.
    evaluations: std::sync::atomic::AtomicU64,
}

impl Ncsnpp {
    /// Network calls issued so far (a CUDA graph's replayed calls included, as its runner adds them).
    pub fn evaluations(&self) -> u64 {
        self.evaluations.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Adds `n` calls made without [`Ncsnpp::forward_nhwc`] (a graph replay).
    pub(crate) fn count_evaluations(&self, n: u64) {
        self.evaluations
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// A vector of `len` values `value` on `device`, uploaded once.
    fn constant(&self, value: f32, len: usize, device: &Device) -> Result<std::sync::Arc<Tensor>> {
        let key = InputKey::Constant {
            value: value.to_bits(),
            len,
        };
        self.inputs.get(device, key, || {
            Tensor::full(value, &[len], DType::F32, device)
        })
    }

    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// LSGM's learned mixing logit per channel (None for other families or mixed_prediction off).
    pub fn mixing_logit(&self) -> Option<&[f32]> {
        self.mixing_logit.as_deref()
    }

    /// The time embedding [B, temb_dim] for host times `t` (length B).
    fn time_embedding(&self, t: &[f32], x: &Tensor) -> Result<Option<Tensor>> {
        let a = &self.arch;
        let emb = match a.embedding {
            TimeEmbedding::Fourier => {
                let logt: Vec<f32> = t.iter().map(|&v| (v as f64).ln() as f32).collect();
                let w = self.fourier_w.as_deref().unwrap_or(&[]);
                embedding::gaussian_fourier(&logt, w)
            }
            TimeEmbedding::Sinusoidal => embedding::sinusoidal(t, a.nf, 10000.0),
            TimeEmbedding::LsgmPositional => {
                embedding::lsgm_positional(t, a.embed_dim, a.embedding_scale)
            }
            TimeEmbedding::LsgmFourier => {
                embedding::lsgm_random_fourier(t, self.fourier_w.as_deref().unwrap_or(&[]))
            }
        };
        let Some((d0, d1)) = &self.temb else {
            return Ok(None);
        };
        let key = InputKey::TimeEmbedding(t.iter().map(|v| v.to_bits()).collect());
        let emb = self.inputs.get(&x.device(), key, || {
            Tensor::from_f32(&emb, &[t.len(), a.embed_dim], DType::F32, &x.device())
        })?;
        let h = d0.forward(&emb)?;
        Ok(Some(d1.forward(&ops::activation(&h, a.act)?)?))
    }

    /// One call on an NHWC input `x` [B, H, W, C_in] with host times `t` (length B, or 1 to share)
    /// and, for DDGAN, `z` [B, nz]. Returns [B, H, W, C_out].
    pub fn forward_nhwc(&self, x: &Tensor, t: &[f32], z: Option<&Tensor>) -> Result<Tensor> {
        const OP: &str = "ncsnpp";
        self.count_evaluations(1);
        let a = &self.arch;
        let [b, h, w, c] = x.dims(OP, "input", "a 4-D image batch")?;
        if h != a.image_size || w != a.image_size || c != a.in_channels {
            return Err(Error::ShapeMismatch {
                op: OP,
                tensor: "input (NHWC)",
                expected: vec![b, a.image_size, a.image_size, a.in_channels],
                found: x.shape().to_vec(),
            });
        }
        let t: Vec<f32> = match t.len() {
            1 => vec![t[0]; b],
            n if n == b => t.to_vec(),
            n => {
                return Err(Error::InvalidParam {
                    op: OP,
                    what: "t",
                    rule: "one time per sample, or one shared time",
                    found: format!("{n} times for batch {b}"),
                })
            }
        };
        if let Some(i) = t.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidParam {
                op: OP,
                what: "t",
                rule: "finite",
                found: format!("t[{i}] = {}", t[i]),
            });
        }
        if a.embedding == TimeEmbedding::Fourier {
            if let Some(i) = t.iter().position(|&v| v <= 0.0) {
                return Err(Error::InvalidParam {
                    op: OP,
                    what: "t",
                    rule: "positive (the Fourier embedding takes log t)",
                    found: format!("t[{i}] = {}", t[i]),
                });
            }
        }
        let zemb = match (&self.z_transform, z) {
            (Some(m), Some(z)) => {
                if z.shape() != [b, m.nz()] {
                    return Err(Error::ShapeMismatch {
                        op: OP,
                        tensor: "z",
                        expected: vec![b, m.nz()],
                        found: z.shape().to_vec(),
                    });
                }
                Some(m.forward(z)?)
            }
            (Some(_), None) => {
                return Err(Error::InvalidParam {
                    op: OP,
                    what: "z",
                    rule: "given (DDGAN's generator takes a latent z)",
                    found: "none".into(),
                })
            }
            (None, _) => None,
        };
        let zemb = zemb.as_ref();
        let temb = self.time_embedding(&t, x)?;
        let temb = temb.as_ref();
        // Activations in the precision's storage type from here to the output (the embeddings and
        // every parameter stay fp32).
        let act_dtype = x.device().precision().activation_dtype();
        let stored;
        let x = if x.dtype() == act_dtype {
            x
        } else {
            stored = ops::cast(x, act_dtype)?;
            &stored
        };

        let centered;
        let x = if a.centered {
            x
        } else {
            centered = ops::channel_affine(
                x,
                &ops::AffineArgs {
                    scale: Some(&*self.constant(2.0, c, &x.device())?),
                    shift: Some(&*self.constant(-1.0, c, &x.device())?),
                    center: None,
                },
                Activation::Identity,
            )?;
            &centered
        };

        // The input pyramid; None while it is still the input itself (no copy of x).
        let mut pyr: Option<Tensor> = None;
        let mut hs: Vec<Tensor> = vec![self.stem.forward(x)?];
        for lvl in &self.down {
            for (blk, at) in &lvl.blocks {
                let prev = hs.last().ok_or_else(|| internal("skip stack"))?;
                let mut h = blk.forward(prev, temb, zemb)?;
                if let Some(at) = at {
                    h = at.forward(&h)?;
                }
                hs.push(h);
            }
            if let Some((blk, pyr_op)) = &lvl.down {
                let prev = hs.last().ok_or_else(|| internal("skip stack"))?;
                let mut h = blk.forward(prev, temb, zemb)?;
                match pyr_op {
                    None => {}
                    Some(PyramidOp::Combine(cmb)) => {
                        let p = a.fir.down(pyr.as_ref().unwrap_or(x))?;
                        h = cmb.forward(&p, &h)?;
                        pyr = Some(p);
                    }
                    Some(PyramidOp::Residual(dn)) => {
                        let p = dn.forward(pyr.as_ref().unwrap_or(x))?;
                        let merged = crate::nn::layers::residual(&p, &h, a.skip_rescale)?;
                        h = merged.to_device(&merged.device())?;
                        pyr = Some(merged);
                    }
                }
                hs.push(h);
            }
        }
        let last = hs.last().ok_or_else(|| internal("skip stack"))?;
        let mut h = self.mid.0.forward(last, temb, zemb)?;
        h = self.mid.1.forward(&h)?;
        h = self.mid.2.forward(&h, temb, zemb)?;

        let mut out_pyr: Option<Tensor> = None;
        for lvl in &self.up {
            for blk in &lvl.blocks {
                let skip = hs.pop().ok_or_else(|| internal("skip stack"))?;
                h = blk.forward(&ops::concat_channels(&h, &skip)?, temb, zemb)?;
            }
            if let Some(at) = &lvl.attn {
                h = at.forward(&h)?;
            }
            if let Some((gn, conv)) = &lvl.out_skip {
                let p = conv.forward(&gn.forward(&h, a.act)?)?;
                out_pyr = Some(match out_pyr {
                    None => p,
                    Some(prev) => ops::add(&a.fir.up(&prev)?, &p)?,
                });
            }
            if let Some(blk) = &lvl.up {
                h = blk.forward(&h, temb, zemb)?;
            }
        }
        let out = match &self.head {
            Some((gn, conv)) => conv.forward(&gn.forward(&h, a.act)?)?,
            None => out_pyr.ok_or_else(|| internal("output pyramid"))?,
        };
        let out = if a.use_tanh {
            ops::activation(&out, Activation::Tanh)?
        } else {
            out
        };
        if out.dtype() == DType::F32 {
            Ok(out)
        } else {
            ops::cast(&out, DType::F32)
        }
    }

    /// [`Ncsnpp::forward_nhwc`] on NCHW tensors (PyTorch's layout, the one users hold).
    pub fn forward(&self, x: &Tensor, t: &[f32], z: Option<&Tensor>) -> Result<Tensor> {
        let y = self.forward_nhwc(&ops::nchw_to_nhwc(x)?, t, z)?;
        ops::nhwc_to_nchw(&y)
    }
}

fn internal(what: &str) -> Error {
    Error::InvalidParam {
        op: "ncsnpp",
        what: "network structure",
        rule: "consistent with its config",
        found: format!("{what} exhausted"),
    }
}
