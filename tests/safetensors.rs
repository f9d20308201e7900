//! The safetensors loader: round trips, a typed error naming file and tensor for every kind of bad
//! input, atomic writes, and a deterministic mutation fuzz (plus the committed fuzz corpus) proving
//! that no input makes it panic.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::random_vec;
use rand::{Rng, SeedableRng};
use trilemma::io::safetensors::{save, SafeTensors};
use trilemma::{DType, Device, Error, Tensor};

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("trilemma-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A file of three tensors in the three engine dtypes, as bytes.
fn valid_file(dir: &Path) -> (PathBuf, Vec<u8>) {
    let path = dir.join("model.safetensors");
    let a = Tensor::from_f32(&random_vec(24, 1), &[2, 3, 4], DType::F32, &Device::Cpu).unwrap();
    let b = Tensor::from_f32(&random_vec(5, 2), &[5], DType::BF16, &Device::Cpu).unwrap();
    let c = Tensor::from_f32(&random_vec(6, 3), &[3, 2], DType::F16, &Device::Cpu).unwrap();
    let meta = BTreeMap::from([("family".to_string(), "cld".to_string())]);
    save(
        &path,
        &[
            ("all_modules.0.weight", &a),
            ("all_modules.1.bias", &b),
            ("z.scale", &c),
        ],
        &meta,
    )
    .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// A file whose header is `json` followed by `data`.
fn raw(json: &str, data: &[u8]) -> Vec<u8> {
    let mut v = (json.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(json.as_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn save_then_load_round_trips_every_dtype() {
    let dir = tmpdir("roundtrip");
    let (path, _) = valid_file(&dir);
    let st = SafeTensors::open(&path).unwrap();
    assert_eq!(
        st.names().collect::<Vec<_>>(),
        ["all_modules.0.weight", "all_modules.1.bias", "z.scale"]
    );
    assert_eq!(st.metadata().get("family").map(String::as_str), Some("cld"));
    let a = st
        .load_typed("all_modules.0.weight", &[2, 3, 4], DType::F32, &Device::Cpu)
        .unwrap();
    assert_eq!(a.to_vec_f32().unwrap(), random_vec(24, 1));
    let b = st.load("all_modules.1.bias", &[5], &Device::Cpu).unwrap();
    assert_eq!(b.dtype(), DType::BF16);
    let expect_b = Tensor::from_f32(&random_vec(5, 2), &[5], DType::BF16, &Device::Cpu).unwrap();
    assert_eq!(b.to_vec_f32().unwrap(), expect_b.to_vec_f32().unwrap());
    let c = st.load_any_shape("z.scale", &Device::Cpu).unwrap();
    assert_eq!((c.shape(), c.dtype()), (&[3usize, 2][..], DType::F16));
    // The data section starts 8-byte aligned.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(u64::from_le_bytes(bytes[..8].try_into().unwrap()) % 8, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn wrong_shape_dtype_and_missing_names_are_reported_with_file_and_tensor() {
    let dir = tmpdir("errors");
    let (path, _) = valid_file(&dir);
    let st = SafeTensors::open(&path).unwrap();

    let e = st
        .load("all_modules.0.weight", &[2, 4, 3], &Device::Cpu)
        .unwrap_err();
    assert!(
        matches!(&e, Error::TensorShape { expected, found, .. } if expected == &[2, 4, 3] && found == &[2, 3, 4]),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("model.safetensors") && msg.contains("all_modules.0.weight"),
        "{msg}"
    );

    let e = st
        .load_typed("all_modules.1.bias", &[5], DType::F32, &Device::Cpu)
        .unwrap_err();
    assert!(
        matches!(&e, Error::TensorDType { expected, found, .. } if expected == "F32" && found == "BF16"),
        "{e}"
    );

    let e = st
        .load("all_modules.0.wieght", &[2, 3, 4], &Device::Cpu)
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::MissingTensor { .. }), "{msg}");
    assert!(
        msg.contains("all_modules.0.wieght") && msg.contains("nearest names: all_modules.0.weight"),
        "{msg}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unsupported_stored_dtype_is_a_dtype_error() {
    let bytes = raw(
        r#"{"step":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#,
        &7i64.to_le_bytes(),
    );
    let st = SafeTensors::from_bytes("ckpt.safetensors", bytes).unwrap();
    assert_eq!(st.bytes_of("step").unwrap(), &7i64.to_le_bytes());
    let e = st.load("step", &[1], &Device::Cpu).unwrap_err();
    assert!(
        matches!(&e, Error::TensorDType { found, .. } if found == "I64"),
        "{e}"
    );
}

#[test]
fn every_kind_of_corruption_is_a_typed_error() {
    let entry = |body: &str| format!(r#"{{"w":{body}}}"#);
    let ok_entry = r#"{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#;
    type Case = (&'static str, Vec<u8>, fn(&Error) -> bool);
    let cases: Vec<Case> = vec![
        ("empty file", vec![], |e| {
            matches!(
                e,
                Error::Truncated {
                    expected: 8,
                    found: 0,
                    ..
                }
            )
        }),
        ("short length", vec![1, 2, 3], |e| {
            matches!(e, Error::Truncated { .. })
        }),
        (
            "header past end",
            {
                let mut v = 64u64.to_le_bytes().to_vec();
                v.extend_from_slice(b"{}");
                v
            },
            |e| {
                matches!(
                    e,
                    Error::Truncated {
                        expected: 72,
                        found: 10,
                        ..
                    }
                )
            },
        ),
        (
            "huge header length",
            u64::MAX.to_le_bytes().to_vec(),
            |e| matches!(e, Error::BadHeader { reason, .. } if reason.contains("limit")),
        ),
        (
            "not utf-8",
            raw("\u{0}", &[])
                .into_iter()
                .enumerate()
                .map(|(i, b)| if i == 8 { 0xff } else { b })
                .collect(),
            |e| matches!(e, Error::BadHeader { reason, .. } if reason.contains("UTF-8")),
        ),
        (
            "not json",
            raw("{\"w\":", &[]),
            |e| matches!(e, Error::BadHeader { reason, .. } if reason.contains("JSON")),
        ),
        (
            "json array",
            raw("[1,2]", &[]),
            |e| matches!(e, Error::BadHeader { reason, .. } if reason.contains("object")),
        ),
        (
            "entry not object",
            raw(&entry("3"), &[]),
            |e| matches!(e, Error::BadHeader { reason, .. } if reason.contains("`w`")),
        ),
        (
            "no dtype",
            raw(&entry(r#"{"shape":[2],"data_offsets":[0,8]}"#), &[0; 8]),
            |e| matches!(e, Error::BadHeader { reason, .. } if reason.contains("dtype")),
        ),
        (
            "unknown dtype",
            raw(
                &entry(r#"{"dtype":"F7","shape":[2],"data_offsets":[0,8]}"#),
                &[0; 8],
            ),
            |e| matches!(e, Error::BadHeader { reason, .. } if reason.contains("unknown dtype `F7`")),
        ),
        (
            "negative dim",
            raw(
                &entry(r#"{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}"#),
                &[0; 8],
            ),
            |e| matches!(e, Error::BadHeader { reason, .. } if reason.contains("shape")),
        ),
        (
            "offsets backwards",
            raw(
                &entry(r#"{"dtype":"F32","shape":[2],"data_offsets":[8,0]}"#),
                &[0; 8],
            ),
            |e| matches!(e, Error::BadHeader { reason, .. } if reason.contains("backwards")),
        ),
        (
            "span mismatch",
            raw(
                &entry(r#"{"dtype":"F32","shape":[3],"data_offsets":[0,8]}"#),
                &[0; 8],
            ),
            |e| matches!(e, Error::BadHeader { reason, .. } if reason.contains("needs 12")),
        ),
        (
            "overflowing shape",
            raw(
                &entry(r#"{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}"#),
                &[0; 8],
            ),
            |e| matches!(e, Error::BadHeader { reason, .. } if reason.contains("overflow")),
        ),
        (
            "data truncated",
            raw(&entry(ok_entry), &[0; 5]),
            |e| matches!(e, Error::Truncated { what, .. } if what.contains("`w`")),
        ),
        (
            "overlap",
            raw(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                &[0; 8],
            ),
            |e| matches!(e, Error::BadHeader { reason, .. } if reason.contains("overlap")),
        ),
        (
            "metadata not strings",
            raw(r#"{"__metadata__":{"k":1}}"#, &[]),
            |e| matches!(e, Error::BadHeader { reason, .. } if reason.contains("__metadata__.k")),
        ),
    ];
    for (name, bytes, check) in cases {
        let e = SafeTensors::from_bytes("bad.safetensors", bytes).expect_err(name);
        assert!(check(&e), "{name}: unexpected error {e:?}");
        assert!(
            e.to_string().starts_with("bad.safetensors"),
            "{name}: message does not name the file: {e}"
        );
    }
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let e = SafeTensors::open("/nonexistent/dir/weights.safetensors").unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(e.to_string().contains("weights.safetensors"), "{e}");
}

#[test]
fn a_failed_save_leaves_nothing_behind() {
    let dir = tmpdir("atomic");
    let t = Tensor::full(1.0, &[4], DType::F32, &Device::Cpu).unwrap();
    // The target is an existing directory: the rename fails after the temporary file was written.
    let target = dir.join("occupied");
    std::fs::create_dir_all(target.join("x")).unwrap();
    let e = save(&target, &[("t", &t)], &BTreeMap::new()).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("occupied")],
        "temporary file left behind"
    );
    let e = save(&dir, &[("t", &t), ("t", &t)], &BTreeMap::new()).unwrap_err();
    assert!(
        matches!(e, Error::InvalidParam { .. }),
        "duplicate names: {e:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Parses `bytes` and touches everything a loader would; must return, never panic.
fn exercise(bytes: Vec<u8>) {
    if let Ok(st) = SafeTensors::from_bytes("fuzz.safetensors", bytes) {
        let names: Vec<String> = st.names().map(String::from).collect();
        for n in names {
            let e = st.entry(&n).unwrap().clone();
            assert_eq!(st.bytes_of(&n).unwrap().len(), e.end - e.start);
            let _ = st.load_any_shape(&n, &Device::Cpu);
        }
    }
}

#[test]
fn mutated_files_never_panic() {
    let dir = tmpdir("mutate");
    let (_, valid) = valid_file(&dir);
    std::fs::remove_dir_all(dir).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5AFE);
    for i in 0..20_000 {
        let mut b = valid.clone();
        match i % 5 {
            0 => {
                let n = rng.gen_range(1..8);
                for _ in 0..n {
                    let j = rng.gen_range(0..b.len());
                    b[j] = rng.gen();
                }
            }
            1 => b.truncate(rng.gen_range(0..valid.len())),
            2 => {
                let j = rng.gen_range(0..b.len());
                b.insert(j, rng.gen());
            }
            3 => {
                // Plausible but wrong header lengths.
                let len = u64::from_le_bytes(b[..8].try_into().unwrap());
                let new = (len as i64 + rng.gen_range(-16i64..16)).max(0) as u64;
                b[..8].copy_from_slice(&new.to_le_bytes());
            }
            _ => {
                // Digits in the JSON changed: shapes and offsets that disagree.
                let digits: Vec<usize> = (8..b.len().min(200))
                    .filter(|&j| b[j].is_ascii_digit())
                    .collect();
                if let Some(&j) = digits.get(rng.gen_range(0..digits.len().max(1))) {
                    b[j] = b'0' + rng.gen_range(0..10);
                }
            }
        }
        let r = std::panic::catch_unwind(|| exercise(b.clone()));
        assert!(r.is_ok(), "mutation {i} panicked; input: {b:?}");
    }
}

#[test]
fn fuzz_corpus_never_panics() {
    let dir = common::source_dir().join("fuzz/corpus/safetensors_load");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/safetensors_load is committed") {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        exercise(bytes);
        n += 1;
    }
    assert!(
        n >= 3,
        "expected the committed seed corpus, found {n} files"
    );
}
