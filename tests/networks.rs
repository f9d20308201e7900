//! Whole-network forwards on the CPU backend against the fixtures (small configurations of each
//! family's released architecture; float64 reference rounded once). Tolerance: relative L2 ≤ 1e-5
//! (fp32 CPU); the max abs error is printed.

mod common;

use common::open_fixture;
use trilemma::io::safetensors::SafeTensors;
use trilemma::models::{Config, Family, Ncsnpp};
use trilemma::nn::Weights;
use trilemma::{Device, Tensor};

const TOL: f64 = 1e-5;

fn raw(st: &SafeTensors, name: &str) -> Tensor {
    st.load_any_shape(name, &Device::Cpu).unwrap()
}

fn check(case: &str, out: &Tensor, expected: &Tensor) {
    common::assert_close(case, out, expected, TOL);
}

fn load_network(st: &SafeTensors, family: Family) -> Ncsnpp {
    let cfg = Config::from_json_str(st.file(), &st.metadata()["config"]).unwrap();
    let w = Weights::new(st, "param.", &Device::Cpu);
    let net = Ncsnpp::load(family, &cfg, &w).unwrap();
    w.finish().unwrap();
    net
}

#[test]
fn cld_ncsnpp_matches_fixture_f32() {
    let st = open_fixture("network_cld_small");
    let net = load_network(&st, Family::Cld);
    let t = raw(&st, "in.t").to_vec_f32().unwrap();
    let y = net.forward(&raw(&st, "in.u"), &t, None).unwrap();
    check("network_cld_small", &y, &raw(&st, "out.alpha"));
}

#[test]
fn ddgan_generator_matches_fixture_f32() {
    let st = open_fixture("network_ddgan_small");
    let net = load_network(&st, Family::Ddgan);
    let t = raw(&st, "in.t").to_vec_f32().unwrap();
    let y = net
        .forward(&raw(&st, "in.x_t"), &t, Some(&raw(&st, "in.z")))
        .unwrap();
    check("network_ddgan_small", &y, &raw(&st, "out.x0"));
}

#[test]
fn lsgm_score_matches_fixture_f32() {
    let st = open_fixture("network_lsgm_small");
    let net = load_network(&st, Family::Lsgm);
    let t = raw(&st, "in.t").to_vec_f32().unwrap();
    let y = net.forward(&raw(&st, "in.z_t"), &t, None).unwrap();
    check("network_lsgm_small", &y, &raw(&st, "out.eps"));
}

fn load_nvae(st: &SafeTensors) -> trilemma::models::Nvae {
    let cfg = Config::from_json_str(st.file(), &st.metadata()["config"]).unwrap();
    let w = Weights::new(st, "param.", &Device::Cpu);
    let net = trilemma::models::Nvae::load(&cfg, &w).unwrap();
    w.finish().unwrap();
    net
}

fn numbered(st: &SafeTensors, prefix: &str) -> Vec<Tensor> {
    (0..)
        .map(|i| format!("{prefix}.{i}"))
        .take_while(|n| st.entries().contains_key(n))
        .map(|n| raw(st, &n))
        .collect()
}

fn nvae_encode_case(case: &str) {
    let st = open_fixture(case);
    let net = load_nvae(&st);
    let noise = numbered(&st, "in.noise");
    let post = net.encode_nchw(&raw(&st, "in.x"), &noise).unwrap();
    assert_eq!(post.eps.len(), noise.len());
    for (i, ((mu, ls), eps)) in post
        .mu
        .iter()
        .zip(&post.log_sigma)
        .zip(&post.eps)
        .enumerate()
    {
        check(
            &format!("{case} mu.{i}"),
            mu,
            &raw(&st, &format!("out.mu.{i}")),
        );
        check(
            &format!("{case} log_sigma.{i}"),
            ls,
            &raw(&st, &format!("out.log_sigma.{i}")),
        );
        check(
            &format!("{case} eps.{i}"),
            eps,
            &raw(&st, &format!("out.eps.{i}")),
        );
    }
}

fn nvae_decode_case(case: &str) {
    let st = open_fixture(case);
    let net = load_nvae(&st);
    let eps = numbered(&st, "in.eps");
    let logits = net.decode_nchw(&eps, &[], 1.0).unwrap();
    check(case, &logits, &raw(&st, "out.logits"));
}

#[test]
fn nvae_encoder_matches_fixture_f32() {
    nvae_encode_case("network_nvae_small_encode");
}

#[test]
fn nvae_decoder_matches_fixture_f32() {
    nvae_decode_case("network_nvae_small_decode");
}

#[test]
fn cld_ncsnpp_positional_no_fir_matches_fixture_f32() {
    let st = open_fixture("network_cld_small_positional");
    let net = load_network(&st, Family::Cld);
    let t = raw(&st, "in.t").to_vec_f32().unwrap();
    let y = net.forward(&raw(&st, "in.u"), &t, None).unwrap();
    check("network_cld_small_positional", &y, &raw(&st, "out.alpha"));
}

#[test]
fn nvae_mnist_encoder_matches_fixture_f32() {
    nvae_encode_case("network_nvae_mnist_encode");
}

#[test]
fn nvae_mnist_decoder_matches_fixture_f32() {
    nvae_decode_case("network_nvae_mnist_decode");
}

#[test]
fn nvae_multiscale_encoder_with_flows_matches_fixture_f32() {
    nvae_encode_case("network_nvae_multiscale_encode");
}

#[test]
fn nvae_multiscale_decoder_with_noise_groups_matches_fixture_f32() {
    let case = "network_nvae_multiscale_decode";
    let st = open_fixture(case);
    let net = load_nvae(&st);
    let t: f32 = st.metadata()["t"].parse().unwrap();
    let logits = net
        .decode_nchw(&numbered(&st, "in.eps"), &numbered(&st, "in.noise"), t)
        .unwrap();
    check(case, &logits, &raw(&st, "out.logits"));
}

#[test]
fn ddgan_generator_with_skip_pyramids_matches_fixture_f32() {
    let st = open_fixture("network_ddgan_small_skips");
    let net = load_network(&st, Family::Ddgan);
    let t = raw(&st, "in.t").to_vec_f32().unwrap();
    let y = net
        .forward(&raw(&st, "in.x_t"), &t, Some(&raw(&st, "in.z")))
        .unwrap();
    check("network_ddgan_small_skips", &y, &raw(&st, "out.x0"));
}

#[test]
fn lsgm_score_with_fir_and_fourier_matches_fixture_f32() {
    let st = open_fixture("network_lsgm_small_fir_fourier");
    let net = load_network(&st, Family::Lsgm);
    let t = raw(&st, "in.t").to_vec_f32().unwrap();
    let y = net.forward(&raw(&st, "in.z_t"), &t, None).unwrap();
    check("network_lsgm_small_fir_fourier", &y, &raw(&st, "out.eps"));
}
