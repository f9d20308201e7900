//! Every network op and block on the CPU backend against its fixture (tools/make_fixtures.py, float64
//! reference rounded once). Tolerance: relative L2 error ≤ 1e-5 (fp32 CPU, the fixtures' own
//! `tolerance_rel_l2`); the max abs error is printed beside it.

mod common;

use common::open_fixture;
use trilemma::io::safetensors::SafeTensors;
use trilemma::nn::blocks::{AttnBlock, Fir, ResBlock, ResBlockConfig, Resampling, ZMapping};
use trilemma::nn::embedding;
use trilemma::nn::layers::{AdaGroupNorm, BatchNorm, Conv2d, ConvSpec, Dense, GroupNorm};
use trilemma::nn::Weights;
use trilemma::ops::{self, Activation};
use trilemma::{DType, Device, Tensor};

const TOL: f64 = 1e-5;

fn meta<'a>(st: &'a SafeTensors, key: &str) -> &'a str {
    st.metadata()
        .get(key)
        .unwrap_or_else(|| panic!("fixture metadata `{key}` missing"))
}

/// A fixture tensor as stored (NCHW or 2-D).
fn raw(st: &SafeTensors, name: &str) -> Tensor {
    st.load_any_shape(name, &Device::Cpu).unwrap()
}

/// A 4-D NCHW fixture tensor as an NHWC activation.
fn act(st: &SafeTensors, name: &str) -> Tensor {
    ops::nchw_to_nhwc(&raw(st, name)).unwrap()
}

/// Compares an NHWC result with the NCHW expected output `name`.
fn check_nhwc(st: &SafeTensors, case: &str, out: &Tensor, name: &str) {
    let out = ops::nhwc_to_nchw(out).unwrap();
    check(st, case, &out, name);
}

fn check(st: &SafeTensors, case: &str, out: &Tensor, name: &str) {
    common::assert_close(case, out, &raw(st, name), TOL);
}

fn conv_case(case: &str) {
    let st = open_fixture(case);
    let w = Weights::new(&st, "param.", &Device::Cpu);
    let shape = st.entry("param.weight").unwrap().shape.clone();
    let groups: usize = meta(&st, "groups").parse().unwrap();
    let spec = ConvSpec {
        in_ch: shape[1] * groups,
        out_ch: shape[0],
        k: shape[2],
        stride: meta(&st, "stride").parse().unwrap(),
        padding: meta(&st, "padding").parse().unwrap(),
        groups,
        bias: w.contains("bias"),
    };
    let conv = Conv2d::load(&w, spec).unwrap();
    w.finish().unwrap();
    check_nhwc(
        &st,
        case,
        &conv.forward(&act(&st, "in.x")).unwrap(),
        "out.y",
    );
}

#[test]
fn conv2d_3x3_matches_fixture_f32() {
    conv_case("conv2d_3x3");
}

#[test]
fn conv2d_3x3_stride2_matches_fixture_f32() {
    conv_case("conv2d_3x3_stride2");
}

#[test]
fn conv2d_1x1_matches_fixture_f32() {
    conv_case("conv2d_1x1");
}

#[test]
fn conv2d_depthwise_5x5_matches_fixture_f32() {
    conv_case("conv2d_depthwise_5x5");
}

#[test]
fn conv2d_grouped_3x3_nobias_matches_fixture_f32() {
    conv_case("conv2d_grouped_3x3_nobias");
}

#[test]
fn dense_matches_fixture_f32() {
    let st = open_fixture("dense_basic");
    let w = Weights::new(&st, "param.", &Device::Cpu);
    let d = Dense::load(&w, 40, 24).unwrap();
    w.finish().unwrap();
    check(
        &st,
        "dense_basic",
        &d.forward(&raw(&st, "in.x")).unwrap(),
        "out.y",
    );
}

#[test]
fn group_norm_matches_fixture_f32() {
    let st = open_fixture("group_norm_32c_8g");
    let w = Weights::new(&st, "param.", &Device::Cpu);
    let eps: f32 = meta(&st, "eps").parse().unwrap();
    let gn = GroupNorm::load(&w, meta(&st, "num_groups").parse().unwrap(), 32, eps).unwrap();
    w.finish().unwrap();
    let y = gn.forward(&act(&st, "in.x"), Activation::Identity).unwrap();
    check_nhwc(&st, "group_norm_32c_8g", &y, "out.y");
}

#[test]
fn adaptive_group_norm_matches_fixture_f32() {
    let st = open_fixture("adagn_32c_8g");
    let w = Weights::new(&st, "param.", &Device::Cpu);
    // The block's own parameters live under `style.`; AdaGroupNorm::load takes the module prefix.
    let ada = AdaGroupNorm::load(&w, 32, 16).unwrap();
    w.finish().unwrap();
    assert_eq!(
        ada.groups,
        meta(&st, "num_groups").parse::<usize>().unwrap()
    );
    let y = ada
        .forward(
            &act(&st, "in.x"),
            &raw(&st, "in.zemb"),
            Activation::Identity,
        )
        .unwrap();
    check_nhwc(&st, "adagn_32c_8g", &y, "out.y");
}

#[test]
fn batch_norm_eval_matches_fixture_f32() {
    let st = open_fixture("batch_norm_eval");
    let w = Weights::new(&st, "param.", &Device::Cpu);
    let eps: f64 = meta(&st, "eps").parse().unwrap();
    let bn = BatchNorm::load(&w, 16, eps).unwrap();
    w.finish().unwrap();
    let y = bn.forward(&act(&st, "in.x"), Activation::Identity).unwrap();
    check_nhwc(&st, "batch_norm_eval", &y, "out.y");
}

#[test]
fn silu_matches_fixture_f32() {
    let st = open_fixture("silu_basic");
    let y = ops::activation(&raw(&st, "in.x"), Activation::Silu).unwrap();
    check(&st, "silu_basic", &y, "out.y");
}

#[test]
fn attention_block_matches_fixture_f32() {
    let st = open_fixture("attention_32c_6x5");
    let w = Weights::new(&st, "param.", &Device::Cpu);
    let blk = AttnBlock::load(&w, 32, meta(&st, "skip_rescale") == "true").unwrap();
    w.finish().unwrap();
    check_nhwc(
        &st,
        "attention_32c_6x5",
        &blk.forward(&act(&st, "in.x")).unwrap(),
        "out.y",
    );
}

const FIR: [f32; 4] = [1.0, 3.0, 3.0, 1.0];

#[test]
fn fir_upsample_matches_fixture_f32() {
    let st = open_fixture("fir_upsample_2x");
    let y = ops::fir_upsample2x(&act(&st, "in.x"), &FIR).unwrap();
    check_nhwc(&st, "fir_upsample_2x", &y, "out.y");
}

#[test]
fn fir_downsample_matches_fixture_f32() {
    let st = open_fixture("fir_downsample_2x");
    let y = ops::fir_downsample2x(&act(&st, "in.x"), &FIR).unwrap();
    check_nhwc(&st, "fir_downsample_2x", &y, "out.y");
}

#[test]
fn fir_conv_downsample_matches_fixture_f32() {
    let st = open_fixture("fir_conv_downsample_2x");
    let w = Weights::new(&st, "param.", &Device::Cpu);
    let conv = Conv2d::load(&w.sub("Conv2d_0"), ConvSpec::same(6, 8, 3)).unwrap();
    w.finish().unwrap();
    let y = ops::fir_conv_downsample2x(&act(&st, "in.x"), &conv.weight, conv.bias.as_ref(), &FIR)
        .unwrap();
    check_nhwc(&st, "fir_conv_downsample_2x", &y, "out.y");
}

fn host(st: &SafeTensors, name: &str) -> Vec<f32> {
    raw(st, name).to_vec_f32().unwrap()
}

fn check_host(st: &SafeTensors, case: &str, out: Vec<f32>, shape: &[usize], name: &str) {
    let t = Tensor::from_f32(&out, shape, DType::F32, &Device::Cpu).unwrap();
    check(st, case, &t, name);
}

#[test]
fn sinusoidal_embedding_matches_fixture_f32() {
    let st = open_fixture("embedding_sinusoidal_int");
    let dim: usize = meta(&st, "dim").parse().unwrap();
    let t = host(&st, "in.t");
    let e = embedding::sinusoidal(&t, dim, meta(&st, "max_positions").parse().unwrap());
    check_host(
        &st,
        "embedding_sinusoidal_int",
        e,
        &[t.len(), dim],
        "out.emb",
    );
}

#[test]
fn lsgm_positional_embedding_matches_fixture_f32() {
    let st = open_fixture("embedding_lsgm_positional");
    let dim: usize = meta(&st, "dim").parse().unwrap();
    let t = host(&st, "in.t");
    let e = embedding::lsgm_positional(&t, dim, meta(&st, "scale").parse().unwrap());
    check_host(
        &st,
        "embedding_lsgm_positional",
        e,
        &[t.len(), dim],
        "out.emb",
    );
}

#[test]
fn gaussian_fourier_embedding_matches_fixture_f32() {
    let st = open_fixture("embedding_gaussian_fourier");
    // The fixture's input is t; the embedding is of log t (computed in f32, as the network does).
    let t = host(&st, "in.t");
    let logt: Vec<f32> = t.iter().map(|&v| (v as f64).ln() as f32).collect();
    let w = host(&st, "param.W");
    let e = embedding::gaussian_fourier(&logt, &w);
    check_host(
        &st,
        "embedding_gaussian_fourier",
        e,
        &[t.len(), 2 * w.len()],
        "out.emb",
    );
}

#[test]
fn z_mapping_matches_fixture_f32() {
    let st = open_fixture("mapping_pixelnorm_mlp");
    let w = Weights::new(&st, "param.", &Device::Cpu);
    let m = ZMapping::load(&w, 20, 32, 2).unwrap();
    w.finish().unwrap();
    check(
        &st,
        "mapping_pixelnorm_mlp",
        &m.forward(&raw(&st, "in.z")).unwrap(),
        "out.zemb",
    );
}

fn resblock_config(zemb_dim: Option<usize>) -> ResBlockConfig {
    ResBlockConfig {
        act: Activation::Silu,
        temb_dim: Some(24),
        zemb_dim,
        one_adagn: false,
        fir: Fir {
            enabled: true,
            kernel: FIR.to_vec(),
        },
        skip_rescale: true,
    }
}

#[test]
fn resblock_biggan_down_fir_matches_fixture_f32() {
    let st = open_fixture("resblock_biggan_down_fir");
    let w = Weights::new(&st, "param.", &Device::Cpu);
    let blk = ResBlock::load(&w, &resblock_config(None), 16, 32, Resampling::Down).unwrap();
    w.finish().unwrap();
    let y = blk
        .forward(&act(&st, "in.x"), Some(&raw(&st, "in.temb")), None)
        .unwrap();
    check_nhwc(&st, "resblock_biggan_down_fir", &y, "out.y");
}

#[test]
fn resblock_biggan_adagn_matches_fixture_f32() {
    let st = open_fixture("resblock_biggan_adagn");
    let w = Weights::new(&st, "param.", &Device::Cpu);
    let blk = ResBlock::load(&w, &resblock_config(Some(12)), 16, 16, Resampling::None).unwrap();
    w.finish().unwrap();
    let y = blk
        .forward(
            &act(&st, "in.x"),
            Some(&raw(&st, "in.temb")),
            Some(&raw(&st, "in.zemb")),
        )
        .unwrap();
    check_nhwc(&st, "resblock_biggan_adagn", &y, "out.y");
}

#[test]
fn weight_normalised_conv_matches_fixture_f32() {
    let st = open_fixture("nvae_wn_conv_3x3");
    let w = Weights::new(&st, "param.", &Device::Cpu);
    let spec = ConvSpec {
        stride: meta(&st, "stride").parse().unwrap(),
        padding: meta(&st, "padding").parse().unwrap(),
        ..ConvSpec::same(8, 12, 3)
    };
    let conv = Conv2d::load_weight_normed(&w, spec).unwrap();
    w.finish().unwrap();
    check_nhwc(
        &st,
        "nvae_wn_conv_3x3",
        &conv.forward(&act(&st, "in.x")).unwrap(),
        "out.y",
    );
}

#[test]
fn squeeze_excitation_matches_fixture_f32() {
    let st = open_fixture("nvae_squeeze_excitation");
    let w = Weights::new(&st, "param.", &Device::Cpu);
    let se = trilemma::models::nvae::SqueezeExcitation::load(&w, 32).unwrap();
    w.finish().unwrap();
    check_nhwc(
        &st,
        "nvae_squeeze_excitation",
        &se.forward(&act(&st, "in.x")).unwrap(),
        "out.y",
    );
}
