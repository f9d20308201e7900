//! `trilemma sample --device cuda` against `--device cpu` on the three default models, with identical
//! Philox noise: the same sampler and draws, fp32 networks on both sides. Through the CLI (the binary
//! carries the embedded models, so this test does not). Skips without a GPU unless
//! TRILEMMA_REQUIRE_GPU=1. On the CUDA emulator the CLD and LSGM runs sample fewer images.
//!
//! Compared on the written uint8 images (npz). Each network call agrees to ~1e-6 relative (fp32 sum
//! order; tests/cuda_networks.rs), which a sampler carries through its steps. DDGAN (4 calls, the last
//! step noiseless) and SSCS (a stochastic, contracting chain) may move a pixel across a quantisation
//! boundary but not further: every pixel within 1 level and at most 1% of them different. The adaptive
//! LSGM ODE may take another step sequence when an error estimate lands on the other side of the
//! tolerance, which moves the result by up to the solver tolerance: mean difference ≤ 0.5 level and
//! every pixel within 8 levels.

mod common;
use common::{gpu_or_skip, output_text, TempDir};

/// The uint8 pixels of an npz written by `sample` (`arr_0.npy`).
fn npz_pixels(path: &std::path::Path) -> Vec<u8> {
    common::npz_u8(path).0
}

/// Whether the GPU under test is the emulator; says why `test` skips otherwise (`why`: what it needs).
fn on_the_emulator(test: &str, why: &str) -> bool {
    if gpu_or_skip(test).is_none() {
        return false;
    }
    let emulated = trilemma::device::is_emulated();
    if !emulated {
        eprintln!("SKIP {test}: {why}");
    }
    emulated
}

/// The emulator's device-to-host copy count in a `TRILEMMA_EMU_STATS` file (None where none was
/// written: not on the emulator); the host-to-device count is printed beside it.
fn dtoh_copies(stats: &std::path::Path, tag: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(stats).ok()?).unwrap();
    let n = v["copies"]["dtoh"]["count"].as_u64().unwrap();
    println!(
        "{tag}: {n} device-to-host copies, {} host-to-device",
        v["copies"]["htod"]["count"]
    );
    Some(n)
}

/// `trilemma sample ARGS --out OUT` with the CUDA environment of this test process and `env` added.
fn sample(args: &[&str], env: &[(&str, &str)], out: &std::path::Path) -> std::process::Output {
    trilemma_command!()
        .arg("sample")
        .args(args)
        .arg("--out")
        .arg(out)
        .envs(common::cuda_env())
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn default_models_sample_the_same_images_on_gpu_and_cpu() {
    if gpu_or_skip("default_models_sample_the_same_images_on_gpu_and_cpu").is_none() {
        return;
    }
    let tmp = TempDir::new("cuda-sample");
    // On the CUDA emulator (kernels on the CPU with memcheck) the runs are made smaller to keep CI's time:
    // the same models and samplers, fewer images (still batches above 1).
    let emulated = trilemma::device::is_emulated();
    let (cld_num, lsgm_num) = if emulated { ("4", "2") } else { ("8", "8") };
    // DDGAN and EM run three batches of two: the GPU's second and third are a CUDA graph's replays.
    for (tag, name, extra, exact_ish) in [
        (
            "ddgan",
            "ddgan-digits",
            vec!["--num", "6", "--batch", "2"],
            true,
        ),
        (
            "sscs",
            "cld-digits",
            vec!["--steps", "20", "--num", cld_num, "--batch", "4"],
            true,
        ),
        (
            "em",
            "cld-digits",
            vec![
                "--sampler",
                "em",
                "--steps",
                "8",
                "--num",
                "6",
                "--batch",
                "2",
            ],
            true,
        ),
        (
            "lsgm",
            "lsgm-digits",
            vec![
                "--num",
                lsgm_num,
                "--batch",
                if emulated { "2" } else { "4" },
            ],
            false,
        ),
    ] {
        let run = |device: &str| {
            let out = tmp.path().join(format!("{tag}-{device}.npz"));
            let o = trilemma_command!()
                .args(["sample", "--model", name, "--seed", "7"])
                .args(&extra)
                .args(["--device", device, "--out"])
                .arg(&out)
                .envs(common::cuda_env())
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{name} on {device}: {}",
                output_text(&o)
            );
            npz_pixels(&out)
        };
        let (want, got) = (run("cpu"), run("cuda"));
        assert_eq!(got.len(), want.len(), "{name}");
        let diffs: Vec<u32> = got
            .iter()
            .zip(&want)
            .map(|(&a, &b)| (a as i32 - b as i32).unsigned_abs())
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let differing = diffs.iter().filter(|&&d| d > 0).count() as f64 / diffs.len() as f64;
        let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
        println!(
            "{tag} ({name}): max {max} levels, {:.2}% differ, mean {mean:.3}",
            100.0 * differing
        );
        if exact_ish {
            assert!(
                max <= 1 && differing <= 0.01,
                "{name}: max {max}, {differing}"
            );
        } else {
            assert!(max <= 8 && mean <= 0.5, "{name}: max {max}, mean {mean}");
        }
    }
}

#[test]
fn npz_reader_reads_what_sample_writes() {
    // The helper above on a CPU run: 2 images of 16×16×1.
    let tmp = TempDir::new("npz-read");
    let out = tmp.path().join("x.npz");
    let o = trilemma_command!()
        .args(["sample", "--model", "ddgan-digits", "--num", "2", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", output_text(&o));
    let px = npz_pixels(&out);
    assert_eq!(px.len(), 2 * 16 * 16);
    assert!(px.iter().any(|&p| p > 128) && px.iter().any(|&p| p < 64));
}

/// `--device cuda:all` splits a run's batches over every GPU (on the emulator two, via
/// `TRILEMMA_EMU_DEVICES=2`) and writes exactly the one-GPU run's images: the batches are the same
/// whatever the device count, and every sample's noise is keyed by its index.
#[test]
fn every_gpu_of_a_node_writes_the_one_gpu_images() {
    if gpu_or_skip("every_gpu_of_a_node_writes_the_one_gpu_images").is_none() {
        return;
    }
    let tmp = TempDir::new("cuda-all");
    let env: &[(&str, &str)] = if trilemma::device::is_emulated() {
        &[("TRILEMMA_EMU_DEVICES", "2")]
    } else {
        &[]
    };
    for (name, extra) in [
        ("ddgan-digits", vec!["--num", "6", "--batch", "2"]),
        (
            "cld-digits",
            vec!["--steps", "10", "--num", "3", "--batch", "1"],
        ),
    ] {
        let run = |device: &str| {
            let out = tmp
                .path()
                .join(format!("{name}-{}.npz", device.replace(':', "-")));
            let args = [
                &["--model", name, "--seed", "3", "--device", device][..],
                &extra,
            ]
            .concat();
            let o = sample(&args, env, &out);
            assert!(
                o.status.success(),
                "{name} on {device}: {}",
                output_text(&o)
            );
            (
                npz_pixels(&out),
                String::from_utf8_lossy(&o.stdout).to_string(),
            )
        };
        let (one, _) = run("cuda");
        let (all, summary) = run("cuda:all");
        if trilemma::device::is_emulated() {
            assert!(summary.contains("on 2 GPUs"), "{summary}");
        }
        assert!(one == all, "{name}: cuda:all differs from one GPU");
    }
}

/// `--batch auto` on a GPU picks the largest batch its memory holds (here an emulated GPU of 3 MiB:
/// fewer than the run's images) and writes the same images as an explicit smaller batch.
#[test]
fn batch_auto_fits_the_gpu_and_writes_the_same_images() {
    if !on_the_emulator(
        "batch_auto_fits_the_gpu_and_writes_the_same_images",
        "needs the emulator's memory limit",
    ) {
        return;
    }
    let tmp = TempDir::new("batch-auto");
    let run = |batch: &str| {
        let out = tmp.path().join(format!("b{batch}.npz"));
        let args = [
            "--model",
            "ddgan-digits",
            "--num",
            "16",
            "--device",
            "cuda",
            "--batch",
            batch,
        ];
        let o = sample(&args, &[("TRILEMMA_EMU_MEMORY", "3145728")], &out);
        assert!(o.status.success(), "--batch {batch}: {}", output_text(&o));
        (
            npz_pixels(&out),
            String::from_utf8_lossy(&o.stdout).to_string(),
        )
    };
    let (auto, summary) = run("auto");
    let chosen: usize = summary
        .split("batches of ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("no batch size in: {summary}"));
    println!("--batch auto chose {chosen}: {summary}");
    assert!((1..16).contains(&chosen), "{summary}");
    let (fixed, _) = run("2");
    assert!(
        auto == fixed,
        "--batch auto ({chosen}) differs from --batch 2"
    );
}

/// A batch that runs out of GPU memory mid-run (on the emulator: another process takes 2 MiB of a
/// 4 MiB GPU after the N-th allocation, `TRILEMMA_EMU_TAKEN_AFTER`) is retried in halves and the run
/// writes the images of a run with the smaller batch from the start. The allocation count at which
/// the memory goes depends on the code, so several are tried: a threshold before the pre-run memory
/// check makes the check refuse the batch (a clear error, allowed), one after the run takes nothing;
/// at least one must land inside the run and exercise the retry.
#[test]
fn a_batch_out_of_memory_is_retried_in_halves_with_the_same_images() {
    if !on_the_emulator(
        "a_batch_out_of_memory_is_retried_in_halves_with_the_same_images",
        "needs the emulator",
    ) {
        return;
    }
    let tmp = TempDir::new("oom-retry");
    let run = |batch: &str, taken: Option<&str>, tag: &str| {
        let out = tmp.path().join(format!("{tag}.npz"));
        let mut env = vec![("TRILEMMA_EMU_MEMORY", "4194304")];
        env.extend(taken.map(|t| ("TRILEMMA_EMU_TAKEN_AFTER", t)));
        let args = [
            "--model",
            "ddgan-digits",
            "--num",
            "8",
            "--device",
            "cuda",
            "--batch",
            batch,
        ];
        let o = sample(&args, &env, &out);
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        (
            o.status.success().then(|| npz_pixels(&out)),
            stderr,
            output_text(&o),
        )
    };
    let (want, _, text) = run("2", None, "reference");
    let want = want.unwrap_or_else(|| panic!("reference run: {text}"));
    let mut retried = 0;
    for after in ["160", "190", "205", "240"] {
        let taken = format!("{after}:2097152");
        let (got, stderr, text) = run("8", Some(&taken), &format!("taken-{after}"));
        match got {
            Some(px) => {
                if stderr.contains("retrying as 4 + 4") {
                    retried += 1;
                }
                assert!(px == want, "taken after {after}: images differ\n{text}");
            }
            None => assert!(
                text.contains("--batch") && text.contains("fits"),
                "taken after {after}: not the memory check's error\n{text}"
            ),
        }
    }
    assert!(retried > 0, "no threshold exercised the retry");
}

/// From the emulator's counters: a DDGAN or SSCS run copies nothing back per step, only each batch's
/// images and its finite watch (one word per watched tensor: DDGAN's x, SSCS's x and v), so the
/// device-to-host copies are the same for any step count.
#[test]
fn fixed_step_runs_copy_back_once_per_batch() {
    if !on_the_emulator(
        "fixed_step_runs_copy_back_once_per_batch",
        "reads the emulator's counters",
    ) {
        return;
    }
    let tmp = TempDir::new("copies");
    let dtoh = |model: &str, extra: &[&str], tag: &str| -> u64 {
        let stats = tmp.path().join(format!("{tag}.json"));
        let args = [&["--model", model, "--device", "cuda"][..], extra].concat();
        let stats_env = [("TRILEMMA_EMU_STATS", stats.to_str().unwrap())];
        let o = sample(&args, &stats_env, &tmp.path().join(format!("{tag}.npz")));
        assert!(o.status.success(), "{tag}: {}", output_text(&o));
        dtoh_copies(&stats, tag).expect("the emulator's counters")
    };
    // 3 batches × (images + x's watch word).
    assert_eq!(
        dtoh("ddgan-digits", &["--num", "6", "--batch", "2"], "ddgan"),
        6
    );
    // 2 batches × (images + x's and v's watch words), for 4 and for 8 steps.
    let sscs = |steps: &str| {
        let args = [
            "--sampler",
            "sscs",
            "--steps",
            steps,
            "--num",
            "2",
            "--batch",
            "1",
        ];
        dtoh("cld-digits", &args, &format!("sscs{steps}"))
    };
    assert_eq!(sscs("4"), 6);
    assert_eq!(sscs("8"), 6);
}

/// LSGM's latent ODE with RK4 on a GPU keeps its f64 state there: the emulator's device-to-host copies
/// are the same for 2 and 4 steps (none per evaluation), and the images agree with the CPU run (the
/// networks' fp32 sum order differs: every pixel within 1 level, at most 1% of them different).
#[test]
fn lsgm_rk4_stays_on_the_device_and_matches_the_cpu() {
    if gpu_or_skip("lsgm_rk4_stays_on_the_device_and_matches_the_cpu").is_none() {
        return;
    }
    let tmp = TempDir::new("lsgm-rk4");
    let run = |device: &str, steps: &str| {
        let tag = format!("{device}-{steps}");
        let (out, stats) = (
            tmp.path().join(format!("{tag}.npz")),
            tmp.path().join(format!("{tag}.json")),
        );
        let args = [
            "--model",
            "lsgm-digits",
            "--sampler",
            "rk4",
            "--steps",
            steps,
        ];
        let args = [
            &args[..],
            &["--num", "2", "--batch", "2", "--device", device],
        ]
        .concat();
        let o = sample(
            &args,
            &[("TRILEMMA_EMU_STATS", stats.to_str().unwrap())],
            &out,
        );
        assert!(o.status.success(), "{tag}: {}", output_text(&o));
        let dtoh = dtoh_copies(&stats, &tag);
        (npz_pixels(&out), dtoh)
    };
    let (want, _) = run("cpu", "4");
    let (got, copies4) = run("cuda", "4");
    let diffs: Vec<u32> = got
        .iter()
        .zip(&want)
        .map(|(&a, &b)| (a as i32 - b as i32).unsigned_abs())
        .collect();
    let max = diffs.iter().copied().max().unwrap_or(0);
    let differing = diffs.iter().filter(|&&d| d > 0).count() as f64 / diffs.len() as f64;
    println!(
        "lsgm rk4: max {max} levels, {:.2}% differ",
        100.0 * differing
    );
    assert!(max <= 1 && differing <= 0.01, "max {max}, {differing}");
    if trilemma::device::is_emulated() {
        let (_, copies2) = run("cuda", "2");
        println!("device-to-host copies: {copies2:?} for 2 steps, {copies4:?} for 4");
        assert!(copies4.is_some() && copies2 == copies4);
    }
}

/// One emulator counter of a `TRILEMMA_EMU_STATS` file: the total kernel launches from the host, the
/// graph launches and the device-to-host copies.
fn launch_counts(stats: &std::path::Path) -> (u64, u64, u64) {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stats).unwrap()).unwrap();
    let launches = v["launches"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    (
        launches,
        v["graph_launches"].as_u64().unwrap(),
        v["copies"]["dtoh"]["count"].as_u64().unwrap(),
    )
}

/// `--graph on` (the default) against `--graph off` for DDGAN, SSCS and Euler–Maruyama: the same
/// images bit for bit, and from the emulator's counters: each batch after the first is one graph
/// launch (the second is captured, then replayed), so a run of one more batch makes one more graph
/// launch, no further kernel launch from the host, and the copies back of an uncaptured batch (its
/// images and one word per watched tensor: DDGAN's x, CLD's x and v).
#[test]
fn graph_runs_replay_each_later_batch_with_one_launch_and_the_same_bits() {
    if !on_the_emulator(
        "graph_runs_replay_each_later_batch_with_one_launch_and_the_same_bits",
        "reads the emulator's counters",
    ) {
        return;
    }
    let tmp = TempDir::new("graphs");
    let sscs = ["--sampler", "sscs", "--steps", "4"];
    let em = ["--sampler", "em", "--steps", "4"];
    for (tag, model, extra, copies) in [
        ("ddgan", "ddgan-digits", &[][..], 2),
        ("sscs", "cld-digits", &sscs[..], 3),
        ("em", "cld-digits", &em[..], 3),
    ] {
        let run = |graph: &str, num: &str| {
            let name = format!("{tag}-{graph}-{num}");
            let (out, stats) = (
                tmp.path().join(format!("{name}.npz")),
                tmp.path().join(format!("{name}.json")),
            );
            let args = [
                &["--model", model, "--device", "cuda", "--batch", "1"][..],
                &["--num", num, "--graph", graph],
                extra,
            ]
            .concat();
            let o = sample(
                &args,
                &[("TRILEMMA_EMU_STATS", stats.to_str().unwrap())],
                &out,
            );
            let text = output_text(&o);
            assert!(o.status.success(), "{name}: {text}");
            (npz_pixels(&out), launch_counts(&stats), text)
        };
        let (px_off, (_, graphs_off, _), _) = run("off", "4");
        let (px_on, (launches4, graphs4, dtoh4), text) = run("on", "4");
        let (_, (launches3, graphs3, dtoh3), _) = run("on", "3");
        println!("{tag}: {launches3}/{launches4} host launches, {graphs3}/{graphs4} graph launches for 3/4 batches");
        assert!(px_on == px_off, "{tag}: graph and non-graph images differ");
        assert!(
            text.contains("1 CUDA graph captured, 3 replays"),
            "{tag}: {text}"
        );
        assert_eq!(graphs_off, 0, "{tag}");
        assert_eq!(
            (graphs3, graphs4),
            (2, 3),
            "{tag}: one graph launch per batch after the first"
        );
        assert_eq!(
            launches4, launches3,
            "{tag}: a replayed batch launches no kernel from the host"
        );
        assert_eq!(
            dtoh4 - dtoh3,
            copies,
            "{tag}: a replayed batch copies back its images and watch words"
        );
    }
}
