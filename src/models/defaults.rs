//! The small default models trained on scikit-learn's digits (tools/train_digits.py), embedded in the
//! library from assets/models so that `trilemma sample` needs no download.

use std::path::Path;

use super::model::Model;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::io::safetensors::SafeTensors;

include!(concat!(env!("OUT_DIR"), "/default_models.rs"));

/// The names of the embedded models.
pub fn names() -> Vec<&'static str> {
    DEFAULT_MODELS.iter().map(|(n, _, _)| *n).collect()
}

/// Whether `name` is an embedded model (rather than a directory).
pub fn is_default(name: &str) -> bool {
    DEFAULT_MODELS.iter().any(|(n, _, _)| *n == name)
}

/// Loads the embedded model `name`.
pub fn load(name: &str, device: &Device) -> Result<Model> {
    let Some((_, cfg, weights)) = DEFAULT_MODELS.iter().find(|(n, _, _)| *n == name) else {
        return Err(Error::UnknownModel {
            name: name.to_string(),
            embedded: names().iter().map(|n| n.to_string()).collect(),
        });
    };
    let label = Path::new("<embedded>").join(name);
    let st = SafeTensors::from_bytes(label.join("model.safetensors"), weights.to_vec())?;
    Model::from_parts(&label, &label.join("config.json"), cfg, &st, device)
}
