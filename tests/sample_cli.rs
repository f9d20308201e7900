//! `trilemma sample`: shards written as PNG folders reproduce the single run file for file, replayed
//! noise reproduces the reference run, the .npz layout, and bad settings fail before any work with exit
//! status 2 and nothing written.

#[macro_use]
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{test_model, TempDir};
use trilemma::io::safetensors::SafeTensors;
use trilemma::Device;

fn trilemma() -> Command {
    trilemma_command!()
}

fn run(args: &[&str], out: &Path) -> Output {
    trilemma()
        .arg("sample")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run trilemma sample")
}

fn text(o: &Output) -> String {
    common::output_text(o)
}

fn ddgan() -> String {
    test_model("ddgan_small").display().to_string()
}

#[test]
fn shards_write_the_same_files_as_the_single_run() {
    let tmp = TempDir::new("shard");
    let (whole, a, b) = (
        tmp.path().join("whole"),
        tmp.path().join("a"),
        tmp.path().join("b"),
    );
    let m = ddgan();
    let base = [
        "--model",
        m.as_str(),
        "--num",
        "5",
        "--batch",
        "2",
        "--seed",
        "3",
    ];
    let o = run(&base, &whole);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("5 images"),
        "{}",
        text(&o)
    );
    for (shard, dir) in [("0/2", &a), ("1/2", &b)] {
        let mut args = base.to_vec();
        args.extend(["--shard", shard]);
        let o = run(&args, dir);
        assert!(o.status.success(), "{}", text(&o));
    }
    let mut names: Vec<String> = std::fs::read_dir(&whole)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "000000.png",
            "000001.png",
            "000002.png",
            "000003.png",
            "000004.png"
        ]
    );
    for n in &names {
        let shard_file = if a.join(n).exists() {
            a.join(n)
        } else {
            b.join(n)
        };
        assert_eq!(
            std::fs::read(whole.join(n)).unwrap(),
            std::fs::read(&shard_file).unwrap(),
            "{n} differs between the single run and its shard"
        );
    }
}

#[test]
fn replayed_noise_reproduces_the_reference_run() {
    let tmp = TempDir::new("replay");
    let out = tmp.path().join("x.npz");
    let m = ddgan();
    let noise = test_model("ddgan_small").join("sample.noise.safetensors");
    let o = run(
        &[
            "--model",
            m.as_str(),
            "--num",
            "3",
            "--noise-from",
            noise.to_str().unwrap(),
        ],
        &out,
    );
    assert!(o.status.success(), "{}", text(&o));
    // .npz (stored zip) with arr_0.npy: uint8 [3, 16, 16, 3] after a 128-byte header.
    let bytes = std::fs::read(&out).unwrap();
    let npy = bytes
        .windows(6)
        .position(|w| w == b"\x93NUMPY")
        .expect("npy magic");
    let hlen = u16::from_le_bytes([bytes[npy + 8], bytes[npy + 9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[npy + 10..npy + 10 + hlen]).into_owned();
    assert!(
        header.contains("'shape': (3, 16, 16, 3)") && header.contains("|u1"),
        "{header}"
    );
    let data = &bytes[npy + 10 + hlen..npy + 10 + hlen + 3 * 16 * 16 * 3];
    let want = SafeTensors::open(test_model("ddgan_small").join("sample.expected.safetensors"))
        .unwrap()
        .load_any_shape("x_0", &Device::Cpu)
        .unwrap()
        .to_vec_f32()
        .unwrap();
    // Expected NCHW in [-1, 1] → NHWC bytes; at most one quantisation level apart.
    let mut worst = 0i32;
    for s in 0..3 {
        for y in 0..16 {
            for x in 0..16 {
                for c in 0..3 {
                    let v = want[((s * 3 + c) * 16 + y) * 16 + x];
                    let q = (255.0 * ((v + 1.0) / 2.0).clamp(0.0, 1.0) + 0.5).floor() as i32;
                    let got = data[((s * 16 + y) * 16 + x) * 3 + c] as i32;
                    worst = worst.max((q - got).abs());
                }
            }
        }
    }
    assert!(worst <= 1, "{worst} levels apart");
}

#[test]
fn bad_settings_fail_before_any_work() {
    let tmp = TempDir::new("bad");
    let m = ddgan();
    let lsgm = test_model("lsgm_small").display().to_string();
    let existing = tmp.path().join("exists");
    std::fs::create_dir(&existing).unwrap();
    let cases: Vec<(Vec<&str>, std::path::PathBuf, &str)> = vec![
        (
            vec!["--model", m.as_str(), "--sampler", "sscs"],
            tmp.path().join("a.png"),
            "ddgan for a DDGAN model",
        ),
        (
            vec!["--model", m.as_str(), "--steps", "0"],
            tmp.path().join("a.png"),
            "--steps",
        ),
        (
            vec!["--model", m.as_str(), "--num", "0"],
            tmp.path().join("a.png"),
            "--num",
        ),
        (
            vec!["--model", m.as_str(), "--shard", "2/2"],
            tmp.path().join("a.png"),
            "--shard",
        ),
        (
            vec!["--model", lsgm.as_str(), "--steps", "10"],
            tmp.path().join("a.png"),
            "adaptive ODE",
        ),
        (
            vec!["--model", lsgm.as_str(), "--sampler", "sscs"],
            tmp.path().join("a.png"),
            "ode or rk4 for an LSGM model",
        ),
        (
            vec!["--model", m.as_str()],
            tmp.path().join("a.gif"),
            "unknown output type",
        ),
        (
            vec!["--model", m.as_str()],
            existing.clone(),
            "already exists",
        ),
        (
            vec!["--model", m.as_str()],
            tmp.path().join("no/such/dir/a.png"),
            "does not exist",
        ),
    ];
    let mut cases = cases;
    // The memory check reads /proc/meminfo; elsewhere it is skipped (and this batch would be run).
    if std::path::Path::new("/proc/meminfo").exists() {
        cases.push((
            vec![
                "--model",
                m.as_str(),
                "--num",
                "4000000000",
                "--batch",
                "4000000000",
            ],
            tmp.path().join("a.npz"),
            "small enough for the memory available",
        ));
    }
    for (args, out, needle) in cases {
        let o = run(&args, &out);
        let msg = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {msg}");
        assert!(msg.contains(needle), "{args:?}: `{needle}` not in {msg}");
        assert!(!msg.contains("panicked"), "{msg}");
    }
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("exists")],
        "files written: {left:?}"
    );
}

#[test]
fn embedded_default_models_load_and_sample() {
    let names = trilemma::models::defaults::names();
    assert!(names.contains(&"cld-digits"), "embedded: {names:?}");
    for name in names {
        let m = trilemma::models::defaults::load(name, &Device::Cpu).unwrap();
        let tmp = TempDir::new("default");
        let out = tmp.path().join("x.png");
        let mut args = vec!["--model", name, "--num", "2", "--batch", "2"];
        // Few steps: this checks the embedded model runs end to end, not its quality.
        match m.family {
            trilemma::models::Family::Cld => args.extend(["--sampler", "sscs", "--steps", "3"]),
            trilemma::models::Family::Lsgm => args.extend(["--sampler", "rk4", "--steps", "2"]),
            _ => {}
        }
        let o = run(&args, &out);
        assert!(o.status.success(), "{name}: {}", text(&o));
        assert!(out.is_file());
    }
    let err = match trilemma::Model::load("no-such-model", &Device::Cpu) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("loaded a model that does not exist"),
    };
    assert!(err.contains("cld-digits"), "{err}");
}

#[test]
fn memory_estimate_scales_the_probes_and_names_a_batch_that_fits() {
    use trilemma::samplers::run::MemoryEstimate;
    // Probes: 10 MiB at batch 1, 13 MiB at batch 2 → 3 MiB per sample, 7 MiB fixed; 1024-value images.
    let mib = 1usize << 20;
    let e = MemoryEstimate::from_probes(10 * mib, 13 * mib, 1024);
    assert_eq!(e.per_sample, 3 * mib);
    assert_eq!(e.fixed, 7 * mib);
    assert_eq!(e.per_image, 4096);
    // Batch 100: (7 + 300) MiB × 1.25, plus 1000 images of 4 KiB.
    let want = (307 * mib) + (307 * mib) / 4 + 1000 * 4096;
    assert_eq!(e.bytes(100, 1000), want);
    assert!(e.check(100, 1000, want, "cpu").is_ok());
    let err = e.check(100, 1000, want - 1, "cpu").unwrap_err().to_string();
    assert!(err.contains("batch 99 fits"), "{err}");
    let err = e.check(100, 1000, mib, "cpu").unwrap_err().to_string();
    assert!(err.contains("not even batch 1 fits"), "{err}");
}

/// The PNG folder `sample` writes batch by batch: the images appear under the folder's name only when
/// it is finished; a folder dropped unfinished (the run failed) leaves nothing behind.
#[test]
fn png_folders_appear_whole_or_not_at_all() {
    use trilemma::io::images::{Images, PngFolder};
    let tmp = common::TempDir::new("png-folder");
    let data: Vec<f32> = (0..2 * 3 * 4 * 5).map(|i| (i % 7) as f32 / 7.0).collect();
    let imgs = Images {
        data: &data,
        n: 2,
        c: 3,
        h: 4,
        w: 5,
    };
    let listing = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let done = tmp.path().join("done");
    let mut f = PngFolder::create(&done).unwrap();
    f.write(&imgs, 10).unwrap();
    assert!(!done.exists(), "visible before it is finished");
    f.write(&imgs, 12).unwrap();
    f.finish().unwrap();
    assert_eq!(
        listing(&done),
        ["000010.png", "000011.png", "000012.png", "000013.png"]
    );
    let failed = tmp.path().join("failed");
    let mut f = PngFolder::create(&failed).unwrap();
    f.write(&imgs, 0).unwrap();
    drop(f);
    assert!(!failed.exists());
    assert_eq!(
        listing(tmp.path()),
        ["done"],
        "a temporary folder was left behind"
    );
    // An existing folder is refused before anything is written.
    let e = PngFolder::create(&done).err().unwrap().to_string();
    assert!(e.contains("already exists"), "{e}");
}
