//! `sample` on the GPU against the CPU on the three default models, with identical Philox noise: the
//! same sampler, the same draws, fp32 networks on both sides. Skips without a GPU unless
//! TRILEMMA_REQUIRE_GPU=1.
//!
//! Tolerances, on images in [0, 1]: each network call agrees to ~1e-6 relative (fp32 sum order;
//! tests/cuda_networks.rs), and a sampler carries that through its steps. DDGAN (4 calls, the last
//! step noiseless) and SSCS (a stochastic, contracting chain) must agree to relative L2 ≤ 1e-3. The
//! adaptive LSGM ODE may take a different step sequence when an error estimate lands on the other side
//! of the tolerance, which moves the result by up to the solver tolerance: ≤ 1e-2.

mod common;

use common::{gpu_or_skip, max_abs_err, rel_err};
use trilemma::models::defaults;
use trilemma::samplers::run::Plan;
use trilemma::samplers::Noise;
use trilemma::Device;

#[test]
fn default_models_sample_the_same_images_on_gpu_and_cpu() {
    let Some(gpu) = gpu_or_skip("default_models_sample_the_same_images_on_gpu_and_cpu") else {
        return;
    };
    for (name, steps, tol) in [
        ("ddgan-digits", None, 1e-3),
        ("cld-digits", Some(20), 1e-3),
        ("lsgm-digits", None, 1e-2),
    ] {
        let noise = Noise::Philox {
            seed: 7,
            first_sample: 3,
        };
        let run = |device: &Device| {
            let model = defaults::load(name, device).unwrap();
            let plan = Plan::new(&model, None, steps).unwrap();
            let (img, nfe) = plan
                .sample(&model, 4, &noise, device)
                .unwrap_or_else(|e| panic!("{name} on {}: {e}", device.describe()));
            (img.to_vec_f32().unwrap(), nfe)
        };
        let (want, nfe_cpu) = run(&Device::Cpu);
        let (got, nfe_gpu) = run(&gpu);
        assert_eq!(got.len(), want.len(), "{name}");
        assert!(
            got.iter().all(|v| v.is_finite()),
            "{name}: non-finite pixels"
        );
        let rel = rel_err(&got, &want);
        println!(
            "{name}: rel {rel:.2e}, max abs {:.2e}, NFE cpu {nfe_cpu} gpu {nfe_gpu}",
            max_abs_err(&got, &want)
        );
        assert!(rel <= tol, "{name}: rel {rel:.3e} > {tol}");
    }
}
