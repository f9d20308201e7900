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

use super::config::Config;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::nn::layers::{BatchNorm, Conv2d, ConvSpec, Dense};
use crate::nn::Weights;
use crate::ops::{self, Activation, AffineArgs, Resample2x};
use crate::tensor::Tensor;

const BN_EPS: f64 = 1e-5;

/// NVAE's Conv2D: weight-normalised (`log_weight_norm`) unless `wn` is false, in which case the
/// official module also stores the raw weight as `weight_normalized` (an alias, skipped here).
fn conv(w: &Weights<'_>, spec: ConvSpec, wn: bool) -> Result<Conv2d> {
    if wn {
        Conv2d::load_weight_normed(w, spec)
    } else {
        w.skip("weight_normalized");
        Conv2d::load(w, spec)
    }
}

fn spec(cin: usize, cout: usize, k: usize, stride: usize, groups: usize, bias: bool) -> ConvSpec {
    ConvSpec {
        in_ch: cin,
        out_ch: cout,
        k,
        stride,
        padding: (k - 1) / 2,
        groups,
        bias,
    }
}

fn bn(w: &Weights<'_>, c: usize) -> Result<BatchNorm> {
    BatchNorm::load(w, c, BN_EPS)
}

fn nearest_up(x: &Tensor) -> Result<Tensor> {
    ops::resample2x(x, Resample2x::NearestUp)
}

/// Cell strides: 1 normal, 2 down, −1 up (nearest ×2 before the first conv).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stride {
    One,
    Down,
    Up,
}

impl Stride {
    fn conv_stride(self) -> usize {
        if self == Stride::Down {
            2
        } else {
            1
        }
    }
}

/// One op of a cell's conv branch.
// Built once per model and held in vectors; the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum CellOp {
    /// BN-Swish, [nearest ×2], 3×3 WN conv with bias.
    BnSwishConv {
        bn: BatchNorm,
        conv: Conv2d,
        up: bool,
    },
    /// BN-Swish, [up], 3×3 conv (no bias, no WN), BN-Swish, 3×3 WN conv with bias.
    BnSwishConvX2 {
        bn0: BatchNorm,
        conv0: Conv2d,
        bn1: BatchNorm,
        conv1: Conv2d,
        up: bool,
    },
    /// MBConv: [up], BN, 1×1 expand + BN-Swish, depthwise k×k + BN-Swish, 1×1 project, BN.
    MbConv {
        up: bool,
        bn_in: BatchNorm,
        expand: Conv2d,
        bn_expand: BatchNorm,
        depthwise: Conv2d,
        bn_depthwise: BatchNorm,
        project: Conv2d,
        bn_out: BatchNorm,
    },
}

impl CellOp {
    fn load(
        w: &Weights<'_>,
        name: &str,
        cin: usize,
        cout: usize,
        stride: Stride,
    ) -> Result<CellOp> {
        let up = stride == Stride::Up;
        let s = stride.conv_stride();
        Ok(match name {
            "res_bnswish" => CellOp::BnSwishConv {
                bn: bn(&w.sub("bn_act"), cin)?,
                conv: conv(&w.sub("conv_0"), spec(cin, cout, 3, s, 1, true), true)?,
                up,
            },
            "res_bnswish_x2" => CellOp::BnSwishConvX2 {
                bn0: bn(&w.sub("bn_act_0"), cin)?,
                conv0: conv(&w.sub("conv_0"), spec(cin, cout, 3, s, 1, false), false)?,
                bn1: bn(&w.sub("bn_act_1"), cout)?,
                conv1: conv(&w.sub("conv_1"), spec(cout, cout, 3, 1, 1, true), true)?,
                up,
            },
            "mconv_e6k5g0" | "mconv_e3k5g0" => {
                let ex = if name == "mconv_e6k5g0" { 6 } else { 3 };
                let hidden = cin * ex;
                // Module indices of the official nn.Sequential shift by one after NearestUp.
                let o = usize::from(up);
                let seq = w.sub("conv");
                CellOp::MbConv {
                    up,
                    bn_in: bn(&seq.sub(o).sub("bn"), cin)?,
                    expand: conv(
                        &seq.sub(o + 1).sub("conv").sub(0),
                        spec(cin, hidden, 1, 1, 1, false),
                        false,
                    )?,
                    bn_expand: bn(&seq.sub(o + 1).sub("conv").sub(1), hidden)?,
                    depthwise: conv(
                        &seq.sub(o + 2).sub("conv").sub(0),
                        spec(hidden, hidden, 5, s, hidden, false),
                        false,
                    )?,
                    bn_depthwise: bn(&seq.sub(o + 2).sub("conv").sub(1), hidden)?,
                    project: conv(&seq.sub(o + 3), spec(hidden, cout, 1, 1, 1, false), false)?,
                    bn_out: bn(&seq.sub(o + 4).sub("bn"), cout)?,
                }
            }
            other => {
                return Err(Error::InvalidParam {
                    op: "nvae",
                    what: "cell op",
                    rule: "res_bnswish, res_bnswish_x2, mconv_e6k5g0 or mconv_e3k5g0",
                    found: other.into(),
                })
            }
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let maybe_up = |h: Tensor, up: bool| if up { nearest_up(&h) } else { Ok(h) };
        match self {
            CellOp::BnSwishConv { bn, conv, up } => {
                conv.forward(&maybe_up(bn.forward(x, Activation::Silu)?, *up)?)
            }
            CellOp::BnSwishConvX2 {
                bn0,
                conv0,
                bn1,
                conv1,
                up,
            } => {
                let h = conv0.forward(&maybe_up(bn0.forward(x, Activation::Silu)?, *up)?)?;
                conv1.forward(&bn1.forward(&h, Activation::Silu)?)
            }
            CellOp::MbConv {
                up,
                bn_in,
                expand,
                bn_expand,
                depthwise,
                bn_depthwise,
                project,
                bn_out,
            } => {
                let h = if *up {
                    nearest_up(x)?
                } else {
                    x.to_device(&x.device())?
                };
                let h = bn_in.forward(&h, Activation::Identity)?;
                let h = bn_expand.forward(&expand.forward(&h)?, Activation::Silu)?;
                let h = bn_depthwise.forward(&depthwise.forward(&h)?, Activation::Silu)?;
                bn_out.forward(&project.forward(&h)?, Activation::Identity)
            }
        }
    }
}

/// Squeeze-excitation: x·σ(W₂ relu(W₁ mean_hw(x) + b₁) + b₂).
pub struct SqueezeExcitation {
    fc1: Dense,
    fc2: Dense,
}

impl SqueezeExcitation {
    pub fn load(w: &Weights<'_>, c: usize) -> Result<SqueezeExcitation> {
        let hidden = (c / 16).max(4);
        let seq = w.sub("se");
        Ok(SqueezeExcitation {
            fc1: Dense::load(&seq.sub(0), c, hidden)?,
            fc2: Dense::load(&seq.sub(2), hidden, c)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let m = ops::channel_mean(x)?;
        let h = ops::activation(&self.fc1.forward(&m)?, Activation::Relu)?;
        let gate = ops::activation(&self.fc2.forward(&h)?, Activation::Sigmoid)?;
        ops::channel_affine(
            x,
            &AffineArgs {
                scale: Some(&gate),
                ..Default::default()
            },
            Activation::Identity,
        )
    }
}

/// The skip path of a cell.
// Built once per model and held in vectors; the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum Skip {
    Identity,
    /// Swish, then four 1×1 stride-2 WN convs on the input shifted by (0,0), (1,1), (0,1), (1,0),
    /// concatenated.
    FactorizedReduce([Conv2d; 4]),
    /// Bilinear ×2 (align_corners) then a 1×1 WN conv without bias.
    Up(Conv2d),
}

/// skip(x) + 0.1·SE(ops(x)).
struct Cell {
    skip: Skip,
    ops: Vec<CellOp>,
    se: Option<SqueezeExcitation>,
}

impl Cell {
    fn load(
        w: &Weights<'_>,
        cin: usize,
        cout: usize,
        stride: Stride,
        a: &NvaeArch,
        branch: &[&str],
    ) -> Result<Cell> {
        let skip = match stride {
            Stride::One => Skip::Identity,
            Stride::Down => {
                let q = cout / 4;
                let s = w.sub("skip");
                let mk = |i: usize, co: usize| {
                    conv(
                        &s.sub(format!("conv_{i}")),
                        spec(cin, co, 1, 2, 1, true),
                        true,
                    )
                };
                Skip::FactorizedReduce([mk(1, q)?, mk(2, q)?, mk(3, q)?, mk(4, cout - 3 * q)?])
            }
            Stride::Up => Skip::Up(conv(
                &w.sub("skip").sub(1),
                spec(cin, cout, 1, 1, 1, false),
                true,
            )?),
        };
        let mut ops_ = Vec::new();
        for (i, name) in branch.iter().enumerate() {
            let (ci, st) = if i == 0 {
                (cin, stride)
            } else {
                (cout, Stride::One)
            };
            ops_.push(CellOp::load(&w.sub("_ops").sub(i), name, ci, cout, st)?);
        }
        let se = if a.use_se {
            Some(SqueezeExcitation::load(&w.sub("se"), cout)?)
        } else {
            None
        };
        Ok(Cell {
            skip,
            ops: ops_,
            se,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.ops[0].forward(x)?;
        for op in &self.ops[1..] {
            h = op.forward(&h)?;
        }
        if let Some(se) = &self.se {
            h = se.forward(&h)?;
        }
        let mut s = match &self.skip {
            Skip::Identity => {
                // x + 0.1·h, accumulated into h (1·x is exact, so the rounding is that of x + 0.1·h).
                ops::axpby(1.0, x, 0.1, &mut h)?;
                return Ok(h);
            }
            Skip::FactorizedReduce(convs) => {
                let a = ops::activation(x, Activation::Silu)?;
                let [_, hh, ww, _] = *a.shape() else {
                    return Err(Error::InvalidParam {
                        op: "nvae",
                        what: "cell input",
                        rule: "4-D",
                        found: format!("{:?}", a.shape()),
                    });
                };
                let shifted = |dy: usize, dx: usize| ops::crop(&a, dy, dx, hh - dy, ww - dx);
                let mut out = convs[0].forward(&a)?;
                for (c, (dy, dx)) in convs[1..].iter().zip([(1, 1), (0, 1), (1, 0)]) {
                    out = ops::concat_channels(&out, &c.forward(&shifted(dy, dx)?)?)?;
                }
                out
            }
            Skip::Up(c) => c.forward(&ops::resample2x(x, Resample2x::BilinearUpAligned)?)?,
        };
        ops::axpby(0.1, &h, 1.0, &mut s)?;
        Ok(s)
    }
}

/// The channel order of an AR conv's centre tap and the causal mask (reference.nvae.ar_mask), laid out
/// [cout, cin/groups, k, k].
fn ar_mask(
    cout: usize,
    cin: usize,
    groups: usize,
    k: usize,
    zero_diag: bool,
    mirror: bool,
) -> Vec<f32> {
    let c = (k - 1) / 2;
    let cig = cin / groups;
    let mut m = vec![0.0f32; cout * cig * k * k];
    let idx = |o: usize, j: usize, y: usize, x: usize| ((o * cig + j) * k + y) * k + x;
    for o in 0..cout {
        for j in 0..cig {
            for y in 0..k {
                for x in 0..k {
                    let v = if y < c || (y == c && x < c) {
                        1.0
                    } else if y == c && x == c {
                        let on = if groups == 1 {
                            if cout >= cin {
                                let blk = o / (cout / cin);
                                if zero_diag {
                                    j < blk
                                } else {
                                    j <= blk
                                }
                            } else {
                                let r = cin / cout;
                                if zero_diag {
                                    j < o * r
                                } else {
                                    j < (o + 1) * r
                                }
                            }
                        } else {
                            !zero_diag
                        };
                        if on {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        0.0
                    };
                    let (yy, xx) = if mirror {
                        (k - 1 - y, k - 1 - x)
                    } else {
                        (y, x)
                    };
                    m[idx(o, j, yy, xx)] = v;
                }
            }
        }
    }
    m
}

/// An ARConv2d's shape and mask options.
#[derive(Clone, Copy)]
struct ArSpec {
    cin: usize,
    cout: usize,
    k: usize,
    groups: usize,
    bias: bool,
    zero_diag: bool,
    mirror: bool,
}

/// ARConv2d: weight_norm(weight·mask, log_weight_norm), folded at load time.
fn ar_conv(w: &Weights<'_>, a: ArSpec) -> Result<Conv2d> {
    let ArSpec {
        cin,
        cout,
        k,
        groups,
        bias,
        zero_diag,
        mirror,
    } = a;
    let sp = spec(cin, cout, k, 1, groups, bias);
    let raw = w.host("weight", &sp.torch_shape())?;
    let g = w.host("log_weight_norm", &[cout, 1, 1, 1])?;
    let mask = ar_mask(cout, cin, groups, k, zero_diag, mirror);
    let masked: Vec<f32> = raw.iter().zip(&mask).map(|(a, b)| a * b).collect();
    let folded = crate::nn::layers::weight_norm(&masked, &g, cout);
    Conv2d::from_oihw(w, sp, &folded)
}

/// CellAR: z − μ(z), μ autoregressive in (channel, raster) order.
struct CellAr {
    conv_a: Conv2d,
    conv_b: Conv2d,
    mu: Conv2d,
}

impl CellAr {
    fn load(w: &Weights<'_>, nz: usize, mirror: bool) -> Result<CellAr> {
        let hidden = 6 * nz;
        let convz = w.sub("conv").sub("convz");
        Ok(CellAr {
            conv_a: ar_conv(
                &convz.sub(0),
                ArSpec {
                    cin: nz,
                    cout: hidden,
                    k: 3,
                    groups: 1,
                    bias: false,
                    zero_diag: true,
                    mirror,
                },
            )?,
            conv_b: ar_conv(
                &convz.sub(2),
                ArSpec {
                    cin: hidden,
                    cout: hidden,
                    k: 5,
                    groups: hidden,
                    bias: false,
                    zero_diag: false,
                    mirror,
                },
            )?,
            mu: ar_conv(
                &w.sub("mu").sub("conv_0"),
                ArSpec {
                    cin: hidden,
                    cout: nz,
                    k: 1,
                    groups: 1,
                    bias: true,
                    zero_diag: false,
                    mirror,
                },
            )?,
        })
    }

    fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let h = ops::activation(&self.conv_a.forward(z)?, Activation::Elu)?;
        let h = self.conv_b.forward(&h)?;
        let mu = self.mu.forward(&ops::activation(&h, Activation::Elu)?)?;
        ops::binary(z, &mu, ops::BinaryOp::Sub)
    }
}

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
    pub fn load(cfg: &Config, w: &Weights<'_>) -> Result<Nvae> {
        let dataset = cfg.str("dataset")?;
        let image_size = cfg.dataset_image_size(&dataset)?;
        let image_channels = if matches!(dataset.as_str(), "mnist" | "omniglot") {
            1
        } else {
            3
        };
        let arch_instance = cfg.str("arch_instance")?;
        let (enc_ops, dec_ops, post_ops): (Vec<&str>, Vec<&str>, Vec<&str>) =
            match arch_instance.as_str() {
                "res_bnswish" => (
                    vec!["res_bnswish"; 2],
                    vec!["res_bnswish"; 2],
                    vec!["res_bnswish"; 2],
                ),
                "res_bnswish2" => (
                    vec!["res_bnswish_x2"],
                    vec!["res_bnswish_x2"],
                    vec!["res_bnswish_x2"],
                ),
                "res_mbconv" => (
                    vec!["res_bnswish"; 2],
                    vec!["mconv_e6k5g0"],
                    vec!["mconv_e3k5g0"],
                ),
                other => {
                    return Err(cfg.error(
                        "arch_instance",
                        format!("unsupported `{other}` (res_bnswish, res_bnswish2, res_mbconv)"),
                    ))
                }
            };
        let mult = cfg.f64_list("channel_mult")?;
        let ce = cfg.usize("num_channels_enc")?;
        let cd = cfg.usize("num_channels_dec")?;
        let l = cfg.usize("num_latent_scales")?;
        let groups = cfg.usize("num_groups_per_scale")?;
        let nz = cfg.usize("num_latent_per_group")?;
        let npre = cfg.usize("num_preprocess_blocks")?;
        let npost = cfg.usize("num_postprocess_blocks")?;
        let pre_cells = cfg.usize("num_preprocess_cells")?;
        let post_cells = cfg.usize("num_postprocess_cells")?;
        let enc_cells = cfg.usize("num_cell_per_cond_enc")?;
        let dec_cells = cfg.usize("num_cell_per_cond_dec")?;
        let num_flows = cfg.usize("num_nf")?;
        if npre != npost {
            return Err(cfg.error(
                "num_postprocess_blocks",
                format!("must equal num_preprocess_blocks ({npre}), found {npost}"),
            ));
        }
        if mult.len() != npre + l
            || l == 0
            || groups == 0
            || nz == 0
            || pre_cells == 0
            || post_cells == 0
        {
            return Err(cfg.error(
                "channel_mult",
                format!(
                    "needs num_preprocess_blocks + num_latent_scales = {} entries and positive \
                     scale, group and cell counts; found {} entries",
                    npre + l,
                    mult.len()
                ),
            ));
        }
        let down = npre + l - 1;
        if image_size % (1 << down) != 0 {
            return Err(cfg.error(
                "num_preprocess_blocks",
                "too many halvings for the image size",
            ));
        }
        let decoder_dist = cfg.str_or("decoder_dist", "dml")?;
        let out_channels = match decoder_dist.as_str() {
            "normal" | "dl" => 6,
            "bin" => 1,
            "dml" => 100,
            o => return Err(cfg.error("decoder_dist", format!("unknown `{o}`"))),
        };
        let progressive = cfg.str_or("progressive_input_vae", "none")?;
        let input_skip = match progressive.as_str() {
            "none" => false,
            "input_skip" => true,
            o => return Err(cfg.error("progressive_input_vae", format!("unknown `{o}`"))),
        };
        let arch = NvaeArch {
            dataset,
            image_size,
            image_channels,
            num_latent_scales: l,
            num_groups_per_scale: groups,
            num_latent_per_group: nz,
            num_flows,
            log_sig_q_scale: cfg.f64_or("log_sig_q_scale", 5.0)? as f32,
            num_x_bits: cfg.usize("num_x_bits")? as u32,
            decoder_dist,
            input_skip,
            use_se: cfg.bool_or("use_se", true)?,
            top_size: image_size >> down,
            out_channels,
        };
        let ch = |base: usize, i: usize| (base as f64 * mult[i]) as usize;

        let top = arch.top_size;
        let prior_c = ch(cd, mult.len() - 1);
        let prior_chw = w.host("prior_ftr0", &[prior_c, top, top])?;
        let mut prior = vec![0.0f32; prior_chw.len()];
        for c in 0..prior_c {
            for p in 0..top * top {
                prior[p * prior_c + c] = prior_chw[c * top * top + p];
            }
        }
        let stem = conv(
            &w.sub("stem"),
            spec(image_channels, ce, 3, 1, 1, true),
            true,
        )?;

        let mut si = 0usize;
        let mut pre = Vec::new();
        let pw = w.sub("pre_process");
        for _ in 0..npre {
            for c in 0..pre_cells {
                let idx = pre.len();
                if c == pre_cells - 1 {
                    pre.push(Cell::load(
                        &pw.sub(idx),
                        ch(ce, si),
                        ch(ce, si + 1),
                        Stride::Down,
                        &arch,
                        &enc_ops,
                    )?);
                    si += 1;
                } else {
                    pre.push(Cell::load(
                        &pw.sub(idx),
                        ch(ce, si),
                        ch(ce, si),
                        Stride::One,
                        &arch,
                        &enc_ops,
                    )?);
                }
            }
        }

        let mut enc = Vec::new();
        let mut input_skip_cells = Vec::new();
        let ew = w.sub("enc_tower");
        let iw = w.sub("progressive_input_cells");
        for s in 0..l {
            let c_scale = ch(ce, si);
            for g in 0..groups {
                for _ in 0..enc_cells {
                    let idx = enc.len();
                    enc.push(EncItem::Cell(Cell::load(
                        &ew.sub(idx),
                        c_scale,
                        c_scale,
                        Stride::One,
                        &arch,
                        &enc_ops,
                    )?));
                }
                if !(s == l - 1 && g == groups - 1) {
                    let idx = enc.len();
                    enc.push(EncItem::Combiner(conv(
                        &ew.sub(idx).sub("conv"),
                        spec(ch(cd, si), c_scale, 1, 1, 1, true),
                        true,
                    )?));
                }
            }
            if s < l - 1 {
                let c_next = ch(ce, si + 1);
                let idx = enc.len();
                enc.push(EncItem::Down(Cell::load(
                    &ew.sub(idx),
                    c_scale,
                    c_next,
                    Stride::Down,
                    &arch,
                    &enc_ops,
                )?));
                si += 1;
                if input_skip {
                    let cw = iw.sub(input_skip_cells.len()).sub("conv");
                    input_skip_cells.push((
                        bn(&cw.sub("bn_act"), c_scale)?,
                        conv(
                            &cw.sub("conv_0"),
                            spec(c_scale, c_next, 3, 2, 1, true),
                            true,
                        )?,
                    ));
                }
            }
        }

        let mut enc_sampler = Vec::new();
        let mut flows = Vec::new();
        let mut eps_conv = Vec::new();
        let mut sj = si;
        for _ in 0..l {
            for _ in 0..groups {
                let g = enc_sampler.len();
                enc_sampler.push(conv(
                    &w.sub("enc_sampler").sub(g).sub(1),
                    spec(ch(ce, sj), 2 * nz, 3, 1, 1, true),
                    true,
                )?);
                for _ in 0..num_flows {
                    let fw = w.sub("nf_cells").sub(flows.len());
                    flows.push((
                        CellAr::load(&fw.sub("cell1"), nz, false)?,
                        CellAr::load(&fw.sub("cell2"), nz, true)?,
                    ));
                }
                eps_conv.push(conv(
                    &w.sub("eps_conv").sub(g),
                    spec(nz, nz, 3, 1, 1, true),
                    true,
                )?);
            }
            sj = sj.saturating_sub(1);
        }

        let mut dec = Vec::new();
        let dw = w.sub("dec_tower");
        for s in 0..l {
            let c = ch(cd, si);
            for _ in 0..groups {
                let idx = dec.len();
                dec.push(DecItem::Combiner(conv(
                    &dw.sub(idx).sub("conv"),
                    spec(c + nz, c, 1, 1, 1, true),
                    true,
                )?));
                for _ in 0..dec_cells {
                    let idx = dec.len();
                    dec.push(DecItem::Cell(Cell::load(
                        &dw.sub(idx),
                        c,
                        c,
                        Stride::One,
                        &arch,
                        &dec_ops,
                    )?));
                }
            }
            if s < l - 1 {
                let idx = dec.len();
                dec.push(DecItem::Cell(Cell::load(
                    &dw.sub(idx),
                    c,
                    ch(cd, si - 1),
                    Stride::Up,
                    &arch,
                    &dec_ops,
                )?));
                si -= 1;
            }
        }

        let mut post = Vec::new();
        let ppw = w.sub("post_process");
        for _ in 0..npost {
            for c in 0..post_cells {
                let idx = post.len();
                if c == 0 {
                    post.push(Cell::load(
                        &ppw.sub(idx),
                        ch(cd, si),
                        ch(cd, si - 1),
                        Stride::Up,
                        &arch,
                        &post_ops,
                    )?);
                    si -= 1;
                } else {
                    post.push(Cell::load(
                        &ppw.sub(idx),
                        ch(cd, si),
                        ch(cd, si),
                        Stride::One,
                        &arch,
                        &post_ops,
                    )?);
                }
            }
        }
        let head = conv(
            &w.sub("image_conditional").sub(1),
            spec(ch(cd, si), out_channels, 3, 1, 1, true),
            true,
        )?;
        Ok(Nvae {
            arch,
            prior,
            prior_c,
            stem,
            pre,
            enc,
            input_skip: input_skip_cells,
            enc_sampler,
            flows,
            eps_conv,
            dec,
            post,
            head,
        })
    }

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
