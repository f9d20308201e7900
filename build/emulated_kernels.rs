//! The host builds of the kernels for the CUDA driver emulator (crates/cuda-emu).
//!
//! Every `kernels/*.cu` (and every `tests/emulator_kernels/*.cu`, the emulator's own deliberately broken
//! test kernels) is compiled a second time as host C++ with `crates/cuda-emu/include/tri_emu.h`
//! force-included, twice: a plain build, and a memory-checked build instrumented by gcc's
//! `-fsanitize=kernel-address` in its call mode (every load and store calls a hook of the emulator's
//! runtime, which checks it against the device-memory shadow byte by byte). One source per kernel: the
//! generated translation unit only renames the kernel entry points per build (so both builds link into
//! one library), wraps the source in an unnamed namespace (its helper functions stay private to the
//! build), and lists the kernels in a table the emulator reads. The kernel names, launch bounds,
//! parameter sizes and whether a kernel needs fibers come from the PTX that nvcc wrote for the device
//! build, so the emulator knows exactly what the device build holds.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// One `.entry` of a PTX file.
pub struct PtxKernel {
    pub name: String,
    pub param_sizes: Vec<u32>,
    pub max_threads: u32,
    pub needs_fibers: bool,
}

/// One module to host-compile: its stem, source, the kernels its PTX declares, and ptxas's figures
/// (registers, static shared bytes, stack bytes) per kernel.
pub struct EmuModule {
    pub stem: String,
    pub src: PathBuf,
    pub fatbin: PathBuf,
    pub kernels: Vec<PtxKernel>,
    pub resources: Vec<(String, u32, u32, u32)>,
}

fn param_size(decl: &str) -> u32 {
    // `.param .u64 name`, `.param .align 4 .b8 name[16]`
    if let (Some(open), Some(close)) = (decl.find('['), decl.find(']')) {
        return decl[open + 1..close].trim().parse().unwrap_or(0);
    }
    for (ty, size) in [
        (".u64", 8),
        (".s64", 8),
        (".b64", 8),
        (".f64", 8),
        (".u32", 4),
        (".s32", 4),
        (".b32", 4),
        (".f32", 4),
        (".u16", 2),
        (".s16", 2),
        (".b16", 2),
        (".f16", 2),
        (".u8", 1),
        (".s8", 1),
        (".b8", 1),
    ] {
        if decl.split_whitespace().any(|w| w == ty) {
            return size;
        }
    }
    0
}

/// Instructions that make the threads of a block depend on each other's progress.
const COLLECTIVES: &[&str] = &[
    "bar.sync",
    "bar.red",
    "bar.arrive",
    "barrier.sync",
    "barrier.red",
    "barrier.arrive",
    "bar.warp.sync",
    "shfl.sync",
    "vote.sync",
    "match.",
    "redux.sync",
    "activemask",
];

pub fn parse_ptx(ptx: &str) -> Vec<PtxKernel> {
    // A collective inside a `.func` reaches every kernel that calls functions: count it for them all
    // (conservative: fibers are only slower, never wrong).
    let module_has_collective = COLLECTIVES.iter().any(|c| ptx.contains(c));
    let mut out = Vec::new();
    let mut rest = ptx;
    while let Some(at) = rest.find(".entry ") {
        let after = &rest[at + ".entry ".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '$')
            .collect();
        let Some(open) = after.find('(') else { break };
        let Some(close) = after.find(')') else { break };
        let param_sizes = after[open + 1..close]
            .split(',')
            .map(str::trim)
            .filter(|p| p.starts_with(".param"))
            .map(param_size)
            .collect();
        let body_end = after[close..]
            .find(".entry ")
            .map_or(after.len(), |e| close + e);
        let head_and_body = &after[close..body_end];
        let body_start = head_and_body.find('{').unwrap_or(0);
        let head = &head_and_body[..body_start];
        let max_threads = head
            .lines()
            .find_map(|l| l.trim().strip_prefix(".maxntid"))
            .map(|dims| {
                dims.split(',')
                    .filter_map(|d| d.trim().parse::<u32>().ok())
                    .product()
            })
            .unwrap_or(0);
        let calls = head_and_body.contains("call.uni") || head_and_body.contains("call ");
        let needs_fibers = COLLECTIVES.iter().any(|c| head_and_body.contains(c))
            || (calls && module_has_collective);
        out.push(PtxKernel {
            name,
            param_sizes,
            max_threads,
            needs_fibers,
        });
        rest = &after[body_end.min(after.len())..];
    }
    out
}

/// The PTX nvcc kept for one of the module's architectures.
pub fn kept_ptx(keep_dir: &Path, stem: &str) -> Option<String> {
    let mut ptx: Vec<PathBuf> = fs::read_dir(keep_dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "ptx")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{stem}.")))
        })
        .collect();
    ptx.sort();
    fs::read_to_string(ptx.first()?).ok()
}

/// The host compiler's copy of a kernel source: nvcc's `#pragma unroll` (which GCC ignores) becomes
/// `#pragma GCC unroll 16`, so the host build unrolls the same constant-trip loops. Without it, the
/// small register arrays of a kernel (a micro-tile's accumulators, a thread's fragments) stay in
/// memory indexed at run time, and the checked build calls the sanitizer on every access to them;
/// unrolled, their indices are constants and they are plain locals. A `#line` keeps diagnostics
/// pointing at the original file; the test kernels' `../../kernels/common/` includes name the copies.
fn host_text(original: &Path, text: &str) -> String {
    let mut out = format!("#line 1 {:?}\n", original.display().to_string());
    for line in text.lines() {
        if line.trim() == "#pragma unroll" {
            out.push_str(&line.replace("#pragma unroll", "#pragma GCC unroll 16"));
        } else if line.starts_with("#include \"../../kernels/common/") {
            out.push_str(&line.replace("../../kernels/common/", "common/"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn write_if_changed(path: &Path, text: &str) {
    if fs::read_to_string(path).ok().as_deref() != Some(text) {
        fs::write(path, text).expect("write emulated-kernel source");
    }
}

/// Host copies (`host_text`) of `kernels/common/` and of each module's source under `dir`: a module's
/// `#include "common/..."` finds the copies beside it before the `kernels` include path.
fn host_sources(modules: &[EmuModule], dir: &Path) {
    let common = dir.join("common");
    fs::create_dir_all(&common).expect("create emulated-kernel source dir");
    let mut headers: Vec<PathBuf> = fs::read_dir("kernels/common")
        .expect("read kernels/common")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "h" || e == "cuh"))
        .collect();
    headers.sort();
    for h in headers {
        let text = fs::read_to_string(&h).expect("read a kernel header");
        let name = h.file_name().expect("a file name");
        write_if_changed(&common.join(name), &host_text(&h, &text));
    }
    for m in modules {
        let text = fs::read_to_string(&m.src).expect("read a kernel source");
        write_if_changed(
            &dir.join(format!("{}.cu", m.stem)),
            &host_text(&m.src, &text),
        );
    }
}

fn variant_tu(m: &EmuModule, variant: &str) -> String {
    let mut s =
        String::from("// Generated by build.rs (build/emulated_kernels.rs); do not edit.\n");
    for k in &m.kernels {
        writeln!(s, "#define {0} {0}__emu_{variant}", k.name).expect("write");
    }
    // The host copy beside this translation unit (`host_sources`).
    writeln!(s, "namespace {{\n#include \"{}.cu\"\n}}", m.stem).expect("write");
    for k in &m.kernels {
        writeln!(s, "#undef {}", k.name).expect("write");
    }
    s.push_str("static const TriEmuKernelEntry kernels[] = {\n");
    for k in &m.kernels {
        writeln!(s, "    TRI_EMU_KERNEL({0:?}, {0}__emu_{variant}),", k.name).expect("write");
    }
    writeln!(
        s,
        "}};\nextern \"C\" const TriEmuModuleTable trilemma_emu_{stem}_{variant} = {{{stem:?}, {n}, kernels}};",
        stem = m.stem,
        n = m.kernels.len()
    )
    .expect("write");
    s
}

/// Compiles the plain and checked host builds of `modules` into one static library `lib` and returns
/// the Rust source of `pub fn <fn_name>() -> Vec<ModuleImage>`.
pub fn build(
    modules: &[EmuModule],
    cuda_include: &Path,
    out_dir: &Path,
    lib: &str,
    fn_name: &str,
) -> String {
    let dir = out_dir.join(format!("{lib}_src"));
    fs::create_dir_all(&dir).expect("create emulated-kernel source dir");
    host_sources(modules, &dir);
    for (variant, checked) in [("plain", false), ("checked", true)] {
        let mut b = cc::Build::new();
        b.cpp(true)
            .std("c++17")
            .opt_level(2)
            .include("kernels")
            .include(cuda_include)
            .include("crates/cuda-emu/include")
            .flag("-include")
            .flag("tri_emu.h")
            // The same fp32 operations the kernels spell out, no contraction into fma.
            .flag("-ffp-contract=off")
            .flag("-fno-strict-aliasing")
            .flag("-Wno-unknown-pragmas")
            .warnings(false)
            .define("TRI_EMU_CHECKED", if checked { "1" } else { "0" });
        if host_has_fma() {
            // fmaf as one instruction instead of a library call (the result is the same: fmaf is
            // exactly rounded either way).
            b.flag("-mfma");
        }
        if checked {
            b.flag("-fsanitize=kernel-address")
                .flag("--param=asan-instrumentation-with-call-threshold=0")
                .flag("--param=asan-globals=0")
                .flag("--param=asan-stack=0")
                // Vectorising would merge 4-byte accesses into 16-byte ones the GPU code does not make,
                // which the alignment check would then flag.
                .flag("-fno-tree-vectorize")
                .flag("-fno-tree-slp-vectorize")
                // Keeps a float4 load one 16-byte access instead of four scalar ones, so its
                // alignment is checked as the GPU's vector load would need it.
                .flag("-fno-tree-sra");
        }
        for m in modules {
            let tu = dir.join(format!("{}_{variant}.cpp", m.stem));
            let text = variant_tu(m, variant);
            if fs::read_to_string(&tu).ok().as_deref() != Some(text.as_str()) {
                fs::write(&tu, text).expect("write emulated-kernel translation unit");
            }
            b.file(&tu);
        }
        b.compile(&format!("{lib}_{variant}"));
    }

    let mut rs = String::new();
    rs.push_str("extern \"C\" {\n");
    for m in modules {
        for v in ["plain", "checked"] {
            writeln!(
                rs,
                "    static trilemma_emu_{}_{v}: trilemma_cuda_emu::TriEmuModuleTable;",
                m.stem
            )
            .expect("write");
        }
    }
    rs.push_str("}\n");
    writeln!(
        rs,
        "pub fn {fn_name}() -> Vec<trilemma_cuda_emu::ModuleImage> {{"
    )
    .expect("write");
    rs.push_str("    vec![\n");
    for m in modules {
        let mut res = String::new();
        for k in &m.kernels {
            let (regs, shared, local) = m
                .resources
                .iter()
                .find(|r| r.0 == k.name)
                .map_or((0, 0, 0), |r| (r.1, r.2, r.3));
            write!(
                res,
                "trilemma_cuda_emu::KernelResources {{ name: {:?}.into(), registers: {regs}, static_shared_bytes: {shared}, \
                 local_bytes: {local}, max_threads: {}, ptx_param_sizes: vec!{:?}, needs_fibers: {} }}, ",
                k.name, k.max_threads, k.param_sizes, k.needs_fibers
            )
            .expect("write");
        }
        writeln!(
            rs,
            "        trilemma_cuda_emu::ModuleImage {{ name: {stem:?}.into(), fatbin: include_bytes!({fatbin:?}), \
             // SAFETY: the tables are immutable statics of the host build linked into this crate.\n\
             plain: unsafe {{ &*std::ptr::addr_of!(trilemma_emu_{stem}_plain) }}, \
             checked: unsafe {{ &*std::ptr::addr_of!(trilemma_emu_{stem}_checked) }}, resources: vec![{res}] }},",
            stem = m.stem,
            fatbin = m.fatbin.display().to_string(),
        )
        .expect("write");
    }
    rs.push_str("    ]\n}\n");
    rs
}

/// Whether the machine that builds (and, for the emulator, runs) the kernels has FMA instructions.
fn host_has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64")
            && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The CUDA headers beside nvcc (`<root>/bin/nvcc` -> `<root>/include`), which the host build needs for
/// cuda_fp16.h, cuda_bf16.h and vector_types.h.
pub fn cuda_include(nvcc: &Path) -> Option<PathBuf> {
    let inc = nvcc.parent()?.parent()?.join("include");
    inc.join("cuda_fp16.h").is_file().then_some(inc)
}

/// The emulator's view of compiled modules: the kernels the kept PTX declares and, per kernel, ptxas's
/// registers, static shared memory and stack for the architecture the emulated GPU (compute capability
/// 9.0) runs, else the largest of any architecture.
pub fn emu_modules(
    results: &[(String, PathBuf, String)],
    src_dir: &Path,
    out_dir: &Path,
) -> Vec<EmuModule> {
    results
        .iter()
        .map(|(stem, fatbin, log)| {
            let ptx = kept_ptx(&out_dir.join("keep").join(stem), stem)
                .unwrap_or_else(|| panic!("nvcc kept no PTX for {stem}"));
            let records = crate::resources::parse_ptxas(log);
            let kernels = parse_ptx(&ptx);
            let resources = kernels
                .iter()
                .map(|k| {
                    let rows: Vec<&crate::resources::Resources> =
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
            EmuModule {
                stem: stem.clone(),
                src: src_dir.join(format!("{stem}.cu")),
                fatbin: fatbin.clone(),
                kernels,
                resources,
            }
        })
        .collect()
}

pub fn no_emulated_kernels() -> String {
    "pub fn modules() -> Vec<trilemma_cuda_emu::ModuleImage> { Vec::new() }\n\
     pub fn selftest_modules() -> Vec<trilemma_cuda_emu::ModuleImage> { Vec::new() }\n"
        .to_string()
}
