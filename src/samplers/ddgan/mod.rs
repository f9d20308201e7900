//! DDGAN: the discretised VP schedule's posterior coefficients (an op, `crate::ops::ddgan_posterior`,
//! from `kernels/common/ddgan_schedule.h`) and the T-step sampling loop (`sample.rs`).

pub mod sample;

pub use crate::ops::{PosteriorCoefficients, MAX_STEPS};
pub use sample::{sample, sample_watched, Generator};
