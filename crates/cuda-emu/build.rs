//! Builds the emulator's two native pieces:
//! - `libtrilemma_cuda_emu.so` in OUT_DIR (embedded by src/lib.rs): the driver library with SONAME
//!   `libcuda.so`, from csrc/shim.c plus a generated stub for every driver function cudarc binds
//!   (csrc/driver_functions.txt) that csrc/supported.def does not implement. Its file name is not
//!   `libcuda.so*`, so cargo's library path never puts it in front of a real driver.
//! - the static library of csrc/runtime.cpp (thread coordinates, memcheck hooks, the plain thread loop).

use std::collections::HashSet;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    for f in [
        "csrc/shim.c",
        "csrc/supported.def",
        "csrc/driver_functions.txt",
        "csrc/runtime.cpp",
        "include/tri_emu_abi.h",
        "build.rs",
    ] {
        println!("cargo:rerun-if-changed={f}");
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    let supported = fs::read_to_string("csrc/supported.def").expect("read csrc/supported.def");
    let implemented: HashSet<&str> = supported
        .lines()
        .filter_map(|l| l.strip_prefix("TRI_FN("))
        .filter_map(|l| l.split(',').next())
        .map(str::trim)
        .collect();
    let all =
        fs::read_to_string("csrc/driver_functions.txt").expect("read csrc/driver_functions.txt");
    let mut stubs = String::new();
    for name in all.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !implemented.contains(name) {
            writeln!(
                stubs,
                "__attribute__((visibility(\"default\"))) int {name}() {{ return unsupported(\"{name}\"); }}"
            )
            .expect("write to String");
        }
    }
    for name in &implemented {
        assert!(
            all.lines().any(|l| l.trim() == *name),
            "csrc/supported.def implements {name}, which cudarc does not bind (driver_functions.txt)"
        );
    }
    fs::write(out.join("unsupported.inc"), stubs).expect("write unsupported.inc");

    // The shim, linked as a shared library by the C compiler cc would use. The generated stubs are
    // unprototyped definitions on purpose (they accept whatever cudarc passes), which some compilers
    // warn about: warnings are shown, not errors.
    let cc = cc::Build::new().get_compiler();
    let so = out.join("libtrilemma_cuda_emu.so");
    let mut cmd = Command::new(cc.path());
    cmd.args(["-shared", "-fPIC", "-O2", "-std=gnu11", "-Wall"])
        .arg("-Wl,-soname,libcuda.so")
        .arg("-I")
        .arg("csrc")
        .arg("-I")
        .arg(&out)
        .arg("csrc/shim.c")
        .arg("-o")
        .arg(&so);
    let st = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cc.path().display()));
    assert!(
        st.status.success(),
        "building the emulator's driver library failed:\n{cmd:?}\n{}{}",
        String::from_utf8_lossy(&st.stdout),
        String::from_utf8_lossy(&st.stderr)
    );

    cc::Build::new()
        .cpp(true)
        .file("csrc/runtime.cpp")
        .include("include")
        .std("c++17")
        .opt_level(2)
        .flag("-fno-strict-aliasing")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("trilemma_cuda_emu_runtime");
}
