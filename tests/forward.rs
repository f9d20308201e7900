//! `trilemma forward` on models converted by tools/convert.py from official-format checkpoints
//! (tests/models, small configurations of each family), against the float64 reference; and every kind
//! of bad input as a clear error, exit status 2, with no output file left behind.
//! Tolerance: relative L2 ≤ 1e-5 per output tensor (fp32 CPU); the max abs error is printed.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{max_abs_err, rel_err, test_model, TempDir};
use trilemma::io::safetensors::{self, SafeTensors};
use trilemma::{DType, Device, Tensor};

fn trilemma() -> Command {
    trilemma_command!()
}

fn run_forward(model: &Path, inputs: &Path, out: &Path, extra: &[&str]) -> Output {
    trilemma()
        .arg("forward")
        .arg("--model")
        .arg(model)
        .arg("--inputs")
        .arg(inputs)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("run trilemma forward")
}

fn text(o: &Output) -> String {
    common::output_text(o)
}

fn check_call(model: &str, part: &str, extra: &[&str]) {
    check_call_with(model, part, &format!("forward_{part}"), extra);
}

/// Runs `{inputs}.inputs.safetensors` of `model` and compares with `forward_{part}.expected`.
fn check_call_with(model: &str, part: &str, inputs: &str, extra: &[&str]) {
    let dir = test_model(model);
    let tmp = TempDir::new("fwd");
    let out = tmp.path().join("out.safetensors");
    let o = run_forward(
        &dir,
        &dir.join(format!("{inputs}.inputs.safetensors")),
        &out,
        extra,
    );
    assert!(o.status.success(), "{}", text(&o));
    let got = SafeTensors::open(&out).unwrap();
    let want = SafeTensors::open(dir.join(format!("forward_{part}.expected.safetensors"))).unwrap();
    let names: Vec<&str> = want.names().collect();
    assert_eq!(
        got.names().collect::<Vec<_>>(),
        names,
        "{model} {part}: output names"
    );
    for name in names {
        let e = want.load_any_shape(name, &Device::Cpu).unwrap();
        let g = got.load_any_shape(name, &Device::Cpu).unwrap();
        assert_eq!(g.shape(), e.shape(), "{model} {part} `{name}`");
        let (g, e) = (g.to_vec_f32().unwrap(), e.to_vec_f32().unwrap());
        let rel = rel_err(&g, &e);
        println!(
            "{model} {part} `{name}`: rel {rel:.3e}, max abs {:.3e}",
            max_abs_err(&g, &e)
        );
        assert!(rel <= 1e-5, "{model} {part} `{name}`: rel {rel:.3e} > 1e-5");
    }
}

#[test]
fn cld_forward_matches_reference() {
    check_call("cld_small", "score", &[]);
}

#[test]
fn ddgan_forward_matches_reference() {
    check_call("ddgan_small", "generator", &[]);
}

/// The official sampler passes `t` as int64 step indices (`torch.full((B,), i, dtype=torch.int64)`);
/// I64 and I32 mean the same as the float indices of `ddgan_forward_matches_reference`.
#[test]
fn ddgan_forward_takes_integer_step_indices() {
    for dtype in ["i64", "i32"] {
        let file = format!("forward_generator_{dtype}");
        let st =
            SafeTensors::open(test_model("ddgan_small").join(format!("{file}.inputs.safetensors")))
                .unwrap();
        assert_eq!(st.entry("t").unwrap().dtype, dtype.to_uppercase());
        check_call_with("ddgan_small", "generator", &file, &[]);
    }
}

/// LSGM with Fourier time embedding: `temb_fun.w` is frozen, has no EMA in the checkpoint's optimizer
/// state and comes from `dae_state_dict`; the rest is the EMA (tools/make_test_models.py).
#[test]
fn lsgm_fourier_score_forward_matches_reference() {
    check_call("lsgm_fourier_small", "score", &["--part", "score"]);
}

#[test]
fn lsgm_score_forward_matches_reference() {
    check_call("lsgm_small", "score", &["--part", "score"]);
}

#[test]
fn lsgm_encoder_forward_matches_reference() {
    check_call("lsgm_small", "encoder", &["--part", "encoder"]);
}

#[test]
fn lsgm_decoder_forward_matches_reference() {
    check_call("lsgm_small", "decoder", &["--part", "decoder"]);
}

// ---- bad input -----------------------------------------------------------------------------------

/// A copy of a test model in a temp dir, for corrupting.
fn model_copy(tmp: &TempDir, name: &str) -> PathBuf {
    let src = test_model(name);
    let dst = tmp.path().join(name);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dst
}

/// Rewrites `file` (safetensors) with `edit` applied to its tensor list.
fn rewrite(file: &Path, edit: impl FnOnce(&mut Vec<(String, Tensor)>)) {
    let st = SafeTensors::open(file).unwrap();
    let mut tensors: Vec<(String, Tensor)> = st
        .names()
        .map(|n| (n.to_string(), st.load_any_shape(n, &Device::Cpu).unwrap()))
        .collect();
    let meta = st.metadata().clone();
    edit(&mut tensors);
    let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    safetensors::save(file, &refs, &meta).unwrap();
}

/// Runs forward expecting failure: exit 2, every `needles` in stderr, no output file.
fn expect_error(model: &Path, inputs: &Path, extra: &[&str], needles: &[&str]) {
    let tmp = TempDir::new("err");
    let out = tmp.path().join("out.safetensors");
    let o = run_forward(model, inputs, &out, extra);
    let msg = text(&o);
    assert_eq!(o.status.code(), Some(2), "{msg}");
    for n in needles {
        assert!(msg.contains(n), "`{n}` not in\n{msg}");
    }
    assert!(!msg.contains("panicked"), "{msg}");
    assert!(!out.exists(), "an output was written despite the error");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "files left behind: {leftovers:?}");
}

fn ddgan_inputs() -> PathBuf {
    test_model("ddgan_small").join("forward_generator.inputs.safetensors")
}

#[test]
fn a_missing_input_is_named() {
    let tmp = TempDir::new("in");
    let inputs = tmp.path().join("in.safetensors");
    std::fs::copy(ddgan_inputs(), &inputs).unwrap();
    rewrite(&inputs, |t| t.retain(|(n, _)| n != "z"));
    expect_error(
        &test_model("ddgan_small"),
        &inputs,
        &[],
        &["`z`", "missing"],
    );
}

#[test]
fn an_extra_input_is_named() {
    let tmp = TempDir::new("in");
    let inputs = tmp.path().join("in.safetensors");
    std::fs::copy(ddgan_inputs(), &inputs).unwrap();
    rewrite(&inputs, |t| {
        let extra = Tensor::full(1.0, &[2], DType::F32, &Device::Cpu).unwrap();
        t.push(("temperature".into(), extra));
    });
    expect_error(
        &test_model("ddgan_small"),
        &inputs,
        &[],
        &["`temperature`", "not an input"],
    );
}

#[test]
fn a_wrong_input_shape_is_named() {
    let tmp = TempDir::new("in");
    let inputs = tmp.path().join("in.safetensors");
    std::fs::copy(ddgan_inputs(), &inputs).unwrap();
    rewrite(&inputs, |t| {
        for (n, v) in t.iter_mut() {
            if n == "x_t" {
                *v = Tensor::full(0.5, &[3, 3, 8, 8], DType::F32, &Device::Cpu).unwrap();
            }
        }
    });
    expect_error(
        &test_model("ddgan_small"),
        &inputs,
        &[],
        // In the user's layout (NCHW), naming the file and the tensor.
        &[
            "in.safetensors: input `x_t` has shape [3, 3, 8, 8]",
            "expected [B, 3, 16, 16] (NCHW)",
        ],
    );
}

#[test]
fn nan_in_an_input_is_named() {
    let tmp = TempDir::new("in");
    let inputs = tmp.path().join("in.safetensors");
    std::fs::copy(ddgan_inputs(), &inputs).unwrap();
    rewrite(&inputs, |t| {
        for (n, v) in t.iter_mut() {
            if n == "z" {
                let mut d = v.to_vec_f32().unwrap();
                d[5] = f32::NAN;
                *v = Tensor::from_f32(&d, v.shape(), DType::F32, &Device::Cpu).unwrap();
            }
        }
    });
    expect_error(
        &test_model("ddgan_small"),
        &inputs,
        &[],
        &["input `z`", "non-finite", "element 5"],
    );
}

#[test]
fn a_ddgan_time_that_is_not_a_step_index_is_refused() {
    let tmp = TempDir::new("in");
    let inputs = tmp.path().join("in.safetensors");
    std::fs::copy(ddgan_inputs(), &inputs).unwrap();
    rewrite(&inputs, |t| {
        for (n, v) in t.iter_mut() {
            if n == "t" {
                *v = Tensor::from_f32(&[0.0, 1.5, 2.0], &[3], DType::F32, &Device::Cpu).unwrap();
            }
        }
    });
    expect_error(
        &test_model("ddgan_small"),
        &inputs,
        &[],
        &["`t`", "1.5", "num_timesteps"],
    );
}

/// Writes `file` holding the tensors of `src` with `t` replaced by the integers `t` stored as
/// `dtype` ("I64" or "I32"), as PyTorch code saves an index tensor.
fn with_integer_t(src: &Path, file: &Path, t: &[i64], shape: &[usize], dtype: &str) {
    let st = SafeTensors::open(src).unwrap();
    let mut blobs: Vec<(String, String, Vec<usize>, Vec<u8>)> = st
        .names()
        .filter(|n| *n != "t")
        .map(|n| {
            let e = st.entry(n).unwrap();
            (
                n.to_string(),
                e.dtype.clone(),
                e.shape.clone(),
                st.bytes_of(n).unwrap().to_vec(),
            )
        })
        .collect();
    let bytes: Vec<u8> = match dtype {
        "I64" => t.iter().flat_map(|v| v.to_le_bytes()).collect(),
        "I32" => t.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect(),
        other => panic!("no such index dtype {other}"),
    };
    blobs.push(("t".into(), dtype.into(), shape.to_vec(), bytes));
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (name, dtype, shape, data) in &blobs {
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + data.len()]}),
        );
        offset += data.len();
    }
    let text = serde_json::Value::Object(header).to_string();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    for (_, _, _, data) in &blobs {
        out.extend_from_slice(data);
    }
    std::fs::write(file, out).unwrap();
}

#[test]
fn an_integer_time_out_of_range_or_for_a_continuous_family_is_refused() {
    let tmp = TempDir::new("in");
    let inputs = tmp.path().join("in.safetensors");
    for (t, dtype, needle) in [
        (vec![0, 4, 1], "I64", "4 is not a step index in 0..4"),
        (vec![-1, 0, 1], "I32", "-1 is not a step index in 0..4"),
        (
            vec![1 << 40, 0, 1],
            "I64",
            "1099511627776 is not a step index",
        ),
    ] {
        with_integer_t(&ddgan_inputs(), &inputs, &t, &[3], dtype);
        expect_error(&test_model("ddgan_small"), &inputs, &[], &["`t`", needle]);
    }
    with_integer_t(&ddgan_inputs(), &inputs, &[0, 1, 3], &[3, 1], "I64");
    expect_error(
        &test_model("ddgan_small"),
        &inputs,
        &[],
        &["`t`", "[3, 1]", "1 dimension"],
    );
    // CLD and LSGM take a continuous time: an integer `t` there is a mistake, named as one.
    let cld = test_model("cld_small").join("forward_score.inputs.safetensors");
    with_integer_t(&cld, &inputs, &[1, 1, 1], &[3], "I64");
    expect_error(
        &test_model("cld_small"),
        &inputs,
        &[],
        &["`t`", "dtype I64", "DDGAN step indices", "continuous time"],
    );
    let lsgm = test_model("lsgm_small").join("forward_score.inputs.safetensors");
    with_integer_t(&lsgm, &inputs, &[0, 1], &[2], "I32");
    expect_error(
        &test_model("lsgm_small"),
        &inputs,
        &["--part", "score"],
        &["`t`", "dtype I32", "lsgm networks take a continuous time"],
    );
}

#[test]
fn a_missing_weight_is_named_with_near_names() {
    let tmp = TempDir::new("m");
    let model = model_copy(&tmp, "ddgan_small");
    rewrite(&model.join("model.safetensors"), |t| {
        t.retain(|(n, _)| n != "all_modules.5.Conv_1.weight")
    });
    expect_error(
        &model,
        &ddgan_inputs(),
        &[],
        &["all_modules.5.Conv_1.weight", "missing", "nearest"],
    );
}

#[test]
fn an_unexpected_weight_is_named() {
    let tmp = TempDir::new("m");
    let model = model_copy(&tmp, "cld_small");
    rewrite(&model.join("model.safetensors"), |t| {
        let extra = Tensor::full(0.0, &[4], DType::F32, &Device::Cpu).unwrap();
        t.push(("all_modules.99.bias".into(), extra));
    });
    let inputs = test_model("cld_small").join("forward_score.inputs.safetensors");
    expect_error(
        &model,
        &inputs,
        &[],
        &["unexpected tensor", "all_modules.99.bias"],
    );
}

#[test]
fn a_wrong_weight_shape_is_named() {
    let tmp = TempDir::new("m");
    let model = model_copy(&tmp, "ddgan_small");
    rewrite(&model.join("model.safetensors"), |t| {
        for (n, v) in t.iter_mut() {
            if n == "z_transform.1.weight" {
                *v = Tensor::full(0.1, &[32, 9], DType::F32, &Device::Cpu).unwrap();
            }
        }
    });
    expect_error(
        &model,
        &ddgan_inputs(),
        &[],
        &["z_transform.1.weight", "[32, 9]", "[32, 8]"],
    );
}

#[test]
fn a_wrong_weight_dtype_is_named() {
    let tmp = TempDir::new("m");
    let model = model_copy(&tmp, "ddgan_small");
    rewrite(&model.join("model.safetensors"), |t| {
        for (n, v) in t.iter_mut() {
            if n == "all_modules.0.weight" {
                *v = trilemma::ops::cast(v, DType::BF16).unwrap();
            }
        }
    });
    expect_error(
        &model,
        &ddgan_inputs(),
        &[],
        &["all_modules.0.weight", "BF16", "F32"],
    );
}

#[test]
fn a_truncated_weight_file_is_reported() {
    let tmp = TempDir::new("m");
    let model = model_copy(&tmp, "ddgan_small");
    let f = model.join("model.safetensors");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 1000]).unwrap();
    expect_error(
        &model,
        &ddgan_inputs(),
        &[],
        &["model.safetensors", "truncated"],
    );
}

#[test]
fn an_unsupported_config_option_is_named() {
    let tmp = TempDir::new("m");
    let model = model_copy(&tmp, "ddgan_small");
    let cfg_path = model.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["config"]["resblock_type"] = "ddpm".into();
    std::fs::write(&cfg_path, serde_json::to_string(&doc).unwrap()).unwrap();
    expect_error(
        &model,
        &ddgan_inputs(),
        &[],
        &["config.json", "resblock_type", "ddpm"],
    );
}

#[test]
fn a_foreign_format_is_refused() {
    let tmp = TempDir::new("m");
    let model = model_copy(&tmp, "ddgan_small");
    let cfg_path = model.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(
        &cfg_path,
        text.replace("trilemma-model/1", "trilemma-model/9"),
    )
    .unwrap();
    expect_error(
        &model,
        &ddgan_inputs(),
        &[],
        &["config.json", "trilemma-model/9"],
    );
}

#[test]
fn part_is_required_for_lsgm_and_refused_otherwise() {
    let lsgm = test_model("lsgm_small");
    expect_error(
        &lsgm,
        &lsgm.join("forward_score.inputs.safetensors"),
        &[],
        &["--part", "encoder, decoder or score"],
    );
    expect_error(
        &test_model("ddgan_small"),
        &ddgan_inputs(),
        &["--part", "score"],
        &["--part", "only for LSGM"],
    );
}

#[test]
fn cuda_without_a_usable_gpu_is_a_clear_error() {
    if Device::cuda(0).is_ok() {
        eprintln!("SKIP: this machine has a GPU; the no-GPU path cannot be exercised");
        return;
    }
    expect_error(
        &test_model("ddgan_small"),
        &ddgan_inputs(),
        &["--device", "cuda"],
        &["error:"],
    );
}

#[test]
fn model_load_validates_before_running() {
    // The library entry point users link: a missing directory is an Io error naming the path.
    let err = match trilemma::models::Model::load("no/such/model", &Device::Cpu) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("loaded a model from a missing directory"),
    };
    assert!(err.contains("config.json"), "{err}");
    let m = trilemma::models::Model::load(test_model("lsgm_small"), &Device::Cpu).unwrap();
    assert_eq!(m.family, trilemma::models::Family::Lsgm);
    assert_eq!(m.preset.as_deref(), Some("mnist"));
}
