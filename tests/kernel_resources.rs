//! ptxas's resource report for every kernel and architecture of this build: printed as a table, and a
//! failure on any register spill or local-memory stack frame that kernels/resource-allowances.tsv does
//! not allow. Runs whenever kernels were compiled; without nvcc it skips, unless
//! TRILEMMA_REQUIRE_NVCC=1 (CI) makes an empty kernel set a failure.

use trilemma::kernels::{self, KernelResources};

struct Allowance {
    kernel: String,
    max_stack: u32,
    max_spill: u32,
}

fn allowances() -> Vec<Allowance> {
    include_str!("../kernels/resource-allowances.tsv")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(
                f.len() >= 4,
                "resource-allowances.tsv: need kernel, stack, spill, reason: `{l}`"
            );
            Allowance {
                kernel: f[0].to_string(),
                max_stack: f[1].parse().expect("max_stack_bytes is a number"),
                max_spill: f[2].parse().expect("max_spill_bytes is a number"),
            }
        })
        .collect()
}

fn table(rows: &[KernelResources]) -> String {
    let mut s = format!(
        "{:<14} {:<22} {:<8} {:>5} {:>7} {:>6} {:>7} {:>7}\n",
        "module", "kernel", "arch", "regs", "smem B", "stack", "spill>", "spill<"
    );
    for r in rows {
        s += &format!(
            "{:<14} {:<22} {:<8} {:>5} {:>7} {:>6} {:>7} {:>7}\n",
            r.module,
            r.kernel,
            r.arch,
            r.registers,
            r.shared_bytes,
            r.stack_bytes,
            r.spill_store_bytes,
            r.spill_load_bytes
        );
    }
    s
}

#[test]
fn no_kernel_spills_or_uses_stack_unless_allowed() {
    if !kernels::compiled() {
        if std::env::var("TRILEMMA_REQUIRE_NVCC").is_ok_and(|v| v == "1") {
            panic!("TRILEMMA_REQUIRE_NVCC=1 but this build has no kernels");
        }
        eprintln!("SKIP no_kernel_spills_or_uses_stack_unless_allowed: built without nvcc");
        return;
    }
    let rows = kernels::resources().expect("build.rs writes a well-formed report");
    println!(
        "ptxas resources (nvcc {}):\n{}",
        kernels::NVCC_RELEASE.unwrap_or("?"),
        table(&rows)
    );

    // Every module's kernels were reported for every SASS architecture of the build.
    let sass: Vec<&str> = kernels::CUDA_ARCHS
        .iter()
        .copied()
        .filter(|a| a.starts_with("sm_"))
        .collect();
    for (module, _) in kernels::FATBINS {
        for arch in &sass {
            assert!(
                rows.iter().any(|r| r.module == *module && r.arch == *arch),
                "no ptxas report for module {module} on {arch}"
            );
        }
    }

    let allowed = allowances();
    let offenders: Vec<String> = rows
        .iter()
        .filter(|r| {
            let a = allowed.iter().find(|a| a.kernel == r.kernel);
            let (max_stack, max_spill) = a.map_or((0, 0), |a| (a.max_stack, a.max_spill));
            r.stack_bytes > max_stack || r.spill_store_bytes.max(r.spill_load_bytes) > max_spill
        })
        .map(|r| {
            format!(
                "{} on {}: stack {} B, spills {}/{} B",
                r.kernel, r.arch, r.stack_bytes, r.spill_store_bytes, r.spill_load_bytes
            )
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "kernels over their local-memory allowance:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn every_kernel_the_host_launches_is_in_the_build() {
    if !kernels::compiled() {
        eprintln!("SKIP every_kernel_the_host_launches_is_in_the_build: built without nvcc");
        return;
    }
    let rows = kernels::resources().expect("build.rs writes a well-formed report");
    let mut expected = Vec::new();
    for d in ["f32", "bf16", "f16"] {
        expected.push(("philox_normal", format!("randn_philox_{d}")));
        expected.push(("elementwise", format!("axpby_{d}")));
        expected.push(("ddgan_posterior", format!("ddgan_posterior_step_{d}")));
    }
    for (a, b) in [
        ("f32", "bf16"),
        ("f32", "f16"),
        ("bf16", "f32"),
        ("f16", "f32"),
        ("bf16", "f16"),
        ("f16", "bf16"),
    ] {
        expected.push(("elementwise", format!("cast_{a}_to_{b}")));
    }
    for (module, kernel) in expected {
        assert!(
            rows.iter()
                .any(|r| r.module == module && r.kernel == kernel),
            "{module}.cu has no entry point {kernel}"
        );
    }
}

/// The typed kernel list build.rs reads from the sources (`kernels::names`, what every launch names)
/// is exactly the set of entry points ptxas compiled, for every architecture of the build.
#[test]
fn the_typed_kernel_list_is_exactly_the_compiled_kernels() {
    let listed: std::collections::BTreeSet<(String, String)> = kernels::names::ALL
        .iter()
        .map(|k| (k.module.to_string(), k.name.to_string()))
        .collect();
    assert_eq!(
        listed.len(),
        kernels::names::ALL.len(),
        "a kernel listed twice"
    );
    // Without nvcc: the list still names a kernel file for each module, and every file has kernels.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
    for (module, name) in &listed {
        assert!(
            dir.join(format!("{module}.cu")).is_file(),
            "{name}: no kernels/{module}.cu"
        );
    }
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "cu") {
            let stem = p.file_stem().unwrap().to_str().unwrap().to_string();
            assert!(
                listed.iter().any(|(m, _)| *m == stem),
                "kernels/{stem}.cu: no kernel read from it"
            );
        }
    }
    if !kernels::compiled() {
        eprintln!("SKIP the compiled-set comparison: built without nvcc");
        return;
    }
    let rows = kernels::resources().expect("build.rs writes a well-formed report");
    for arch in kernels::CUDA_ARCHS.iter().filter(|a| a.starts_with("sm_")) {
        let compiled: std::collections::BTreeSet<(String, String)> = rows
            .iter()
            .filter(|r| r.arch == *arch)
            .map(|r| (r.module.clone(), r.kernel.clone()))
            .collect();
        assert_eq!(listed, compiled, "{arch}: typed list vs ptxas's report");
    }
}

/// What one SM of an architecture holds (the CUDA occupancy calculator's limits).
struct SmLimits {
    max_warps: u32,
    max_ctas: u32,
    shared_bytes: u32,
}

fn sm_limits(arch: &str) -> Option<SmLimits> {
    let (max_warps, max_ctas, shared_kib) = match arch {
        "sm_80" => (64, 32, 164),
        "sm_86" => (48, 16, 100),
        "sm_89" => (48, 24, 100),
        "sm_90" | "sm_90a" => (64, 32, 228),
        _ => return None,
    };
    Some(SmLimits {
        max_warps,
        max_ctas,
        shared_bytes: shared_kib * 1024,
    })
}

/// CTAs of `threads` threads that fit on one SM with `r`'s registers and static shared memory: the
/// least of the CTA limit, the warp limit, the register file (65536 per SM, allocated per warp in
/// units of 256, registers per thread rounded up to 8) and shared memory (1 KiB reserved per CTA,
/// allocated in 128-byte units).
fn ctas_per_sm(r: &KernelResources, threads: u32, sm: &SmLimits) -> u32 {
    let warps = threads.div_ceil(32);
    let per_warp_regs = (r.registers.div_ceil(8) * 8 * 32).div_ceil(256) * 256;
    let by_regs = (65536 / per_warp_regs) / warps;
    let by_warps = sm.max_warps / warps;
    let shared = (r.shared_bytes + 1024).div_ceil(128) * 128;
    let by_shared = sm.shared_bytes / shared;
    sm.max_ctas.min(by_warps).min(by_regs).min(by_shared)
}

/// The tensor-core kernels reach the CTAs per SM they are tuned for on every architecture of the build
/// (their `__launch_bounds__` minimum): the registers ptxas gave them and their shared memory leave
/// room for that many, so latency hiding is what the tile design assumed.
#[test]
fn tensor_core_kernels_reach_their_intended_ctas_per_sm() {
    if !kernels::compiled() {
        assert!(
            std::env::var("TRILEMMA_REQUIRE_NVCC").as_deref() != Ok("1"),
            "TRILEMMA_REQUIRE_NVCC=1 but no kernels were compiled"
        );
        eprintln!("SKIP: built without nvcc");
        return;
    }
    // (kernel, threads per CTA, intended CTAs per SM): kernels/conv2d_tc.cu's TC_KERNEL lines (the
    // threads follow from the tile and warp tile, the CTAs are the __launch_bounds__ minimum) and
    // kernels/attention_tc.cu's kernels, as src/speed_model.rs counts them.
    use trilemma::ops::ConvTile;
    use trilemma::speed_model::{resident_ctas, FLASH_ATTENTION_RESIDENT_CTAS};
    let flash = FLASH_ATTENTION_RESIDENT_CTAS as u32;
    let (small, big) = (
        resident_ctas(ConvTile::T64x64) as u32,
        resident_ctas(ConvTile::T128x128) as u32,
    );
    let intended = [
        ("conv2d_implicit_gemm_bf16", 128, small),
        ("conv2d_implicit_gemm_f16", 128, small),
        ("conv2d_implicit_gemm_tf32", 128, small),
        ("conv2d_implicit_gemm_3xtf32", 128, small),
        ("conv2d_implicit_gemm_bf16_128x128", 256, big),
        ("conv2d_implicit_gemm_f16_128x128", 256, big),
        ("conv2d_implicit_gemm_tf32_128x128", 256, big),
        ("conv2d_implicit_gemm_3xtf32_128x128", 256, big),
        ("conv2d_implicit_gemm_bf16_io16", 128, small),
        ("conv2d_implicit_gemm_f16_io16", 128, small),
        ("conv2d_implicit_gemm_bf16_128x128_io16", 256, big),
        ("conv2d_implicit_gemm_f16_128x128_io16", 256, big),
        ("attention_flash_bf16", 128, flash),
        ("attention_flash_f16", 128, flash),
        ("attention_flash_bf16_io16", 128, flash),
        ("attention_flash_f16_io16", 128, flash),
    ];
    let rows = kernels::resources().expect("build.rs writes a well-formed report");
    for (kernel, threads, want) in intended {
        let mut seen = 0;
        for r in rows.iter().filter(|r| r.kernel == kernel) {
            let Some(sm) = sm_limits(&r.arch) else {
                continue;
            };
            seen += 1;
            let got = ctas_per_sm(r, threads, &sm);
            eprintln!(
                "{kernel} {}: {} registers, {} B shared -> {got} CTAs ({} warps) per SM",
                r.arch,
                r.registers,
                r.shared_bytes,
                got * threads / 32
            );
            assert!(
                got >= want,
                "{kernel} on {}: {got} CTAs per SM ({} registers, {} B shared), intended {want}",
                r.arch,
                r.registers,
                r.shared_bytes
            );
        }
        assert!(seen > 0, "{kernel}: not in ptxas's report");
    }
}
