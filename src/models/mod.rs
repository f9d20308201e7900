//! The networks of the three families, built from official configs and weights.

pub mod config;
pub mod ncsnpp;
pub mod nvae;

pub use config::Config;
pub use ncsnpp::{Family, Ncsnpp};
pub use nvae::Nvae;
