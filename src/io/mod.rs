//! Files: safetensors weights and fixtures.

pub mod images;
pub mod safetensors;
