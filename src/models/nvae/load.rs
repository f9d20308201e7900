//! The NVAE architecture from the official args, and its weights from `vae_state_dict` names.

use super::cells::{bn, conv, spec, Cell, Stride};
use super::flows::CellAr;
use super::{DecItem, EncItem, Nvae, NvaeArch};
use crate::error::Result;
use crate::models::config::Config;
use crate::nn::Weights;

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
}
