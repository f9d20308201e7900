//! The CPU backend: plain, PyTorch-semantics implementations. They are the oracle the CUDA kernels are
//! tested against and the fallback for machines without a GPU.

mod elementwise;
mod randn;
mod storage;

pub use storage::CpuStorage;
