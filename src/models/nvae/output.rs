//! The NVAE decoder's output distributions and the image the official sampler takes from them: the
//! distribution mean, clamped to [−1, 1], mapped to [0, 1] (reference.nvae: `NVAE.image`). Evaluated
//! on the host in f32 from the logits: a per-pixel map, cheap next to the decoder.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Which distribution the logits parameterise (`decoder_dist`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecoderDist {
    /// Discretised mixture of 10 logistics over RGB (100 channels).
    Dml,
    /// Bernoulli per pixel (1 channel).
    Bernoulli,
    /// Normal (mean: the first half of the soft-clamped logits).
    Normal,
    /// Discretised logistic (mean: the first half).
    Dl,
}

impl DecoderDist {
    pub fn parse(name: &str) -> Option<DecoderDist> {
        Some(match name {
            "dml" => DecoderDist::Dml,
            "bin" => DecoderDist::Bernoulli,
            "normal" => DecoderDist::Normal,
            "dl" => DecoderDist::Dl,
            _ => return None,
        })
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The official image from NCHW `logits`: [B, 3, H, W] for the logistic families and Normal, [B, 1, H, W]
/// for Bernoulli, values in [0, 1].
pub fn image_from_logits(dist: DecoderDist, logits: &Tensor) -> Result<Tensor> {
    let [b, c, h, w] = logits.dims("nvae image", "logits", "a 4-D NCHW tensor")?;
    let l = logits.to_vec_f32()?;
    let hw = h * w;
    let at = |s: usize, ch: usize, p: usize| l[(s * c + ch) * hw + p];
    let to01 = |x: f32| (x.clamp(-1.0, 1.0) + 1.0) / 2.0;
    let (out_c, expected_c) = match dist {
        DecoderDist::Dml => (3, 100),
        DecoderDist::Bernoulli => (1, 1),
        DecoderDist::Normal | DecoderDist::Dl => (c / 2, 2 * (c / 2)),
    };
    if c != expected_c || out_c == 0 {
        return Err(Error::InvalidParam {
            op: "nvae image",
            what: "logit channels",
            rule: "100 (dml), 1 (bin) or an even count (normal, dl)",
            found: format!("{c} for {dist:?}"),
        });
    }
    let mut out = vec![0.0f32; b * out_c * hw];
    for s in 0..b {
        for p in 0..hw {
            match dist {
                DecoderDist::Bernoulli => {
                    out[s * hw + p] = to01(2.0 * sigmoid(at(s, 0, p)) - 1.0);
                }
                DecoderDist::Normal => {
                    for ch in 0..out_c {
                        // Normal(mu, log_sigma) from soft_clamp(logits, 5): the mean is mu.
                        let mu = (at(s, ch, p) / 5.0).tanh() * 5.0;
                        out[(s * out_c + ch) * hw + p] = to01(mu);
                    }
                }
                DecoderDist::Dl => {
                    for ch in 0..out_c {
                        out[(s * out_c + ch) * hw + p] = to01(at(s, ch, p));
                    }
                }
                DecoderDist::Dml => {
                    const M: usize = 10;
                    // Mixture weights: softmax over the first M channels.
                    let mx = (0..M)
                        .map(|k| at(s, k, p))
                        .fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f32> = (0..M).map(|k| (at(s, k, p) - mx).exp()).collect();
                    let z: f32 = e.iter().sum();
                    // rest[:, colour, 0:M] means, [M:2M] log scales, [2M:3M] coefficients (tanh).
                    let rest = |colour: usize, j: usize| at(s, M + colour * 3 * M + j, p);
                    let mut mu = [0.0f32; 3];
                    let mut co = [0.0f32; 3];
                    for colour in 0..3 {
                        for (k, ek) in e.iter().enumerate() {
                            let wk = ek / z;
                            mu[colour] += rest(colour, k) * wk;
                            co[colour] += rest(colour, 2 * M + k).tanh() * wk;
                        }
                    }
                    let r = mu[0].clamp(-1.0, 1.0);
                    let g = (mu[1] + co[0] * r).clamp(-1.0, 1.0);
                    let bl = (mu[2] + co[1] * r + co[2] * g).clamp(-1.0, 1.0);
                    for (ch, v) in [r, g, bl].into_iter().enumerate() {
                        out[(s * 3 + ch) * hw + p] = to01(v);
                    }
                }
            }
        }
    }
    Tensor::from_f32(&out, &[b, out_c, h, w], DType::F32, &logits.device())
}
