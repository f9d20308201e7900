//! The library's front door as a user calls it: `Model::load` by embedded name or directory,
//! `Model::sample` with `SampleOptions` (the CLI's images for the same seed, shards and batches that
//! change nothing, settings checked with errors in the library's words), and `Model::forward` on
//! tensors in memory (the same outputs as the file-based call; inputs checked by name).

mod common;

use common::{npz_u8 as read_npz, output_text, random_vec, test_model, TempDir};
use trilemma::io::safetensors::SafeTensors;
use trilemma::{BatchSize, DType, Device, Error, Model, Part, SampleOptions, Sampler, Tensor};

/// NCHW values in [0, 1] → NHWC bytes, quantised as the image writers do.
fn to_nhwc_u8(values: &[f32], [n, c, h, w]: [usize; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len());
    for i in 0..n {
        for y in 0..h {
            for x in 0..w {
                for ch in 0..c {
                    let v = values[((i * c + ch) * h + y) * w + x];
                    out.push((255.0 * v + 0.5).clamp(0.0, 255.0) as u8);
                }
            }
        }
    }
    out
}

#[test]
fn sample_gives_the_clis_images_for_the_same_seed() {
    let tmp = TempDir::new("front-sample");
    let out = tmp.path().join("x.npz");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_trilemma"))
        .args([
            "sample",
            "--model",
            "ddgan-digits",
            "--num",
            "6",
            "--batch",
            "4",
            "--seed",
            "7",
            "--device",
            "cpu",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", output_text(&o));
    let (cli, shape) = read_npz(&out);
    let model = Model::load("ddgan-digits", &Device::Cpu).unwrap();
    let images = model
        .sample(&SampleOptions::new(6).seed(7).batch(BatchSize::Fixed(4)))
        .unwrap();
    assert_eq!(images.shape, [6, 1, 16, 16]);
    assert_eq!(images.first, 0);
    // The npz holds the images NHWC as uint8: identical bytes.
    assert_eq!(shape, vec![6, 16, 16, 1]);
    assert_eq!(to_nhwc_u8(&images.values, images.shape), cli);
    assert!(images.values.iter().all(|v| (0.0..=1.0).contains(v)));
    assert!(
        images.values.iter().any(|&v| v > 0.1) && images.values.iter().any(|&v| v < 0.9),
        "images are not all one value"
    );
}

#[test]
fn shards_and_batches_change_no_image_and_progress_counts_the_run() {
    let model = Model::load(test_model("cld_small"), &Device::Cpu).unwrap();
    let opts = SampleOptions::new(5)
        .seed(3)
        .sampler(Sampler::Sscs)
        .steps(3)
        .batch(BatchSize::Fixed(5));
    let whole = model.sample(&opts).unwrap();
    let seen = std::cell::RefCell::new(Vec::new());
    let progress = |p: &trilemma::Progress| seen.borrow_mut().push(*p);
    let shard = model
        .sample(
            &opts
                .clone()
                .batch(BatchSize::Fixed(2))
                .shard(1, 2)
                .progress(&progress),
        )
        .unwrap();
    // Shard 1 of 2 over 5 images is samples 2..5, in batches of 2 and 1.
    assert_eq!(shard.first, 2);
    assert_eq!(shard.shape[0], 3);
    let per = whole.values.len() / 5;
    assert_eq!(shard.values, whole.values[2 * per..].to_vec());
    // Reports after each batch (and in between, on a timer): counts only grow, and the last one has
    // the whole shard: 3 images in 2 batches of 3 SSCS steps each, all 6 network calls issued.
    let seen = seen.into_inner();
    assert!(!seen.is_empty());
    for w in seen.windows(2) {
        assert!(w[1].evaluations >= w[0].evaluations && w[1].images_done >= w[0].images_done);
    }
    let last = seen.last().unwrap();
    assert_eq!((last.images_done, last.images_total), (3, 3));
    assert_eq!((last.batches_done, last.batches_total), (2, 2));
    assert_eq!(last.nfe, 2 * 3);
    assert_eq!((last.evaluations, last.evaluations_expected), (6, Some(6)));
    // A run the caller stops after its first batch.
    let mut batches = 0;
    let report = model
        .sample_batches(&opts.clone().batch(BatchSize::Fixed(2)), &mut |_| {
            batches += 1;
            Ok(false)
        })
        .unwrap();
    assert_eq!((batches, report.batches, report.batch), (1, 3, 2));
}

#[test]
fn bad_settings_are_errors_in_the_librarys_words() {
    let ddgan = Model::load("ddgan-digits", &Device::Cpu).unwrap();
    let lsgm = Model::load(test_model("lsgm_small"), &Device::Cpu).unwrap();
    let cases: Vec<(&Model, SampleOptions, &str, &str)> = vec![
        (&ddgan, SampleOptions::new(0), "num", "at least 1"),
        (
            &ddgan,
            SampleOptions::new(4).shard(2, 2),
            "shard",
            "0 <= i < n",
        ),
        (
            &ddgan,
            SampleOptions::new(4).batch(BatchSize::Fixed(0)),
            "batch",
            "at least 1",
        ),
        (
            &ddgan,
            SampleOptions::new(4).sampler(Sampler::Sscs),
            "sampler",
            "ddgan for a DDGAN",
        ),
        (
            &ddgan,
            SampleOptions::new(4).steps(0),
            "steps",
            "at least 1",
        ),
        (
            &lsgm,
            SampleOptions::new(4).steps(10),
            "steps",
            "adaptive ODE",
        ),
        (
            &lsgm,
            SampleOptions::new(4).sampler(Sampler::Em),
            "sampler",
            "ode or rk4",
        ),
    ];
    for (model, opts, what_want, rule_want) in cases {
        match model.sample(&opts) {
            Err(e @ Error::BadSetting { .. }) => {
                let msg = e.to_string();
                let Error::BadSetting { what, rule, .. } = e else {
                    unreachable!()
                };
                assert_eq!(what, what_want, "{msg}");
                assert!(rule.contains(rule_want), "{msg}");
                assert!(
                    !msg.contains("--"),
                    "a command-line flag in a library error: {msg}"
                );
            }
            other => panic!("{opts:?}: expected a bad-setting error, got {other:?}"),
        }
    }
    assert_eq!("rk4".parse::<Sampler>().unwrap(), Sampler::Rk4);
    for s in Sampler::ALL {
        assert_eq!(s.name().parse::<Sampler>().unwrap(), s);
    }
    assert!(matches!(
        "heun".parse::<Sampler>(),
        Err(Error::BadSetting {
            what: "sampler",
            ..
        })
    ));
    match Model::load("no-such-model", &Device::Cpu) {
        Err(Error::UnknownModel { name, embedded }) => {
            assert_eq!(name, "no-such-model");
            assert!(embedded.iter().any(|n| n == "lsgm-digits"), "{embedded:?}");
        }
        Err(e) => panic!("expected an unknown-model error, got {e}"),
        Ok(_) => panic!("loaded a model that does not exist"),
    }
}

/// Model::forward on tensors in memory gives the bits of the file-based call (`trilemma forward`),
/// for a DDGAN generator and the three LSGM parts; inputs are checked by name.
#[test]
fn forward_on_tensors_equals_forward_on_a_file() {
    let dev = Device::Cpu;
    let tensor = |shape: &[usize], seed: u64| {
        let n = shape.iter().product();
        Tensor::from_f32(&random_vec(n, seed), shape, DType::F32, &dev).unwrap()
    };
    let ddgan = Model::load(test_model("ddgan_small"), &dev).unwrap();
    let [c, h, w] = [3, 16, 16];
    let nz = ddgan.config.usize("nz").unwrap();
    let x_t = tensor(&[2, c, h, w], 1);
    let t = Tensor::from_f32(&[3.0, 0.0], &[2], DType::F32, &dev).unwrap();
    let z = tensor(&[2, nz], 2);
    let inputs = [("x_t", &x_t), ("t", &t), ("z", &z)];
    let out = ddgan.forward(&inputs, None).unwrap();
    let tmp = TempDir::new("front-forward");
    let file = tmp.path().join("in.safetensors");
    trilemma::io::safetensors::save(&file, &inputs, &Default::default()).unwrap();
    let st = SafeTensors::open(&file).unwrap();
    let from_file = ddgan.forward_safetensors(&st, None).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, "x0");
    assert_eq!(out[0].1.shape(), &[2, c, h, w]);
    let (a, b) = (
        out[0].1.to_vec_f32().unwrap(),
        from_file[0].1.to_vec_f32().unwrap(),
    );
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert!(a.iter().any(|&v| v != a[0]), "a constant output");

    // Inputs by name: missing, extra, wrong rank, non-finite, and a part for a DDGAN model.
    let bad_z = Tensor::from_f32(&vec![f32::NAN; 2 * nz], &[2, nz], DType::F32, &dev).unwrap();
    let flat = tensor(&[2 * c * h * w], 3);
    type Case<'a> = (Vec<(&'a str, &'a Tensor)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (vec![("x_t", &x_t), ("t", &t)], "z", "missing"),
        (
            vec![("x_t", &x_t), ("t", &t), ("z", &z), ("y", &z)],
            "y",
            "not an input",
        ),
        (
            vec![("x_t", &flat), ("t", &t), ("z", &z)],
            "x_t",
            "expected [B, 3, 16, 16] (NCHW)",
        ),
        (
            vec![("x_t", &x_t), ("t", &t), ("z", &bad_z)],
            "z",
            "non-finite",
        ),
    ];
    for (inputs, tensor_want, reason_want) in cases {
        match ddgan.forward(&inputs, None) {
            Err(Error::BadInput {
                origin,
                tensor,
                reason,
            }) => {
                assert_eq!(origin, "inputs");
                assert_eq!(tensor, tensor_want, "{reason}");
                assert!(reason.contains(reason_want), "{tensor}: {reason}");
            }
            other => panic!("{tensor_want}: expected a bad-input error, got {other:?}"),
        }
    }
    let e = ddgan
        .forward(&inputs, Some(Part::Score))
        .unwrap_err()
        .to_string();
    assert!(e.contains("only for LSGM"), "{e}");

    // LSGM: each part in memory against the file-based call on its fixture inputs.
    let lsgm = Model::load(test_model("lsgm_small"), &dev).unwrap();
    for (part, stem) in [
        (Part::Score, "score"),
        (Part::Encoder, "encoder"),
        (Part::Decoder, "decoder"),
    ] {
        let file = test_model("lsgm_small").join(format!("forward_{stem}.inputs.safetensors"));
        let st = SafeTensors::open(&file).unwrap();
        let names: Vec<String> = st.names().map(str::to_string).collect();
        let loaded: Vec<(String, Tensor)> = names
            .iter()
            .map(|n| (n.clone(), st.load_any_shape(n, &dev).unwrap()))
            .collect();
        let refs: Vec<(&str, &Tensor)> = loaded.iter().map(|(n, t)| (n.as_str(), t)).collect();
        let a = lsgm.forward(&refs, Some(part)).unwrap();
        let b = lsgm.forward_safetensors(&st, Some(part)).unwrap();
        assert_eq!(a.len(), b.len(), "{stem}");
        for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
            assert_eq!(na, nb, "{stem}");
            let (va, vb) = (ta.to_vec_f32().unwrap(), tb.to_vec_f32().unwrap());
            assert!(
                va.iter().zip(&vb).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{stem}: {na} differs"
            );
        }
    }
}

/// Device memory of another owner (a DLPack import) is read in place: the borrowed tensor has the
/// owner's address, a forward on it equals one on an uploaded copy, the owner is handed back only
/// when the tensor drops, and misaligned memory is refused. Stream ordering with the driver's
/// default-stream handles (1, 2) goes through.
#[test]
fn gpu_memory_of_another_owner_is_borrowed_without_a_copy() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let Some(gpu) = common::gpu_or_skip("gpu_memory_of_another_owner_is_borrowed_without_a_copy")
    else {
        return;
    };
    let ddgan = Model::load(test_model("ddgan_small"), &gpu).unwrap();
    let st =
        SafeTensors::open(test_model("ddgan_small").join("forward_generator.inputs.safetensors"))
            .unwrap();
    let load = |name: &str| st.load_any_shape(name, &gpu).unwrap();
    let (x_t, t, z) = (load("x_t"), load("t"), load("z"));
    let reference = ddgan
        .forward(&[("x_t", &x_t), ("t", &t), ("z", &z)], None)
        .unwrap()
        .remove(0)
        .1
        .to_vec_f32()
        .unwrap();

    // The "other framework": a device buffer it owns (here an engine tensor kept alive by the owner).
    struct Owner(#[allow(dead_code)] Tensor, Arc<AtomicBool>);
    impl Drop for Owner {
        fn drop(&mut self) {
            self.1.store(true, Ordering::SeqCst);
        }
    }
    let theirs = x_t.to_device(&gpu).unwrap();
    let address = theirs.cuda_ptr().unwrap();
    let shape = theirs.shape().to_vec();
    let returned = Arc::new(AtomicBool::new(false));
    // SAFETY: `address` is `theirs`'s memory: shape's f32 elements on this GPU, kept allocated by
    // the owner, which holds `theirs` until it drops; nothing else writes it.
    let borrowed = unsafe {
        Tensor::from_cuda_memory(
            address,
            &shape,
            DType::F32,
            &gpu,
            Box::new(Owner(theirs, Arc::clone(&returned))),
        )
    }
    .unwrap();
    assert_eq!(borrowed.cuda_ptr(), Some(address), "borrowed, not copied");
    let out = ddgan
        .forward(&[("x_t", &borrowed), ("t", &t), ("z", &z)], None)
        .unwrap();
    assert_eq!(out[0].1.to_vec_f32().unwrap(), reference);
    assert!(!returned.load(Ordering::SeqCst), "handed back while in use");
    drop(borrowed);
    assert!(
        returned.load(Ordering::SeqCst),
        "handed back when the tensor drops"
    );

    // SAFETY: the address is refused before any use (misaligned); the owner is a unit.
    let misaligned =
        unsafe { Tensor::from_cuda_memory(address + 4, &[4], DType::F32, &gpu, Box::new(())) };
    assert!(matches!(
        misaligned,
        Err(Error::InvalidParam {
            what: "address",
            ..
        })
    ));
    // SAFETY: 1 and 2 are the driver's legacy and per-thread default streams.
    unsafe {
        gpu.order_before(1).unwrap();
        gpu.order_after(2).unwrap();
        let own = gpu.cuda_stream().unwrap();
        gpu.order_after(own).unwrap();
    }
    assert_eq!(Device::Cpu.cuda_stream(), None);
}
