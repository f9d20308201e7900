//! LSGM's sampler on the CPU: latent probability-flow ODE with the mixed score, NVAE decoder and output
//! mean, with the replayed prior draw against the reference run (tools/make_test_models.py): the same
//! NFE and relative L2 ≤ 1e-5 on the latent, the logits and the image. Shards equal the whole run.

mod common;

use common::{max_abs_err, rel_err, test_model};
use trilemma::io::safetensors::SafeTensors;
use trilemma::models::{Model, Network};
use trilemma::samplers::lsgm::{sample, LsgmConfig, LsgmSolver};
use trilemma::samplers::Noise;
use trilemma::Device;

fn parts(m: &Model) -> (&trilemma::models::Nvae, &trilemma::models::Ncsnpp) {
    match m.network() {
        Network::Lsgm { vae, score } => (vae, score),
        _ => panic!("not an LSGM model"),
    }
}

#[test]
fn replayed_run_matches_the_reference_run_and_its_nfe() {
    let m = Model::load(test_model("lsgm_small"), &Device::Cpu).unwrap();
    let cfg = LsgmConfig::from_config(&m.config).unwrap();
    let (vae, score) = parts(&m);
    let dir = test_model("lsgm_small");
    let draws = SafeTensors::open(dir.join("sample.noise.safetensors")).unwrap();
    let want = SafeTensors::open(dir.join("sample.expected.safetensors")).unwrap();
    let out = sample(
        vae,
        score,
        &cfg,
        LsgmSolver::Rk45,
        2,
        &Noise::Replay(&draws),
        &Device::Cpu,
    )
    .unwrap();
    let nfe: usize = want.metadata()["nfe"].parse().unwrap();
    assert_eq!(out.nfe, nfe, "NFE: engine {} vs reference {nfe}", out.nfe);
    for (label, got) in [
        ("z_0", &out.z),
        ("logits", &out.logits),
        ("image", &out.image),
    ] {
        let w = want.load_any_shape(label, &Device::Cpu).unwrap();
        assert_eq!(got.shape(), w.shape(), "{label}");
        let (g, w) = (got.to_vec_f32().unwrap(), w.to_vec_f32().unwrap());
        let rel = rel_err(&g, &w);
        println!(
            "lsgm {label}: rel {rel:.3e}, max abs {:.3e}, nfe {}",
            max_abs_err(&g, &w),
            out.nfe
        );
        assert!(rel <= 1e-5, "{label}: rel {rel:.3e}");
    }
    let img = out.image.to_vec_f32().unwrap();
    assert!(img.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn shards_reproduce_the_whole_run() {
    let m = Model::load(test_model("lsgm_small"), &Device::Cpu).unwrap();
    let cfg = LsgmConfig::from_config(&m.config).unwrap();
    let (vae, score) = parts(&m);
    let run = |solver, b, first_sample| {
        sample(
            vae,
            score,
            &cfg,
            solver,
            b,
            &Noise::Philox {
                seed: 5,
                first_sample,
            },
            &Device::Cpu,
        )
        .unwrap()
        .image
        .to_vec_f32()
        .unwrap()
    };
    // The ODE is solved over the batch as one system (as the official sampler does), so its step
    // sizes, and therefore each sample's result, depend on the batch: shards agree with the whole run
    // to the solver tolerance, not bit for bit.
    let whole = run(LsgmSolver::Rk45, 2, 0);
    let mut shards = run(LsgmSolver::Rk45, 1, 0);
    shards.extend(run(LsgmSolver::Rk45, 1, 1));
    let rel = rel_err(&shards, &whole);
    println!("lsgm shards vs whole: rel {rel:.3e}");
    assert!(rel <= 1e-3, "rel {rel:.3e}");

    // The fixed-step solver shares one grid across the batch: shards are the whole run, bit for bit.
    let rk4 = LsgmSolver::Rk4 { steps: 3 };
    let whole = run(rk4, 2, 0);
    let mut shards = run(rk4, 1, 0);
    shards.extend(run(rk4, 1, 1));
    assert_eq!(shards.len(), whole.len());
    let same = shards
        .iter()
        .zip(&whole)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(
        same,
        "rk4 shards differ: rel {:.3e}",
        rel_err(&shards, &whole)
    );
}

#[test]
fn the_trained_vae_reconstructs_its_own_samples() {
    use trilemma::samplers::lsgm::reconstruct;
    // lsgm-digits: decode 8 sampled images, encode and decode them again. A working encoder path
    // brings each image back close to itself: much closer than to the other images of the batch.
    let m = trilemma::models::defaults::load("lsgm-digits", &Device::Cpu).unwrap();
    let cfg = LsgmConfig::from_config(&m.config).unwrap();
    let (vae, score) = parts(&m);
    let noise = Noise::Philox {
        seed: 3,
        first_sample: 0,
    };
    let b = 8;
    let out = sample(
        vae,
        score,
        &cfg,
        LsgmSolver::Rk4 { steps: 10 },
        b,
        &noise,
        &Device::Cpu,
    )
    .unwrap();
    let rec = reconstruct(vae, &out.image, &noise, &Device::Cpu).unwrap();
    assert_eq!(rec.image.shape(), out.image.shape());
    assert_eq!(
        rec.z.shape(),
        out.z.shape(),
        "the score model's latent shape"
    );
    let (x, y) = (
        out.image.to_vec_f32().unwrap(),
        rec.image.to_vec_f32().unwrap(),
    );
    let per = x.len() / b;
    let dist = |i: usize, j: usize| -> f64 {
        x[i * per..(i + 1) * per]
            .iter()
            .zip(&y[j * per..(j + 1) * per])
            .map(|(a, b)| (a - b).abs() as f64)
            .sum::<f64>()
            / per as f64
    };
    let own: f64 = (0..b).map(|i| dist(i, i)).sum::<f64>() / b as f64;
    let other: f64 = (0..b).map(|i| dist(i, (i + 1) % b)).sum::<f64>() / b as f64;
    println!("mean |x − rec(x)|: own {own:.4}, another image's {other:.4}");
    assert!(own < 0.5 * other, "own {own:.4} vs other {other:.4}");
}
