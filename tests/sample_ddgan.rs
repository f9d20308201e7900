//! DDGAN's whole sampling loop on the CPU: a run with replayed draws against the float64 reference run
//! (tools/make_test_models.py, relative L2 ≤ 1e-5 over 4 generator calls), shards of a Philox run equal
//! to the whole run bit for bit, and a state that stops being finite reported with its step.

mod common;

use common::{max_abs_err, rel_err, test_model, TempDir};
use trilemma::io::safetensors::{self, SafeTensors};
use trilemma::models::{Model, Network};
use trilemma::samplers::ddgan::{sample, PosteriorCoefficients};
use trilemma::samplers::Noise;
use trilemma::{Device, Error, Tensor};

fn setup() -> (Model, PosteriorCoefficients) {
    let m = Model::load(test_model("ddgan_small"), &Device::Cpu).unwrap();
    let c = &m.config;
    let coefs = PosteriorCoefficients::new(
        c.usize("num_timesteps").unwrap(),
        c.f64("beta_min").unwrap(),
        c.f64("beta_max").unwrap(),
    )
    .unwrap();
    (m, coefs)
}

fn generator(m: &Model) -> &trilemma::models::Ncsnpp {
    match m.network() {
        Network::Ddgan(g) => g,
        _ => panic!("not a DDGAN model"),
    }
}

#[test]
fn replayed_run_matches_the_reference_run() {
    let (m, coefs) = setup();
    let draws =
        SafeTensors::open(test_model("ddgan_small").join("sample.noise.safetensors")).unwrap();
    let want = SafeTensors::open(test_model("ddgan_small").join("sample.expected.safetensors"))
        .unwrap()
        .load_any_shape("x_0", &Device::Cpu)
        .unwrap();
    let x = sample(
        generator(&m),
        &coefs,
        3,
        &Noise::Replay(&draws),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(x.shape(), want.shape());
    let (x, w) = (x.to_vec_f32().unwrap(), want.to_vec_f32().unwrap());
    let rel = rel_err(&x, &w);
    println!(
        "ddgan run: rel {rel:.3e}, max abs {:.3e}",
        max_abs_err(&x, &w)
    );
    assert!(rel <= 1e-5, "rel {rel:.3e}");
}

#[test]
fn shards_reproduce_the_whole_run_bit_for_bit() {
    let (m, coefs) = setup();
    let g = generator(&m);
    let whole = sample(
        g,
        &coefs,
        5,
        &Noise::Philox {
            seed: 42,
            first_sample: 0,
        },
        &Device::Cpu,
    )
    .unwrap()
    .to_vec_f32()
    .unwrap();
    let a = sample(
        g,
        &coefs,
        2,
        &Noise::Philox {
            seed: 42,
            first_sample: 0,
        },
        &Device::Cpu,
    )
    .unwrap();
    let b = sample(
        g,
        &coefs,
        3,
        &Noise::Philox {
            seed: 42,
            first_sample: 2,
        },
        &Device::Cpu,
    )
    .unwrap();
    let mut shards = a.to_vec_f32().unwrap();
    shards.extend(b.to_vec_f32().unwrap());
    assert_eq!(whole.len(), shards.len());
    let differing = whole
        .iter()
        .zip(&shards)
        .filter(|(x, y)| x.to_bits() != y.to_bits())
        .count();
    assert_eq!(
        differing, 0,
        "{differing} elements differ between the whole run and its shards"
    );
    // Another seed gives other images.
    let other = sample(
        g,
        &coefs,
        2,
        &Noise::Philox {
            seed: 43,
            first_sample: 0,
        },
        &Device::Cpu,
    )
    .unwrap()
    .to_vec_f32()
    .unwrap();
    assert_ne!(other, shards[..other.len()]);
}

#[test]
fn a_run_that_leaves_the_finite_range_names_the_step() {
    let (m, coefs) = setup();
    let tmp = TempDir::new("nan");
    let src =
        SafeTensors::open(test_model("ddgan_small").join("sample.noise.safetensors")).unwrap();
    let mut tensors: Vec<(String, Tensor)> = src
        .names()
        .map(|n| (n.to_string(), src.load_any_shape(n, &Device::Cpu).unwrap()))
        .collect();
    for (n, t) in tensors.iter_mut() {
        if n == "noise.1" {
            // Finite in the file (the replay refuses non-finite draws), overflowing in the run.
            let v = vec![f32::MAX; t.elem_count()];
            *t = Tensor::from_f32(&v, t.shape(), t.dtype(), &Device::Cpu).unwrap();
        }
    }
    let path = tmp.path().join("draws.safetensors");
    let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    safetensors::save(&path, &refs, src.metadata()).unwrap();
    let draws = SafeTensors::open(&path).unwrap();
    match sample(
        generator(&m),
        &coefs,
        3,
        &Noise::Replay(&draws),
        &Device::Cpu,
    ) {
        Err(Error::NonFinite { tensor, step }) => {
            // Overflow shows once the step that drew the noise (j = 1) feeds the next generator call.
            assert_eq!(tensor, "x");
            assert!((1..=3).contains(&step), "step {step}");
        }
        Err(e) => panic!("expected a non-finite error, got {e}"),
        Ok(_) => panic!("a run with infinite noise finished"),
    }
}

#[test]
fn a_replay_file_of_the_wrong_shape_names_the_draw() {
    let (m, coefs) = setup();
    let draws =
        SafeTensors::open(test_model("ddgan_small").join("sample.noise.safetensors")).unwrap();
    let err = match sample(
        generator(&m),
        &coefs,
        2,
        &Noise::Replay(&draws),
        &Device::Cpu,
    ) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a batch-3 replay file drove a batch-2 run"),
    };
    assert!(
        err.contains("x_T") && err.contains("[2, 3, 16, 16]"),
        "{err}"
    );
}
