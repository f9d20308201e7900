//! Files: safetensors weights and fixtures; images (PNG, .npz) with the `images` feature.

#[cfg(feature = "images")]
pub mod images;
pub mod safetensors;
