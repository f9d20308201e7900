//! The precision setting (`trilemma::Precision`, `--precision`) through the front door and the command
//! line: a sampling run (the small DDGAN test model, 4 steps) at 3xTF32 and bf16 on the GPU under test
//! (a real one or the emulator) against the fp32 run of the same seed, the device's own setting restored after the run, and the CPU's
//! refusal of the tensor-core precisions in the library's words and the CLI's.

mod common;

use trilemma::{BatchSize, Error, Model, Precision, SampleOptions};

#[test]
fn every_precision_samples_close_to_fp32_and_leaves_the_device_as_it_was() {
    let Some(gpu) = common::gpu_or_skip(
        "every_precision_samples_close_to_fp32_and_leaves_the_device_as_it_was",
    ) else {
        return;
    };
    let model = Model::load(common::test_model("ddgan_small"), &gpu).unwrap();
    let run = |p: Precision| {
        let o = SampleOptions::new(1)
            .seed(7)
            .batch(BatchSize::Fixed(1))
            .precision(p);
        let images = model.sample(&o).unwrap();
        assert_eq!(
            gpu.precision(),
            Precision::Fp32,
            "{p}: the device's setting restored"
        );
        images.values
    };
    let fp32 = run(Precision::Fp32);
    // The fp32-accurate and the coarsest tensor-core precisions (every precision's convolution is
    // checked against its rounded operands in tests/ops/conv2d.rs; a whole run on the emulator costs
    // seconds per precision).
    for p in [Precision::Tf32x3, Precision::Bf16] {
        let got = run(p);
        let max = got
            .iter()
            .zip(&fp32)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let rel = common::rel_err(&got, &fp32);
        eprintln!("{p}: images rel-L2 {rel:.2e}, max abs {max:.2e} against fp32");
        // Images in [0, 1]: 3xTF32 within one level of 255 (fp32 sums in another order); the
        // rounded precisions within 1e-2 relative (their network tolerance, through 4 DDGAN steps).
        if p == Precision::Tf32x3 {
            assert!(max <= 1.0 / 255.0, "{p}: max abs {max:.3e}");
        } else {
            assert!(rel <= 1e-2, "{p}: rel-L2 {rel:.3e} (max abs {max:.3e})");
        }
    }
}

#[test]
fn the_cpu_refuses_the_tensor_core_precisions_by_name() {
    let model = Model::load("ddgan-digits", &trilemma::Device::Cpu).unwrap();
    let e = model
        .sample(&SampleOptions::new(2).precision(Precision::Bf16))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::BadSetting {
                what: "precision",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("bf16"), "{e}");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_trilemma"))
        .args([
            "sample",
            "--model",
            "ddgan-digits",
            "--device",
            "cpu",
            "--precision",
            "bf16",
            "--num",
            "2",
            "--out",
            "unused.npz",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", common::output_text(&o));
    let text = common::output_text(&o);
    assert!(text.contains("--precision must be"), "{text}");
    assert!(!std::path::Path::new("unused.npz").exists());
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_trilemma"))
        .args(["sample", "--precision", "fp8", "--out", "unused.npz"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", common::output_text(&o));
    assert!(common::output_text(&o).contains("fp8"));
}
