//! The CUDA backend: device storage and the launch wrappers of the kernels in `kernels/`.

mod cld_em;
mod cld_sscs;
mod ddgan_posterior;
mod elementwise;
pub(crate) mod finite;
mod network;
mod randn;
mod storage;

pub(crate) use cld_em::cld_em_step;
pub(crate) use cld_sscs::sscs_half_step;
pub use storage::CudaStorage;
