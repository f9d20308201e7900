//! Build script: the host-compiled shared-math headers (always) and the CUDA kernels (when nvcc is found).
//!
//! Kernels: every `kernels/*.cu` becomes one fatbin in OUT_DIR with SASS for each `sm_*` entry of the
//! architecture list and PTX for each `compute_*` entry, embedded in the library by the generated
//! `kernels_generated.rs`. ptxas's resource report (registers, shared memory, stack, spills) is written
//! to `ptxas_resources.tsv` beside it and embedded too, so a test can check it.
//!
//! nvcc is looked up as `NVCC`, then `CUDA_HOME`/`CUDA_PATH` + `/bin/nvcc`, then `PATH`. Without it the
//! kernel set is empty (a cargo warning says so) unless `TRILEMMA_REQUIRE_NVCC=1`, which makes it an error.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "build/emulated_kernels.rs"]
mod emulated_kernels;

/// SASS for Ampere (A100, A10/RTX 30), Ada (L4/RTX 40) and Hopper with its `a` features (wgmma,
/// setmaxnreg), plus Ampere PTX that newer GPUs can JIT.
const DEFAULT_ARCHS: &str = "sm_80,sm_86,sm_89,sm_90a,compute_80";

fn main() {
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-changed=tests/emulator_kernels");
    println!("cargo:rerun-if-changed=build");
    println!("cargo:rerun-if-changed=crates/cuda-emu/include");
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-changed=build.rs");
    for var in [
        "NVCC",
        "CUDA_HOME",
        "CUDA_PATH",
        "PATH",
        "TRILEMMA_CUDA_ARCHS",
        "TRILEMMA_REQUIRE_NVCC",
        "TRILEMMA_EMU_KERNELS",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    build_host_math();
    embed_default_models();

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let require = env::var("TRILEMMA_REQUIRE_NVCC").is_ok_and(|v| v == "1");
    match find_nvcc() {
        Some(nvcc) => compile_kernels(&nvcc, &out_dir),
        None if require => panic!(
            "TRILEMMA_REQUIRE_NVCC=1 but no nvcc was found: set NVCC to its path, or CUDA_HOME/CUDA_PATH \
             to a CUDA toolkit, or put nvcc on PATH"
        ),
        None => {
            println!(
                "cargo:warning=trilemma: nvcc not found (NVCC, CUDA_HOME, CUDA_PATH, PATH); building without \
                 CUDA kernels. The CPU backend works; asking for a CUDA device returns KernelsNotCompiled."
            );
            write_generated(&out_dir, None, &[], &[], "", &no_emulated_kernels());
        }
    }
}

/// The default models shipped in `assets/models/<name>/` (config.json + model.safetensors), embedded in
/// the library by the generated `default_models.rs` so `trilemma sample` works from any directory.
fn embed_default_models() {
    println!("cargo:rerun-if-changed=assets/models");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut entries = Vec::new();
    if let Ok(dir) = fs::read_dir(root.join("assets").join("models")) {
        for e in dir.flatten() {
            let path = e.path();
            let (cfg, weights) = (path.join("config.json"), path.join("model.safetensors"));
            if cfg.is_file() && weights.is_file() {
                println!("cargo:rerun-if-changed={}", path.display());
                let name = e.file_name().to_string_lossy().into_owned();
                entries.push((name, cfg, weights));
            }
        }
    }
    entries.sort();
    let mut src = String::from(
        "/// (name, config.json, model.safetensors) of every model in assets/models.\n\
         pub const DEFAULT_MODELS: &[(&str, &str, &[u8])] = &[\n",
    );
    for (name, cfg, weights) in &entries {
        writeln!(
            src,
            "    ({name:?}, include_str!({:?}), include_bytes!({:?})),",
            cfg.display().to_string(),
            weights.display().to_string()
        )
        .expect("write to String");
    }
    src.push_str("];\n");
    fs::write(out_dir.join("default_models.rs"), src).expect("write default_models.rs");
}

/// The shared-math headers (Philox, later integrator and posterior coefficients) as host C++, so the
/// CPU backend runs the kernels' own arithmetic. No fp contraction: the host must do exactly the fp32
/// operations the header spells out.
fn build_host_math() {
    cc::Build::new()
        .cpp(true)
        .file("csrc/host_math.cpp")
        .include("kernels")
        .std("c++17")
        .opt_level(2)
        .flag("-ffp-contract=off")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("trilemma_host_math");
}

fn find_nvcc() -> Option<PathBuf> {
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
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|d| d.join("nvcc"))
        .find(|p| p.is_file())
}

/// Parses `TRILEMMA_CUDA_ARCHS` (comma-separated `sm_XY[a]` for SASS, `compute_XY[a]` for PTX) into
/// nvcc `-gencode` values.
fn archs() -> Vec<String> {
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

fn nvcc_release(nvcc: &Path) -> String {
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

fn no_emulated_kernels() -> String {
    "pub fn modules() -> Vec<trilemma_cuda_emu::ModuleImage> { Vec::new() }\n\
     pub fn selftest_modules() -> Vec<trilemma_cuda_emu::ModuleImage> { Vec::new() }\n"
        .to_string()
}

fn cu_sources(dir: &str) -> Vec<PathBuf> {
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
fn compile_all(
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

/// The emulator's view of compiled modules: the kernels the kept PTX declares and, per kernel, ptxas's
/// registers, static shared memory and stack for the architecture the emulated GPU (compute capability
/// 9.0) runs, else the largest of any architecture.
fn emu_modules(
    results: &[(String, PathBuf, String)],
    src_dir: &Path,
    out_dir: &Path,
) -> Vec<emulated_kernels::EmuModule> {
    results
        .iter()
        .map(|(stem, fatbin, log)| {
            let ptx = emulated_kernels::kept_ptx(&out_dir.join("keep").join(stem), stem)
                .unwrap_or_else(|| panic!("nvcc kept no PTX for {stem}"));
            let records = parse_ptxas(log);
            let kernels = emulated_kernels::parse_ptx(&ptx);
            let resources = kernels
                .iter()
                .map(|k| {
                    let rows: Vec<&Resources> =
                        records.iter().filter(|r| r.kernel == k.name).collect();
                    let pick = rows
                        .iter()
                        .find(|r| r.arch == "sm_90a" || r.arch == "sm_90")
                        .copied()
                        .or_else(|| rows.iter().max_by_key(|r| r.registers).copied());
                    pick.map_or((k.name.clone(), 0, 0, 0), |r| {
                        (k.name.clone(), r.registers, r.shared, r.stack)
                    })
                })
                .collect();
            emulated_kernels::EmuModule {
                stem: stem.clone(),
                src: src_dir.join(format!("{stem}.cu")),
                fatbin: fatbin.clone(),
                kernels,
                resources,
            }
        })
        .collect()
}

fn compile_kernels(nvcc: &Path, out_dir: &Path) {
    let release = nvcc_release(nvcc);
    let archs = archs();
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let results = compile_all(nvcc, &cu_sources("kernels"), &archs, out_dir);

    let mut modules = Vec::new();
    let mut tsv = String::from(
        "module\tkernel\tarch\tregisters\tshared_bytes\tstack_bytes\tspill_store_bytes\tspill_load_bytes\n",
    );
    for (stem, fatbin, log) in &results {
        for r in parse_ptxas(log) {
            writeln!(
                tsv,
                "{stem}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                r.kernel, r.arch, r.registers, r.shared, r.stack, r.spill_stores, r.spill_loads
            )
            .expect("write to String");
        }
        modules.push((stem.clone(), fatbin.clone()));
    }

    // The host builds for the emulator, and the emulator's own test kernels (device and host builds;
    // kept out of the resource report: some are broken on purpose).
    // TRILEMMA_EMU_KERNELS=0 leaves them out (the GPU bundle: the GPU machine never emulates).
    let wanted = env::var("TRILEMMA_EMU_KERNELS").map_or(true, |v| v != "0");
    let emulated = match emulated_kernels::cuda_include(nvcc).filter(|_| wanted) {
        Some(inc) => {
            let product = emu_modules(&results, &root.join("kernels"), out_dir);
            let selftest_results =
                compile_all(nvcc, &cu_sources("tests/emulator_kernels"), &archs, out_dir);
            let selftest = emu_modules(
                &selftest_results,
                &root.join("tests").join("emulator_kernels"),
                out_dir,
            );
            let mut rs =
                emulated_kernels::build(&product, &inc, out_dir, "trilemma_emu_kernels", "modules");
            rs.push_str(&emulated_kernels::build(
                &selftest,
                &inc,
                out_dir,
                "trilemma_emu_selftest_kernels",
                "selftest_modules",
            ));
            rs
        }
        None => {
            if wanted {
                println!(
                    "cargo:warning=trilemma: no CUDA headers beside {} (include/cuda_fp16.h); the kernels are \
                     not built for the CUDA emulator",
                    nvcc.display()
                );
            }
            no_emulated_kernels()
        }
    };
    write_generated(out_dir, Some(&release), &archs, &modules, &tsv, &emulated);
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

#[derive(Default)]
struct Resources {
    kernel: String,
    arch: String,
    registers: u32,
    shared: u32,
    stack: u32,
    spill_stores: u32,
    spill_loads: u32,
}

/// The number written just before `unit` in `line` ("... 24 bytes stack frame" -> 24).
fn number_before(line: &str, unit: &str) -> Option<u32> {
    let head = &line[..line.find(unit)?];
    head.split(|c: char| !c.is_ascii_digit())
        .rfind(|s| !s.is_empty())?
        .parse()
        .ok()
}

/// Reads `ptxas -v` output: "Compiling entry function 'K' for 'sm_XY'", then the stack/spill line, then
/// "Used N registers, ... N bytes smem ...", which completes the record.
fn parse_ptxas(log: &str) -> Vec<Resources> {
    let mut out = Vec::new();
    let mut cur: Option<Resources> = None;
    for line in log.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let mut parts = rest.split('\'');
            let kernel = parts.next().unwrap_or_default().to_string();
            let arch = parts.nth(1).unwrap_or_default().to_string();
            cur = Some(Resources {
                kernel,
                arch,
                ..Default::default()
            });
        } else if line.contains("bytes stack frame") {
            if let Some(r) = cur.as_mut() {
                r.stack = number_before(line, "bytes stack frame").unwrap_or(0);
                r.spill_stores = number_before(line, "bytes spill stores").unwrap_or(0);
                r.spill_loads = number_before(line, "bytes spill loads").unwrap_or(0);
            }
        } else if line.contains("Used ") && line.contains("registers") {
            if let Some(mut r) = cur.take() {
                r.registers = number_before(line, "registers").unwrap_or(0);
                r.shared = number_before(line, "bytes smem").unwrap_or(0);
                out.push(r);
            }
        }
    }
    out
}

fn write_generated(
    out_dir: &Path,
    release: Option<&str>,
    archs: &[String],
    modules: &[(String, PathBuf)],
    tsv: &str,
    emulated: &str,
) {
    let tsv_path = out_dir.join("ptxas_resources.tsv");
    fs::write(&tsv_path, tsv).expect("write ptxas_resources.tsv");
    let mut src = String::from("// Generated by build.rs; do not edit.\n");
    match release {
        Some(r) => writeln!(src, "pub const NVCC_RELEASE: Option<&str> = Some({r:?});"),
        None => writeln!(src, "pub const NVCC_RELEASE: Option<&str> = None;"),
    }
    .expect("write to String");
    writeln!(src, "pub const CUDA_ARCHS: &[&str] = &{archs:?};").expect("write to String");
    src.push_str("pub const FATBINS: &[(&str, &[u8])] = &[\n");
    for (name, path) in modules {
        writeln!(
            src,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("write to String");
    }
    src.push_str("];\n");
    writeln!(
        src,
        "pub const PTXAS_RESOURCES_TSV: &str = include_str!({:?});",
        tsv_path.display().to_string()
    )
    .expect("write to String");
    fs::write(out_dir.join("kernels_generated.rs"), src).expect("write kernels_generated.rs");
    fs::write(out_dir.join("emulated_kernels_generated.rs"), emulated)
        .expect("write emulated_kernels_generated.rs");
}
