//! The NCSN++ architecture of each family from its official config: channel multipliers, time
//! embedding, resampling and attention placement, with the official defaults and their checks.

use crate::error::Result;
use crate::models::config::Config;
use crate::models::Family;
use crate::nn::blocks::Fir;
use crate::ops::Activation;

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

pub(super) fn activation_named(cfg: &Config, key: &str, name: &str) -> Result<Activation> {
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

pub(super) fn lsgm_ch_mult(cfg: &Config, dataset: &str, scales: usize) -> Result<Vec<usize>> {
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
pub(super) struct ScoreNetKeys {
    pub(super) nf: &'static str,
    pub(super) res_blocks: &'static str,
    pub(super) fir: &'static str,
    /// DDGAN lower-cases its string options; CLD compares them as written.
    pub(super) lowercase: bool,
}

pub(super) const CLD_KEYS: ScoreNetKeys = ScoreNetKeys {
    nf: "n_channels",
    res_blocks: "n_resblocks",
    fir: "use_fir",
    lowercase: false,
};

pub(super) const DDGAN_KEYS: ScoreNetKeys = ScoreNetKeys {
    nf: "num_channels_dae",
    res_blocks: "num_res_blocks",
    fir: "fir",
    lowercase: true,
};

/// The fields CLD and DDGAN read alike (NCSN++ as both repositories configure it); the family fills in
/// its channels, conditioning and output.
pub(super) fn score_net_base(
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
