//! The subcommands of the `trilemma` command line, each on the library functions a user of the crate
//! calls (`trilemma::models`, `trilemma::samplers`, `trilemma::bench`).

pub mod bench;
pub mod forward;
mod host_memory;
pub mod info;
pub mod sample;

use clap::ValueEnum;

#[derive(Clone, Copy, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

impl DeviceArg {
    /// The device: the CPU, or GPU 0 (an error value when there is none).
    pub fn open(self) -> trilemma::Result<trilemma::Device> {
        match self {
            DeviceArg::Cpu => Ok(trilemma::Device::Cpu),
            DeviceArg::Cuda => trilemma::Device::cuda(0),
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PartArg {
    Encoder,
    Decoder,
    Score,
}
