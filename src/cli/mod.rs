//! The `trilemma` command line (feature `cli`): its definition, the one path from an error to the exit
//! code, and the subcommands, which sample and run network calls through the front door a user of
//! the crate calls ([`crate::Model`]). The binary is `src/main.rs`, a call of [`main`].

mod bench;
mod forward;
mod host_memory;
mod info;
mod sample;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "trilemma",
    version,
    about = "Fast diffusion-model sampling on hand-written CUDA kernels"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the build's kernels and the GPUs, driver and memory this machine has.
    Info,
    /// Run one network call of a model on named input tensors and write the outputs, or compare them
    /// with expected ones (--expect; names and shapes: docs/model-format.md).
    Forward(self::forward::ForwardArgs),
    /// Sample images from a converted model and write them as a PNG grid, a folder of PNGs or an .npz.
    Sample(self::sample::SampleArgs),
    /// Time network calls and sampling runs under the PyTorch baseline's ids, side by side with a
    /// baseline file (tools/bench_pytorch.py) measured on the same machine (`--list` prints the ids;
    /// `--help` lists them too).
    Bench(self::bench::BenchArgs),
}

/// Runs the command line on the process's arguments and returns its exit status: 0 success, 1 a
/// check that ran and failed (`forward --expect`), 2 an error (printed on stderr).
pub fn main() -> ExitCode {
    // `bench --help` lists its cases (generated from the released networks).
    let command =
        Cli::command().mut_subcommand("bench", |c| c.after_long_help(self::bench::case_help()));
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Info => self::info::run().map(|()| true),
        Command::Forward(args) => self::forward::run(&args),
        Command::Sample(args) => self::sample::run(&args).map(|()| true),
        Command::Bench(args) => self::bench::run(&args).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        // A check that ran and failed (forward --expect): 1, apart from errors (2).
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {}", in_flag_words(&e));
            ExitCode::from(2)
        }
    }
}

/// The library names a run's settings (`steps must be ...`); the command line says which flag
/// carried them (`--steps must be ...`).
fn in_flag_words(e: &crate::Error) -> String {
    const FLAGS: [&str; 9] = [
        "sampler",
        "steps",
        "num",
        "batch",
        "shard",
        "device",
        "part",
        "model",
        "precision",
    ];
    match e {
        crate::Error::BadSetting { what, .. } if FLAGS.contains(what) => format!("--{e}"),
        crate::Error::InvalidParam { what, .. } if FLAGS.contains(what) => {
            e.to_string()
                .replacen(&format!(": {what} must"), &format!(": --{what} must"), 1)
        }
        _ => e.to_string(),
    }
}

/// Opens the one device of `spec` for `what` (a command), saying on stderr what `auto` chose.
pub(crate) fn open_device(
    spec: crate::device::DeviceSpec,
    what: &'static str,
) -> crate::Result<crate::Device> {
    let opened = spec.open_one(what)?;
    if let Some(note) = &opened.note {
        eprintln!("{note}");
    }
    let [device] =
        <[crate::Device; 1]>::try_from(opened.devices).map_err(|d| crate::Error::InvalidParam {
            op: what,
            what: "--device",
            rule: "one device",
            found: format!("{} devices", d.len()),
        })?;
    Ok(device)
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum PartArg {
    Encoder,
    Decoder,
    Score,
}
