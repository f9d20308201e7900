//! The CPU backend: plain, PyTorch-semantics implementations, one file per kernel file
//! (`kernels/X.cu` ↔ `X.rs`). They are the oracle the CUDA kernels are tested against and the fallback
//! for machines without a GPU. Network ops are fp32 (the reference precision; the bf16/f16 paths are
//! the GPU's), multi-threaded (rayon) and use a GEMM crate for the matrix products.

mod attention;
mod cld_em;
mod cld_sscs;
mod conv2d;
mod ddgan_posterior;
mod elementwise;
mod finite;
mod gemm;
mod group_norm;
mod layout;
pub(crate) mod ode;
mod ode_drift;
mod philox_normal;
mod pointwise;
mod resample;
mod storage;

pub use storage::CpuStorage;

impl crate::backend::BackendStorage for CpuStorage {}
