//! `trilemma sample`: images from a converted or embedded model, as a PNG grid, a folder of PNGs or an
//! .npz, after checking that the output is writable and the batches fit in memory.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SampleArgs {
    /// An embedded default model (cld-digits, ddgan-digits, lsgm-digits) or a converted model
    /// directory (config.json + model.safetensors).
    #[arg(long, default_value = "cld-digits")]
    pub model: String,
    /// sscs, em or ode (CLD), ode or rk4 (LSGM), ddgan (DDGAN); default: the model's own.
    #[arg(long)]
    pub sampler: Option<String>,
    /// Steps of SSCS/EM (default: the config's n_discrete_steps, else 150) or of LSGM's RK4 (default
    /// 25, 4 network evaluations each); DDGAN runs its trained step count.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Images in the whole run (all shards); default 16, or with --noise-from the file's batch.
    #[arg(long)]
    pub num: Option<usize>,
    /// Images per batch, or `auto`: on a GPU the largest batch that fits its free memory (measured
    /// by two probes), on the CPU 16. A batch that runs out of GPU memory mid-run is retried at half
    /// its size.
    #[arg(long, default_value = "auto")]
    pub batch: BatchArg,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// i/n: produce only shard i of n (by global sample index; the images equal a single run's).
    #[arg(long)]
    pub shard: Option<String>,
    /// auto (a GPU where there is one, else the CPU), cpu, cuda, cuda:N or cuda:all (every GPU, samples split
    /// by index).
    #[arg(long, default_value = "auto")]
    pub device: crate::device::DeviceSpec,
    /// Take every random draw from this file instead of Philox (names: docs/sampling.md); the run is
    /// one batch of the file's size (its tensors' first dimension).
    #[arg(long)]
    pub noise_from: Option<PathBuf>,
    /// NAME.png (a grid), NAME.npz (uint8 NHWC `arr_0`) or a new folder (one PNG per image).
    #[arg(long)]
    pub out: PathBuf,
    /// CUDA graphs for the fixed-step samplers (DDGAN, SSCS, EM) on a GPU: `on` captures a batch
    /// size's whole loop once (at its second batch) and replays it for every later batch with one
    /// launch; `off` launches every kernel from the host. The images are the same bits either way.
    #[arg(long, value_enum, default_value_t = GraphArg::On)]
    pub graph: GraphArg,
    /// How a GPU computes convolutions and linear layers: fp32 (FFMA, the reference), 3xtf32
    /// (fp32-accurate on tensor cores), tf32, bf16 or fp16 (operands rounded; within 1e-2).
    #[arg(long, default_value = "fp32")]
    pub precision: crate::Precision,
    /// No progress bar (it is shown only on a terminal, after the first second).
    #[arg(long)]
    pub quiet: bool,
}

/// `--graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphArg {
    On,
    Off,
}

/// `--batch`: a number, or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchArg {
    Auto,
    Fixed(usize),
}

impl std::str::FromStr for BatchArg {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<BatchArg> {
        match s {
            "auto" => Ok(BatchArg::Auto),
            n => n
                .parse()
                .ok()
                .filter(|&b| b > 0)
                .map(BatchArg::Fixed)
                .ok_or_else(|| crate::Error::InvalidParam {
                    op: "sample",
                    what: "--batch",
                    rule: "auto or a whole number of at least 1",
                    found: s.to_string(),
                }),
        }
    }
}

/// `trilemma sample`: the library's [`crate::Model::sample_batches`], its batches written as they
/// arrive.
pub fn run(a: &SampleArgs) -> crate::Result<()> {
    use crate::{BatchSize, SampleOptions};
    let start = std::time::Instant::now();
    let kind = check_out(&a.out)?;
    let shard = a
        .shard
        .as_deref()
        .map(crate::samplers::run::parse_shard)
        .transpose()?;
    let sampler = a
        .sampler
        .as_deref()
        .map(str::parse::<crate::Sampler>)
        .transpose()?;
    let opened = a.device.open()?;
    if let Some(note) = &opened.note {
        eprintln!("{note}");
    }
    let devices = opened.devices;
    let model = crate::Model::load(&a.model, &devices[0])?;
    let replay = a
        .noise_from
        .as_ref()
        .map(crate::io::safetensors::SafeTensors::open)
        .transpose()?;
    // A bar of network evaluations (NFE), batches and images, shown on stderr once a run has gone
    // on for a second, when stderr is a terminal and --quiet is not given.
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::hidden());
    let fixed = indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} NFE, {per_sec}, {eta} left, {msg}",
    );
    let adaptive = indicatif::ProgressStyle::with_template("{spinner} {pos} NFE, {per_sec}, {msg}");
    let (fixed, adaptive) = (
        fixed.unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        adaptive.unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let show = !a.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let styled = std::cell::Cell::new(false);
    let progress = |p: &crate::Progress| {
        if !styled.replace(true) {
            match p.evaluations_expected {
                Some(n) => {
                    bar.set_style(fixed.clone());
                    bar.set_length(n);
                }
                None => bar.set_style(adaptive.clone()),
            }
        }
        bar.set_position(p.evaluations);
        bar.set_message(format!(
            "batch {} of {}, {}/{} images",
            (p.batches_done + 1).min(p.batches_total),
            p.batches_total,
            p.images_done,
            p.images_total
        ));
        if show && start.elapsed().as_secs_f64() > 1.0 && bar.is_hidden() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
    };
    let meter = super::host_memory::Meter;
    let num = match (&replay, a.num) {
        (Some(st), given) => {
            let from_file = replay_batch(st)?;
            match given {
                Some(n) if n != from_file => {
                    return Err(crate::Error::BadSetting {
                        what: "num",
                        rule: format!("the batch of the --noise-from file ({from_file})"),
                        found: n.to_string(),
                    })
                }
                _ => from_file,
            }
        }
        (None, n) => n.unwrap_or(16),
    };
    let mut options = SampleOptions::new(num)
        .seed(a.seed)
        .batch(match a.batch {
            BatchArg::Auto => BatchSize::Auto,
            BatchArg::Fixed(b) => BatchSize::Fixed(b),
        })
        .devices(devices)
        .graph(a.graph == GraphArg::On)
        .precision(a.precision)
        .progress(&progress)
        .host_memory(&meter);
    options.sampler = sampler;
    options.steps = a.steps;
    options.shard = shard;
    options.noise_from = replay.as_ref();
    let range = match (&replay, shard) {
        (None, Some(s)) => crate::samplers::run::shard_range(num, s),
        _ => 0..num,
    };
    let mut out = Output::new(kind, &a.out, range)?;
    let report = model.sample_batches(&options, &mut |b| out.take(b).map(|()| true))?;
    out.finish()?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let total = report.images;
    println!(
        "{} ({} {}, {} NFE per batch over {} of {} on {}{}{}) in {secs:.1} s, {:.2} images/s -> {}",
        count(total, "image", "images"),
        model.family.name(),
        report.sampler.map_or("?", |s| s.name()),
        report.nfe / report.batches.max(1),
        count(report.batches, "batch", "batches"),
        report.batch,
        match report.devices.as_slice() {
            [one] => one.clone(),
            all => format!("{} GPUs", all.len()),
        },
        match report.bytes_per_sample {
            Some(b) => format!(", {:.2} MiB per sample", b as f64 / (1u64 << 20) as f64),
            None => String::new(),
        },
        match report.graphs.captured {
            0 => String::new(),
            n => format!(
                ", {} captured, {}",
                count(n, "CUDA graph", "CUDA graphs"),
                count(report.graphs.replays, "replay", "replays")
            ),
        },
        total as f64 / secs,
        a.out.display()
    );
    Ok(())
}

/// The batch of a noise file: the first dimension its tensors share.
fn replay_batch(st: &crate::io::safetensors::SafeTensors) -> crate::Result<usize> {
    let mut batch = None;
    for (name, e) in st.entries() {
        let Some(&b) = e.shape.first() else {
            continue;
        };
        match batch {
            None => batch = Some((b, name.clone())),
            Some((first, ref other)) if first != b => {
                return Err(crate::Error::BadInput {
                    origin: st.file().display().to_string(),
                    tensor: name.clone(),
                    reason: format!("has batch {b}, but `{other}` has {first}"),
                })
            }
            Some(_) => {}
        }
    }
    batch.map(|(b, _)| b).ok_or_else(|| crate::Error::BadInput {
        origin: st.file().display().to_string(),
        tensor: "*".into(),
        reason: "none: the file holds no batched tensor".into(),
    })
}

/// `n` and the noun in its number.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[derive(Clone, Copy)]
enum OutKind {
    Grid,
    Npz,
    Folder,
}

/// The output kind of `out`, checked writable before any sampling.
fn check_out(out: &std::path::Path) -> crate::Result<OutKind> {
    let io_err = |msg: &str| crate::Error::Io {
        path: out.to_path_buf(),
        source: std::io::Error::other(msg.to_string()),
    };
    let kind = match out.extension().and_then(|e| e.to_str()) {
        Some("png") => OutKind::Grid,
        Some("npz") => OutKind::Npz,
        Some(other) => {
            return Err(io_err(&format!(
                "unknown output type `.{other}` (NAME.png, NAME.npz, or a folder name without extension)"
            )))
        }
        None => OutKind::Folder,
    };
    if matches!(kind, OutKind::Folder) && out.exists() {
        return Err(io_err("output folder already exists; choose a new one"));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(io_err(&format!(
            "cannot write the output: its folder {} does not exist",
            parent.display()
        )));
    }
    let probe = parent.join(format!(".trilemma-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| {
        io_err(&format!(
            "cannot write the output into {}: {e}",
            parent.display()
        ))
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(kind)
}

/// The output as batches arrive: a PNG folder image by image (under a temporary name, renamed into
/// place by [`Output::finish`]; removed when dropped unfinished), a grid or an npz kept until all
/// are in and then written in sample order.
struct Output<'p> {
    kind: OutKind,
    path: &'p std::path::Path,
    range: std::ops::Range<usize>,
    folder: Option<crate::io::images::PngFolder>,
    kept: std::collections::BTreeMap<usize, crate::Images>,
    received: usize,
}

impl<'p> Output<'p> {
    fn new(
        kind: OutKind,
        path: &'p std::path::Path,
        range: std::ops::Range<usize>,
    ) -> crate::Result<Output<'p>> {
        let folder = match kind {
            OutKind::Folder => Some(crate::io::images::PngFolder::create(path)?),
            _ => None,
        };
        Ok(Output {
            kind,
            path,
            range,
            folder,
            kept: Default::default(),
            received: 0,
        })
    }

    fn take(&mut self, b: crate::Images) -> crate::Result<()> {
        self.received += b.shape[0];
        match &mut self.folder {
            Some(f) => f.write(&view(&b.values, b.shape), b.first),
            None => {
                self.kept.insert(b.first, b);
                Ok(())
            }
        }
    }

    fn finish(self) -> crate::Result<()> {
        let total = self.range.len();
        if self.received != total {
            return Err(crate::Error::BadSetting {
                what: "run",
                rule: format!("{total} images"),
                found: format!("{} images delivered", self.received),
            });
        }
        if let Some(f) = self.folder {
            return f.finish();
        }
        let mut shape = self.kept.values().next().map_or([0; 4], |b| b.shape);
        shape[0] = total;
        let data: Vec<f32> = self.kept.into_values().flat_map(|b| b.values).collect();
        let imgs = view(&data, shape);
        match self.kind {
            OutKind::Grid => crate::io::images::write_png_grid(self.path, &imgs),
            _ => crate::io::images::write_npz(self.path, &imgs),
        }
    }
}

fn view(data: &[f32], [n, c, h, w]: [usize; 4]) -> crate::io::images::Images<'_> {
    crate::io::images::Images { data, n, c, h, w }
}
