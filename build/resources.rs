//! ptxas's resource report (`-Xptxas -v`): registers, shared memory, stack and spills per kernel and
//! architecture, parsed from nvcc's output.

use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Default)]
pub struct Resources {
    pub kernel: String,
    pub arch: String,
    pub registers: u32,
    pub shared: u32,
    pub stack: u32,
    pub spill_stores: u32,
    pub spill_loads: u32,
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
pub fn parse_ptxas(log: &str) -> Vec<Resources> {
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

/// ptxas's report of every compiled module as the TSV the library embeds (`PTXAS_RESOURCES_TSV`).
pub fn tsv(results: &[(String, PathBuf, String)]) -> String {
    let mut tsv = String::from(
        "module\tkernel\tarch\tregisters\tshared_bytes\tstack_bytes\tspill_store_bytes\tspill_load_bytes\n",
    );
    for (stem, _, log) in results {
        for r in parse_ptxas(log) {
            writeln!(
                tsv,
                "{stem}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                r.kernel, r.arch, r.registers, r.shared, r.stack, r.spill_stores, r.spill_loads
            )
            .expect("write to String");
        }
    }
    tsv
}
