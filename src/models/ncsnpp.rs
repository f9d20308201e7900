//! NCSN++, the U-Net of all three families, built from an official config and official weight names
//! (`all_modules.{i}.…` in construction order, `z_transform.{i}.…` for DDGAN, `mixing_logit` for LSGM).
//! Mirrors tools/reference/ncsnpp.py, which is checked bit for bit against the official code.
//!
//! - cld: (u = [x; v] [B, 2C, H, W], t [B] forward time) → α_θ [B, C, H, W]; Fourier features of
//!   log t, or the sinusoid of t.
//! - ddgan: (x_t [B, C, H, W], t [B] integer step index, z [B, nz]) → x0 (tanh), AdaGN everywhere.
//! - lsgm: (z_t [B, C, H, W], t [B]) → ε′ [B, C, H, W]; sinusoid of 1000·t. The mixing logit is kept
//!   for the sampler, not applied here (as in the official forward).
//!
//! Options no released model uses and the official code cannot run (resblock_type="ddpm" for CLD,
//! progressive="residual") are rejected with an error naming the key, as are unknown values.

use super::config::Config;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::nn::blocks::{
    AttnBlock, Combine, Fir, PyramidDown, ResBlock, ResBlockConfig, Resampling, ZMapping,
};
use crate::nn::embedding;
use crate::nn::layers::{Conv2d, ConvSpec, Dense, GroupNorm};
use crate::nn::Weights;
use crate::ops::{self, Activation};
use crate::tensor::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Cld,
    Ddgan,
    Lsgm,
}

impl Family {
    pub fn parse(s: &str) -> Option<Family> {
        match s {
            "cld" => Some(Family::Cld),
            "ddgan" => Some(Family::Ddgan),
            "lsgm" => Some(Family::Lsgm),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Cld => "cld",
            Family::Ddgan => "ddgan",
            Family::Lsgm => "lsgm",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeEmbedding {
    /// Gaussian Fourier features of log t (CLD/DDGAN `fourier`).
    Fourier,
    /// Sinusoid of t (CLD/DDGAN `positional`).
    Sinusoidal,
    /// LSGM: sinusoid of scale·t.
    LsgmPositional,
    /// LSGM: random Fourier features of t.
    LsgmFourier,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressiveInput {
    None,
    InputSkip,
    Residual,
}

/// One family's config normalised into the architecture (reference.ncsnpp._arch).
#[derive(Clone, Debug)]
pub struct Arch {
    pub family: Family,
    pub nf: usize,
    pub ch_mult: Vec<usize>,
    pub num_res_blocks: usize,
    pub attn_resolutions: Vec<usize>,
    pub image_size: usize,
    pub fir: Fir,
    pub skip_rescale: bool,
    pub progressive_output_skip: bool,
    pub progressive_input: ProgressiveInput,
    pub combine_concat: bool,
    pub embedding: TimeEmbedding,
    pub embedding_scale: f32,
    pub embed_dim: usize,
    pub temb_dim: usize,
    pub conditional: bool,
    pub act: Activation,
    pub in_channels: usize,
    pub out_channels: usize,
    /// DDGAN: (nz, z_emb_dim, n_mlp).
    pub zemb: Option<(usize, usize, usize)>,
    pub one_adagn: bool,
    pub centered: bool,
    pub use_tanh: bool,
    pub mixed_prediction: bool,
}

fn activation_named(cfg: &Config, key: &str, name: &str) -> Result<Activation> {
    Ok(match name {
        "swish" | "silu" => Activation::Silu,
        "elu" => Activation::Elu,
        "relu" => Activation::Relu,
        "lrelu" => Activation::LeakyRelu(0.2),
        other => {
            return Err(cfg.error(
                key,
                format!("unsupported activation `{other}` (swish, silu, elu, relu, lrelu)"),
            ))
        }
    })
}

fn lsgm_ch_mult(cfg: &Config, dataset: &str, scales: usize) -> Result<Vec<usize>> {
    let m: Vec<usize> = match dataset {
        "cifar10" | "omniglot" => vec![1, 1, 1],
        "mnist" => vec![1, 1],
        "celeba_256" | "ffhq" | "lsun_church_256" => match scales {
            3 => vec![1, 1, 1],
            4 => vec![1, 2, 2, 2],
            5 => vec![1, 1, 2, 2, 2],
            _ => {
                return Err(cfg.error(
                    "num_scales_dae",
                    format!("{scales} scales for {dataset} (3, 4 or 5)"),
                ))
            }
        },
        other => return Err(cfg.error("dataset", format!("unknown LSGM dataset `{other}`"))),
    };
    Ok(m.into_iter().take(scales).collect())
}

/// The hyperparameter names in which CLD's config files and DDGAN's argparse options differ.
struct ScoreNetKeys {
    nf: &'static str,
    res_blocks: &'static str,
    fir: &'static str,
    /// DDGAN lower-cases its string options; CLD compares them as written.
    lowercase: bool,
}

const CLD_KEYS: ScoreNetKeys = ScoreNetKeys {
    nf: "n_channels",
    res_blocks: "n_resblocks",
    fir: "use_fir",
    lowercase: false,
};

const DDGAN_KEYS: ScoreNetKeys = ScoreNetKeys {
    nf: "num_channels_dae",
    res_blocks: "num_res_blocks",
    fir: "fir",
    lowercase: true,
};

/// The fields CLD and DDGAN read alike (NCSN++ as both repositories configure it); the family fills in
/// its channels, conditioning and output.
fn score_net_base(
    family: Family,
    cfg: &Config,
    k: &ScoreNetKeys,
    standard_fir: &[f32],
) -> Result<Arch> {
    let nf = cfg.usize(k.nf)?;
    let mut emb_type = cfg.str("embedding_type")?;
    if k.lowercase {
        emb_type = emb_type.to_lowercase();
    }
    let embedding = match emb_type.as_str() {
        "fourier" => TimeEmbedding::Fourier,
        "positional" => TimeEmbedding::Sinusoidal,
        o => return Err(cfg.error("embedding_type", format!("unknown `{o}`"))),
    };
    let fir_kernel = if cfg.has("fir_kernel") {
        cfg.f64_list("fir_kernel")?
            .into_iter()
            .map(|v| v as f32)
            .collect()
    } else {
        standard_fir.to_vec()
    };
    Ok(Arch {
        family,
        nf,
        ch_mult: cfg.usize_list("ch_mult")?,
        num_res_blocks: cfg.usize(k.res_blocks)?,
        attn_resolutions: cfg.usize_list("attn_resolutions")?,
        image_size: cfg.usize("image_size")?,
        fir: Fir {
            enabled: cfg.bool(k.fir)?,
            kernel: fir_kernel,
        },
        skip_rescale: cfg.bool("skip_rescale")?,
        progressive_output_skip: false,
        progressive_input: ProgressiveInput::None,
        combine_concat: false,
        embedding,
        embedding_scale: cfg.f64_or("fourier_scale", 16.0)? as f32,
        embed_dim: if embedding == TimeEmbedding::Fourier {
            2 * nf
        } else {
            nf
        },
        temb_dim: 4 * nf,
        conditional: true,
        act: Activation::Silu,
        in_channels: 0,
        out_channels: 0,
        zemb: None,
        one_adagn: false,
        centered: true,
        use_tanh: false,
        mixed_prediction: false,
    })
}

impl Arch {
    pub fn from_config(family: Family, cfg: &Config) -> Result<Arch> {
        let standard = [1.0f32, 3.0, 3.0, 1.0];
        let mut a = match family {
            Family::Cld => {
                if cfg.str("resblock_type")? != "biggan" {
                    return Err(cfg.error(
                        "resblock_type",
                        "only `biggan` (the official CLD code cannot build `ddpm`)",
                    ));
                }
                let base = score_net_base(family, cfg, &CLD_KEYS, &standard)?;
                let ch = cfg.usize("image_channels")?;
                let sde = cfg.str_or("sde", "cld")?;
                Arch {
                    act: activation_named(
                        cfg,
                        "nonlinearity",
                        &cfg.str_or("nonlinearity", "swish")?,
                    )?,
                    in_channels: if sde == "cld" { 2 * ch } else { ch },
                    out_channels: ch,
                    ..base
                }
            }
            Family::Ddgan => {
                let rt = cfg.str("resblock_type")?.to_lowercase();
                let one_adagn = rt == "biggan_oneadagn";
                if rt != "biggan" && !one_adagn {
                    return Err(cfg.error(
                        "resblock_type",
                        format!("unsupported `{rt}` (biggan, biggan_oneadagn)"),
                    ));
                }
                let base = score_net_base(family, cfg, &DDGAN_KEYS, &standard)?;
                let ch = cfg.usize("num_channels")?;
                Arch {
                    conditional: cfg.bool_or("conditional", true)?,
                    in_channels: ch,
                    out_channels: ch,
                    zemb: Some((
                        cfg.usize("nz")?,
                        cfg.usize("z_emb_dim")?,
                        cfg.usize("n_mlp")?,
                    )),
                    one_adagn,
                    centered: cfg.bool_or("centered", true)?,
                    use_tanh: !cfg.bool_or("not_use_tanh", false)?,
                    ..base
                }
            }
            Family::Lsgm => {
                let dataset = cfg.str("dataset")?;
                let scales = cfg.usize("num_scales_dae")?;
                let embedding = match cfg.str_or("embedding_type", "positional")?.as_str() {
                    "positional" => TimeEmbedding::LsgmPositional,
                    "fourier" => TimeEmbedding::LsgmFourier,
                    o => return Err(cfg.error("embedding_type", format!("unknown `{o}`"))),
                };
                let embed_dim = cfg.f64_or("embedding_dim", 128.0)? as usize;
                let down = cfg.usize("num_preprocess_blocks")? + cfg.usize("num_latent_scales")?;
                let size = cfg.dataset_image_size(&dataset)?;
                if down == 0 || size % (1 << (down - 1)) != 0 {
                    return Err(cfg.error(
                        "num_preprocess_blocks",
                        "with num_latent_scales, must divide the image size",
                    ));
                }
                let ch = cfg.usize("num_input_channels")?;
                Arch {
                    family,
                    nf: cfg.usize("num_channels_dae")?,
                    ch_mult: lsgm_ch_mult(cfg, &dataset, scales)?,
                    num_res_blocks: cfg.usize("num_cell_per_scale_dae")?,
                    attn_resolutions: vec![16],
                    image_size: size >> (down - 1),
                    fir: Fir {
                        enabled: cfg.bool("fir")?,
                        kernel: standard.to_vec(),
                    },
                    skip_rescale: true,
                    progressive_output_skip: false,
                    progressive_input: ProgressiveInput::None,
                    combine_concat: false,
                    embedding,
                    embedding_scale: cfg.f64_or("embedding_scale", 1.0)? as f32,
                    embed_dim,
                    temb_dim: 4 * embed_dim,
                    conditional: true,
                    act: Activation::Silu,
                    in_channels: ch,
                    out_channels: ch,
                    zemb: None,
                    one_adagn: false,
                    centered: true,
                    use_tanh: false,
                    mixed_prediction: cfg.bool_or("mixed_prediction", true)?,
                }
            }
        };
        let progressive = cfg.str_or("progressive", "none")?.to_lowercase();
        a.progressive_output_skip = match progressive.as_str() {
            "none" => false,
            "output_skip" => true,
            "residual" => {
                return Err(cfg.error(
                    "progressive",
                    "`residual` needs the fused FIR upsample-conv, which does not run in the \
                     official code; use none or output_skip",
                ))
            }
            o => return Err(cfg.error("progressive", format!("unknown `{o}`"))),
        };
        a.progressive_input = match cfg
            .str_or("progressive_input", "none")?
            .to_lowercase()
            .as_str()
        {
            "none" => ProgressiveInput::None,
            "input_skip" => ProgressiveInput::InputSkip,
            "residual" => ProgressiveInput::Residual,
            o => return Err(cfg.error("progressive_input", format!("unknown `{o}`"))),
        };
        a.combine_concat = match cfg
            .str_or("progressive_combine", "sum")?
            .to_lowercase()
            .as_str()
        {
            "sum" => false,
            "cat" => true,
            o => return Err(cfg.error("progressive_combine", format!("unknown `{o}`"))),
        };
        if a.ch_mult.is_empty() || a.ch_mult.contains(&0) {
            return Err(cfg.error("ch_mult", "must be a non-empty list of positive integers"));
        }
        if a.nf == 0 || a.in_channels == 0 {
            return Err(cfg.error("channels", "network and image widths must be positive"));
        }
        if a.image_size % (1 << (a.ch_mult.len() - 1)) != 0 {
            return Err(cfg.error(
                "image_size",
                format!(
                    "{} is not divisible by 2^{} (one halving per level)",
                    a.image_size,
                    a.ch_mult.len() - 1
                ),
            ));
        }
        if a.fir.enabled && a.fir.kernel.len() < 2 {
            return Err(cfg.error("fir_kernel", "needs at least 2 taps"));
        }
        Ok(a)
    }
}

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
}

impl Ncsnpp {
    /// Builds the network of `family` from `cfg`, taking every weight from `w` (official names).
    /// Call `w.finish()` afterwards to reject tensors the config does not use.
    pub fn load(family: Family, cfg: &Config, w: &Weights<'_>) -> Result<Ncsnpp> {
        let a = Arch::from_config(family, cfg)?;
        let nres = a.ch_mult.len();
        let resolutions: Vec<usize> = (0..nres).map(|i| a.image_size >> i).collect();
        let attn: Vec<bool> = resolutions
            .iter()
            .map(|r| a.attn_resolutions.contains(r))
            .collect();

        let mut mixing_logit = None;
        let mut fourier_w = None;
        if family == Family::Lsgm {
            if a.mixed_prediction {
                mixing_logit = Some(w.host("mixing_logit", &[1, a.in_channels, 1, 1])?);
            }
            if a.embedding == TimeEmbedding::LsgmFourier {
                fourier_w = Some(w.host("temb_fun.w", &[1, a.embed_dim / 2])?);
            }
        }
        let mut idx = 0usize;
        let mut next = || {
            let m = w.sub(format!("all_modules.{idx}"));
            idx += 1;
            m
        };
        if a.embedding == TimeEmbedding::Fourier {
            fourier_w = Some(next().host("W", &[a.nf])?);
        }
        let temb = if a.conditional {
            Some((
                Dense::load(&next(), a.embed_dim, a.temb_dim)?,
                Dense::load(&next(), a.temb_dim, a.temb_dim)?,
            ))
        } else {
            None
        };
        let rb = ResBlockConfig {
            act: a.act,
            temb_dim: a.conditional.then_some(a.temb_dim),
            zemb_dim: a.zemb.map(|z| z.1),
            one_adagn: a.one_adagn,
            fir: a.fir.clone(),
            skip_rescale: a.skip_rescale,
        };

        let stem = Conv2d::load(&next(), ConvSpec::same(a.in_channels, a.nf, 3))?;
        let mut skip_ch = vec![a.nf];
        let mut in_ch = a.nf;
        let mut pyr_ch = a.in_channels;
        let mut down = Vec::with_capacity(nres);
        for (lvl, &has_attn) in attn.iter().enumerate() {
            let mut blocks = Vec::new();
            for _ in 0..a.num_res_blocks {
                let out_ch = a.nf * a.ch_mult[lvl];
                let blk = ResBlock::load(&next(), &rb, in_ch, out_ch, Resampling::None)?;
                in_ch = out_ch;
                let at = if has_attn {
                    Some(AttnBlock::load(&next(), in_ch, a.skip_rescale)?)
                } else {
                    None
                };
                blocks.push((blk, at));
                skip_ch.push(in_ch);
            }
            let mut dn = None;
            if lvl != nres - 1 {
                let blk = ResBlock::load(&next(), &rb, in_ch, in_ch, Resampling::Down)?;
                let pyr = match a.progressive_input {
                    ProgressiveInput::None => None,
                    ProgressiveInput::InputSkip => {
                        let c = Combine::load(&next(), pyr_ch, in_ch, a.combine_concat)?;
                        if a.combine_concat {
                            in_ch *= 2;
                        }
                        Some(PyramidOp::Combine(c))
                    }
                    ProgressiveInput::Residual => {
                        let d = PyramidDown::load(&next(), pyr_ch, in_ch, &a.fir)?;
                        pyr_ch = in_ch;
                        Some(PyramidOp::Residual(d))
                    }
                };
                skip_ch.push(in_ch);
                dn = Some((blk, pyr));
            }
            down.push(DownLevel { blocks, down: dn });
        }

        in_ch = *skip_ch.last().unwrap_or(&a.nf);
        let mid = (
            ResBlock::load(&next(), &rb, in_ch, in_ch, Resampling::None)?,
            AttnBlock::load(&next(), in_ch, a.skip_rescale)?,
            ResBlock::load(&next(), &rb, in_ch, in_ch, Resampling::None)?,
        );

        let mut up = Vec::with_capacity(nres);
        for lvl in (0..nres).rev() {
            let mut blocks = Vec::new();
            for _ in 0..a.num_res_blocks + 1 {
                let out_ch = a.nf * a.ch_mult[lvl];
                let skip = skip_ch
                    .pop()
                    .ok_or_else(|| internal("skip channel stack"))?;
                blocks.push(ResBlock::load(
                    &next(),
                    &rb,
                    in_ch + skip,
                    out_ch,
                    Resampling::None,
                )?);
                in_ch = out_ch;
            }
            let at = if attn[lvl] {
                Some(AttnBlock::load(&next(), in_ch, a.skip_rescale)?)
            } else {
                None
            };
            let out_skip = if a.progressive_output_skip {
                Some((
                    GroupNorm::load_ncsnpp(&next(), in_ch)?,
                    Conv2d::load(&next(), ConvSpec::same(in_ch, a.out_channels, 3))?,
                ))
            } else {
                None
            };
            let upb = if lvl != 0 {
                Some(ResBlock::load(&next(), &rb, in_ch, in_ch, Resampling::Up)?)
            } else {
                None
            };
            up.push(UpLevel {
                blocks,
                attn: at,
                out_skip,
                up: upb,
            });
        }
        let head = if a.progressive_output_skip {
            None
        } else {
            Some((
                GroupNorm::load_ncsnpp(&next(), in_ch)?,
                Conv2d::load(&next(), ConvSpec::same(in_ch, a.out_channels, 3))?,
            ))
        };
        let z_transform = match a.zemb {
            Some((nz, ze, n_mlp)) => Some(ZMapping::load(&w.sub("z_transform"), nz, ze, n_mlp)?),
            None => None,
        };
        Ok(Ncsnpp {
            arch: a,
            fourier_w,
            temb,
            stem,
            down,
            mid,
            up,
            head,
            z_transform,
            mixing_logit,
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
        let emb = Tensor::from_f32(&emb, &[t.len(), a.embed_dim], DType::F32, &x.device())?;
        let h = d0.forward(&emb)?;
        Ok(Some(d1.forward(&ops::activation(&h, a.act)?)?))
    }

    /// One call on an NHWC input `x` [B, H, W, C_in] with host times `t` (length B, or 1 to share)
    /// and, for DDGAN, `z` [B, nz]. Returns [B, H, W, C_out].
    pub fn forward_nhwc(&self, x: &Tensor, t: &[f32], z: Option<&Tensor>) -> Result<Tensor> {
        const OP: &str = "ncsnpp";
        let a = &self.arch;
        let [b, h, w, c] = *x.shape() else {
            return Err(Error::InvalidParam {
                op: OP,
                what: "input",
                rule: "a 4-D image batch",
                found: format!("shape {:?}", x.shape()),
            });
        };
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

        let centered;
        let x = if a.centered {
            x
        } else {
            centered = ops::channel_affine(
                x,
                &ops::AffineArgs {
                    scale: Some(&Tensor::full(2.0, &[c], DType::F32, &x.device())?),
                    shift: Some(&Tensor::full(-1.0, &[c], DType::F32, &x.device())?),
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
        if a.use_tanh {
            ops::activation(&out, Activation::Tanh)
        } else {
            Ok(out)
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
