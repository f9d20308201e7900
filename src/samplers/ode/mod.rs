//! The ODE solvers the probability-flow samplers share: adaptive Dormand–Prince RK45 (`rk45.rs`, the
//! official solver's scheme) and classical fixed-step RK4 (`rk4.rs`), both over an [`OdeSpace`]
//! (`space.rs`): host vectors, or f64 state on the network's device.

pub mod rk4;
pub mod rk45;
pub mod space;

pub use space::{HostSpace, OdeSpace, TensorSpace, Tolerances};
