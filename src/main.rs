//! The `trilemma` command line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Host memory accounting for `sample`'s memory check: the system allocator, counting the bytes live
/// and their peak.
mod host_memory {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    static LIVE: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    pub struct Counting;

    fn grew(bytes: usize) {
        let now = LIVE.fetch_add(bytes, Relaxed) + bytes;
        PEAK.fetch_max(now, Relaxed);
    }

    // SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
    // GlobalAlloc contract, and returns its result unchanged; the counters are side effects that
    // allocate nothing and never unwind.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller's contract for `alloc` is passed on as is.
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                grew(layout.size());
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: as in `alloc`.
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                grew(layout.size());
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from this allocator (hence from System) with `layout`.
            unsafe { System.dealloc(ptr, layout) };
            LIVE.fetch_sub(layout.size(), Relaxed);
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: as in `dealloc`, with the caller's `new_size` contract passed on.
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                LIVE.fetch_sub(layout.size(), Relaxed);
                grew(new_size);
            }
            p
        }
    }

    /// Restarts the peak at the bytes live now; returns them.
    pub fn reset_peak() -> usize {
        let live = LIVE.load(Relaxed);
        PEAK.store(live, Relaxed);
        live
    }

    pub fn peak() -> usize {
        PEAK.load(Relaxed)
    }

    /// MemAvailable of /proc/meminfo (Linux); None elsewhere or if unreadable.
    pub fn available() -> Option<usize> {
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

#[global_allocator]
static ALLOCATOR: host_memory::Counting = host_memory::Counting;

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
            let Some(available) = host_memory::available() else {
                return Ok(());
            };
            let base = host_memory::reset_peak();
            let values = plan.probe(model, 1, device)?;
            let peak1 = host_memory::peak() - base;
            let base = host_memory::reset_peak();
            plan.probe(model, 2, device)?;
            (peak1, host_memory::peak() - base, values, available)
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
    /// Sample images from a converted model and write them as a PNG grid, a folder of PNGs or an .npz.
    Sample(SampleArgs),
    /// Time network calls and sampling runs under the PyTorch baseline's ids, side by side with a
    /// baseline file (tools/bench_pytorch.py) measured on the same machine.
    Bench(BenchArgs),
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Benchmark these models (embedded names or directories): one call of each network
    /// (`net/<name>/b<batch>/fp32`) and a whole sampling run with the default sampler
    /// (`sample/<name>/b<batch>/fp32`). Without it: the released networks at official size with
    /// random weights (`net/<family>/<preset>/b<batch>/fp32`) and the DDGAN CIFAR-10 4-step run.
    #[arg(long)]
    model: Vec<String>,
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Only the ids starting with this prefix.
    #[arg(long)]
    only: Option<String>,
    /// tools/bench_pytorch.py's JSON from the same machine and device.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Keep calling each benchmark for at least this long (at least 3 calls).
    #[arg(long, default_value_t = 2.0)]
    min_seconds: f64,
    /// Network evaluations of the CLD CIFAR-10 SSCS run (`sample/cld/cifar10/sscs<N>/...`; the
    /// baseline's --quick uses 50, its full run 150).
    #[arg(long, default_value_t = 50)]
    sscs_steps: usize,
    /// Also write the engine's results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
}

#[derive(clap::Args)]
struct SampleArgs {
    /// An embedded default model (cld-digits, ddgan-digits, lsgm-digits) or a converted model
    /// directory (config.json + model.safetensors).
    #[arg(long, default_value = "cld-digits")]
    model: String,
    /// sscs, em or ode (CLD), ode or rk4 (LSGM), ddgan (DDGAN); default: the model's own.
    #[arg(long)]
    sampler: Option<String>,
    /// Steps of SSCS/EM (default: the config's n_discrete_steps, else 150) or of LSGM's RK4 (default
    /// 25, 4 network evaluations each); DDGAN runs its trained step count.
    #[arg(long)]
    steps: Option<usize>,
    /// Images in the whole run (all shards).
    #[arg(long, default_value_t = 16)]
    num: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// i/n: produce only shard i of n (by global sample index; the images equal a single run's).
    #[arg(long)]
    shard: Option<String>,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
    /// Take every random draw from this file instead of Philox (names: docs/sampling.md); the run is
    /// one batch of the file's size.
    #[arg(long)]
    noise_from: Option<PathBuf>,
    /// NAME.png (a grid), NAME.npz (uint8 NHWC `arr_0`) or a new folder (one PNG per image).
    #[arg(long)]
    out: PathBuf,
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
        Command::Sample(args) => match sample(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Bench(args) => match bench(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
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

fn sample(a: &SampleArgs) -> trilemma::Result<()> {
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
    let device = match a.device {
        DeviceArg::Cpu => trilemma::Device::Cpu,
        DeviceArg::Cuda => trilemma::Device::cuda(0)?,
    };
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
        let [_, c, h, w] = *img.shape() else {
            return Err(trilemma::Error::InvalidParam {
                op: "sample",
                what: "images",
                rule: "NCHW",
                found: format!("{:?}", img.shape()),
            });
        };
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
        plan.sampler.name(),
        nfe_total / batches.max(1),
        total as f64 / secs,
        a.out.display()
    );
    Ok(())
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
                    "cuda:{}  {}{}  compute {}.{}  {} SMs  memory {} total, {} free  kernels: {}",
                    d.ordinal,
                    d.name,
                    if d.emulated {
                        "  [emulated: the CUDA driver emulator, host-compiled kernels on the CPU]"
                    } else {
                        ""
                    },
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

/// A benchmark: its id and the call it times.
type BenchCase<'a> = (String, Box<dyn FnMut() -> trilemma::Result<()> + 'a>);

fn bench(a: &BenchArgs) -> trilemma::Result<()> {
    use trilemma::models::released::RELEASED_NETWORKS;
    use trilemma::samplers::{ddgan, run::Plan, Noise};
    use trilemma::{DType, Tensor};
    let bad =
        |what: &'static str, rule: &'static str, found: String| trilemma::Error::InvalidParam {
            op: "bench",
            what,
            rule,
            found,
        };
    if a.batch == 0 || a.sscs_steps < 2 || !(a.min_seconds >= 0.0 && a.min_seconds.is_finite()) {
        return Err(bad(
            "--batch, --sscs-steps, --min-seconds",
            "a batch of at least 1, at least 2 SSCS steps and a finite, non-negative time",
            format!("{}, {}, {}", a.batch, a.sscs_steps, a.min_seconds),
        ));
    }
    // Read first: a bad baseline is reported before minutes of timing.
    let baseline = a
        .baseline
        .as_deref()
        .map(trilemma::bench::read_baseline)
        .transpose()?;
    let device = match a.device {
        DeviceArg::Cpu => trilemma::Device::Cpu,
        DeviceArg::Cuda => trilemma::Device::cuda(0)?,
    };
    let b = a.batch;
    let wanted = |id: &str| match a.only.as_deref() {
        Some(prefix) => id.starts_with(prefix),
        None => true,
    };
    let noise = Noise::Philox {
        seed: 0,
        first_sample: 0,
    };
    let random = |shape: &[usize], seed: u64| -> trilemma::Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i as u64 * 2654435761 + seed) % 2000) as f32 / 1000.0 - 1.0)
            .collect();
        Tensor::from_f32(&v, shape, DType::F32, &device)
    };
    let mut cases: Vec<BenchCase> = Vec::new();
    if a.model.is_empty() {
        for r in RELEASED_NETWORKS {
            let id = format!("net/{}/b{b}/fp32", r.id());
            let sample_id = format!("sample/{}/b{b}/fp32", r.id());
            let is_ddgan = r.family == trilemma::models::Family::Ddgan;
            let is_cld = r.family == trilemma::models::Family::Cld;
            let sample_id = if is_cld {
                format!("sample/{}/sscs{}/b{b}/fp32", r.id(), a.sscs_steps)
            } else {
                sample_id
            };
            let samples = (is_ddgan || is_cld) && wanted(&sample_id);
            if !(wanted(&id) || samples) {
                continue;
            }
            let net = std::rc::Rc::new(r.build_random(1, &device)?);
            let arch = net.arch();
            let x = random(&[b, arch.in_channels, arch.image_size, arch.image_size], 2)?;
            let z = arch
                .zemb
                .map(|(nz, _, _)| random(&[b, nz], 3))
                .transpose()?;
            let t = vec![if is_ddgan { 2.0 } else { 0.5 }; b];
            if wanted(&id) {
                let net = std::rc::Rc::clone(&net);
                cases.push((
                    id,
                    Box::new(move || net.forward(&x, &t, z.as_ref()).map(drop)),
                ));
            }
            if is_cld && samples {
                let cfg = trilemma::samplers::cld_sample::CldConfig::cifar10();
                let (net, noise, device, steps) =
                    (std::rc::Rc::clone(&net), &noise, &device, a.sscs_steps);
                cases.push((
                    sample_id.clone(),
                    Box::new(move || {
                        use trilemma::samplers::cld_sample::{sample, CldSampler};
                        sample(
                            net.as_ref(),
                            &cfg,
                            CldSampler::Sscs,
                            steps,
                            b,
                            noise,
                            device,
                        )
                        .map(drop)
                    }),
                ));
            }
            if is_ddgan && samples {
                let steps = trilemma::models::Config::from_json_str("released", r.config_json)?
                    .usize("num_timesteps")?;
                let coefs = ddgan::PosteriorCoefficients::new(steps, 0.1, 20.0)?;
                let (net, noise, device) = (std::rc::Rc::clone(&net), &noise, &device);
                cases.push((
                    sample_id,
                    Box::new(move || {
                        ddgan::sample(net.as_ref(), &coefs, b, noise, device).map(drop)
                    }),
                ));
            }
        }
    } else {
        for spec in &a.model {
            let name = std::path::Path::new(spec)
                .file_name()
                .map_or_else(|| spec.clone(), |n| n.to_string_lossy().into_owned());
            let (id, sample_id) = (
                format!("net/{name}/b{b}/fp32"),
                format!("sample/{name}/b{b}/fp32"),
            );
            if !wanted(&id) && !wanted(&sample_id) {
                continue;
            }
            let model = std::rc::Rc::new(trilemma::models::defaults::load_spec(spec, &device)?);
            let plan = std::rc::Rc::new(Plan::new(&model, None, None)?);
            if wanted(&id) {
                let (model, plan, device) = (
                    std::rc::Rc::clone(&model),
                    std::rc::Rc::clone(&plan),
                    &device,
                );
                cases.push((
                    id,
                    Box::new(move || plan.probe(&model, b, device).map(drop)),
                ));
            }
            if wanted(&sample_id) {
                let (noise, device) = (&noise, &device);
                cases.push((
                    sample_id,
                    Box::new(move || plan.sample(&model, b, noise, device).map(drop)),
                ));
            }
        }
    }
    if cases.is_empty() {
        return Err(bad(
            "--only",
            "a prefix of at least one benchmark id",
            a.only.clone().unwrap_or_default(),
        ));
    }
    let mut timings = Vec::new();
    for (id, run) in &mut cases {
        let t = trilemma::bench::time(id, &device, a.min_seconds, run.as_mut())?;
        eprintln!("{id}: {:.3} ms ({} calls)", t.median_ms, t.reps);
        timings.push(t);
    }
    let described = device.describe();
    print!(
        "{}",
        trilemma::bench::table(&described, &timings, baseline.as_ref())
    );
    if let Some(path) = &a.json {
        let tmp = path.with_extension("json.partial");
        std::fs::write(&tmp, trilemma::bench::to_json(&described, &timings))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|source| trilemma::Error::Io {
                path: path.clone(),
                source,
            })?;
    }
    Ok(())
}
