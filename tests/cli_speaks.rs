//! The command line in the user's words: `forward` takes embedded model names and compares against
//! expected outputs (`--expect`, exit 0 pass / 1 fail, rel-L2 and max-abs per tensor); an output path
//! in a missing folder is an error about the output; `--noise-from` takes its sample count from the
//! file; counts in the run summary are in the right number.

#[macro_use]
mod common;

use std::process::Output;

use common::{output_text, test_model, TempDir};
use trilemma::io::safetensors::{self, SafeTensors};
use trilemma::{Device, Tensor};

fn run(args: &[&str]) -> Output {
    trilemma_command!()
        .args(args)
        .output()
        .expect("run trilemma")
}

#[test]
fn forward_compares_with_expected_outputs_and_says_pass_or_fail() {
    let tmp = TempDir::new("expect");
    let dir = test_model("ddgan_small");
    let inputs = dir.join("forward_generator.inputs.safetensors");
    let expected = dir.join("forward_generator.expected.safetensors");
    let (m, i, e) = (
        dir.to_str().unwrap(),
        inputs.to_str().unwrap(),
        expected.to_str().unwrap(),
    );
    let o = run(&[
        "forward", "--model", m, "--inputs", i, "--expect", e, "--device", "cpu",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));
    assert!(
        out.contains("x0") && out.contains("rel-L2") && out.contains("max-abs"),
        "{out}"
    );
    assert!(out.contains("pass: 1 expected tensor compared"), "{out}");

    // The expected x0 moved by 1%: outside the default rtol (1e-4), exit 1.
    let st = SafeTensors::open(&expected).unwrap();
    let x0 = st.load_any_shape("x0", &Device::Cpu).unwrap();
    let moved: Vec<f32> = x0.to_vec_f32().unwrap().iter().map(|v| v * 1.01).collect();
    let moved = Tensor::from_f32(&moved, x0.shape(), x0.dtype(), &Device::Cpu).unwrap();
    let off = tmp.path().join("off.safetensors");
    safetensors::save(&off, &[("x0", &moved)], &Default::default()).unwrap();
    let o = run(&[
        "forward",
        "--model",
        m,
        "--inputs",
        i,
        "--expect",
        off.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{}", output_text(&o));
    assert!(out.contains("FAIL"), "{out}");
    // ... and inside a tolerance that allows it.
    let o = run(&[
        "forward",
        "--model",
        m,
        "--inputs",
        i,
        "--expect",
        off.to_str().unwrap(),
        "--rtol",
        "0.02",
        "--device",
        "cpu",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", output_text(&o));

    // An expected tensor the call does not produce is an error (2) naming it.
    let wrong = tmp.path().join("wrong.safetensors");
    safetensors::save(&wrong, &[("alpha", &moved)], &Default::default()).unwrap();
    let o = run(&[
        "forward",
        "--model",
        m,
        "--inputs",
        i,
        "--expect",
        wrong.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(output_text(&o).contains("`alpha`"), "{}", output_text(&o));
}

#[test]
fn forward_takes_an_embedded_model_by_name() {
    let tmp = TempDir::new("forward-embedded");
    let ddgan = test_model("ddgan_small");
    // ddgan-digits: 1 channel, 16×16, nz 16; inputs from the test model's file would not fit, so
    // write some.
    let t = |v: Vec<f32>, s: &[usize]| {
        Tensor::from_f32(&v, s, trilemma::DType::F32, &Device::Cpu).unwrap()
    };
    let x_t = t(common::random_vec(2 * 256, 5), &[2, 1, 16, 16]);
    let tt = t(vec![3.0, 1.0], &[2]);
    let z = t(common::random_vec(2 * 16, 6), &[2, 16]);
    let inputs = tmp.path().join("in.safetensors");
    safetensors::save(
        &inputs,
        &[("x_t", &x_t), ("t", &tt), ("z", &z)],
        &Default::default(),
    )
    .unwrap();
    let out = tmp.path().join("out.safetensors");
    let o = run(&[
        "forward",
        "--model",
        "ddgan-digits",
        "--inputs",
        inputs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", output_text(&o));
    let got = SafeTensors::open(&out).unwrap();
    assert_eq!(got.entry("x0").unwrap().shape, vec![2, 1, 16, 16]);
    assert!(ddgan.is_dir());
}

#[test]
fn sample_speaks_of_the_output_the_noise_files_count_and_its_numbers() {
    let tmp = TempDir::new("speaks");
    let model = test_model("ddgan_small");
    let m = model.to_str().unwrap();
    // A folder that does not exist: an error about the output, exit 2.
    let missing = tmp.path().join("no-such-folder").join("x.png");
    let o = run(&[
        "sample",
        "--model",
        m,
        "--num",
        "1",
        "--out",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("output") && err.contains("does not exist"),
        "{err}"
    );

    // --noise-from without --num: the file's batch (3); with another --num: an error naming both.
    let noise = model.join("sample.noise.safetensors");
    let out = tmp.path().join("x.npz");
    let o = run(&[
        "sample",
        "--model",
        m,
        "--noise-from",
        noise.to_str().unwrap(),
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", output_text(&o));
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(summary.starts_with("3 images ("), "{summary}");
    assert!(summary.contains("over 1 batch of 3"), "{summary}");
    let o = run(&[
        "sample",
        "--model",
        m,
        "--noise-from",
        noise.to_str().unwrap(),
        "--num",
        "5",
        "--device",
        "cpu",
        "--out",
        tmp.path().join("y.npz").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--num") && err.contains("(3)") && err.contains("5"),
        "{err}"
    );

    // One image: "1 image", "1 batch".
    let o = run(&[
        "sample",
        "--model",
        m,
        "--num",
        "1",
        "--device",
        "cpu",
        "--out",
        tmp.path().join("one.png").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", output_text(&o));
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(
        summary.starts_with("1 image (") && summary.contains("over 1 batch of 1"),
        "{summary}"
    );
}

/// A network input of the wrong size is refused before the network runs, in the user's layout
/// (NCHW), naming the file and the tensor; so is a z whose batch is not x_t's.
#[test]
fn shape_errors_are_in_the_users_layout_and_name_the_file() {
    let tmp = TempDir::new("shape-words");
    let dir = test_model("ddgan_small");
    let t = |v: Vec<f32>, s: &[usize]| {
        Tensor::from_f32(&v, s, trilemma::DType::F32, &Device::Cpu).unwrap()
    };
    let cases = [
        (
            vec![2, 3, 32, 32],
            vec![2, 8],
            "input `x_t` has shape [2, 3, 32, 32], expected [B, 3, 16, 16] (NCHW)",
        ),
        (
            vec![2, 3, 16, 16],
            vec![3, 8],
            "input `z` has batch 3, but `x_t` has 2",
        ),
        (
            vec![2, 3, 16, 16],
            vec![2, 5],
            "input `z` has shape [2, 5], expected [B, 8]",
        ),
    ];
    for (x_shape, z_shape, want) in cases {
        let x_t = t(common::random_vec(x_shape.iter().product(), 1), &x_shape);
        let z = t(common::random_vec(z_shape.iter().product(), 2), &z_shape);
        let tt = t(vec![1.0, 2.0], &[2]);
        let inputs = tmp.path().join("in.safetensors");
        safetensors::save(
            &inputs,
            &[("x_t", &x_t), ("t", &tt), ("z", &z)],
            &Default::default(),
        )
        .unwrap();
        let out = tmp.path().join("out.safetensors");
        let o = run(&[
            "forward",
            "--model",
            dir.to_str().unwrap(),
            "--inputs",
            inputs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--device",
            "cpu",
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{err}");
        assert!(err.contains("in.safetensors"), "{err}");
        assert!(!out.exists());
    }
}
