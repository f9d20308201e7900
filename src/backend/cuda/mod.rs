//! The CUDA backend: device storage and the launch wrappers of the kernels in `kernels/`.

mod cld_steps;
mod ddgan_posterior;
mod elementwise;
pub(crate) mod finite;
mod network;
mod randn;
mod storage;

pub(crate) use cld_steps::{cld_em_step, sscs_half_step};
pub use storage::CudaStorage;
