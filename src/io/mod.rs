//! Files: safetensors weights and fixtures.

pub mod safetensors;
