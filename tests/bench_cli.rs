//! `trilemma bench`: the side-by-side table and JSON against a baseline file, and its errors. Nothing
//! here checks a speed (tests never time anything): the timings only have to be positive.

mod common;

use common::{output_text as text, TempDir};
use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trilemma"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_small_model_is_timed_and_compared_with_the_baseline() {
    let tmp = TempDir::new("bench");
    let baseline = tmp.path().join("baseline.json");
    std::fs::write(
        &baseline,
        r#"{"device": "cpu (test)", "torch": "2.x", "results": [
            {"id": "net/ddgan-digits/b2/fp32", "median_ms": 1000.0},
            {"id": "something/else", "median_ms": 3.0}]}"#,
    )
    .unwrap();
    let json = tmp.path().join("engine.json");
    let o = bench(&[
        "--model",
        "ddgan-digits",
        "--batch",
        "2",
        "--min-seconds",
        "0",
        "--baseline",
        baseline.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.contains("device cpu (test), torch 2.x"), "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("net/ddgan-digits/b2/fp32"))
        .unwrap_or_else(|| panic!("no network row in {out}"));
    assert!(row.contains("1000.000") && row.ends_with('x'), "{row}");
    let sample_row = out
        .lines()
        .find(|l| l.starts_with("sample/ddgan-digits/b2/fp32"))
        .unwrap_or_else(|| panic!("no sampling row in {out}"));
    assert!(
        sample_row.trim_end().ends_with('-'),
        "no baseline for it: {sample_row}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        assert!(r["median_ms"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["reps"].as_u64().unwrap() >= 3, "{r}");
        assert!(r["gflop"].as_f64().unwrap() > 0.0, "{r}");
    }
}

#[test]
fn bad_baselines_and_filters_are_errors_before_any_timing() {
    let tmp = TempDir::new("bench-bad");
    let garbage = tmp.path().join("garbage.json");
    std::fs::write(&garbage, "not json").unwrap();
    let no_results = tmp.path().join("no_results.json");
    std::fs::write(&no_results, r#"{"device": "x"}"#).unwrap();
    let bad_entry = tmp.path().join("bad_entry.json");
    std::fs::write(&bad_entry, r#"{"results": [{"id": "a", "median_ms": -1}]}"#).unwrap();
    let missing = tmp.path().join("missing.json");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--baseline", garbage.to_str().unwrap()],
            "not a PyTorch baseline",
        ),
        (
            vec!["--baseline", no_results.to_str().unwrap()],
            "no `results` list",
        ),
        (
            vec!["--baseline", bad_entry.to_str().unwrap()],
            "results[0]",
        ),
        (
            vec!["--baseline", missing.to_str().unwrap()],
            "missing.json",
        ),
        (
            vec!["--model", "ddgan-digits", "--only", "nothing/"],
            "--only",
        ),
        (vec!["--batch", "0"], "--batch"),
        (vec!["--model", "no-such-model"], "cld-digits"),
    ];
    for (args, needle) in cases {
        let o = bench(&args);
        let msg = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {msg}");
        assert!(msg.contains(needle), "{args:?}: `{needle}` not in {msg}");
        assert!(!msg.contains("panicked"), "{msg}");
    }
}

/// `--list` prints the ids a command would time, without timing anything (no model is built, so it
/// is instant); `--only` filters it; `--help` lists the released cases; `--quick` is accepted.
#[test]
fn the_cases_are_listed_without_timing_them() {
    let o = bench(&["--list"]);
    assert!(o.status.success(), "{}", text(&o));
    let ids: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        ids,
        [
            "net/ddgan/cifar10/b1/fp32",
            "sample/ddgan/cifar10/b1/fp32",
            "net/cld/cifar10/b1/fp32",
            "sample/cld/cifar10/sscs50/b1/fp32",
            "net/lsgm/mnist/b1/fp32",
        ]
    );
    let o = bench(&[
        "--list",
        "--only",
        "net/",
        "--batch",
        "4",
        "--sscs-steps",
        "150",
    ]);
    let listed = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(listed.lines().count(), 3, "{listed}");
    assert!(
        listed
            .lines()
            .all(|l| l.starts_with("net/") && l.contains("/b4/")),
        "{listed}"
    );
    let o = bench(&["--list", "--model", "ddgan-digits", "--quick"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .collect::<Vec<_>>(),
        ["net/ddgan-digits/b1/fp32", "sample/ddgan-digits/b1/fp32"]
    );
    let o = bench(&["--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("sample/cld/cifar10/sscs50/b1/fp32") && help.contains("--quick"),
        "{help}"
    );
}
