//! trilemma: hand-written CUDA kernels with a Rust host for fast diffusion-model sampling of the
//! three NVIDIA families that made it fast: CLD-SGM, DDGAN and LSGM, from their official
//! checkpoints (converted by `tools/convert.py`).
//!
//! The front door is [`Model`]: [`Model::load`] a converted model directory or an embedded model by
//! name onto a [`Device`], then [`Model::sample`] images with [`SampleOptions`] or run one network
//! call with [`Model::forward`] on named tensors.
//!
//! ```
//! use trilemma::{Device, Model, SampleOptions};
//! # fn main() -> trilemma::Result<()> {
//! // A GPU where there is one (CUDA is loaded at run time), else the CPU.
//! let device = trilemma::DeviceSpec::Auto.open()?.devices.remove(0);
//! let model = Model::load("ddgan-digits", &device)?;
//! let images = model.sample(&SampleOptions::new(4).seed(7))?;
//! assert_eq!(images.shape, [4, 1, 16, 16]); // NCHW
//! assert!(images.values.iter().all(|v| (0.0..=1.0).contains(v)));
//! # Ok(()) }
//! ```
//!
//! Every failure is an [`Error`] naming what went wrong (the file and tensor, the setting and what
//! it must be, the driver call), never a panic; no GPU is an error value too.
//!
//! Layers, bottom up: [`kernels`] (the embedded fatbins and their shared parameter structs),
//! [`device`] (CPU or one GPU: context, stream, caching allocator), [`tensor`], [`backend`] (every op
//! once for the CPU, the reference, and once for CUDA), [`ops`] (validation and dispatch), [`rng`]
//! (Philox noise), [`io`] (safetensors), [`models`], [`samplers`] and [`sampling`] (the run).

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
pub mod sampling;
pub mod tensor;

pub use device::{Device, DeviceSpec};
pub use dtype::DType;
pub use error::{CudaError, Error, ErrorKind, Result};
pub use models::forward::Part;
pub use models::{Family, Model};
pub use sampling::{BatchSize, Images, Progress, SampleOptions, SampleReport, Sampler};
pub use tensor::Tensor;
