//! Sampling as a library call: a loaded [`Model`] and [`SampleOptions`] give [`Images`] in memory
//! ([`Model::sample`]), or batch by batch as they finish ([`Model::sample_batches`], what `trilemma
//! sample` writes its files from).
//!
//! A run is split into batches that are the same whatever the devices (so are the images): each
//! sample's noise is keyed by its global index (Philox), so a run split into shards, batches or
//! devices gives the images of one run. On a GPU the batches overlap (one is queued while the previous
//! one comes back) and the fixed-step samplers replay a CUDA graph per batch.
//!
//! ```
//! use trilemma::{Device, Model, SampleOptions, Sampler};
//! # fn main() -> trilemma::Result<()> {
//! let model = Model::load("cld-digits", &Device::Cpu)?;
//! let images = model.sample(&SampleOptions::new(4).seed(7).sampler(Sampler::Sscs).steps(5))?;
//! assert_eq!(images.shape[0], 4); // [N, C, H, W], values in [0, 1]
//! # Ok(()) }
//! ```

use std::ops::Range;
use std::sync::mpsc;

use crate::device::{Device, Precision};
use crate::error::{Error, Result};
use crate::io::safetensors::SafeTensors;
use crate::models::Model;
use crate::samplers::batches::run_batches;
use crate::samplers::graph::GraphRuns;
pub use crate::samplers::graph::GraphStats;
pub use crate::samplers::run::Sampler;
use crate::samplers::run::{shard_range, MemoryEstimate, Plan, SampledBatch};
use crate::samplers::Noise;

/// Images per batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BatchSize {
    /// On a GPU the largest batch that fits its free memory (measured by two probe calls); on the
    /// CPU 16 images.
    #[default]
    Auto,
    /// This many (the last batch of a run may be shorter); checked to fit before any work.
    Fixed(usize),
}

/// How often [`SampleOptions::progress`] hears of a run between finished batches.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The batch [`BatchSize::Auto`] means on the CPU (the host's cores are busy with one batch of this
/// size).
pub const CPU_AUTO_BATCH: usize = 16;

/// A measure of the host's memory, for the memory check of runs on the CPU: how much is available,
/// and the peak of what the process holds (an allocator that counts). Without one, a CPU run does not
/// check its batch against the host's memory.
pub trait HostMemory: Sync {
    /// Bytes the process may still allocate; None when unknown.
    fn available(&self) -> Option<usize>;
    /// Restarts the peak at what is held now, and returns that.
    fn reset_peak(&self) -> usize;
    /// The most bytes held since the last [`HostMemory::reset_peak`].
    fn peak(&self) -> usize;
}

/// Where a run stands, given to [`SampleOptions::progress`] after each finished batch and about four
/// times a second in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub images_done: usize,
    pub images_total: usize,
    pub batches_done: usize,
    pub batches_total: usize,
    /// Network evaluations of the finished batches, summed over batches.
    pub nfe: usize,
    /// Network calls issued so far in the run, over all its devices and batches, the one in flight
    /// included (on a GPU a call is counted when it is queued; a CUDA graph's replay counts its
    /// calls at once).
    pub evaluations: u64,
    /// The run's network calls when the sampler fixes them (DDGAN, SSCS, EM, RK4: per batch times
    /// batches); None for the adaptive ODE.
    pub evaluations_expected: Option<u64>,
}

/// What to sample. [`SampleOptions::new`] gives the defaults; the methods set one field each.
#[derive(Clone)]
pub struct SampleOptions<'a> {
    /// Images in the whole run (all shards).
    pub num: usize,
    /// None: the model's own (DDGAN: its posterior sampler; CLD: the config's `sampling_method`;
    /// LSGM: the adaptive probability-flow ODE).
    pub sampler: Option<Sampler>,
    /// Steps of SSCS/EM (default: the config's `n_discrete_steps`, else 150) or RK4 (default 25);
    /// must be None for the adaptive ODE; DDGAN takes only its trained step count.
    pub steps: Option<usize>,
    pub seed: u64,
    pub batch: BatchSize,
    /// (i, n): only shard i of n, by global sample index (the images equal those of one run).
    pub shard: Option<(usize, usize)>,
    /// The devices to run on, the batches split into one contiguous block per device; empty: the
    /// model's own. A device other than the model's gets its own copy of the weights, loaded again
    /// from where the model came from.
    pub devices: Vec<Device>,
    /// CUDA graphs for the fixed-step samplers on a GPU (same bits either way).
    pub graph: bool,
    /// How the GPUs compute convolutions and linear layers during the run ([`Precision`]; restored
    /// afterwards). The CPU takes only fp32.
    pub precision: Precision,
    /// Every random draw from this file instead of Philox (names: docs/sampling.md); the run is one
    /// batch of `num` images and takes no shard.
    pub noise_from: Option<&'a SafeTensors>,
    /// Called on the caller's thread after each finished batch.
    pub progress: Option<&'a dyn Fn(&Progress)>,
    /// Checks a CPU run's batch against the host's memory.
    pub host_memory: Option<&'a dyn HostMemory>,
}

impl std::fmt::Debug for SampleOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleOptions")
            .field("num", &self.num)
            .field("sampler", &self.sampler)
            .field("steps", &self.steps)
            .field("seed", &self.seed)
            .field("batch", &self.batch)
            .field("shard", &self.shard)
            .field("devices", &self.devices.len())
            .field("graph", &self.graph)
            .field("precision", &self.precision)
            .field(
                "noise_from",
                &self.noise_from.map(|s| s.file().to_path_buf()),
            )
            .finish_non_exhaustive()
    }
}

impl<'a> SampleOptions<'a> {
    /// `num` images with the model's own sampler and steps, seed 0, [`BatchSize::Auto`], on the
    /// model's device, CUDA graphs on.
    pub fn new(num: usize) -> SampleOptions<'a> {
        SampleOptions {
            num,
            sampler: None,
            steps: None,
            seed: 0,
            batch: BatchSize::Auto,
            shard: None,
            devices: Vec::new(),
            graph: true,
            precision: Precision::Fp32,
            noise_from: None,
            progress: None,
            host_memory: None,
        }
    }

    #[must_use]
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = Some(sampler);
        self
    }

    #[must_use]
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    #[must_use]
    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = Some(steps);
        self
    }

    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    #[must_use]
    pub fn batch(mut self, batch: BatchSize) -> Self {
        self.batch = batch;
        self
    }

    /// Shard `i` of `n` (0-based).
    #[must_use]
    pub fn shard(mut self, i: usize, n: usize) -> Self {
        self.shard = Some((i, n));
        self
    }

    #[must_use]
    pub fn devices(mut self, devices: Vec<Device>) -> Self {
        self.devices = devices;
        self
    }

    #[must_use]
    pub fn graph(mut self, on: bool) -> Self {
        self.graph = on;
        self
    }

    #[must_use]
    pub fn noise_from(mut self, noise: &'a SafeTensors) -> Self {
        self.noise_from = Some(noise);
        self
    }

    #[must_use]
    pub fn progress(mut self, progress: &'a dyn Fn(&Progress)) -> Self {
        self.progress = Some(progress);
        self
    }

    #[must_use]
    pub fn host_memory(mut self, host_memory: &'a dyn HostMemory) -> Self {
        self.host_memory = Some(host_memory);
        self
    }
}

/// Images in [0, 1], NCHW.
#[derive(Clone, Debug, PartialEq)]
pub struct Images {
    /// The global index of the first image (a shard's or a batch's start).
    pub first: usize,
    pub values: Vec<f32>,
    /// [N, C, H, W].
    pub shape: [usize; 4],
}

/// What a run did besides its images.
#[derive(Clone, Debug, Default)]
pub struct SampleReport {
    pub images: usize,
    pub sampler: Option<Sampler>,
    /// Images per batch (the last may be shorter) and the number of batches.
    pub batch: usize,
    pub batches: usize,
    /// Network evaluations, summed over batches.
    pub nfe: usize,
    /// The devices that ran it, described.
    pub devices: Vec<String>,
    /// The probed memory per sample of the device (None where unmeasured).
    pub bytes_per_sample: Option<usize>,
    pub graphs: GraphStats,
}

impl Model {
    /// The images of `options` in memory, in sample order.
    pub fn sample(&self, options: &SampleOptions<'_>) -> Result<Images> {
        let mut kept: Vec<Images> = Vec::new();
        let report = self.sample_batches(options, &mut |b| {
            kept.push(b);
            Ok(true)
        })?;
        kept.sort_by_key(|b| b.first);
        let mut shape = kept.first().map_or([0; 4], |b| b.shape);
        shape[0] = report.images;
        Ok(Images {
            first: kept.first().map_or(0, |b| b.first),
            values: kept.into_iter().flat_map(|b| b.values).collect(),
            shape,
        })
    }

    /// Runs `options`, handing each finished batch to `on_batch` on the caller's thread while the
    /// devices sample the next ones: in order for one device; with several, each device's batches in
    /// order, interleaved by arrival. `on_batch` returns false to stop the run early (the batches in
    /// flight are waited for and dropped).
    pub fn sample_batches(
        &self,
        options: &SampleOptions<'_>,
        on_batch: &mut dyn FnMut(Images) -> Result<bool>,
    ) -> Result<SampleReport> {
        let o = options;
        if o.num == 0 {
            return Err(Error::setting("num", "at least 1", 0));
        }
        if let Some((i, n)) = o.shard {
            if n == 0 || i >= n {
                return Err(Error::setting(
                    "shard",
                    "i/n with 0 <= i < n",
                    format!("{i}/{n}"),
                ));
            }
        }
        let range = shard_range(o.num, o.shard.unwrap_or((0, 1)));
        if u32::try_from(range.end).is_err() {
            return Err(Error::setting(
                "num",
                "below 2^32 (sample indices are one Philox counter word)",
                o.num,
            ));
        }
        let own = [self.device.clone()];
        let devices: &[Device] = if o.devices.is_empty() {
            &own
        } else {
            &o.devices
        };
        let plan = Plan::new(self, o.sampler, o.steps)?;
        let _precision = PrecisionFor::set(devices, o.precision)?;
        let (range, batch) = match o.noise_from {
            Some(_) => {
                if let Some((i, n)) = o.shard {
                    return Err(Error::setting(
                        "shard",
                        "absent when the noise is replayed from a file (it holds one batch)",
                        format!("{i}/{n}"),
                    ));
                }
                // One batch of exactly `num` images; the file's shapes are checked against it.
                (0..o.num, BatchSize::Fixed(o.num))
            }
            None => (range, o.batch),
        };
        let total = range.len();
        // The models of the run's devices: this one where it is already, copies elsewhere.
        let copies: Vec<Option<Model>> = devices
            .iter()
            .map(|d| match same_device(d, &self.device) {
                true => Ok(None),
                false => Model::load(&self.source, d).map(Some),
            })
            .collect::<Result<_>>()?;
        let models: Vec<&Model> = copies.iter().map(|c| c.as_ref().unwrap_or(self)).collect();
        let (batch, per_sample) = fit_batch(&plan, models[0], batch, total, o.host_memory)?;
        let batches: Vec<Range<usize>> = range
            .clone()
            .step_by(batch)
            .map(|first| first..(first + batch).min(range.end))
            .collect();
        let per_device = batches.len().div_ceil(devices.len()).max(1);
        let mut report = SampleReport {
            images: total,
            sampler: Some(plan.sampler()),
            batch,
            batches: batches.len(),
            devices: devices.iter().map(Device::describe).collect(),
            bytes_per_sample: per_sample,
            ..SampleReport::default()
        };
        // What the device workers read of the options (the callbacks stay on this thread).
        let (seed, graph, replay) = (o.seed, o.graph, o.noise_from);
        let noise_for = move |first: usize| match replay {
            Some(st) => Noise::Replay(st),
            None => Noise::Philox {
                seed,
                first_sample: first as u32,
            },
        };
        let plan = &plan;
        // The run's network calls are counted from here (the memory probes before are not).
        let evaluations_before: u64 = models.iter().map(|m| m.network_evaluations()).sum();
        let (to_caller, finished) = mpsc::sync_channel::<(usize, SampledBatch)>(2);
        let worker = |model: &Model,
                      mine: &[Range<usize>],
                      to_caller: mpsc::SyncSender<(usize, SampledBatch)>|
         -> Result<(usize, GraphStats)> {
            let mut graphs = GraphRuns::new(graph);
            let mut deliver = |first: usize, b: SampledBatch| {
                // A closed channel: the caller stopped the run (or failed), which it reports.
                Ok(to_caller.send((first, b)).is_ok())
            };
            let done = run_batches(
                plan,
                model,
                mine,
                &noise_for,
                &model.device,
                &mut graphs,
                &mut deliver,
            )?;
            Ok((done.nfe, graphs.stats()))
        };
        let (runs, delivered) = std::thread::scope(|scope| {
            let workers: Vec<_> = models
                .iter()
                .zip(batches.chunks(per_device))
                .map(|(&m, mine)| {
                    let to_caller = to_caller.clone();
                    scope.spawn(move || worker(m, mine, to_caller))
                })
                .collect();
            drop(to_caller);
            let mut p = Progress {
                images_done: 0,
                images_total: total,
                batches_done: 0,
                batches_total: batches.len(),
                nfe: 0,
                evaluations: 0,
                evaluations_expected: plan
                    .evaluations_per_batch()
                    .map(|n| (n * batches.len()) as u64),
            };
            let issued = || -> u64 { models.iter().map(|m| m.network_evaluations()).sum() };
            let mut delivered: Result<()> = Ok(());
            loop {
                let (first, b) = match finished.recv_timeout(PROGRESS_EVERY) {
                    Ok(next) => next,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Some(progress) = o.progress {
                            p.evaluations = issued().saturating_sub(evaluations_before);
                            progress(&p);
                        }
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                };
                p.images_done += b.shape[0];
                p.batches_done += 1;
                p.nfe += b.nfe;
                let images = Images {
                    first,
                    values: b.values,
                    shape: b.shape,
                };
                match on_batch(images) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        delivered = Err(e);
                        break;
                    }
                }
                if let Some(progress) = o.progress {
                    p.evaluations = issued().saturating_sub(evaluations_before);
                    progress(&p);
                }
            }
            // The workers see the closed channel and stop after the batches in flight.
            drop(finished);
            let runs: Vec<Result<(usize, GraphStats)>> = workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|_| Err(panicked())))
                .collect();
            (runs, delivered)
        });
        delivered?;
        for r in runs {
            let (nfe, g) = r?;
            report.nfe += nfe;
            report.graphs.captured += g.captured;
            report.graphs.replays += g.replays;
            report.graphs.failed_captures += g.failed_captures;
        }
        Ok(report)
    }
}

fn same_device(a: &Device, b: &Device) -> bool {
    match (a, b) {
        (Device::Cpu, Device::Cpu) => true,
        (Device::Cuda(x), Device::Cuda(y)) => std::sync::Arc::ptr_eq(x, y),
        _ => false,
    }
}

fn panicked() -> Error {
    Error::setting("device worker", "a thread that returns", "a panic")
}

/// The batch of the run: a fixed batch checked to fit, or for `Auto` the largest that fits the
/// device's memory (on the CPU [`CPU_AUTO_BATCH`]), never more than the run's images; with the
/// probed bytes per sample.
/// The run's precision on its devices, the one before restored when the run ends (also on an error).
struct PrecisionFor(Vec<(Device, Precision)>);

impl PrecisionFor {
    fn set(devices: &[Device], precision: Precision) -> Result<PrecisionFor> {
        let mut before = PrecisionFor(Vec::with_capacity(devices.len()));
        for d in devices {
            let was = d.precision();
            d.set_precision(precision)?;
            before.0.push((d.clone(), was));
        }
        Ok(before)
    }
}

impl Drop for PrecisionFor {
    fn drop(&mut self) {
        for (d, was) in &self.0 {
            // Setting a precision the device had cannot fail.
            let _ = d.set_precision(*was);
        }
    }
}

fn fit_batch(
    plan: &Plan,
    model: &Model,
    batch: BatchSize,
    images: usize,
    host: Option<&dyn HostMemory>,
) -> Result<(usize, Option<usize>)> {
    if let BatchSize::Fixed(0) = batch {
        return Err(Error::setting("batch", "at least 1", 0));
    }
    let device = &model.device;
    let estimate = probe_memory(plan, model, images, host)?;
    let batch = match (batch, estimate) {
        (BatchSize::Fixed(b), _) => b,
        (BatchSize::Auto, _) if !device.is_cuda() => CPU_AUTO_BATCH,
        (BatchSize::Auto, Some((est, kept, available))) => {
            est.largest_batch(images, kept, available).unwrap_or(1)
        }
        (BatchSize::Auto, None) => CPU_AUTO_BATCH,
    }
    .min(images);
    if let Some((est, kept, available)) = &estimate {
        est.check(batch, *kept, *available, &device.describe())?;
    }
    Ok((batch, estimate.map(|(est, _, _)| est.per_sample)))
}

/// The run's memory model measured before it starts: two probes (batch 1 and 2) give the working
/// set per sample; with the images the device keeps and the bytes available. None where the
/// available memory is unknown (the CPU without a [`HostMemory`]).
fn probe_memory(
    plan: &Plan,
    model: &Model,
    images: usize,
    host: Option<&dyn HostMemory>,
) -> Result<Option<(MemoryEstimate, usize, usize)>> {
    let device = &model.device;
    let (peak1, peak2, values, available) = match device {
        Device::Cpu => {
            let Some((host, available)) = host.and_then(|h| Some((h, h.available()?))) else {
                return Ok(None);
            };
            let base = host.reset_peak();
            let values = plan.probe(model, 1, device)?;
            let peak1 = host.peak().saturating_sub(base);
            let base = host.reset_peak();
            plan.probe(model, 2, device)?;
            (peak1, host.peak().saturating_sub(base), values, available)
        }
        Device::Cuda(d) => {
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
