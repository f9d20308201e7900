//! The subcommands of the `trilemma` command line, each on the library functions a user of the crate
//! calls (`trilemma::models`, `trilemma::samplers`, `trilemma::bench`).

pub mod bench;
pub mod forward;
mod host_memory;
pub mod info;
pub mod sample;

use clap::ValueEnum;

/// Opens the one device of `spec` for `what` (a command), saying on stderr what `auto` chose.
pub fn open_device(
    spec: trilemma::device::DeviceSpec,
    what: &'static str,
) -> trilemma::Result<trilemma::Device> {
    let opened = spec.open_one(what)?;
    if let Some(note) = &opened.note {
        eprintln!("{note}");
    }
    let [device] = <[trilemma::Device; 1]>::try_from(opened.devices).map_err(|d| {
        trilemma::Error::InvalidParam {
            op: what,
            what: "--device",
            rule: "one device",
            found: format!("{} devices", d.len()),
        }
    })?;
    Ok(device)
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PartArg {
    Encoder,
    Decoder,
    Score,
}
