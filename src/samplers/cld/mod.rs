//! CLD-SGM: the critically-damped Langevin SDE (`sde.rs`, coefficients from
//! `kernels/common/cld_sscs.h`) and its samplers, SSCS, Euler–Maruyama and the probability-flow ODE
//! (`sample.rs`).

pub mod sample;
pub mod sde;

pub use sample::{sample, sample_watched, CldConfig, CldSample, CldSampler, CldScore};
pub use sde::{CldSde, SscsHalfStep};
