//! The `trilemma` command line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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
    /// Run one network call of a converted model on named input tensors and write the outputs
    /// (names and shapes: docs/model-format.md).
    Forward {
        /// The converted model directory (config.json + model.safetensors).
        #[arg(long)]
        model: PathBuf,
        /// A safetensors file with the named inputs (NCHW, as PyTorch holds them).
        #[arg(long)]
        inputs: PathBuf,
        /// Where to write the outputs (safetensors; written atomically).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
        device: DeviceArg,
        /// For LSGM models: which network to run.
        #[arg(long, value_enum)]
        part: Option<PartArg>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceArg {
    Cpu,
    Cuda,
}

#[derive(Clone, Copy, ValueEnum)]
enum PartArg {
    Encoder,
    Decoder,
    Score,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Info => info(),
        Command::Forward {
            model,
            inputs,
            out,
            device,
            part,
        } => match forward(&model, &inputs, &out, device, part) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn forward(
    model: &std::path::Path,
    inputs: &std::path::Path,
    out: &std::path::Path,
    device: DeviceArg,
    part: Option<PartArg>,
) -> trilemma::Result<()> {
    use trilemma::models::forward::{self, Part};
    let device = match device {
        DeviceArg::Cpu => trilemma::Device::Cpu,
        DeviceArg::Cuda => trilemma::Device::cuda(0)?,
    };
    let part = part.map(|p| match p {
        PartArg::Encoder => Part::Encoder,
        PartArg::Decoder => Part::Decoder,
        PartArg::Score => Part::Score,
    });
    let m = trilemma::models::Model::load(model, &device)?;
    let st = trilemma::io::safetensors::SafeTensors::open(inputs)?;
    let outputs = forward::forward(&m, &st, part, &device)?;
    let refs: Vec<(&str, &trilemma::Tensor)> =
        outputs.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut meta = BTreeMap::new();
    meta.insert("family".to_string(), m.family.name().to_string());
    meta.insert("device".to_string(), device.describe());
    meta.insert("layout".to_string(), "NCHW".to_string());
    trilemma::io::safetensors::save(out, &refs, &meta)?;
    for (name, t) in &outputs {
        println!("{name} {:?}", t.shape());
    }
    Ok(())
}

fn gib(bytes: usize) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn info() -> ExitCode {
    println!("trilemma {}", env!("CARGO_PKG_VERSION"));
    match trilemma::kernels::NVCC_RELEASE {
        Some(release) => println!(
            "kernels: {} modules built by nvcc {release} for {}",
            trilemma::kernels::FATBINS.len(),
            trilemma::kernels::CUDA_ARCHS.join(", ")
        ),
        None => println!("kernels: none (built without nvcc; only the CPU backend is available)"),
    }
    match trilemma::device::driver_version() {
        Ok(v) => println!("driver: CUDA {}.{}", v / 1000, (v % 1000) / 10),
        Err(e) => {
            println!("driver: none ({e})");
            println!("devices: no GPU on this machine; the CPU backend is available");
            return ExitCode::SUCCESS;
        }
    }
    match trilemma::device::cuda_devices() {
        Ok(devs) => {
            for d in devs {
                println!(
                    "cuda:{}  {}  compute {}.{}  {} SMs  memory {} total, {} free  kernels: {}",
                    d.ordinal,
                    d.name,
                    d.compute_capability.0,
                    d.compute_capability.1,
                    d.multiprocessors,
                    gib(d.total_memory),
                    gib(d.free_memory),
                    d.kernel_image
                        .unwrap_or("none for this GPU (rebuild with TRILEMMA_CUDA_ARCHS)")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("devices: none usable ({e})");
            ExitCode::SUCCESS
        }
    }
}
