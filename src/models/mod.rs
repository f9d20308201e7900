//! The networks of the three families, built from official configs and weights.

pub mod config;
pub mod defaults;
pub mod forward;
pub mod model;
pub mod ncsnpp;
pub mod nvae;
pub mod released;

pub use config::Config;
pub use model::Family;
pub use model::{Model, Network};
pub use ncsnpp::Ncsnpp;
pub use nvae::Nvae;
