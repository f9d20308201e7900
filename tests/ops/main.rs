//! Every op's tests, one module per kernel stem (`kernels/X.cu` ↔ `src/ops/X.rs` ↔ `tests/ops/X.rs`),
//! each written once and run on every device present (`common::devices`): the CPU against the op's
//! reference (PyTorch fixtures, float64 loops, the rounding rules themselves), then the GPU under test (a
//! real one, or the CUDA driver emulator with memcheck) against the CPU on the same inputs and the same
//! Philox noise, its outputs poisoned with NaN first so an element a kernel does not write fails.
//! Without a GPU the GPU half is skipped, unless `TRILEMMA_REQUIRE_GPU=1` makes that a failure.
//!
//! Tolerances, stated where they are used: fp32 CPU against float64 ≤ 1e-5 relative L2; GPU against
//! the CPU bit for bit where the kernel repeats the CPU twin's rounded operations in order, else
//! relative L2 ≤ 1e-4 and max abs ≤ 1e-4 × max |CPU| (libm ulps, summation order).

#[path = "../common/mod.rs"]
mod common;

mod arguments;
mod attention;
mod cld_em;
mod cld_sscs;
mod conv2d;
mod ddgan_posterior;
mod elementwise;
mod finite;
mod group_norm;
mod layout;
mod ode;
mod ode_drift;
mod philox_normal;
mod pointwise;
mod resample;
mod storage16;
mod tensors;
