//! NVAE's residual cells: the op sequences of each cell kind, squeeze-and-excitation, and the
//! skip path, with the conv and batch-norm constructors they share.

use super::NvaeArch;
use crate::error::{Error, Result};
use crate::nn::layers::{BatchNorm, Conv2d, ConvSpec, Dense};
use crate::nn::Weights;
use crate::ops::{self, Activation, AffineArgs, Resample2x};
use crate::tensor::Tensor;

pub(super) const BN_EPS: f64 = 1e-5;

/// NVAE's Conv2D: weight-normalised (`log_weight_norm`) unless `wn` is false, in which case the
/// official module also stores the raw weight as `weight_normalized` (an alias, skipped here).
pub(super) fn conv(w: &Weights<'_>, spec: ConvSpec, wn: bool) -> Result<Conv2d> {
    if wn {
        Conv2d::load_weight_normed(w, spec)
    } else {
        w.skip("weight_normalized");
        Conv2d::load(w, spec)
    }
}

pub(super) fn spec(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    groups: usize,
    bias: bool,
) -> ConvSpec {
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

pub(super) fn bn(w: &Weights<'_>, c: usize) -> Result<BatchNorm> {
    BatchNorm::load(w, c, BN_EPS)
}

pub(super) fn nearest_up(x: &Tensor) -> Result<Tensor> {
    ops::resample2x(x, Resample2x::NearestUp)
}

/// Cell strides: 1 normal, 2 down, −1 up (nearest ×2 before the first conv).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stride {
    One,
    Down,
    Up,
}

impl Stride {
    pub(super) fn conv_stride(self) -> usize {
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
pub(super) enum CellOp {
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
    pub(super) fn load(
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

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
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
    pub(super) fc1: Dense,
    pub(super) fc2: Dense,
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
pub(super) enum Skip {
    Identity,
    /// Swish, then four 1×1 stride-2 WN convs on the input shifted by (0,0), (1,1), (0,1), (1,0),
    /// concatenated.
    FactorizedReduce([Conv2d; 4]),
    /// Bilinear ×2 (align_corners) then a 1×1 WN conv without bias.
    Up(Conv2d),
}

/// skip(x) + 0.1·SE(ops(x)).
pub(super) struct Cell {
    pub(super) skip: Skip,
    pub(super) ops: Vec<CellOp>,
    pub(super) se: Option<SqueezeExcitation>,
}

impl Cell {
    pub(super) fn load(
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

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
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
                let [_, hh, ww, _] = a.dims("nvae", "cell input", "4-D")?;
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
