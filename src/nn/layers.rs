//! Primitive layers built from official weights: conv (plain, NIN and NVAE weight-normalised), dense,
//! GroupNorm, DDGAN's adaptive GroupNorm and eval-mode batch norm. Each layer keeps its weights in the
//! engine's layout on the model's device.

use super::packed_weight::PackedWeight;
use super::weights::Weights;
use crate::error::Result;
use crate::ops::{self, Activation, AffineArgs, Conv2dParams, NormFold, Padding};
use crate::tensor::Tensor;

/// A 2-D convolution (`weight` `[out, in/groups, k, k]` and optional `bias` in the file).
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub params: Conv2dParams,
    pub in_ch: usize,
    pub out_ch: usize,
    /// The weight's 16-bit copies for the bf16 / fp16 precisions (made on first use).
    pub packed: PackedWeight,
}

/// Shape and options of a conv, as the official module declares it.
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    pub in_ch: usize,
    pub out_ch: usize,
    pub k: usize,
    pub stride: usize,
    pub padding: usize,
    pub groups: usize,
    pub bias: bool,
}

impl ConvSpec {
    /// k×k, stride 1, "same" padding, one group, with bias.
    pub fn same(in_ch: usize, out_ch: usize, k: usize) -> ConvSpec {
        ConvSpec {
            in_ch,
            out_ch,
            k,
            stride: 1,
            padding: (k - 1) / 2,
            groups: 1,
            bias: true,
        }
    }

    pub fn torch_shape(&self) -> [usize; 4] {
        [self.out_ch, self.in_ch / self.groups, self.k, self.k]
    }
}

impl Conv2d {
    /// A plain nn.Conv2d: `{w}.weight`, `{w}.bias`.
    pub fn load(w: &Weights<'_>, spec: ConvSpec) -> Result<Conv2d> {
        let shape = spec.torch_shape();
        let raw = w.host("weight", &shape)?;
        Conv2d::from_oihw(w, spec, &raw)
    }

    /// From PyTorch-layout kernel values already read (and possibly transformed, e.g. weight-normalised).
    pub fn from_oihw(w: &Weights<'_>, spec: ConvSpec, oihw: &[f32]) -> Result<Conv2d> {
        let shape = spec.torch_shape();
        let weight = w.upload(
            &ops::conv2d_weight_from_oihw(oihw, shape),
            &[spec.k, spec.k, spec.in_ch / spec.groups, spec.out_ch],
        )?;
        let bias = if spec.bias {
            Some(w.tensor("bias", &[spec.out_ch])?)
        } else {
            None
        };
        Ok(Conv2d {
            weight,
            bias,
            params: Conv2dParams {
                stride: spec.stride,
                padding: Padding::same(spec.padding),
                groups: spec.groups,
            },
            in_ch: spec.in_ch,
            out_ch: spec.out_ch,
            packed: PackedWeight::default(),
        })
    }

    /// NCSN++'s NIN (a per-pixel linear map stored as `W` \[in, out\] and `b` \[out\]) as a 1×1 conv.
    pub fn load_nin(w: &Weights<'_>, in_ch: usize, out_ch: usize) -> Result<Conv2d> {
        // W [in, out] is already the HWIO kernel of a 1×1 conv.
        let wt = w.host("W", &[in_ch, out_ch])?;
        Ok(Conv2d {
            weight: w.upload(&wt, &[1, 1, in_ch, out_ch])?,
            bias: Some(w.tensor("b", &[out_ch])?),
            params: Conv2dParams::same(1),
            in_ch,
            out_ch,
            packed: PackedWeight::default(),
        })
    }

    /// NVAE's weight-normalised conv: exp(log_weight_norm\[o\])·W\[o\] / (‖W\[o\]‖₂ + 1e-5), folded once at
    /// load time in f64 (the norm runs over in/groups × k × k).
    pub fn load_weight_normed(w: &Weights<'_>, spec: ConvSpec) -> Result<Conv2d> {
        let shape = spec.torch_shape();
        let raw = w.host("weight", &shape)?;
        let g = w.host("log_weight_norm", &[spec.out_ch, 1, 1, 1])?;
        let folded = weight_norm(&raw, &g, spec.out_ch);
        Conv2d::from_oihw(w, spec, &folded)
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        ops::conv2d(x, self.operand_weight()?, self.bias.as_ref(), &self.params)
    }

    /// The weight as this device's convolution kernels read it ([`PackedWeight::operand`]; the
    /// depthwise kernel reads f32).
    pub fn operand_weight(&self) -> Result<&Tensor> {
        let depthwise = self.params.groups == self.in_ch && self.params.groups == self.out_ch;
        self.packed.operand(&self.weight, depthwise)
    }

    /// `(self(x) + skip)/√2` when `rescale`, else `self(x) + skip`: a residual block's last conv with
    /// the sum and the rescale in its epilogue (one kernel on the GPU; [`residual`] after
    /// [`Conv2d::forward`] in real arithmetic, with (h + x)·(1/√2) rounded once).
    pub fn forward_residual(&self, x: &Tensor, skip: &Tensor, rescale: bool) -> Result<Tensor> {
        self.forward_fused(x, None, None, Some(skip), rescale)
    }

    /// `self(norm(x)) + sample_bias`, plus `skip` and the 1/√2 of [`Conv2d::forward_residual`] where
    /// given, as one kernel on the GPU: `norm` (a [`Norm::fold`] of `x`) is applied as the input is
    /// loaded, `sample_bias` `[n, out]` (per image) added after the bias.
    pub fn forward_fused(
        &self,
        x: &Tensor,
        norm: Option<&NormFold>,
        sample_bias: Option<&Tensor>,
        skip: Option<&Tensor>,
        rescale: bool,
    ) -> Result<Tensor> {
        let f = ops::ConvFusion {
            norm,
            sample_bias,
            residual: skip,
            scale: if rescale && skip.is_some() {
                std::f32::consts::FRAC_1_SQRT_2
            } else {
                1.0
            },
        };
        ops::conv2d_fused(x, self.operand_weight()?, self.bias.as_ref(), &f, &self.params)
    }
}

/// exp(g\[o\])·W\[o\] / (‖W\[o\]‖₂ + 1e-5) per output channel, computed in f64 and rounded once.
pub fn weight_norm(w: &[f32], log_g: &[f32], out_ch: usize) -> Vec<f32> {
    let per = w.len() / out_ch.max(1);
    let mut out = vec![0.0f32; w.len()];
    for o in 0..out_ch {
        let row = &w[o * per..(o + 1) * per];
        let norm = row
            .iter()
            .map(|&v| (v as f64) * (v as f64))
            .sum::<f64>()
            .sqrt();
        let s = (log_g[o] as f64).exp() / (norm + 1e-5);
        for (d, &v) in out[o * per..(o + 1) * per].iter_mut().zip(row) {
            *d = (v as f64 * s) as f32;
        }
    }
    out
}

/// nn.Linear: `weight` \[out, in\], `bias` \[out\].
pub struct Dense {
    pub weight: Tensor,
    pub bias: Tensor,
    /// The weight's 16-bit copies for the bf16 / fp16 precisions (made on first use).
    pub packed: PackedWeight,
}

impl Dense {
    pub fn load(w: &Weights<'_>, in_f: usize, out_f: usize) -> Result<Dense> {
        Ok(Dense {
            weight: w.tensor("weight", &[out_f, in_f])?,
            bias: w.tensor("bias", &[out_f])?,
            packed: PackedWeight::default(),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let weight = self.packed.operand(&self.weight, false)?;
        ops::linear(x, weight, Some(&self.bias))
    }
}

/// nn.GroupNorm with affine `weight`/`bias` \[c\].
pub struct GroupNorm {
    pub groups: usize,
    pub eps: f32,
    pub weight: Tensor,
    pub bias: Tensor,
}

impl GroupNorm {
    pub fn load(w: &Weights<'_>, groups: usize, channels: usize, eps: f32) -> Result<GroupNorm> {
        Ok(GroupNorm {
            groups,
            eps,
            weight: w.tensor("weight", &[channels])?,
            bias: w.tensor("bias", &[channels])?,
        })
    }

    /// NCSN++'s GroupNorm: min(C / 4, 32) groups, eps 1e-6.
    pub fn load_ncsnpp(w: &Weights<'_>, channels: usize) -> Result<GroupNorm> {
        GroupNorm::load(w, ncsnpp_groups(channels), channels, 1e-6)
    }

    pub fn forward(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        let args = AffineArgs {
            center: None,
            scale: Some(&self.weight),
            shift: Some(&self.bias),
        };
        ops::group_norm(x, self.groups, self.eps, &args, act)
    }

    /// [`GroupNorm::forward`] left for the next convolution's prologue.
    pub fn fold(&self, x: &Tensor, act: Activation) -> Result<NormFold> {
        let args = AffineArgs {
            center: None,
            scale: Some(&self.weight),
            shift: Some(&self.bias),
        };
        ops::group_norm_fold(x, self.groups, self.eps, &args, act)
    }
}

/// Groups of NCSN++'s GroupNorm for `channels` channels.
pub fn ncsnpp_groups(channels: usize) -> usize {
    (channels / 4).clamp(1, 32)
}

/// DDGAN's AdaptiveGroupNorm: [γ, β] = style(zemb); γ·GroupNorm(x) + β (no affine of its own).
pub struct AdaGroupNorm {
    pub groups: usize,
    pub channels: usize,
    pub style: Dense,
}

impl AdaGroupNorm {
    pub fn load(w: &Weights<'_>, channels: usize, style_dim: usize) -> Result<AdaGroupNorm> {
        Ok(AdaGroupNorm {
            groups: ncsnpp_groups(channels),
            channels,
            style: Dense::load(&w.sub("style"), style_dim, 2 * channels)?,
        })
    }

    pub fn forward(&self, x: &Tensor, zemb: &Tensor, act: Activation) -> Result<Tensor> {
        let (gamma, beta) = self.style(zemb)?;
        let args = AffineArgs {
            center: None,
            scale: Some(&gamma),
            shift: Some(&beta),
        };
        ops::group_norm(x, self.groups, 1e-6, &args, act)
    }

    /// [`AdaGroupNorm::forward`] left for the next convolution's prologue.
    pub fn fold(&self, x: &Tensor, zemb: &Tensor, act: Activation) -> Result<NormFold> {
        let (gamma, beta) = self.style(zemb)?;
        let args = AffineArgs {
            center: None,
            scale: Some(&gamma),
            shift: Some(&beta),
        };
        ops::group_norm_fold(x, self.groups, 1e-6, &args, act)
    }

    /// The per-sample scale and shift `[n, c]` of the z embedding.
    fn style(&self, zemb: &Tensor) -> Result<(Tensor, Tensor)> {
        let s = self.style.forward(zemb)?;
        Ok((
            ops::slice_channels(&s, 0, self.channels)?,
            ops::slice_channels(&s, self.channels, self.channels)?,
        ))
    }
}

/// A norm of an NCSN++ block: affine GroupNorm, or AdaGN when the network has a z embedding.
pub enum Norm {
    Group(GroupNorm),
    Adaptive(AdaGroupNorm),
}

impl Norm {
    pub fn load(w: &Weights<'_>, channels: usize, zemb_dim: Option<usize>) -> Result<Norm> {
        Ok(match zemb_dim {
            None => Norm::Group(GroupNorm::load_ncsnpp(w, channels)?),
            Some(d) => Norm::Adaptive(AdaGroupNorm::load(w, channels, d)?),
        })
    }

    pub fn forward(&self, x: &Tensor, zemb: Option<&Tensor>, act: Activation) -> Result<Tensor> {
        match (self, zemb) {
            (Norm::Group(g), _) => g.forward(x, act),
            (Norm::Adaptive(a), Some(z)) => a.forward(x, z, act),
            (Norm::Adaptive(_), None) => Err(no_zemb()),
        }
    }

    /// [`Norm::forward`] left for the next convolution to apply as it loads `x`
    /// ([`Conv2d::forward_fused`]): the same values, never stored.
    pub fn fold(&self, x: &Tensor, zemb: Option<&Tensor>, act: Activation) -> Result<NormFold> {
        match (self, zemb) {
            (Norm::Group(g), _) => g.fold(x, act),
            (Norm::Adaptive(a), Some(z)) => a.fold(x, z, act),
            (Norm::Adaptive(_), None) => Err(no_zemb()),
        }
    }
}

fn no_zemb() -> crate::Error {
    crate::Error::InvalidParam {
        op: "AdaGroupNorm",
        what: "z embedding",
        rule: "given (this network is conditioned on z)",
        found: "none".into(),
    }
}

/// Eval-mode BatchNorm2d: (x − running_mean)·weight/√(running_var + eps) + bias, the scale folded in f64
/// at load time; optionally followed by swish (NVAE's BNSwish).
pub struct BatchNorm {
    pub mean: Tensor,
    pub scale: Tensor,
    pub shift: Tensor,
}

impl BatchNorm {
    pub fn load(w: &Weights<'_>, channels: usize, eps: f64) -> Result<BatchNorm> {
        let weight = w.host("weight", &[channels])?;
        let var = w.host("running_var", &[channels])?;
        let scale: Vec<f32> = weight
            .iter()
            .zip(&var)
            .map(|(&g, &v)| (g as f64 / (v as f64 + eps).sqrt()) as f32)
            .collect();
        w.skip("num_batches_tracked");
        Ok(BatchNorm {
            mean: w.tensor("running_mean", &[channels])?,
            scale: w.upload(&scale, &[channels])?,
            shift: w.tensor("bias", &[channels])?,
        })
    }

    pub fn forward(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        let args = AffineArgs {
            center: Some(&self.mean),
            scale: Some(&self.scale),
            shift: Some(&self.shift),
        };
        ops::channel_affine(x, &args, act)
    }
}

/// (x + h)/√2 when `rescale`, else x + h.
pub fn residual(x: &Tensor, h: &Tensor, rescale: bool) -> Result<Tensor> {
    if rescale {
        let mut out = h.to_device(&h.device())?;
        let s = std::f32::consts::FRAC_1_SQRT_2;
        ops::axpby(s, x, s, &mut out)?;
        Ok(out)
    } else {
        ops::add(x, h)
    }
}
