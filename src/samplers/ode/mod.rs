//! The ODE solvers the probability-flow samplers share: adaptive Dormand–Prince RK45 (`rk45.rs`, the
//! official solver's scheme) and classical fixed-step RK4 (`rk4.rs`).

pub mod rk4;
pub mod rk45;
