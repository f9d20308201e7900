//! Network building blocks over the ops, loaded from official weight names.

pub mod blocks;
pub mod embedding;
pub mod layers;
pub mod packed_weight;
pub mod weights;

pub use packed_weight::PackedWeight;
pub use weights::Weights;
