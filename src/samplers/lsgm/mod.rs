//! LSGM: the latent SDEs and the mixed noise prediction (`sde.rs`, from `kernels/common/lsgm_sde.h`),
//! and the latent probability-flow ODE with the NVAE decoder around it (`sample.rs`).

pub mod sample;
pub mod sde;

pub use sample::{
    decode, reconstruct, sample, sample_latent, LatentScore, LsgmConfig, LsgmSample, LsgmSolver,
    Reconstruction,
};
pub use sde::{mixed_eps, LsgmSde};
