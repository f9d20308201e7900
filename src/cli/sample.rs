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
    /// Images in the whole run (all shards).
    #[arg(long, default_value_t = 16)]
    pub num: usize,
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
    pub device: trilemma::device::DeviceSpec,
    /// Take every random draw from this file instead of Philox (names: docs/sampling.md); the run is
    /// one batch of the file's size.
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
    type Err = trilemma::Error;

    fn from_str(s: &str) -> trilemma::Result<BatchArg> {
        match s {
            "auto" => Ok(BatchArg::Auto),
            n => n
                .parse()
                .ok()
                .filter(|&b| b > 0)
                .map(BatchArg::Fixed)
                .ok_or_else(|| trilemma::Error::InvalidParam {
                    op: "sample",
                    what: "--batch",
                    rule: "auto or a whole number of at least 1",
                    found: s.to_string(),
                }),
        }
    }
}

/// The batch `auto` means on the CPU (the host's cores are busy with one batch of this size).
const CPU_AUTO_BATCH: usize = 16;

/// `trilemma sample`.
pub fn run(a: &SampleArgs) -> trilemma::Result<()> {
    use trilemma::samplers::run::{parse_shard, shard_range, Plan};
    use trilemma::samplers::Noise;
    let start = std::time::Instant::now();
    let kind = check_out(&a.out)?;
    if a.num == 0 {
        return Err(trilemma::Error::InvalidParam {
            op: "sample",
            what: "--num",
            rule: "at least 1",
            found: "0".into(),
        });
    }
    let shard = a
        .shard
        .as_deref()
        .map(parse_shard)
        .transpose()?
        .unwrap_or((0, 1));
    let range = shard_range(a.num, shard);
    if u32::try_from(range.end).is_err() {
        return Err(trilemma::Error::InvalidParam {
            op: "sample",
            what: "--num",
            rule: "below 2^32 (sample indices are one Philox counter word)",
            found: a.num.to_string(),
        });
    }
    let opened = a.device.open()?;
    if let Some(note) = &opened.note {
        eprintln!("{note}");
    }
    let devices = opened.devices;
    let device = &devices[0];
    let model = trilemma::models::defaults::load_spec(&a.model, device)?;
    let plan = Plan::new(&model, a.sampler.as_deref(), a.steps)?;
    let replay = a
        .noise_from
        .as_ref()
        .map(trilemma::io::safetensors::SafeTensors::open)
        .transpose()?;
    let (range, batch) = match &replay {
        Some(_) => {
            if a.shard.is_some() {
                return Err(trilemma::Error::InvalidParam {
                    op: "sample",
                    what: "--shard",
                    rule: "absent with --noise-from (the file holds one batch)",
                    found: a.shard.clone().unwrap_or_default(),
                });
            }
            // One batch of exactly --num images; the file's shapes are checked against it.
            (0..a.num, BatchArg::Fixed(a.num))
        }
        None => (range, a.batch),
    };
    let total = range.len();
    let (batch, per_sample) = fit_batch(&plan, &model, batch, total, device)?;
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total as u64),
        indicatif::ProgressDrawTarget::hidden(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} images, {elapsed} ({eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // The run's batches, the same whatever the number of devices (so the images are too): each
    // device takes a contiguous block of them.
    let batches: Vec<std::ops::Range<usize>> = range
        .clone()
        .step_by(batch)
        .map(|first| first..(first + batch).min(range.end))
        .collect();
    let per_device = batches.len().div_ceil(devices.len().max(1));
    // Finished batches go to a writer thread, which encodes them (a PNG folder: at once; a grid or an
    // npz: in order at the end) while the devices sample the next ones.
    let (to_writer, batches_done) = std::sync::mpsc::sync_channel::<Batch>(2);
    let run = |dev: &trilemma::Device,
               mine: &[std::ops::Range<usize>],
               to_writer: std::sync::mpsc::SyncSender<Batch>|
     -> trilemma::Result<Run> {
        let own;
        let (model, plan) = if std::ptr::eq(dev, device) {
            (&model, &plan)
        } else {
            // Each further GPU holds its own copy of the weights.
            let m = trilemma::models::defaults::load_spec(&a.model, dev)?;
            let p = Plan::new(&m, a.sampler.as_deref(), a.steps)?;
            own = (m, p);
            (&own.0, &own.1)
        };
        let mut out = Run::default();
        let mut graphs = trilemma::samplers::graph::GraphRuns::new(a.graph == GraphArg::On);
        let noise_for = |first: usize| match &replay {
            Some(st) => Noise::Replay(st),
            None => Noise::Philox {
                seed: a.seed,
                first_sample: first as u32,
            },
        };
        let mut deliver = |first: usize, b: trilemma::samplers::run::SampledBatch| {
            let [n, c, h, w] = b.shape;
            out.shape = [c, h, w];
            let batch = Batch {
                first,
                images: b.values,
                shape: [c, h, w],
            };
            if to_writer.send(batch).is_err() {
                // The writer stopped on an error of its own, which the run reports.
                return Ok(false);
            }
            bar.inc(n as u64);
            if start.elapsed().as_secs_f64() > 1.0 && bar.is_hidden() {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            Ok(true)
        };
        let done = trilemma::samplers::batches::run_batches(
            plan,
            model,
            mine,
            &noise_for,
            dev,
            &mut graphs,
            &mut deliver,
        )?;
        out.nfe = done.nfe;
        out.graphs = graphs.stats();
        Ok(out)
    };
    let (runs, written) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| write_output(kind, &a.out, range.clone(), batches_done));
        let runs: Vec<trilemma::Result<Run>> = if devices.len() == 1 {
            vec![run(device, &batches, to_writer)]
        } else {
            let workers: Vec<_> = devices
                .iter()
                .zip(batches.chunks(per_device.max(1)))
                .map(|(dev, mine)| {
                    let to_writer = to_writer.clone();
                    scope.spawn(|| run(dev, mine, to_writer))
                })
                .collect();
            drop(to_writer);
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|_| Err(panicked("a device worker")))
                })
                .collect()
        };
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(panicked("the output writer")));
        (runs, written)
    });
    bar.finish_and_clear();
    let mut nfe_total = 0usize;
    let mut graphs = trilemma::samplers::graph::GraphStats::default();
    for r in runs {
        let r = r?;
        nfe_total += r.nfe;
        graphs.captured += r.graphs.captured;
        graphs.replays += r.graphs.replays;
        graphs.failed_captures += r.graphs.failed_captures;
    }
    written?;
    let secs = start.elapsed().as_secs_f64();
    let n_batches = batches.len();
    println!(
        "{total} images ({} {}, {} NFE per batch over {n_batches} batches of {batch} on {}{}{}) in {secs:.1} s, {:.2} images/s -> {}",
        model.family.name(),
        plan.sampler().name(),
        nfe_total / n_batches.max(1),
        match devices.len() {
            1 => device.describe(),
            n => format!("{n} GPUs"),
        },
        match per_sample {
            Some(b) => format!(", {:.2} MiB per sample", b as f64 / (1u64 << 20) as f64),
            None => String::new(),
        },
        match graphs.captured {
            0 => String::new(),
            n => format!(", {n} CUDA graph(s) captured, {} replays", graphs.replays),
        },
        total as f64 / secs,
        a.out.display()
    );
    Ok(())
}

#[derive(Clone, Copy)]
enum OutKind {
    Grid,
    Npz,
    Folder,
}

/// The output kind of `out`, checked writable before any sampling.
fn check_out(out: &std::path::Path) -> trilemma::Result<OutKind> {
    let io_err = |msg: &str| trilemma::Error::Io {
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
    let probe = parent.join(format!(".trilemma-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| trilemma::Error::Io {
        path: parent.clone(),
        source: e,
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(kind)
}

/// What one device's share of a run produced besides its images: their shape and its NFE.
#[derive(Default)]
struct Run {
    shape: [usize; 3],
    nfe: usize,
    graphs: trilemma::samplers::graph::GraphStats,
}

/// One finished batch: the global index of its first sample, its images (NCHW values), their shape.
struct Batch {
    first: usize,
    images: Vec<f32>,
    shape: [usize; 3],
}

fn panicked(what: &str) -> trilemma::Error {
    trilemma::Error::InvalidParam {
        op: "sample",
        what: "worker",
        rule: "a thread that returns",
        found: format!("{what} panicked"),
    }
}

impl Batch {
    fn images(&self) -> trilemma::io::images::Images<'_> {
        trilemma::io::images::Images {
            data: &self.images,
            n: self.images.len() / self.shape.iter().product::<usize>().max(1),
            c: self.shape[0],
            h: self.shape[1],
            w: self.shape[2],
        }
    }
}

/// Writes the batches of `range` as they arrive: a PNG folder image by image (renamed into place when
/// the last batch came; removed if the run stopped short), a grid or an npz once all are in, in
/// sample order. Returns without writing anything when the run stopped short.
fn write_output(
    kind: OutKind,
    out: &std::path::Path,
    range: std::ops::Range<usize>,
    batches: std::sync::mpsc::Receiver<Batch>,
) -> trilemma::Result<()> {
    use trilemma::io::images::{write_npz, write_png_grid, Images, PngFolder};
    let total = range.len();
    let mut folder = match kind {
        OutKind::Folder => Some(PngFolder::create(out)?),
        _ => None,
    };
    let mut kept: std::collections::BTreeMap<usize, Batch> = std::collections::BTreeMap::new();
    let mut received = 0;
    for b in batches {
        let imgs = b.images();
        received += imgs.n;
        match &mut folder {
            Some(f) => f.write(&imgs, b.first)?,
            None => {
                kept.insert(b.first, b);
            }
        }
    }
    if received != total {
        return Ok(());
    }
    if let Some(f) = folder {
        return f.finish();
    }
    let shape = kept.values().next().map_or([0; 3], |b| b.shape);
    let data: Vec<f32> = kept.into_values().flat_map(|b| b.images).collect();
    let imgs = Images {
        data: &data,
        n: total,
        c: shape[0],
        h: shape[1],
        w: shape[2],
    };
    match kind {
        OutKind::Grid => write_png_grid(out, &imgs),
        _ => write_npz(out, &imgs),
    }
}

/// The batch of the run: `--batch N` checked to fit, or for `auto` the largest that fits the device's
/// memory (on the CPU 16), never more than the run's images.
fn fit_batch(
    plan: &trilemma::samplers::run::Plan,
    model: &trilemma::models::Model,
    batch: BatchArg,
    images: usize,
    device: &trilemma::Device,
) -> trilemma::Result<(usize, Option<usize>)> {
    let estimate = probe_memory(plan, model, images, device)?;
    let batch = match (batch, estimate) {
        (BatchArg::Fixed(b), _) => b,
        (BatchArg::Auto, _) if !device.is_cuda() => CPU_AUTO_BATCH,
        (BatchArg::Auto, Some((est, kept, available))) => {
            est.largest_batch(images, kept, available).unwrap_or(1)
        }
        (BatchArg::Auto, None) => CPU_AUTO_BATCH,
    }
    .min(images);
    if let Some((est, kept, available)) = &estimate {
        est.check(batch, *kept, *available, &device.describe())?;
    }
    Ok((batch, estimate.map(|(est, _, _)| est.per_sample)))
}

/// The run's memory model measured before it starts: two probes (batch 1 and 2) give the working
/// set per sample; with the images the device keeps and the bytes available. None where the host's
/// available memory is unknown.
fn probe_memory(
    plan: &trilemma::samplers::run::Plan,
    model: &trilemma::models::Model,
    images: usize,
    device: &trilemma::Device,
) -> trilemma::Result<Option<(trilemma::samplers::run::MemoryEstimate, usize, usize)>> {
    use trilemma::samplers::run::MemoryEstimate;
    let (peak1, peak2, values, available) = match device {
        trilemma::Device::Cpu => {
            let Some(available) = super::host_memory::available() else {
                return Ok(None);
            };
            let base = super::host_memory::reset_peak();
            let values = plan.probe(model, 1, device)?;
            let peak1 = super::host_memory::peak() - base;
            let base = super::host_memory::reset_peak();
            plan.probe(model, 2, device)?;
            (peak1, super::host_memory::peak() - base, values, available)
        }
        trilemma::Device::Cuda(d) => {
            // The pool's peak only grows: each probe's peak is read as the growth over what is
            // held before it (the weights), and batch 2 needs more than batch 1.
            let held = d.pool_stats().bytes_in_use;
            let values = plan.probe(model, 1, device)?;
            device.synchronize()?;
            let peak1 = d.pool_stats().peak_bytes_in_use.saturating_sub(held);
            plan.probe(model, 2, device)?;
            device.synchronize()?;
            let peak2 = d.pool_stats().peak_bytes_in_use.saturating_sub(held);
            // Free device memory plus the pool's cached blocks (the probes' tensors are back there).
            let available = d.memory_info().0 + d.pool_stats().bytes_cached;
            (peak1, peak2, values, available)
        }
    };
    // The images are kept on the host: only the CPU run counts them against its memory.
    let kept = if device.is_cuda() { 0 } else { images };
    Ok(Some((
        MemoryEstimate::from_probes(peak1, peak2, values),
        kept,
        available,
    )))
}
