//! The probability-flow ODE solvers on a GPU, their f64 state on the device with the networks: against
//! the reference solves (the same NFE as SciPy's RK45 and the CPU run, outputs within the GPU fp32
//! standard, relative L2 ≤ 1e-4; the CLD stand-in network is exact on both, so there ≤ 1e-5 as on the
//! CPU), and, on the emulator, what they copy back: RK45 one f64 per step attempt (the error norm)
//! plus three for the initial step size, RK4 nothing until the end; each run one word per watched
//! tensor at the end. Skips without a GPU unless TRILEMMA_REQUIRE_GPU=1.
//!
//! The emulator's counters are global to the process, so these tests take one lock.

mod common;

use std::sync::Mutex;

use common::{gpu_or_skip, max_abs_err, rel_err, test_model};
use trilemma::io::safetensors::SafeTensors;
use trilemma::models::{Model, Network};
use trilemma::samplers::lsgm::{sample_latent, LsgmConfig, LsgmSolver};
use trilemma::samplers::Noise;
use trilemma::Device;

static COUNTERS: Mutex<()> = Mutex::new(());

/// Device-to-host copies made by `f` (None off the emulator, which has no counters).
fn dtoh_during<T>(f: impl FnOnce() -> T) -> (T, Option<u64>) {
    let emulated = trilemma::device::is_emulated();
    let before = emulated.then(trilemma_cuda_emu::stats);
    let out = f();
    let copies = before.map(|b| trilemma_cuda_emu::stats().since(&b).dtoh.count);
    (out, copies)
}

/// RK45's evaluations for `attempts` step attempts: two for the initial step size, six per attempt
/// (first same as last).
fn rk45_attempts(nfev: usize) -> u64 {
    assert_eq!((nfev - 2) % 6, 0, "{nfev} evaluations");
    ((nfev - 2) / 6) as u64
}

#[test]
fn cld_rk45_on_the_gpu_is_the_reference_solve_with_one_read_per_step() {
    let Some(dev) =
        gpu_or_skip("cld_rk45_on_the_gpu_is_the_reference_solve_with_one_read_per_step")
    else {
        return;
    };
    let _serial = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let fx = common::cld_ode_fixture::load();
    let (out, copies) = dtoh_during(|| {
        trilemma::samplers::cld::sample(
            &fx.net,
            &fx.cfg,
            fx.sampler,
            0,
            fx.batch,
            &Noise::Replay(&fx.draws),
            &dev,
        )
        .unwrap()
    });
    assert!(out.x.device().is_cuda());
    assert_eq!(
        out.nfe, fx.nfe,
        "NFE: gpu {} vs reference {}",
        out.nfe, fx.nfe
    );
    for ((label, got), w) in [("x", &out.x), ("v", &out.v)].into_iter().zip(&fx.want) {
        let g = got.to_vec_f32().unwrap();
        let rel = rel_err(&g, w);
        println!(
            "cld ode {label} (gpu): rel {rel:.3e}, max abs {:.3e}",
            max_abs_err(&g, w)
        );
        assert!(rel <= 1e-5, "{label}: rel {rel:.3e}");
    }
    if let Some(copies) = copies {
        // NFE = solver evaluations + the denoising step; u's and x's watch words at the end.
        let attempts = rk45_attempts(out.nfe - 1);
        println!("cld ode: {copies} device-to-host copies for {attempts} step attempts");
        assert_eq!(copies, 3 + attempts + 2);
    }
}

fn lsgm_small(dev: &Device) -> (Model, LsgmConfig) {
    let m = Model::load(test_model("lsgm_small"), dev).unwrap();
    let cfg = LsgmConfig::from_config(&m.config).unwrap();
    (m, cfg)
}

fn score(m: &Model) -> &trilemma::models::Ncsnpp {
    match m.network() {
        Network::Lsgm { score, .. } => score,
        _ => panic!("not an LSGM model"),
    }
}

#[test]
fn lsgm_rk45_on_the_gpu_is_the_reference_solve_with_one_read_per_step() {
    let Some(dev) =
        gpu_or_skip("lsgm_rk45_on_the_gpu_is_the_reference_solve_with_one_read_per_step")
    else {
        return;
    };
    let _serial = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let dir = test_model("lsgm_small");
    let draws = SafeTensors::open(dir.join("sample.noise.safetensors")).unwrap();
    let want = SafeTensors::open(dir.join("sample.expected.safetensors")).unwrap();
    let nfe: usize = want.metadata()["nfe"].parse().unwrap();
    let (m, cfg) = lsgm_small(&dev);
    let ((z, got_nfe), copies) = dtoh_during(|| {
        sample_latent(
            score(&m),
            &cfg,
            LsgmSolver::Rk45,
            2,
            &Noise::Replay(&draws),
            &dev,
        )
        .unwrap()
    });
    assert!(z.device().is_cuda());
    assert_eq!(got_nfe, nfe, "NFE: gpu {got_nfe} vs reference {nfe}");
    let z = trilemma::ops::nhwc_to_nchw(&z)
        .unwrap()
        .to_vec_f32()
        .unwrap();
    let w = common::fixture_values(&want, "z_0");
    let rel = rel_err(&z, &w);
    println!(
        "lsgm z_0 (gpu): rel {rel:.3e}, max abs {:.3e}",
        max_abs_err(&z, &w)
    );
    assert!(rel <= 1e-4, "z_0: rel {rel:.3e}");
    if let Some(copies) = copies {
        let attempts = rk45_attempts(nfe);
        println!("lsgm ode: {copies} device-to-host copies for {attempts} step attempts");
        assert_eq!(copies, 3 + attempts + 1);
    }
}

#[test]
fn lsgm_rk4_on_the_gpu_reads_nothing_back_until_the_end() {
    let Some(dev) = gpu_or_skip("lsgm_rk4_on_the_gpu_reads_nothing_back_until_the_end") else {
        return;
    };
    let _serial = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let noise = Noise::Philox {
        seed: 3,
        first_sample: 0,
    };
    let run = |dev: &Device, steps: usize| {
        let (m, cfg) = lsgm_small(dev);
        let solver = LsgmSolver::Rk4 { steps };
        dtoh_during(|| sample_latent(score(&m), &cfg, solver, 2, &noise, dev).unwrap())
    };
    let ((want, _), _) = run(&Device::Cpu, 3);
    let ((got, nfe), copies3) = run(&dev, 3);
    assert_eq!(nfe, 12);
    let (g, w) = (got.to_vec_f32().unwrap(), want.to_vec_f32().unwrap());
    let rel = rel_err(&g, &w);
    println!(
        "lsgm rk4 (gpu vs cpu): rel {rel:.3e}, max abs {:.3e}",
        max_abs_err(&g, &w)
    );
    assert!(rel <= 1e-4, "rel {rel:.3e}");
    if let Some(copies3) = copies3 {
        let (_, copies1) = run(&dev, 1);
        println!("lsgm rk4: {copies1:?} device-to-host copies for 1 step, {copies3} for 3");
        // The watch word only, whatever the step count.
        assert_eq!((copies1, copies3), (Some(1), 1));
    }
}
