//! The CUDA backend: device storage and the launch wrappers of the kernels in `kernels/`, one file per
//! kernel file (`kernels/X.cu` ↔ `X.rs`), the helpers they share in `launch.rs`.

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
mod ode;
mod ode_drift;
mod philox_normal;
mod pointwise;
mod resample;
mod storage;
mod wide;

pub use storage::CudaStorage;
pub use wide::CudaWide;

impl crate::backend::BackendStorage for CudaStorage {}
