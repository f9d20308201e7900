//! The committed C header `include/trilemma.h` must equal what cbindgen generates from
//! `crates/trilemma-c/src` now. `TRILEMMA_BLESS=1 cargo test --test c_header_fresh` rewrites it.

use std::path::PathBuf;

#[test]
fn the_committed_header_is_what_cbindgen_generates() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let crate_dir = root.join("crates/trilemma-c");
    let header = root.join("include/trilemma.h");
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen parses src/lib.rs")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("utf-8 header");
    if std::env::var_os("TRILEMMA_BLESS").is_some() {
        std::fs::write(&header, &generated).expect("write include/trilemma.h");
        return;
    }
    let committed = std::fs::read_to_string(&header).unwrap_or_default();
    assert!(
        committed == generated,
        "include/trilemma.h is stale: run TRILEMMA_BLESS=1 cargo test --test c_header_fresh and commit it"
    );
}
