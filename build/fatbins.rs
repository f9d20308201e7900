//! nvcc: finding it, the architecture list, and compiling each `kernels/*.cu` to a fatbin (SASS per
//! `sm_*` entry, PTX per `compute_*` entry) with ptxas's resource report in its output.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// SASS for Ampere (A100, A10/RTX 30), Ada (L4/RTX 40) and Hopper with its `a` features (wgmma,
/// setmaxnreg), plus Ampere PTX that newer GPUs can JIT.
pub const DEFAULT_ARCHS: &str = "sm_80,sm_86,sm_89,sm_90a,compute_80";

pub fn find_nvcc() -> Option<PathBuf> {
    if let Some(p) = env::var_os("NVCC") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
        println!(
            "cargo:warning=trilemma: NVCC={} is not a file; looking elsewhere",
            p.display()
        );
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(root) = env::var_os(var) {
            let p = Path::new(&root).join("bin").join("nvcc");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    // Only now does PATH decide which nvcc builds the kernels.
    println!("cargo:rerun-if-env-changed=PATH");
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|d| d.join("nvcc"))
        .find(|p| p.is_file())
}

/// Parses `TRILEMMA_CUDA_ARCHS` (comma-separated `sm_XY[a]` for SASS, `compute_XY[a]` for PTX) into
/// nvcc `-gencode` values.
pub fn archs() -> Vec<String> {
    let spec = env::var("TRILEMMA_CUDA_ARCHS").unwrap_or_else(|_| DEFAULT_ARCHS.to_string());
    let archs: Vec<String> = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    for a in &archs {
        let num = a
            .strip_prefix("sm_")
            .or_else(|| a.strip_prefix("compute_"))
            .map(|n| n.trim_end_matches('a'));
        let ok = num.is_some_and(|n| n.len() >= 2 && n.chars().all(|c| c.is_ascii_digit()));
        assert!(
            ok,
            "TRILEMMA_CUDA_ARCHS: `{a}` is not of the form sm_XY, sm_XYa, compute_XY or compute_XYa (got `{spec}`)"
        );
    }
    assert!(!archs.is_empty(), "TRILEMMA_CUDA_ARCHS is empty");
    archs
}

fn gencode(arch: &str) -> String {
    match arch.strip_prefix("sm_") {
        Some(n) => format!("arch=compute_{n},code=sm_{n}"),
        None => format!("arch={arch},code={arch}"),
    }
}

pub fn nvcc_release(nvcc: &Path) -> String {
    let out = Command::new(nvcc)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} --version: {e}", nvcc.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("release ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| {
            panic!(
                "cannot read the release from `{} --version`:\n{text}",
                nvcc.display()
            )
        })
}

pub fn cu_sources(dir: &str) -> Vec<PathBuf> {
    let mut sources: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.expect("readable directory entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "cu"))
                .collect()
        })
        .unwrap_or_default();
    sources.sort();
    sources
}

/// nvcc over `sources` (one nvcc per file, files in parallel); each nvcc runs its architectures one at
/// a time (--threads 1) so its ptxas -v report is never interleaved with another's.
pub fn compile_all(
    nvcc: &Path,
    sources: &[PathBuf],
    archs: &[String],
    out_dir: &Path,
) -> Vec<(String, PathBuf, String)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = sources
            .iter()
            .map(|src| scope.spawn(move || compile_one(nvcc, src, archs, out_dir)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("nvcc worker thread"))
            .collect()
    })
}

/// Compiles one `kernels/<stem>.cu` to `OUT_DIR/<stem>.fatbin`; returns the stem, the fatbin path and
/// nvcc's output (ptxas -v report).
fn compile_one(
    nvcc: &Path,
    src: &Path,
    archs: &[String],
    out_dir: &Path,
) -> (String, PathBuf, String) {
    let stem = src
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("utf-8 kernel file name")
        .to_string();
    let fatbin = out_dir.join(format!("{stem}.fatbin"));
    let mut cmd = Command::new(nvcc);
    cmd.args([
        "-fatbin",
        "-O3",
        "-lineinfo",
        "-std=c++17",
        "-Werror",
        "all-warnings",
    ])
    .args(["-Xptxas", "-v", "--threads", "1", "-I", "kernels"]);
    // The PTX is kept for the emulator (kernel names, launch bounds, parameter sizes).
    let keep = out_dir.join("keep").join(&stem);
    fs::create_dir_all(&keep).expect("create nvcc keep dir");
    cmd.arg("-keep").arg("-keep-dir").arg(&keep);
    for a in archs {
        cmd.arg("-gencode").arg(gencode(a));
    }
    cmd.arg("-o").arg(&fatbin).arg(src);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", nvcc.display()));
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "nvcc failed on {}:\n{cmd:?}\n{log}",
        src.display()
    );
    (stem, fatbin, log)
}
