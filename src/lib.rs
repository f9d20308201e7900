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
//! Cargo features: `cli` (the command line, [`cli`]; clap, indicatif, png, zip) and
//! `embedded-models` (the digits models, loadable by name) are on by default; a library user can turn
//! both off (`default-features = false`). `internals` makes the layers under the front door public,
//! for the engine's own tests and benchmarks, with no stability promise: bottom up, `kernels` (the
//! embedded fatbins), `device` (CPU or one GPU: context, stream, caching allocator), `tensor`,
//! `backend` (every op once for the CPU, the reference, and once for CUDA), `ops` (validation and
//! dispatch), `rng` (Philox noise), `io` (safetensors), `models`, `samplers` and `sampling` (the run).

// Without `internals`, what only the tests and benchmarks call (the CPU references of host-side
// helpers, kernel resource reports, ...) is unreachable from the front door, and re-exports inside the
// private modules are unused: both are expected, not dead code to remove.
#![cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]

/// The layers under the front door are the crate's own: public only with the `internals` feature,
/// which the test suite and the benchmarks turn on (no stability promise comes with them).
macro_rules! internal_modules {
    ($($name:ident)*) => {$(
        #[cfg(feature = "internals")]
        pub mod $name;
        #[cfg(not(feature = "internals"))]
        mod $name;
    )*};
}

internal_modules!(backend bench device dtype error io kernels models nn ops rng samplers sampling speed_model tensor);

#[cfg(feature = "cli")]
pub mod cli;

pub use device::{Device, DeviceSpec, OpenedDevices, Precision};
pub use dtype::DType;
pub use error::{CudaError, Error, ErrorKind, Result};
pub use io::safetensors::SafeTensors;
pub use models::forward::Part;
pub use models::{Config, Family, Model};
pub use sampling::{
    BatchSize, GraphStats, HostMemory, Images, Progress, SampleOptions, SampleReport, Sampler,
};
pub use tensor::Tensor;
