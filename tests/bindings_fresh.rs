//! The committed Rust side of `kernels/common/params.h` (kernels/common/params_bindings.rs) must equal what
//! bindgen generates now. `TRILEMMA_BLESS=1 cargo test --test bindings_fresh` rewrites it.
//!
//! Needs libclang at run time. Without it the test says so and passes, unless
//! `TRILEMMA_REQUIRE_LIBCLANG=1` (CI sets it) makes that a failure.

use std::path::PathBuf;

const HEADER: &str = "kernels/common/params.h";
const BINDINGS: &str = "kernels/common/params_bindings.rs";

/// The source tree (TRILEMMA_SOURCE_DIR overrides the build-time path for prebuilt executables).
fn root() -> PathBuf {
    std::env::var_os("TRILEMMA_SOURCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn generate() -> Result<String, String> {
    let root = root();
    let header = root.join(HEADER);
    let builder = bindgen::Builder::default()
        .header(header.to_str().expect("utf-8 path"))
        .allowlist_type("Tri.*")
        .allowlist_var("TRI_.*")
        .derive_default(true)
        .derive_copy(true)
        .derive_debug(true)
        .layout_tests(true)
        .raw_line(format!(
            "// Generated from {HEADER} by tests/bindings_fresh.rs (bindgen); do not edit.\n\
             // TRILEMMA_BLESS=1 cargo test --test bindings_fresh regenerates it."
        ));
    // bindgen panics when libclang cannot be loaded; turn that into a reportable condition.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.generate()));
    match result {
        Ok(Ok(b)) => Ok(b.to_string()),
        // Without C headers (stdint.h) libclang cannot parse anything: not this header's fault. Where
        // the toolchain is required (CI), the caller turns this into a failure.
        Ok(Err(e)) => Err(format!("bindgen failed on {HEADER}: {e}")),
        Err(_) => Err("libclang could not be loaded (install libclang-dev)".to_string()),
    }
}

#[test]
fn committed_bindings_match_params_header() {
    let generated = match generate() {
        Ok(g) => g,
        Err(why) => {
            if std::env::var("TRILEMMA_REQUIRE_LIBCLANG").is_ok_and(|v| v == "1") {
                panic!("TRILEMMA_REQUIRE_LIBCLANG=1: {why}");
            }
            eprintln!("SKIP committed_bindings_match_params_header: {why} (TRILEMMA_REQUIRE_LIBCLANG=1 makes this a failure)");
            return;
        }
    };
    let path = root().join(BINDINGS);
    if std::env::var("TRILEMMA_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write bindings");
        eprintln!("wrote {BINDINGS}");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{BINDINGS} is stale relative to {HEADER}: run `TRILEMMA_BLESS=1 cargo test --test bindings_fresh` and \
         commit the result.\n--- generated ---\n{generated}"
    );
}
