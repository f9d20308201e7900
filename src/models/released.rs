//! The networks of the released checkpoints (tools/reference/ncsnpp.py PRESETS, network fields), as
//! configs: what the benchmarks build with random weights to time the official sizes (the speed does
//! not depend on the weights). Ids match the PyTorch baseline's (tools/bench_pytorch.py).

use super::{Config, Family, Ncsnpp};
use crate::device::Device;
use crate::error::Result;
use crate::nn::Weights;

/// One released network configuration.
#[derive(Clone, Copy, Debug)]
pub struct ReleasedNetwork {
    pub family: Family,
    pub preset: &'static str,
    pub config_json: &'static str,
}

/// DDGAN CIFAR-10, CLD CIFAR-10 and the LSGM MNIST score network.
pub const RELEASED_NETWORKS: [ReleasedNetwork; 3] = [
    ReleasedNetwork {
        family: Family::Ddgan,
        preset: "cifar10",
        config_json: r#"{"num_channels": 3, "centered": true, "num_res_blocks": 2, "attn_resolutions": [16],
            "dropout": 0.0, "resamp_with_conv": true, "conditional": true, "fir": true,
            "fir_kernel": [1, 3, 3, 1], "skip_rescale": true, "resblock_type": "biggan",
            "progressive": "none", "progressive_input": "residual", "progressive_combine": "sum",
            "embedding_type": "positional", "fourier_scale": 16.0, "not_use_tanh": false, "nz": 100,
            "z_emb_dim": 256, "image_size": 32, "num_channels_dae": 128, "ch_mult": [1, 2, 2, 2],
            "n_mlp": 4, "num_timesteps": 4}"#,
    },
    ReleasedNetwork {
        family: Family::Cld,
        preset: "cifar10",
        config_json: r#"{"name": "ncsnpp", "normalization": "GroupNorm", "nonlinearity": "swish", "n_channels": 128,
            "attn_resolutions": "16", "resamp_with_conv": true, "fir_kernel": "1,3,3,1",
            "skip_rescale": true, "resblock_type": "biggan", "progressive": "none",
            "progressive_combine": "sum", "attention_type": "ddpm", "init_scale": 0.0,
            "fourier_scale": 16, "conv_size": 3, "mixed_score": true, "dropout": 0.1, "sde": "cld",
            "image_channels": 3, "image_size": 32, "ch_mult": "1,2,2,2", "use_fir": true,
            "progressive_input": "residual", "embedding_type": "fourier", "n_resblocks": 8}"#,
    },
    ReleasedNetwork {
        family: Family::Lsgm,
        preset: "mnist",
        config_json: r#"{"dae_arch": "ncsnpp", "embedding_type": "positional", "embedding_scale": 1000.0,
            "embedding_dim": 128, "dropout": 0.2, "progressive": "none", "progressive_input": "none",
            "progressive_combine": "sum", "mixed_prediction": true, "dataset": "mnist",
            "num_channels_dae": 256, "num_scales_dae": 2, "num_cell_per_scale_dae": 8, "fir": false,
            "mixing_logit_init": -6.0, "num_preprocess_blocks": 2, "num_latent_scales": 1,
            "num_input_channels": 40}"#,
    },
];

impl ReleasedNetwork {
    /// `<family>/<preset>`, the stem of the benchmark ids.
    pub fn id(&self) -> String {
        format!("{}/{}", self.family.name(), self.preset)
    }

    /// The network with random weights (seeded), on `device`.
    pub fn build_random(&self, seed: u64, device: &Device) -> Result<Ncsnpp> {
        let cfg = Config::from_json_str(self.id(), self.config_json)?;
        Ncsnpp::load(self.family, &cfg, &Weights::random(seed, device))
    }
}
