//! Network building blocks over the ops, loaded from official weight names.

pub mod blocks;
pub mod embedding;
pub mod layers;
pub mod weights;

pub use weights::Weights;
