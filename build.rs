//! Build script: the host-compiled shared-math headers (always), the typed kernel list (always), the
//! embedded default models (always) and the CUDA kernels (when nvcc is found). Each job is one file in
//! `build/`:
//!
//! - `host_math.rs`: the shared-math headers as host C++, linked into the library.
//! - `kernel_names.rs`: every kernel entry point of `kernels/*.cu` as a typed constant.
//! - `default_models.rs`: `assets/models/*` embedded.
//! - `fatbins.rs`: nvcc over every `kernels/*.cu`, one fatbin each (SASS per `sm_*` architecture entry,
//!   PTX per `compute_*` entry), embedded by the generated `kernels_generated.rs`.
//! - `resources.rs`: ptxas's resource report (registers, shared memory, stack, spills), embedded as
//!   `ptxas_resources.tsv` so a test can check it.
//! - `emulated_kernels.rs`: the host builds of the kernels for the CUDA driver emulator.
//!
//! nvcc is looked up as `NVCC`, then `CUDA_HOME`/`CUDA_PATH` + `/bin/nvcc`, then `PATH`. Without it the
//! kernel set is empty (a cargo warning says so) unless `TRILEMMA_REQUIRE_NVCC=1`, which makes it an error.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

#[path = "build/default_models.rs"]
mod default_models;
#[path = "build/emulated_kernels.rs"]
mod emulated_kernels;
#[path = "build/fatbins.rs"]
mod fatbins;
#[path = "build/host_math.rs"]
mod host_math;
#[path = "build/kernel_names.rs"]
mod kernel_names;
#[path = "build/resources.rs"]
mod resources;

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
        // PATH counts only where nvcc is looked up on it (fatbins::find_nvcc says so then): the Python
        // and C builds run with a venv's bin/ in front, which must not rebuild every kernel.
        "TRILEMMA_CUDA_ARCHS",
        "TRILEMMA_REQUIRE_NVCC",
        "TRILEMMA_EMU_KERNELS",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    host_math::build();
    default_models::embed(&out_dir);
    kernel_names::write(&kernel_names::scan("kernels"), &out_dir);

    let require = env::var("TRILEMMA_REQUIRE_NVCC").is_ok_and(|v| v == "1");
    match fatbins::find_nvcc() {
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
            write_generated(
                &out_dir,
                None,
                &[],
                (&[], &[]),
                "",
                &emulated_kernels::no_emulated_kernels(),
            );
        }
    }
}

fn compile_kernels(nvcc: &Path, out_dir: &Path) {
    let release = fatbins::nvcc_release(nvcc);
    let archs = fatbins::archs();
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let results = fatbins::compile_all(nvcc, &fatbins::cu_sources("kernels"), &archs, out_dir);

    let tsv = resources::tsv(&results);
    let modules: Vec<(String, PathBuf)> = results
        .iter()
        .map(|(stem, fatbin, _)| (stem.clone(), fatbin.clone()))
        .collect();

    // The host builds for the emulator, and the emulator's own test kernels (device and host builds;
    // kept out of the resource report: some are broken on purpose).
    // TRILEMMA_EMU_KERNELS=0 leaves them out (the GPU bundle: the GPU machine never emulates).
    let wanted = env::var("TRILEMMA_EMU_KERNELS").map_or(true, |v| v != "0");
    // The test kernels' fatbins are built in every case: the tests that check the tensor-core building
    // blocks against a scalar GEMM run them on a real GPU too.
    let selftest_results = fatbins::compile_all(
        nvcc,
        &fatbins::cu_sources("tests/emulator_kernels"),
        &archs,
        out_dir,
    );
    let test_modules: Vec<(String, PathBuf)> = selftest_results
        .iter()
        .map(|(stem, fatbin, _)| (stem.clone(), fatbin.clone()))
        .collect();
    let emulated = match emulated_kernels::cuda_include(nvcc).filter(|_| wanted) {
        Some(inc) => {
            let product = emulated_kernels::emu_modules(&results, &root.join("kernels"), out_dir);
            let selftest = emulated_kernels::emu_modules(
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
            emulated_kernels::no_emulated_kernels()
        }
    };
    write_generated(
        out_dir,
        Some(&release),
        &archs,
        (&modules, &test_modules),
        &tsv,
        &emulated,
    );
}

/// Compiled modules: (name, fatbin path).
type Fatbins<'a> = &'a [(String, PathBuf)];

fn write_generated(
    out_dir: &Path,
    release: Option<&str>,
    archs: &[String],
    (modules, test_modules): (Fatbins<'_>, Fatbins<'_>),
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
    for (constant, list) in [("FATBINS", modules), ("TEST_FATBINS", test_modules)] {
        writeln!(src, "pub const {constant}: &[(&str, &[u8])] = &[").expect("write to String");
        for (name, path) in list {
            writeln!(
                src,
                "    ({name:?}, include_bytes!({:?})),",
                path.display().to_string()
            )
            .expect("write to String");
        }
        src.push_str("];\n");
    }
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
