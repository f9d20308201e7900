//! `trilemma sample`: images from a converted or embedded model, as a PNG grid, a folder of PNGs or an
//! .npz, after checking that the output is writable and the batches fit in memory.

use std::path::PathBuf;

use super::DeviceArg;

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
    /// Images per batch.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// i/n: produce only shard i of n (by global sample index; the images equal a single run's).
    #[arg(long)]
    pub shard: Option<String>,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Take every random draw from this file instead of Philox (names: docs/sampling.md); the run is
    /// one batch of the file's size.
    #[arg(long)]
    pub noise_from: Option<PathBuf>,
    /// NAME.png (a grid), NAME.npz (uint8 NHWC `arr_0`) or a new folder (one PNG per image).
    #[arg(long)]
    pub out: PathBuf,
}

/// `trilemma sample`.
pub fn run(a: &SampleArgs) -> trilemma::Result<()> {
    use trilemma::samplers::run::{parse_shard, shard_range, Plan};
    use trilemma::samplers::Noise;
    let start = std::time::Instant::now();
    let kind = check_out(&a.out)?;
    if a.num == 0 || a.batch == 0 {
        return Err(trilemma::Error::InvalidParam {
            op: "sample",
            what: "--num, --batch",
            rule: "at least 1",
            found: format!("{}, {}", a.num, a.batch),
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
    let device = a.device.open()?;
    let model = trilemma::models::defaults::load_spec(&a.model, &device)?;
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
            (0..a.num, a.num)
        }
        None => (range, a.batch),
    };
    let total = range.len();
    check_batch_memory(&plan, &model, batch.min(total), total, &device)?;
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
    let mut images: Vec<f32> = Vec::new();
    let mut shape = [0usize; 3];
    let mut nfe_total = 0usize;
    let mut first = range.start;
    while first < range.end {
        let b = batch.min(range.end - first);
        let noise = match &replay {
            Some(st) => Noise::Replay(st),
            None => Noise::Philox {
                seed: a.seed,
                first_sample: first as u32,
            },
        };
        let (img, nfe) = plan.sample(&model, b, &noise, &device)?;
        let [_, c, h, w] = img.dims("sample", "images", "NCHW")?;
        shape = [c, h, w];
        images.extend(img.to_vec_f32()?);
        nfe_total += nfe;
        first += b;
        if start.elapsed().as_secs_f64() > 1.0 && bar.is_hidden() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        bar.set_position((first - range.start) as u64);
    }
    bar.finish_and_clear();
    let imgs = trilemma::io::images::Images {
        data: &images,
        n: total,
        c: shape[0],
        h: shape[1],
        w: shape[2],
    };
    match kind {
        OutKind::Grid => trilemma::io::images::write_png_grid(&a.out, &imgs)?,
        OutKind::Npz => trilemma::io::images::write_npz(&a.out, &imgs)?,
        OutKind::Folder => trilemma::io::images::write_png_folder(&a.out, &imgs, range.start)?,
    }
    let secs = start.elapsed().as_secs_f64();
    let batches = total.div_ceil(batch);
    println!(
        "{total} images ({} {}, {} NFE per batch over {batches} batches) in {secs:.1} s, {:.2} images/s -> {}",
        model.family.name(),
        plan.sampler().name(),
        nfe_total / batches.max(1),
        total as f64 / secs,
        a.out.display()
    );
    Ok(())
}

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

/// Checks, before a run, that batches of `batch` fit in the device's memory: two probes (batch 1
/// and 2) measure the working set per sample, which is scaled to `batch`.
fn check_batch_memory(
    plan: &trilemma::samplers::run::Plan,
    model: &trilemma::models::Model,
    batch: usize,
    images: usize,
    device: &trilemma::Device,
) -> trilemma::Result<()> {
    use trilemma::samplers::run::MemoryEstimate;
    let (peak1, peak2, values, available) = match device {
        trilemma::Device::Cpu => {
            let Some(available) = super::host_memory::available() else {
                return Ok(());
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
    MemoryEstimate::from_probes(peak1, peak2, values).check(
        batch,
        kept,
        available,
        &device.describe(),
    )
}
