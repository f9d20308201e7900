//! The CUDA backend: device storage and the launch wrappers of the kernels in `kernels/`, one file per
//! kernel file (`kernels/X.cu` ↔ `X.rs`), the helpers they share in [`launch`].

mod attention;
mod cld_em;
mod cld_sscs;
mod conv2d;
mod ddgan_posterior;
mod elementwise;
mod finite;
mod group_norm;
mod launch;
mod layout;
mod philox_normal;
mod pointwise;
mod resample;
mod storage;

pub use storage::CudaStorage;

impl crate::backend::BackendStorage for CudaStorage {}
