//! CLD's SSCS and Euler–Maruyama samplers (with the denoising step) on the CPU: runs with replayed draws
//! against the reference runs (tools/make_test_models.py; 5 network evaluations, relative L2 ≤ 1e-5 on
//! x and v), shards of a Philox run equal to the whole run bit for bit, and bad settings as errors.

mod common;

use common::{max_abs_err, rel_err, test_model};
use trilemma::io::safetensors::SafeTensors;
use trilemma::models::{Model, Network};
use trilemma::samplers::cld::{sample, CldConfig, CldSampler};
use trilemma::samplers::Noise;
use trilemma::Device;

fn setup() -> (Model, CldConfig) {
    let m = Model::load(test_model("cld_small"), &Device::Cpu).unwrap();
    let cfg = CldConfig::from_config(&m.config).unwrap();
    (m, cfg)
}

fn net(m: &Model) -> &trilemma::models::Ncsnpp {
    match m.network() {
        Network::Cld(n) => n,
        _ => panic!("not a CLD model"),
    }
}

fn replay(sampler: CldSampler, name: &str) {
    let (m, cfg) = setup();
    let dir = test_model("cld_small");
    let draws = SafeTensors::open(dir.join(format!("sample_{name}.noise.safetensors"))).unwrap();
    let steps: usize = draws.metadata()["n_discrete_steps"].parse().unwrap();
    let want = SafeTensors::open(dir.join(format!("sample_{name}.expected.safetensors"))).unwrap();
    let out = sample(
        net(&m),
        &cfg,
        sampler,
        steps,
        2,
        &Noise::Replay(&draws),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(out.nfe, steps);
    for (label, got) in [("x", &out.x), ("v", &out.v)] {
        let w = want.load_any_shape(label, &Device::Cpu).unwrap();
        assert_eq!(got.shape(), w.shape());
        let (g, w) = (got.to_vec_f32().unwrap(), w.to_vec_f32().unwrap());
        let rel = rel_err(&g, &w);
        println!(
            "{name} {label}: rel {rel:.3e}, max abs {:.3e}",
            max_abs_err(&g, &w)
        );
        assert!(rel <= 1e-5, "{name} {label}: rel {rel:.3e}");
    }
}

#[test]
fn replayed_sscs_run_matches_the_reference_run() {
    replay(CldSampler::Sscs, "sscs");
}

#[test]
fn replayed_euler_maruyama_run_matches_the_reference_run() {
    replay(CldSampler::EulerMaruyama, "em");
}

#[test]
fn sscs_shards_reproduce_the_whole_run_bit_for_bit() {
    let (m, cfg) = setup();
    let run = |batch, first_sample| {
        sample(
            net(&m),
            &cfg,
            CldSampler::Sscs,
            3,
            batch,
            &Noise::Philox {
                seed: 9,
                first_sample,
            },
            &Device::Cpu,
        )
        .unwrap()
        .x
        .to_vec_f32()
        .unwrap()
    };
    let whole = run(3, 0);
    let mut shards = run(1, 0);
    shards.extend(run(2, 1));
    let differing = whole
        .iter()
        .zip(&shards)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(differing, 0);
}

#[test]
fn bad_settings_are_errors() {
    let (m, cfg) = setup();
    let noise = Noise::Philox {
        seed: 1,
        first_sample: 0,
    };
    for (steps, batch) in [(1, 2), (3, 0)] {
        let err = match sample(
            net(&m),
            &cfg,
            CldSampler::Sscs,
            steps,
            batch,
            &noise,
            &Device::Cpu,
        ) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("ran with {steps} steps, batch {batch}"),
        };
        assert!(err.contains("steps, batch"), "{err}");
    }
}

#[test]
fn probability_flow_ode_matches_the_reference_solve_and_its_nfe() {
    let fx = common::cld_ode_fixture::load();
    let out = sample(
        &fx.net,
        &fx.cfg,
        fx.sampler,
        0,
        fx.batch,
        &Noise::Replay(&fx.draws),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(
        out.nfe, fx.nfe,
        "NFE: engine {} vs reference {}",
        out.nfe, fx.nfe
    );
    for ((label, got), w) in [("x", &out.x), ("v", &out.v)].into_iter().zip(&fx.want) {
        let g = got.to_vec_f32().unwrap();
        let rel = rel_err(&g, w);
        println!(
            "ode {label}: rel {rel:.3e}, max abs {:.3e}, nfe {}",
            max_abs_err(&g, w),
            out.nfe
        );
        assert!(rel <= 1e-5, "ode {label}: rel {rel:.3e}");
    }
}
