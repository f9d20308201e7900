//! NCSN++ weights in construction order (`all_modules.{i}.…`), as the official module list builds them.

use super::arch::{Arch, ProgressiveInput, TimeEmbedding};
use super::{internal, DownLevel, Ncsnpp, PyramidOp, UpLevel};
use crate::error::Result;
use crate::models::config::Config;
use crate::models::Family;
use crate::nn::blocks::{
    AttnBlock, Combine, PyramidDown, ResBlock, ResBlockConfig, Resampling, ZMapping,
};
use crate::nn::layers::{Conv2d, ConvSpec, Dense, GroupNorm};
use crate::nn::Weights;

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
            inputs: Default::default(),
            evaluations: Default::default(),
        })
    }
}
