//! The default models of `assets/models/`, embedded in the library.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// The default models shipped in `assets/models/<name>/` (config.json + model.safetensors), embedded in
/// the library by the generated `default_models.rs` so `trilemma sample` works from any directory.
/// Without the `embedded-models` feature the list is empty (a library user who loads only converted
/// directories does not link 6 MB of weights).
pub fn embed(out_dir: &Path) {
    println!("cargo:rerun-if-changed=assets/models");
    let wanted = env::var_os("CARGO_FEATURE_EMBEDDED_MODELS").is_some();
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut entries = Vec::new();
    let dir = match wanted {
        true => fs::read_dir(root.join("assets").join("models")).ok(),
        false => None,
    };
    if let Some(dir) = dir {
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
