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
    match &m.network {
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

/// The fixtures' stand-in score network: α = 0.5·x − 0.25·t (x the data half of u).
struct LinearScore {
    shape: [usize; 3],
}

impl trilemma::samplers::cld::CldScore for LinearScore {
    fn alpha(&self, u: &trilemma::Tensor, t: f32) -> trilemma::Result<trilemma::Tensor> {
        use trilemma::ops::{self, Activation, AffineArgs};
        let c = self.shape[2];
        let x = ops::slice_channels(u, 0, c)?;
        let scale = trilemma::Tensor::full(0.5, &[c], trilemma::DType::F32, &Device::Cpu)?;
        let shift = trilemma::Tensor::full(-0.25 * t, &[c], trilemma::DType::F32, &Device::Cpu)?;
        ops::channel_affine(
            &x,
            &AffineArgs {
                center: None,
                scale: Some(&scale),
                shift: Some(&shift),
            },
            Activation::Identity,
        )
    }

    fn image_shape(&self) -> [usize; 3] {
        self.shape
    }
}

#[test]
fn probability_flow_ode_matches_the_reference_solve_and_its_nfe() {
    let st = common::open_fixture("sampler_cld_ode_linear_score");
    let md = st.metadata();
    let cfg = CldConfig {
        beta0: md["beta0"].parse().unwrap(),
        beta1: md["beta1"].parse().unwrap(),
        m_inv: md["m_inv"].parse().unwrap(),
        gamma: md["gamma"].parse().unwrap(),
        numerical_eps: md["numerical_eps"].parse().unwrap(),
        sampling_eps: md["sampling_eps"].parse().unwrap(),
        sscs_num_stab: 0.0,
        quadratic_striding: false,
    };
    // The fixture stores the prior sample u0 = [x; v]; replay it as standard normals.
    let u0 = st.load_any_shape("in.u0", &Device::Cpu).unwrap();
    let [b, c2, h, w] = *u0.shape() else { panic!() };
    let c = c2 / 2;
    let u = u0.to_vec_f32().unwrap();
    let (mut px, mut pv) = (Vec::new(), Vec::new());
    for s in 0..b {
        let base = s * c2 * h * w;
        px.extend_from_slice(&u[base..base + c * h * w]);
        // prior.v is the standard normal; the sampler scales it by 1/sqrt(M^-1).
        pv.extend(
            u[base + c * h * w..base + c2 * h * w]
                .iter()
                .map(|v| v * cfg.m_inv.sqrt() as f32),
        );
    }
    let tmp = common::TempDir::new("ode");
    let path = tmp.path().join("draws.safetensors");
    let tx =
        trilemma::Tensor::from_f32(&px, &[b, c, h, w], trilemma::DType::F32, &Device::Cpu).unwrap();
    let tv =
        trilemma::Tensor::from_f32(&pv, &[b, c, h, w], trilemma::DType::F32, &Device::Cpu).unwrap();
    trilemma::io::safetensors::save(
        &path,
        &[("prior.x", &tx), ("prior.v", &tv)],
        &Default::default(),
    )
    .unwrap();
    let draws = SafeTensors::open(&path).unwrap();
    let rtol: f64 = md["rtol"].parse().unwrap();
    let atol: f64 = md["atol"].parse().unwrap();
    let out = sample(
        &LinearScore { shape: [h, w, c] },
        &cfg,
        CldSampler::Ode { rtol, atol },
        0,
        b,
        &Noise::Replay(&draws),
        &Device::Cpu,
    )
    .unwrap();
    let nfe: usize = md["nfe"].parse().unwrap();
    assert_eq!(out.nfe, nfe, "NFE: engine {} vs reference {nfe}", out.nfe);
    for (label, got) in [("x", &out.x), ("v", &out.v)] {
        let want = st
            .load_any_shape(&format!("out.{label}"), &Device::Cpu)
            .unwrap();
        let (g, w) = (got.to_vec_f32().unwrap(), want.to_vec_f32().unwrap());
        let rel = rel_err(&g, &w);
        println!(
            "ode {label}: rel {rel:.3e}, max abs {:.3e}, nfe {}",
            max_abs_err(&g, &w),
            out.nfe
        );
        assert!(rel <= 1e-5, "ode {label}: rel {rel:.3e}");
    }
}
