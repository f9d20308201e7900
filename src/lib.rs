//! trilemma: hand-written CUDA kernels with a Rust host for fast diffusion-model sampling
//! (CLD-SGM, DDGAN, LSGM).
//!
//! Layers, bottom up: [`kernels`] (the embedded fatbins and their shared parameter structs),
//! [`device`] (CPU or one GPU: context, stream, caching allocator), [`tensor`], [`backend`] (every op
//! once for the CPU, the reference, and once for CUDA), [`ops`] (validation and dispatch), [`rng`]
//! (Philox noise) and [`io`] (safetensors).

pub mod backend;
pub mod bench;
pub mod device;
pub mod dtype;
pub mod error;
pub mod io;
pub mod kernels;
pub mod models;
pub mod nn;
pub mod ops;
pub mod rng;
pub mod samplers;
pub mod tensor;

pub use device::Device;
pub use dtype::DType;
pub use error::{Error, Result};
pub use tensor::Tensor;
