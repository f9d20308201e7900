//! Samplers of the three families. Each sampler's coefficient math lives in a header under
//! `kernels/common/` that the CUDA kernels include and the host compiles too (csrc/host_math.cpp), so the
//! CPU path and the tests run the kernels' own arithmetic.

pub mod batches;
pub mod cld;
pub mod ddgan;
pub mod graph;
pub mod lsgm;
pub mod noise;
pub mod ode;
pub mod run;

pub use noise::Noise;
