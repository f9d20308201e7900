//! The CPU backend: plain, PyTorch-semantics implementations. They are the oracle the CUDA kernels are
//! tested against and the fallback for machines without a GPU. Network ops are fp32, multi-threaded
//! (rayon) and use a GEMM crate for the matrix products.

mod attention;
mod conv2d;
mod elementwise;
mod gemm;
mod group_norm;
mod layout;
mod network;
mod randn;
mod resample;
mod storage;

pub use storage::CpuStorage;
