//! A sampling run of any model: the sampler chosen and checked against the family, batches of images in
//! [0, 1] with the official output transform, shards of a run by global sample index.

use super::cld::{self, CldConfig, CldSampler};
use super::ddgan::PosteriorCoefficients;
use super::graph::GraphRuns;
use super::lsgm::{self, LsgmConfig, LsgmSolver};
use super::noise::Noise;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::models::{Model, Network};
use crate::ops::{judge_slots, read_back, FiniteWatch, Readback};
use crate::tensor::Tensor;

/// The samplers by name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampler {
    /// DDGAN's T-step posterior sampler.
    Ddgan,
    /// CLD's symmetric splitting sampler.
    Sscs,
    /// CLD's Euler–Maruyama.
    Em,
    /// The probability-flow ODE with the adaptive RK45 (CLD, LSGM).
    Ode,
    /// LSGM's probability-flow ODE with fixed-step RK4.
    Rk4,
}

impl Sampler {
    /// Every sampler, in the order of [`Sampler::name`]'s list.
    pub const ALL: [Sampler; 5] = [
        Sampler::Ddgan,
        Sampler::Sscs,
        Sampler::Em,
        Sampler::Ode,
        Sampler::Rk4,
    ];

    /// The sampler's name: `ddgan`, `sscs`, `em`, `ode` or `rk4`.
    pub fn name(self) -> &'static str {
        match self {
            Sampler::Ddgan => "ddgan",
            Sampler::Sscs => "sscs",
            Sampler::Em => "em",
            Sampler::Ode => "ode",
            Sampler::Rk4 => "rk4",
        }
    }
}

impl std::fmt::Display for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Sampler {
    type Err = Error;

    /// A sampler by its [`Sampler::name`].
    fn from_str(s: &str) -> Result<Sampler> {
        Sampler::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| Error::setting("sampler", "one of ddgan, sscs, em, ode, rk4", s))
    }
}

/// What a run will do, validated before any work: the sampler and steps the user sees, and the one
/// family's method with everything it needs, so a plan cannot hold two families' settings or none.
#[derive(Clone, Debug)]
pub struct Plan {
    sampler: Sampler,
    method: Method,
}

/// A plan's family and its settings.
#[derive(Clone, Debug)]
enum Method {
    /// DDGAN's posterior schedule (its step count is the generator's).
    Ddgan(PosteriorCoefficients),
    /// A CLD sampler, its steps (SSCS/EM; 0 for the ODE) and whether outputs are centred.
    Cld {
        config: CldConfig,
        sampler: CldSampler,
        steps: usize,
        center: bool,
    },
    /// LSGM's latent ODE with its solver.
    Lsgm {
        config: LsgmConfig,
        solver: LsgmSolver,
    },
}

fn bad(what: &'static str, rule: &'static str, found: String) -> Error {
    Error::setting(what, rule, found)
}

/// Default SSCS/EM network evaluations when the config has no `n_discrete_steps` (the CLD paper's
/// CIFAR-10 SSCS runs use 150).
pub const CLD_DEFAULT_STEPS: usize = 150;

/// Default RK4 steps for LSGM's fixed-step ODE (100 network evaluations).
pub const RK4_DEFAULT_STEPS: usize = 25;

impl Plan {
    /// `sampler` (or the family's default) with `steps`, checked against `model`.
    pub fn new(model: &Model, sampler: Option<Sampler>, steps: Option<usize>) -> Result<Plan> {
        if steps == Some(0) {
            return Err(bad("steps", "at least 1", "0".into()));
        }
        let cfg = &model.config;
        let adaptive = |s: Option<usize>, rule: &'static str| match s {
            Some(s) => Err(bad("steps", rule, s.to_string())),
            None => Ok(()),
        };
        let plan = match &model.network {
            Network::Ddgan(_) => {
                if let Some(s) = sampler.filter(|s| *s != Sampler::Ddgan) {
                    return Err(bad("sampler", "ddgan for a DDGAN model", s.to_string()));
                }
                let t = cfg.usize("num_timesteps")?;
                if let Some(s) = steps.filter(|&s| s != t) {
                    return Err(bad(
                        "steps",
                        "the model's num_timesteps (a DDGAN generator is trained for its own step count)",
                        format!("{s} for a {t}-step model"),
                    ));
                }
                let beta = (cfg.f64_or("beta_min", 0.1)?, cfg.f64_or("beta_max", 20.0)?);
                let coefs = PosteriorCoefficients::new(t, beta.0, beta.1)?;
                Plan {
                    sampler: Sampler::Ddgan,
                    method: Method::Ddgan(coefs),
                }
            }
            Network::Cld(_) => {
                let default = cfg.str_or("sampling_method", "ode")?;
                let sampler = match sampler {
                    Some(s) => s,
                    None => default.parse().map_err(|_| {
                        let path = model.dir.join("config.json");
                        Error::BadModel {
                            file: path,
                            what: "`sampling_method`".into(),
                            reason: format!("`{default}` is not one of sscs, em, ode"),
                        }
                    })?,
                };
                let (kind, sampler) = match sampler {
                    Sampler::Sscs => (Sampler::Sscs, CldSampler::Sscs),
                    Sampler::Em => (Sampler::Em, CldSampler::EulerMaruyama),
                    Sampler::Ode => {
                        let rule =
                            "absent for the adaptive ODE sampler (its tolerances set the steps)";
                        adaptive(steps, rule)?;
                        let rtol = cfg.f64_or("sampling_rtol", 1e-5)?;
                        let atol = cfg.f64_or("sampling_atol", 1e-5)?;
                        (Sampler::Ode, CldSampler::Ode { rtol, atol })
                    }
                    other => {
                        let rule = "sscs, em or ode for a CLD model";
                        return Err(bad("sampler", rule, other.to_string()));
                    }
                };
                let config = CldConfig::from_config(cfg)?;
                let center = cfg.bool_or("center_image", true)?;
                let steps = match kind {
                    Sampler::Ode => 0,
                    _ => {
                        let n = match steps {
                            Some(n) => n,
                            None => cfg.usize("n_discrete_steps").unwrap_or(CLD_DEFAULT_STEPS),
                        };
                        if n < 2 {
                            return Err(bad(
                                "steps",
                                "at least 2 for SSCS/EM (one step plus the denoising step)",
                                n.to_string(),
                            ));
                        }
                        n
                    }
                };
                Plan {
                    sampler: kind,
                    method: Method::Cld {
                        config,
                        sampler,
                        steps,
                        center,
                    },
                }
            }
            Network::Lsgm { .. } => {
                let (kind, solver) = match sampler.unwrap_or(Sampler::Ode) {
                    Sampler::Ode => {
                        adaptive(
                            steps,
                            "absent for the adaptive ODE sampler (its tolerances set the steps; \
                             the rk4 sampler takes a step count)",
                        )?;
                        (Sampler::Ode, LsgmSolver::Rk45)
                    }
                    Sampler::Rk4 => {
                        let steps = steps.unwrap_or(RK4_DEFAULT_STEPS);
                        (Sampler::Rk4, LsgmSolver::Rk4 { steps })
                    }
                    other => {
                        let rule = "ode or rk4 for an LSGM model";
                        return Err(bad("sampler", rule, other.to_string()));
                    }
                };
                Plan {
                    sampler: kind,
                    method: Method::Lsgm {
                        config: LsgmConfig::from_config(cfg)?,
                        solver,
                    },
                }
            }
        };
        Ok(plan)
    }

    /// The sampler this plan runs.
    pub fn sampler(&self) -> Sampler {
        self.sampler
    }

    /// Network evaluations per batch when the sampler fixes them (DDGAN's T, SSCS/EM steps, 4 per
    /// RK4 step); None for the adaptive ODE solves.
    pub fn evaluations_per_batch(&self) -> Option<usize> {
        match &self.method {
            Method::Lsgm {
                solver: LsgmSolver::Rk4 { steps },
                ..
            } => Some(4 * steps),
            _ => self.steps(),
        }
    }

    /// Steps of a fixed-step sampler (CLD's SSCS/EM steps, DDGAN's T, RK4 steps); None for the
    /// adaptive ODE solves.
    pub fn steps(&self) -> Option<usize> {
        match &self.method {
            Method::Ddgan(coefs) => Some(coefs.steps()),
            Method::Cld { steps, sampler, .. } => match sampler {
                CldSampler::Ode { .. } => None,
                _ => Some(*steps),
            },
            Method::Lsgm { solver, .. } => match solver {
                LsgmSolver::Rk4 { steps } => Some(*steps),
                LsgmSolver::Rk45 => None,
            },
        }
    }

    /// One batch of images in [0, 1] (NCHW) and the network evaluations it took.
    pub fn sample(
        &self,
        model: &Model,
        batch: usize,
        noise: &Noise<'_>,
        device: &Device,
    ) -> Result<(Tensor, usize)> {
        self.sample_with(model, batch, noise, device, &mut GraphRuns::new(false))
    }

    /// [`Plan::sample`] with the run's CUDA graphs: the fixed-step samplers' batches with Philox
    /// noise on a GPU are captured and replayed through `graphs` (samplers/graph.rs).
    pub fn sample_with(
        &self,
        model: &Model,
        batch: usize,
        noise: &Noise<'_>,
        device: &Device,
        graphs: &mut GraphRuns,
    ) -> Result<(Tensor, usize)> {
        let done = self.enqueue(model, batch, noise, device, graphs)?.wait()?;
        let image = Tensor::from_f32(&done.values, &done.shape, DType::F32, &Device::Cpu)?;
        Ok((image, done.nfe))
    }

    /// [`Plan::sample_with`] without waiting for the device: the batch's work is queued (a graph
    /// replay, or its kernels) with the copy of its output and finite-watch slots into page-locked
    /// memory after it; [`PendingBatch::wait`] waits for that copy only. Work queued after this call
    /// (the next batch) keeps the device busy while the host waits for, encodes and writes this one.
    /// (The adaptive ODE samplers read one scalar per step, so their batch has run by the time this
    /// returns; only its output copy is pending.)
    pub fn enqueue(
        &self,
        model: &Model,
        batch: usize,
        noise: &Noise<'_>,
        device: &Device,
        graphs: &mut GraphRuns,
    ) -> Result<PendingBatch> {
        let first = match noise {
            Noise::Philox { first_sample, .. } => Some(*first_sample),
            Noise::Replay(_) => None,
        };
        // `net` makes `nfe` calls per batch: a graph replay makes them without calling it, so they
        // are counted here (a capture called it, and its first replay is that same batch).
        let mut run = |body: &dyn Fn() -> Result<super::graph::Watched>,
                       centered: bool,
                       net: &crate::models::Ncsnpp,
                       nfe: usize| {
            let collect = |x: &Tensor, watch: &FiniteWatch| Pending::read(x, watch, Some(centered));
            match first {
                Some(first) => {
                    let before = graphs.stats();
                    let r = graphs.run(device, batch, first, body, &collect)?;
                    let after = graphs.stats();
                    if after.replays > before.replays && after.captured == before.captured {
                        net.count_evaluations(nfe as u64);
                    }
                    Ok(r)
                }
                None => {
                    let (out, watch) = body()?;
                    collect(&out, &watch)
                }
            }
        };
        match (&model.network, &self.method) {
            (Network::Ddgan(g), Method::Ddgan(coefs)) => {
                let body = || super::ddgan::sample_watched(g, coefs, batch, noise, device);
                let nfe = coefs.steps();
                Ok(PendingBatch::new(run(&body, true, g, nfe)?, nfe))
            }
            (
                Network::Cld(net),
                Method::Cld {
                    config,
                    sampler,
                    steps,
                    center,
                },
            ) => match sampler {
                // The ODE reads its error norms from the host: never a graph.
                CldSampler::Ode { .. } => {
                    let out = cld::sample(net, config, *sampler, *steps, batch, noise, device)?;
                    let watch = FiniteWatch::new(&[]);
                    let part = Pending::read(&out.x, &watch, Some(*center))?;
                    Ok(PendingBatch::new(part, out.nfe))
                }
                _ => {
                    let body = || {
                        let (out, watch) = cld::sample_watched(
                            net, config, *sampler, *steps, batch, noise, device,
                        )?;
                        Ok((out.x, watch))
                    };
                    Ok(PendingBatch::new(run(&body, *center, net, *steps)?, *steps))
                }
            },
            (Network::Lsgm { vae, score }, Method::Lsgm { config, solver }) => {
                let out = lsgm::sample(vae, score, config, *solver, batch, noise, device)?;
                // The decoder's output head already gives [0, 1].
                let part = Pending::read(&out.image, &FiniteWatch::new(&[]), None)?;
                Ok(PendingBatch::new(part, out.nfe))
            }
            _ => Err(bad(
                "plan",
                "built for this model",
                format!("a {} plan", self.sampler.name()),
            )),
        }
    }
}

/// A batch whose work and read-back are queued ([`Plan::enqueue`]); possibly several parts (a batch
/// retried in halves after running out of memory), in sample order.
#[derive(Debug)]
pub struct PendingBatch {
    parts: Vec<Pending>,
    nfe: usize,
}

/// One queued read-back: the output (NCHW f32 in the model's range) and the watch's slots.
#[derive(Debug)]
struct Pending {
    readback: Readback,
    shape: Vec<usize>,
    watch: Vec<&'static str>,
    /// Some(centered): map to [0, 1] from [−1, 1] (true) or clamp (false); None: already [0, 1].
    to_unit: Option<bool>,
}

impl Pending {
    fn read(x: &Tensor, watch: &FiniteWatch, to_unit: Option<bool>) -> Result<Pending> {
        let mut tensors = vec![x];
        tensors.extend(watch.slots());
        Ok(Pending {
            readback: read_back(&tensors)?,
            shape: x.shape().to_vec(),
            watch: watch.slot_names(),
            to_unit,
        })
    }

    fn wait(mut self) -> Result<Vec<f32>> {
        self.readback.wait()?;
        let words = (0..self.watch.len())
            .map(|i| {
                Ok(self
                    .readback
                    .words(i + 1)?
                    .first()
                    .copied()
                    .unwrap_or(u32::MAX))
            })
            .collect::<Result<Vec<u32>>>()?;
        judge_slots(&self.watch, &words)?;
        let mut v = self.readback.f32s(0)?;
        if let Some(centered) = self.to_unit {
            for x in &mut v {
                *x = if centered { (*x + 1.0) / 2.0 } else { *x }.clamp(0.0, 1.0);
            }
        }
        Ok(v)
    }
}

/// A finished batch on the host.
#[derive(Clone, Debug)]
pub struct SampledBatch {
    /// The images in [0, 1], NCHW.
    pub values: Vec<f32>,
    /// [N, C, H, W].
    pub shape: [usize; 4],
    /// Network evaluations per sample (the largest of its parts').
    pub nfe: usize,
}

impl PendingBatch {
    fn new(part: Pending, nfe: usize) -> PendingBatch {
        PendingBatch {
            parts: vec![part],
            nfe,
        }
    }

    /// `self` followed by `later` (the two halves of a batch).
    pub fn join(mut self, later: PendingBatch) -> PendingBatch {
        self.parts.extend(later.parts);
        self.nfe = self.nfe.max(later.nfe);
        self
    }

    /// Waits for the read-backs (not for work queued after them), checks the watches (the first
    /// non-finite state is the error) and gives the images.
    pub fn wait(self) -> Result<SampledBatch> {
        let mut values = Vec::new();
        let mut shape = [0usize; 4];
        for p in self.parts {
            let [n, c, h, w]: [usize; 4] = p
                .shape
                .as_slice()
                .try_into()
                .map_err(|_| bad("output", "NCHW images", format!("shape {:?}", p.shape)))?;
            if shape[0] > 0 && [c, h, w] != shape[1..] {
                return Err(bad(
                    "output",
                    "one image shape across a batch's parts",
                    format!("{:?} and {:?}", &shape[1..], [c, h, w]),
                ));
            }
            shape = [shape[0] + n, c, h, w];
            values.extend(p.wait()?);
        }
        Ok(SampledBatch {
            values,
            shape,
            nfe: self.nfe,
        })
    }
}

impl Plan {
    /// One network call of each network a sampling step of `model` runs (LSGM: the score network
    /// and the decoder), at `batch`, on Philox inputs; the result is discarded. Measuring the memory
    /// this takes at two batch sizes gives the per-sample cost of a run before it starts. Returns the
    /// number of values in one output image.
    pub fn probe(&self, model: &Model, batch: usize, device: &Device) -> Result<usize> {
        use super::cld::CldScore;
        use super::ddgan::Generator;
        use super::lsgm::LatentScore;
        use crate::rng::NoiseStream;
        let noise = Noise::Philox {
            seed: 0,
            first_sample: 0,
        };
        let draw = |[h, w, c]: [usize; 3]| {
            noise.image("probe", NoiseStream::Prior, 0, [batch, h, w, c], device)
        };
        match &model.network {
            Network::Ddgan(g) => {
                let z = noise.plain("probe", NoiseStream::Latent, 0, &[batch, g.nz()?], device)?;
                let x = g.predict_x0(&draw(Generator::image_shape(g))?, 0, &z)?;
                Ok(x.elem_count() / batch.max(1))
            }
            Network::Cld(net) => {
                let [h, w, c] = CldScore::image_shape(net);
                net.alpha(&draw([h, w, 2 * c])?, 0.5)?;
                Ok(h * w * c)
            }
            Network::Lsgm { vae, score } => {
                let z = draw(score.latent_shape())?;
                score.eps(&z, 0.5)?;
                let (_, image) = lsgm::decode(vae, &z, 1.0, &noise, device)?;
                Ok(image.elem_count() / batch.max(1))
            }
        }
    }
}

/// The memory a run needs, from the peak memory of two probes ([`Plan::probe`] at batch 1 and 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Bytes a probe takes whatever its batch (workspace not proportional to the batch).
    pub fixed: usize,
    /// Bytes per sample of the batch.
    pub per_sample: usize,
    /// Bytes of one finished image kept for the output (f32 values).
    pub per_image: usize,
}

impl MemoryEstimate {
    /// From the peak bytes of the batch-1 and batch-2 probes and the values in one output image.
    pub fn from_probes(peak1: usize, peak2: usize, image_values: usize) -> MemoryEstimate {
        let per_sample = peak2.saturating_sub(peak1);
        MemoryEstimate {
            fixed: peak1.saturating_sub(per_sample),
            per_sample,
            per_image: image_values * 4,
        }
    }

    /// Bytes for batches of `batch` producing `images` images: the probed working set at `batch`
    /// with a 25% margin (a sampler step holds its state and draws besides the network's
    /// activations), plus the images kept until the output is written.
    pub fn bytes(&self, batch: usize, images: usize) -> usize {
        let work = self
            .fixed
            .saturating_add(self.per_sample.saturating_mul(batch));
        work.saturating_add(work / 4)
            .saturating_add(self.per_image.saturating_mul(images))
    }

    /// The largest batch of at most `max` that fits in `available` bytes with `images` images kept;
    /// None when not even batch 1 fits. (The bytes grow with the batch: a binary search.)
    pub fn largest_batch(&self, max: usize, images: usize, available: usize) -> Option<usize> {
        if self.bytes(1, images) > available {
            return None;
        }
        let (mut lo, mut hi) = (1, max.max(1) + 1);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.bytes(mid, images) <= available {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo)
    }

    /// An error naming the largest batch that fits when `batch` needs more than `available` bytes.
    pub fn check(&self, batch: usize, images: usize, available: usize, device: &str) -> Result<()> {
        let need = self.bytes(batch, images);
        if need <= available {
            return Ok(());
        }
        let gib = |b: usize| b as f64 / (1u64 << 30) as f64;
        let fits = self.largest_batch(batch, images, available);
        Err(bad(
            "batch",
            "small enough for the memory available",
            format!(
                "batch {batch} needs about {:.1} GiB ({:.1} MiB per sample, measured by a probe) and \
                 {device} has {:.1} GiB available; {}",
                gib(need),
                self.per_sample as f64 / (1u64 << 20) as f64,
                gib(available),
                match fits {
                    Some(b) => format!("batch {b} fits"),
                    None => "not even batch 1 fits (fewer images per run shrink the output)".into(),
                }
            ),
        ))
    }
}

/// `i/n`: shard i (0-based) of n.
pub fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let parsed = s.split_once('/').and_then(|(i, n)| {
        Some((
            i.trim().parse::<usize>().ok()?,
            n.trim().parse::<usize>().ok()?,
        ))
    });
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => Err(bad("shard", "i/n with 0 <= i < n", s.into())),
    }
}

/// The global sample indices of shard `i` of `n` over `num` images.
pub fn shard_range(num: usize, (i, n): (usize, usize)) -> std::ops::Range<usize> {
    (i * num / n)..((i + 1) * num / n)
}
