//! The fixtures written by tools/make_fixtures.py: every file listed in tests/fixtures/MANIFEST.json
//! exists, parses with the engine's safetensors loader, and holds exactly the listed tensors with the
//! listed shapes, dtypes and metadata; nothing unlisted is present; the set stays small. Two fixtures
//! are also recomputed here from their own inputs, which checks the pipeline's values, not only its
//! layout. The ops themselves are tested against these files by the backend tests.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;
use trilemma::io::safetensors::SafeTensors;

fn fixtures_dir() -> std::path::PathBuf {
    common::source_dir().join("tests/fixtures")
}

fn manifest() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(fixtures_dir().join("MANIFEST.json"))
        .expect("tests/fixtures/MANIFEST.json");
    serde_json::from_str(&text).expect("MANIFEST.json is a JSON object")
}

#[test]
fn every_fixture_matches_the_manifest() {
    let manifest = manifest();
    assert!(!manifest.is_empty());
    for (name, entry) in &manifest {
        let path = fixtures_dir().join(format!("{name}.safetensors"));
        let st = SafeTensors::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let listed = entry["tensors"].as_object().expect("tensors map");
        let names: Vec<&str> = st.names().collect();
        let expected: Vec<&str> = listed.keys().map(String::as_str).collect();
        assert_eq!(names, expected, "{name}: tensor names");
        for (t, spec) in listed {
            let e = st.entry(t).unwrap();
            let shape: Vec<usize> = spec["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(e.shape, shape, "{name}: {t} shape");
            assert_eq!(
                e.dtype,
                spec["dtype"].as_str().unwrap(),
                "{name}: {t} dtype"
            );
            assert!(
                t.starts_with("in.") || t.starts_with("out.") || t.starts_with("param."),
                "{name}: tensor `{t}` has no in./out./param. prefix"
            );
        }
        assert!(
            listed.keys().any(|t| t.starts_with("out.")),
            "{name}: no expected output"
        );
        let meta = entry["metadata"].as_object().unwrap();
        for (k, v) in meta {
            assert_eq!(
                st.metadata().get(k).map(String::as_str),
                v.as_str(),
                "{name}: metadata `{k}`"
            );
        }
        for required in [
            "op",
            "case",
            "seed",
            "tolerance_rel_l2",
            "layout",
            "torch",
            "description",
        ] {
            assert!(
                st.metadata().contains_key(required),
                "{name}: metadata `{required}` missing"
            );
        }
    }
}

#[test]
fn nothing_unlisted_and_under_the_size_budget() {
    let manifest = manifest();
    let mut total = 0u64;
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let entry = entry.unwrap();
        let file = entry.file_name().into_string().unwrap();
        total += entry.metadata().unwrap().len();
        if file == "MANIFEST.json" || file == "README.md" {
            continue;
        }
        let stem = file
            .strip_suffix(".safetensors")
            .unwrap_or_else(|| panic!("unexpected file {file}"));
        assert!(
            manifest.contains_key(stem),
            "{file} is not in MANIFEST.json"
        );
    }
    // All fixtures together stay under 20 MB (they are committed).
    assert!(total < 20_000_000, "fixtures total {total} bytes");
}

use common::{fixture_values as values, open_fixture as load};

#[test]
fn silu_fixture_values_are_x_sigmoid_x() {
    let st = load("silu_basic");
    let (x, y) = (values(&st, "in.x"), values(&st, "out.y"));
    let want: Vec<f32> = x
        .iter()
        .map(|&x| (x as f64 / (1.0 + (-x as f64).exp())) as f32)
        .collect();
    // Both are float64 results rounded once to fp32; exp differs between libms by ~1 ulp of f64.
    assert!(
        common::rel_err(&y, &want) <= 1e-7,
        "rel {}",
        common::rel_err(&y, &want)
    );
}

#[test]
fn dense_fixture_values_are_x_wt_plus_b() {
    let st = load("dense_basic");
    let (x, w, b, y) = (
        values(&st, "in.x"),
        values(&st, "param.weight"),
        values(&st, "param.bias"),
        values(&st, "out.y"),
    );
    let (n, k, m) = (3, 40, 24);
    let mut want = vec![0f32; n * m];
    for i in 0..n {
        for j in 0..m {
            let acc: f64 = (0..k)
                .map(|l| x[i * k + l] as f64 * w[j * k + l] as f64)
                .sum::<f64>()
                + b[j] as f64;
            want[i * m + j] = acc as f32;
        }
    }
    assert!(
        common::rel_err(&y, &want) <= 1e-7,
        "rel {}",
        common::rel_err(&y, &want)
    );
}
