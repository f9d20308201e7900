//! The typed list of kernels: every `extern "C" __global__` entry point of `kernels/*.cu`, read from the
//! source text (no nvcc needed), written to `OUT_DIR/kernel_names.rs` as one Rust module per kernel
//! file with one `Kernel` constant per entry point. The launch wrappers name kernels only through these
//! constants, so a misspelt or removed kernel is a compile error, not a run-time lookup failure.
//!
//! Entry points written out directly and those a function-like macro stamps out per type
//! (`#define TRI_CAST(FROM, TO, S, D) extern "C" __global__ void cast_##FROM##_to_##TO(...)` with its
//! invocations `TRI_CAST(f32, bf16, float, __nv_bfloat16)`) are both read: the macro's parameters are
//! substituted into the `##`-pasted name. `tests/kernel_resources.rs` checks the list against the
//! kernels ptxas compiled, so the reader cannot silently miss one.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

/// One kernel file's stem and its entry points, in source order.
pub struct KernelFile {
    pub stem: String,
    pub kernels: Vec<String>,
}

/// The source with comments removed and backslash-continued lines joined.
fn clean(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
            out.push(' ');
        } else if let Some(after) = rest.strip_prefix("\\\n") {
            rest = after;
            out.push(' ');
        } else {
            let c = rest.chars().next().expect("non-empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The name expression after `__global__` in `text`: skips `void` and `__launch_bounds__(...)`, then
/// takes everything up to the parameter list's `(` (e.g. `cast_##FROM##_to_##TO`).
fn entry_name(text: &str) -> Option<String> {
    let mut rest = text.trim_start().strip_prefix("void")?.trim_start();
    if let Some(after) = rest.strip_prefix("__launch_bounds__") {
        let mut depth = 0usize;
        let mut end = None;
        for (i, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = after[end?..].trim_start();
    }
    let name: String = rest[..rest.find('(')?].split_whitespace().collect();
    (!name.is_empty()).then_some(name)
}

/// Substitutes the macro's parameters into a `##`-pasted name.
fn paste(name: &str, params: &[&str], args: &[&str]) -> String {
    name.split("##")
        .map(|piece| {
            let piece = piece.trim();
            params
                .iter()
                .position(|p| *p == piece)
                .map_or(piece, |i| args[i].trim())
        })
        .collect()
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The entry points of one `.cu` source.
pub fn entry_points(path: &Path, src: &str) -> Vec<String> {
    const MARK: &str = "extern \"C\" __global__";
    let text = clean(src);
    // Function-like macros that define kernels: name -> (parameters, kernel name expression).
    let mut macros: Vec<(String, Vec<String>, String)> = Vec::new();
    let mut names = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let t = line.trim();
        if let Some(def) = t.strip_prefix("#define") {
            let Some(at) = def.find(MARK) else { continue };
            let head = def[..at].trim();
            let (Some(open), Some(close)) = (head.find('('), head.find(')')) else {
                panic!(
                    "{}: a kernel-defining macro without parameters: {t}",
                    path.display()
                );
            };
            let params = head[open + 1..close]
                .split(',')
                .map(|p| p.trim().to_string());
            let name = entry_name(&def[at + MARK.len()..]).unwrap_or_else(|| {
                panic!("{}: cannot read the kernel name in: {t}", path.display())
            });
            macros.push((head[..open].trim().to_string(), params.collect(), name));
        } else if t.starts_with('#') {
            continue;
        } else if t.contains(MARK) {
            // The name may follow on the next line (after a `__launch_bounds__` line); the entry
            // text up to the parameter list is enough.
            let entry = start + line.find(MARK).expect("the mark is on this line") + MARK.len();
            let name = entry_name(&text[entry..]).unwrap_or_else(|| {
                panic!("{}: cannot read the kernel name in: {t}", path.display())
            });
            names.push(name);
        } else {
            for (m, params, name) in &macros {
                let Some(args) = t
                    .strip_prefix(m.as_str())
                    .and_then(|r| r.trim().strip_prefix('('))
                else {
                    continue;
                };
                let args: Vec<&str> = args[..args.rfind(')').unwrap_or(args.len())]
                    .split(',')
                    .collect();
                assert_eq!(
                    args.len(),
                    params.len(),
                    "{}: {m} takes {} arguments: {t}",
                    path.display(),
                    params.len()
                );
                let params: Vec<&str> = params.iter().map(String::as_str).collect();
                names.push(paste(name, &params, &args));
            }
        }
    }
    for n in &names {
        assert!(
            is_identifier(n),
            "{}: `{n}` is not a kernel name",
            path.display()
        );
    }
    names
}

/// Every `<dir>/*.cu`, sorted by stem.
pub fn scan(dir: &str) -> Vec<KernelFile> {
    let files = crate::fatbins::cu_sources(dir);
    files
        .iter()
        .map(|path| {
            let src = fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("utf-8 kernel file name")
                .to_string();
            KernelFile {
                kernels: entry_points(path, &src),
                stem,
            }
        })
        .collect()
}

/// `OUT_DIR/kernel_names.rs`: `pub mod <stem> { pub const <NAME>: Kernel = ...; }` per file and `ALL`.
pub fn write(files: &[KernelFile], out_dir: &Path) {
    let mut src = String::from("// Generated by build.rs from kernels/*.cu; do not edit.\n");
    for f in files {
        writeln!(
            src,
            "/// The kernels of `kernels/{}.cu`.\npub mod {} {{",
            f.stem, f.stem
        )
        .expect("write to String");
        src.push_str("    use crate::kernels::Kernel;\n");
        for k in &f.kernels {
            writeln!(
                src,
                "    pub const {}: Kernel = Kernel {{ module: {:?}, name: {:?} }};",
                k.to_ascii_uppercase(),
                f.stem,
                k
            )
            .expect("write to String");
        }
        src.push_str("}\n");
    }
    src.push_str(
        "/// Every kernel of every file.\npub const ALL: &[crate::kernels::Kernel] = &[\n",
    );
    for f in files {
        for k in &f.kernels {
            writeln!(src, "    {}::{},", f.stem, k.to_ascii_uppercase()).expect("write to String");
        }
    }
    src.push_str("];\n");
    fs::write(out_dir.join("kernel_names.rs"), src).expect("write kernel_names.rs");
}
