//! What the compiler made of the tensor-core building blocks, read from the embedded fatbins with
//! cuobjdump (no GPU needed): for sm_80 and sm_90a, the SASS of `tensor_core_check.cu` holds the
//! tensor-core instructions (HMMA for bf16, fp16 and TF32), the shared-memory matrix loads (LDSM, plain
//! and transposed) and the asynchronous copies (LDGSTS, with zero-fill, and their barriers), so none of
//! the building blocks quietly compiled to something else; the tensor-core convolutions
//! (`conv2d_tc.cu`) and attention (`attention_tc.cu`) hold their HMMA and LDSM, the convolutions also
//! their weight tiles' LDGSTS.
//!
//! cuobjdump is looked up beside `NVCC` (the CI's pinned wheels put it there), then as `CUOBJDUMP`;
//! it needs nvdisasm beside it. Without it the test skips, unless `TRILEMMA_REQUIRE_CUOBJDUMP=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn cuobjdump() -> Option<PathBuf> {
    let beside_nvcc = std::env::var_os("NVCC")
        .map(PathBuf::from)
        .and_then(|n| n.parent().map(|d| d.join("cuobjdump")));
    let named = std::env::var_os("CUOBJDUMP").map(PathBuf::from);
    let found = beside_nvcc.into_iter().chain(named).find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var("TRILEMMA_REQUIRE_CUOBJDUMP").as_deref() != Ok("1"),
            "TRILEMMA_REQUIRE_CUOBJDUMP=1 but no cuobjdump beside NVCC or at CUOBJDUMP"
        );
        eprintln!("SKIP: no cuobjdump beside NVCC or at CUOBJDUMP");
    }
    found
}

/// The SASS of `fatbin` for `arch`, by cuobjdump (with nvdisasm from the same folder).
fn sass(tool: &Path, fatbin: &[u8], arch: &str, tmp: &common::TempDir) -> String {
    let file = tmp.path().join(format!("{arch}.fatbin"));
    std::fs::write(&file, fatbin).unwrap();
    let dir = tool.parent().unwrap();
    let path = std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let out = Command::new(tool)
        .args(["--dump-sass", "--gpu-architecture", arch])
        .arg(&file)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cuobjdump --dump-sass {arch}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number of instructions of `sass` whose opcode (with its modifiers) is exactly `opcode`.
fn count(sass: &str, opcode: &str) -> usize {
    sass.split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| *w == opcode)
        .count()
}

/// For sm_80 and sm_90a (where the build has them), the SASS of kernel file `module` (from
/// `fatbins`, the engine's or the test kernels') holds at least `least` of each `opcode`. Skips
/// without cuobjdump or nvcc, unless the environment requires them.
fn assert_sass_holds(fatbins: &[(&str, &[u8])], module: &str, expected: &[(&str, usize)]) {
    let Some(tool) = cuobjdump() else {
        return;
    };
    let Some((_, fatbin)) = fatbins.iter().find(|(m, _)| *m == module) else {
        assert!(
            std::env::var("TRILEMMA_REQUIRE_NVCC").as_deref() != Ok("1"),
            "{module}: the kernels were not built"
        );
        eprintln!("SKIP: built without nvcc");
        return;
    };
    let tmp = common::TempDir::new(&format!("sass-{module}"));
    for arch in ["sm_80", "sm_90a"] {
        if !trilemma::kernels::CUDA_ARCHS.contains(&arch) {
            eprintln!("SKIP {arch}: not in this build's architectures");
            continue;
        }
        let s = sass(&tool, fatbin, arch, &tmp);
        for &(opcode, least) in expected {
            let n = count(&s, opcode);
            assert!(
                n >= least,
                "{arch}: {n} {opcode} in {module} (expected at least {least})"
            );
        }
    }
}

#[test]
fn tensor_core_building_blocks_compile_to_tensor_core_instructions() {
    // (opcode, at least): one mma per 16-bit type, 1 + 3 TF32 mmas (plain and 3xTF32), the six
    // ldmatrix forms of ldmatrix_layouts plus the two of mma_tile, and cp.async's forms.
    assert_sass_holds(
        trilemma::kernels::TEST_FATBINS,
        "tensor_core_check",
        &[
            ("HMMA.16816.F32.BF16", 1),
            ("HMMA.16816.F32", 1),
            ("HMMA.1688.F32.TF32", 4),
            ("LDSM.16.M88", 1),
            ("LDSM.16.M88.2", 1),
            ("LDSM.16.M88.4", 2),
            ("LDSM.16.MT88", 1),
            ("LDSM.16.MT88.2", 2),
            ("LDSM.16.MT88.4", 1),
            ("LDGSTS.E.BYPASS.128.ZFILL", 1),
            ("LDGSTS.E.64", 1),
            ("LDGSTS.E", 2),
            ("LDGDEPBAR", 2),
            ("DEPBAR.LE", 2),
        ],
    );
}

#[test]
fn the_tensor_core_convolutions_run_on_tensor_cores() {
    // bf16 and fp16: 8 mma per k step; TF32: 16 (two k8 halves), 3xTF32: 48 (three products).
    assert_sass_holds(
        trilemma::kernels::FATBINS,
        "conv2d_tc",
        &[
            ("HMMA.16816.F32.BF16", 8),
            ("HMMA.16816.F32", 8),
            ("HMMA.1688.F32.TF32", 64),
            ("LDSM.16.M88.4", 4),
            ("LDSM.16.MT88.4", 4),
            // The A runs of the 16-bit kernels load as float4 (2 per run, in the first step's load
            // and the pipelined one, bf16 and fp16 at both tiles) and every kernel stores them to
            // shared memory 16 bytes at a time.
            ("LDG.E.128", 16),
            ("STS.128", 24),
            // The weight tiles by cp.async through L2 (.cg): one 16-byte chunk per thread and step at
            // 16 bits, two at fp32, issued in the first step's load and the pipelined one (the
            // one-stage 3xTF32 kernel's too), in all 12 kernels; the _io16 kernels' A runs through
            // L1 (.ca), one per thread and step in the same two places; each step's copies committed
            // as one group.
            ("LDGSTS.E.BYPASS.128", 32),
            ("LDGSTS.E.128", 8),
            ("LDGDEPBAR", 24),
        ],
    );
}

#[test]
fn the_flash_attention_runs_on_tensor_cores() {
    // Per kernel (bf16, fp16), unrolled: Q·Kᵀ 4 k16 steps x 8 key tiles = 32 mma, P·V 4 k16 steps x
    // 2 column groups x 8 tiles = 64; ldmatrix for Q and K (4 x (1 + 4) per kernel), ldmatrix.trans
    // for V (4 x 2 x 4).
    assert_sass_holds(
        trilemma::kernels::FATBINS,
        "attention_tc",
        &[
            ("HMMA.16816.F32.BF16", 96),
            ("HMMA.16816.F32", 96),
            ("LDSM.16.M88.4", 40),
            ("LDSM.16.MT88.4", 64),
        ],
    );
}
