//! The `trilemma` command line: its definition and the one path from an error to the exit code. The
//! subcommands live in `cli/`.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

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
    Forward(cli::forward::ForwardArgs),
    /// Sample images from a converted model and write them as a PNG grid, a folder of PNGs or an .npz.
    Sample(cli::sample::SampleArgs),
    /// Time network calls and sampling runs under the PyTorch baseline's ids, side by side with a
    /// baseline file (tools/bench_pytorch.py) measured on the same machine (`--list` prints the ids;
    /// `--help` lists them too).
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    // `bench --help` lists its cases (generated from the released networks).
    let command =
        Cli::command().mut_subcommand("bench", |c| c.after_long_help(cli::bench::case_help()));
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Info => cli::info::run().map(|()| true),
        Command::Forward(args) => cli::forward::run(&args),
        Command::Sample(args) => cli::sample::run(&args).map(|()| true),
        Command::Bench(args) => cli::bench::run(&args).map(|()| true),
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
fn in_flag_words(e: &trilemma::Error) -> String {
    const FLAGS: [&str; 8] = [
        "sampler", "steps", "num", "batch", "shard", "device", "part", "model",
    ];
    match e {
        trilemma::Error::BadSetting { what, .. } if FLAGS.contains(what) => format!("--{e}"),
        trilemma::Error::InvalidParam { what, .. } if FLAGS.contains(what) => e
            .to_string()
            .replacen(&format!(": {what} must"), &format!(": --{what} must"), 1),
        _ => e.to_string(),
    }
}
