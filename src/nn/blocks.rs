//! NCSN++ blocks: self-attention (AttnBlockpp), the BigGAN residual block (ResnetBlockBigGANpp and
//! DDGAN's AdaGN variants), the FIR/plain resamplers of the progressive paths, and Combine.

use super::layers::{Conv2d, ConvSpec, Dense, GroupNorm, Norm};
use super::weights::Weights;
use crate::error::Result;
use crate::ops::{self, Activation, Conv2dParams, Padding, Resample2x};
use crate::tensor::Tensor;

/// AttnBlockpp: GroupNorm, q/k/v by NIN (fused into one 1×1 conv to 3C), softmax(q·k/√C) over all
/// positions, NIN_3, then (x + h)/√2 with skip_rescale.
pub struct AttnBlock {
    norm: GroupNorm,
    qkv: Conv2d,
    proj: Conv2d,
    skip_rescale: bool,
}

impl AttnBlock {
    pub fn load(w: &Weights<'_>, channels: usize, skip_rescale: bool) -> Result<AttnBlock> {
        let norm = GroupNorm::load_ncsnpp(&w.sub("GroupNorm_0"), channels)?;
        // Stack NIN_0..2 side by side as one [1, 1, C, 3C] kernel: one GEMM yields packed q|k|v rows.
        let mut wqkv = vec![0.0f32; 3 * channels * channels];
        let mut bqkv = Vec::with_capacity(3 * channels);
        for i in 0..3 {
            let nin = w.sub(format!("NIN_{i}"));
            let wt = nin.host("W", &[channels, channels])?;
            for c in 0..channels {
                wqkv[c * 3 * channels + i * channels..c * 3 * channels + (i + 1) * channels]
                    .copy_from_slice(&wt[c * channels..(c + 1) * channels]);
            }
            bqkv.extend(nin.host("b", &[channels])?);
        }
        let qkv = Conv2d {
            weight: w.upload(&wqkv, &[1, 1, channels, 3 * channels])?,
            bias: Some(w.upload(&bqkv, &[3 * channels])?),
            params: Conv2dParams::same(1),
            in_ch: channels,
            out_ch: 3 * channels,
            packed: Default::default(),
        };
        let proj = Conv2d::load_nin(&w.sub("NIN_3"), channels, channels)?;
        Ok(AttnBlock {
            norm,
            qkv,
            proj,
            skip_rescale,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // GroupNorm_0 as the q, k, v projection's prologue: the normalised tensor is never stored.
        let f = self.norm.fold(x, Activation::Identity)?;
        let o = ops::attention(&self.qkv.forward_fused(x, Some(&f), None, None, false)?)?;
        // NIN_3 with the residual and the 1/√2 in its epilogue.
        self.proj.forward_residual(&o, x, self.skip_rescale)
    }
}

/// How a block or pyramid resamples by 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resampling {
    None,
    Up,
    Down,
}

/// The resampler of NCSN++: FIR with `kernel`, or nearest-neighbour up / 2×2 mean down.
#[derive(Clone, Debug)]
pub struct Fir {
    pub enabled: bool,
    pub kernel: Vec<f32>,
}

impl Fir {
    pub fn up(&self, x: &Tensor) -> Result<Tensor> {
        if self.enabled {
            ops::fir_upsample2x(x, &self.kernel)
        } else {
            ops::resample2x(x, Resample2x::NearestUp)
        }
    }

    pub fn down(&self, x: &Tensor) -> Result<Tensor> {
        if self.enabled {
            ops::fir_downsample2x(x, &self.kernel)
        } else {
            ops::resample2x(x, Resample2x::MeanDown)
        }
    }
}

/// ResnetBlockBigGANpp (with `zemb_dim`: DDGAN's _Adagn; with `one_adagn`: _Adagn_one).
pub struct ResBlock {
    norm0: Norm,
    conv0: Conv2d,
    dense0: Option<Dense>,
    norm1: Norm,
    conv1: Conv2d,
    shortcut: Option<Conv2d>,
    resampling: Resampling,
    fir: Fir,
    act: Activation,
    skip_rescale: bool,
}

/// The options every residual block of a network shares.
#[derive(Clone, Debug)]
pub struct ResBlockConfig {
    pub act: Activation,
    pub temb_dim: Option<usize>,
    pub zemb_dim: Option<usize>,
    pub one_adagn: bool,
    pub fir: Fir,
    pub skip_rescale: bool,
}

impl ResBlock {
    pub fn load(
        w: &Weights<'_>,
        cfg: &ResBlockConfig,
        in_ch: usize,
        out_ch: usize,
        resampling: Resampling,
    ) -> Result<ResBlock> {
        let norm0 = Norm::load(&w.sub("GroupNorm_0"), in_ch, cfg.zemb_dim)?;
        let conv0 = Conv2d::load(&w.sub("Conv_0"), ConvSpec::same(in_ch, out_ch, 3))?;
        let dense0 = cfg
            .temb_dim
            .map(|d| Dense::load(&w.sub("Dense_0"), d, out_ch))
            .transpose()?;
        let z1 = if cfg.one_adagn { None } else { cfg.zemb_dim };
        let norm1 = Norm::load(&w.sub("GroupNorm_1"), out_ch, z1)?;
        let conv1 = Conv2d::load(&w.sub("Conv_1"), ConvSpec::same(out_ch, out_ch, 3))?;
        let shortcut = if in_ch != out_ch || resampling != Resampling::None {
            Some(Conv2d::load(
                &w.sub("Conv_2"),
                ConvSpec::same(in_ch, out_ch, 1),
            )?)
        } else {
            None
        };
        Ok(ResBlock {
            norm0,
            conv0,
            dense0,
            norm1,
            conv1,
            shortcut,
            resampling,
            fir: cfg.fir.clone(),
            act: cfg.act,
            skip_rescale: cfg.skip_rescale,
        })
    }

    fn resample(&self, x: &Tensor) -> Result<Option<Tensor>> {
        Ok(match self.resampling {
            Resampling::None => None,
            Resampling::Up => Some(self.fir.up(x)?),
            Resampling::Down => Some(self.fir.down(x)?),
        })
    }

    /// `temb` is the activated time embedding's input (the block applies act itself); `zemb` drives
    /// the adaptive norms.
    pub fn forward(
        &self,
        x: &Tensor,
        temb: Option<&Tensor>,
        zemb: Option<&Tensor>,
    ) -> Result<Tensor> {
        // Dense_0(act(temb)), one bias per image: added in Conv_0's epilogue.
        let tb = match (&self.dense0, temb) {
            (Some(d), Some(t)) => Some(d.forward(&ops::activation(t, self.act)?)?),
            _ => None,
        };
        // GroupNorm_0 + act: Conv_0's prologue, unless a FIR resampling stands between them.
        let h = if self.resampling == Resampling::None {
            let f0 = self.norm0.fold(x, zemb, self.act)?;
            self.conv0
                .forward_fused(x, Some(&f0), tb.as_ref(), None, false)?
        } else {
            let h = self.norm0.forward(x, zemb, self.act)?;
            let h = self.resample(&h)?.unwrap_or(h);
            self.conv0.forward_fused(&h, None, tb.as_ref(), None, false)?
        };
        let xr = self.resample(x)?;
        let x = xr.as_ref().unwrap_or(x);
        // Conv_1 with GroupNorm_1 + act as its prologue, the shortcut added and the 1/√2 applied in
        // its epilogue.
        let f1 = self.norm1.fold(&h, zemb, self.act)?;
        match &self.shortcut {
            Some(c) => {
                let skip = c.forward(x)?;
                self.conv1
                    .forward_fused(&h, Some(&f1), None, Some(&skip), self.skip_rescale)
            }
            None => self
                .conv1
                .forward_fused(&h, Some(&f1), None, Some(x), self.skip_rescale),
        }
    }
}

/// The input pyramid's downsampler of progressive_input="residual" (layerspp.Downsample with a conv):
/// FIR filter + stride-2 3×3 conv (`Conv2d_0`), or zero-pad right/bottom + stride-2 valid 3×3 conv
/// (`Conv_0`).
pub enum PyramidDown {
    Fir { conv: Conv2d, kernel: Vec<f32> },
    Plain { conv: Conv2d },
}

impl PyramidDown {
    pub fn load(w: &Weights<'_>, in_ch: usize, out_ch: usize, fir: &Fir) -> Result<PyramidDown> {
        if fir.enabled {
            let conv = Conv2d::load(&w.sub("Conv2d_0"), ConvSpec::same(in_ch, out_ch, 3))?;
            Ok(PyramidDown::Fir {
                conv,
                kernel: fir.kernel.clone(),
            })
        } else {
            let mut conv = Conv2d::load(&w.sub("Conv_0"), ConvSpec::same(in_ch, out_ch, 3))?;
            conv.params = Conv2dParams {
                stride: 2,
                padding: Padding {
                    top: 0,
                    bottom: 1,
                    left: 0,
                    right: 1,
                },
                groups: 1,
            };
            Ok(PyramidDown::Plain { conv })
        }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            PyramidDown::Fir { conv, kernel } => {
                ops::fir_conv_downsample2x(x, conv.operand_weight()?, conv.bias.as_ref(), kernel)
            }
            PyramidDown::Plain { conv } => conv.forward(x),
        }
    }
}

/// layerspp.Combine of progressive_input="input_skip": Conv_0 (1×1) on the pyramid, then concat
/// [conv(pyr), h] or sum.
pub struct Combine {
    conv: Conv2d,
    concat: bool,
}

impl Combine {
    pub fn load(w: &Weights<'_>, pyr_ch: usize, ch: usize, concat: bool) -> Result<Combine> {
        Ok(Combine {
            conv: Conv2d::load(&w.sub("Conv_0"), ConvSpec::same(pyr_ch, ch, 1))?,
            concat,
        })
    }

    pub fn forward(&self, pyr: &Tensor, h: &Tensor) -> Result<Tensor> {
        let p = self.conv.forward(pyr)?;
        if self.concat {
            ops::concat_channels(&p, h)
        } else {
            ops::add(&p, h)
        }
    }
}

/// DDGAN's `z_transform`: PixelNorm, then Linear + SiLU layers at indices 1, 3, 5, ... (nz → E, then
/// n_mlp times E → E).
pub struct ZMapping {
    nz: usize,
    layers: Vec<Dense>,
}

impl ZMapping {
    pub fn load(w: &Weights<'_>, nz: usize, z_emb_dim: usize, n_mlp: usize) -> Result<ZMapping> {
        let mut layers = vec![Dense::load(&w.sub(1), nz, z_emb_dim)?];
        for i in 0..n_mlp {
            layers.push(Dense::load(&w.sub(3 + 2 * i), z_emb_dim, z_emb_dim)?);
        }
        Ok(ZMapping { nz, layers })
    }

    pub fn nz(&self) -> usize {
        self.nz
    }

    /// `z` [B, nz] → [B, z_emb_dim].
    pub fn forward(&self, z: &Tensor) -> Result<Tensor> {
        ops_shape_2d(z, self.nz)?;
        let mut h = ops::pixel_norm(z)?;
        for layer in &self.layers {
            h = ops::activation(&layer.forward(&h)?, Activation::Silu)?;
        }
        Ok(h)
    }
}

fn ops_shape_2d(z: &Tensor, nz: usize) -> Result<()> {
    match *z.shape() {
        [_, d] if d == nz => Ok(()),
        _ => Err(crate::Error::InvalidParam {
            op: "z_transform",
            what: "z",
            rule: "[batch, nz]",
            found: format!("shape {:?} with nz = {nz}", z.shape()),
        }),
    }
}
