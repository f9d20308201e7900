//! The CUDA backend: device storage and the launch wrappers of the kernels in `kernels/`.

mod ddgan_posterior;
mod elementwise;
mod network;
mod randn;
mod storage;

pub use storage::CudaStorage;
