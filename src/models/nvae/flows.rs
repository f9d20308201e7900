//! NVAE's autoregressive flow cells: masked convolutions (masks folded into the kernels at load
//! time) and the cell that shifts and scales a latent group by them.

use super::cells::spec;
use crate::error::Result;
use crate::nn::layers::Conv2d;
use crate::nn::Weights;
use crate::ops::{self, Activation};
use crate::tensor::Tensor;

/// The channel order of an AR conv's centre tap and the causal mask (reference.nvae.ar_mask), laid out
/// [cout, cin/groups, k, k].
pub(super) fn ar_mask(
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
pub(super) struct ArSpec {
    pub(super) cin: usize,
    pub(super) cout: usize,
    pub(super) k: usize,
    pub(super) groups: usize,
    pub(super) bias: bool,
    pub(super) zero_diag: bool,
    pub(super) mirror: bool,
}

/// ARConv2d: weight_norm(weight·mask, log_weight_norm), folded at load time.
pub(super) fn ar_conv(w: &Weights<'_>, a: ArSpec) -> Result<Conv2d> {
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
pub(super) struct CellAr {
    pub(super) conv_a: Conv2d,
    pub(super) conv_b: Conv2d,
    pub(super) mu: Conv2d,
}

impl CellAr {
    pub(super) fn load(w: &Weights<'_>, nz: usize, mirror: bool) -> Result<CellAr> {
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

    pub(super) fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let h = ops::activation(&self.conv_a.forward(z)?, Activation::Elu)?;
        let h = self.conv_b.forward(&h)?;
        let mu = self.mu.forward(&ops::activation(&h, Activation::Elu)?)?;
        ops::binary(z, &mu, ops::BinaryOp::Sub)
    }
}
