//! `trilemma bench`: network calls and sampling runs timed under the PyTorch baseline's ids, side by
//! side with a baseline file measured on the same machine.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Benchmark these models (embedded names or directories): one call of each network
    /// (`net/<name>/b<batch>/<precision>`) and a whole sampling run with the default sampler
    /// (`sample/<name>/b<batch>/<precision>`). Without it: the released networks at official size
    /// with random weights (`net/<family>/<preset>/b<batch>/<precision>`) and the DDGAN CIFAR-10
    /// 4-step run.
    #[arg(long)]
    pub model: Vec<String>,
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Only the ids starting with this prefix.
    #[arg(long)]
    pub only: Option<String>,
    /// tools/bench_pytorch.py's JSON from the same machine and device.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Keep calling each benchmark for at least this long (at least 3 calls).
    #[arg(long, default_value_t = 2.0)]
    pub min_seconds: f64,
    /// Quick figures: each benchmark called for 0.2 s (at least 3 calls) instead of --min-seconds;
    /// the ids stay those of the baseline's --quick run.
    #[arg(long)]
    pub quick: bool,
    /// Print the ids this command would time (after --model, --batch, --only) and exit.
    #[arg(long)]
    pub list: bool,
    /// Network evaluations of the CLD CIFAR-10 SSCS run (`sample/cld/cifar10/sscs<N>/...`; the
    /// baseline's --quick uses 50, its full run 150).
    #[arg(long, default_value_t = 50)]
    pub sscs_steps: usize,
    /// Also write the engine's results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// auto (a GPU where there is one, else the CPU), cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: crate::device::DeviceSpec,
    /// How a GPU computes convolutions and linear layers (fp32, 3xtf32, tf32, bf16, fp16); the
    /// benchmark ids end in it.
    #[arg(long, default_value = "fp32")]
    pub precision: crate::Precision,
}

/// The ids of the released networks' benchmarks at `batch` (the cases without --model), in order.
pub fn released_ids(batch: usize, sscs_steps: usize, prec: &str) -> Vec<String> {
    use crate::models::Family;
    let mut ids = Vec::new();
    for r in crate::models::released::RELEASED_NETWORKS {
        ids.push(format!("net/{}/b{batch}/{prec}", r.id()));
        match r.family {
            Family::Cld => ids.push(format!(
                "sample/{}/sscs{sscs_steps}/b{batch}/{prec}",
                r.id()
            )),
            Family::Ddgan => ids.push(format!("sample/{}/b{batch}/{prec}", r.id())),
            Family::Lsgm => {}
        }
    }
    ids
}

/// `bench --help`'s list of cases.
pub fn case_help() -> String {
    let mut s = String::from(
        "Benchmarks without --model (batch 1, SSCS 50; --batch and --sscs-steps change the ids):\n",
    );
    for id in released_ids(1, 50, "fp32") {
        s.push_str("  ");
        s.push_str(&id);
        s.push('\n');
    }
    s.push_str(
        "With --model NAME|DIR: net/NAME/b<batch>/fp32 (one call of each network) and \
         sample/NAME/b<batch>/fp32 (a whole run with the model's sampler). Every id ends in the \
         --precision (fp32 by default).",
    );
    s
}

/// A benchmark: its id and the call it times.
type BenchCase<'a> = (String, Box<dyn FnMut() -> crate::Result<()> + 'a>);

/// The id part of a --model value: an embedded name, or a directory's last component.
fn model_name(spec: &str) -> String {
    std::path::Path::new(spec)
        .file_name()
        .map_or_else(|| spec.to_string(), |n| n.to_string_lossy().into_owned())
}

/// `trilemma bench`.
pub fn run(a: &BenchArgs) -> crate::Result<()> {
    use crate::models::released::RELEASED_NETWORKS;
    use crate::samplers::{ddgan, run::Plan, Noise};
    use crate::{DType, Tensor};
    let bad = |what: &'static str, rule: &'static str, found: String| crate::Error::InvalidParam {
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
        .map(crate::bench::read_baseline)
        .transpose()?;
    let b = a.batch;
    let prec = a.precision.name();
    let wanted = |id: &str| match a.only.as_deref() {
        Some(prefix) => id.starts_with(prefix),
        None => true,
    };
    if a.list {
        let ids: Vec<String> = if a.model.is_empty() {
            released_ids(b, a.sscs_steps, prec)
        } else {
            a.model
                .iter()
                .flat_map(|spec| {
                    let name = model_name(spec);
                    [
                        format!("net/{name}/b{b}/{prec}"),
                        format!("sample/{name}/b{b}/{prec}"),
                    ]
                })
                .collect()
        };
        for id in ids.iter().filter(|id| wanted(id)) {
            println!("{id}");
        }
        return Ok(());
    }
    let min_seconds = if a.quick { 0.2 } else { a.min_seconds };
    let device = super::open_device(a.device, "bench")?;
    device.set_precision(a.precision)?;
    let noise = Noise::Philox {
        seed: 0,
        first_sample: 0,
    };
    let random = |shape: &[usize], seed: u64| -> crate::Result<Tensor> {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i as u64 * 2654435761 + seed) % 2000) as f32 / 1000.0 - 1.0)
            .collect();
        Tensor::from_f32(&v, shape, DType::F32, &device)
    };
    let mut cases: Vec<BenchCase> = Vec::new();
    if a.model.is_empty() {
        for r in RELEASED_NETWORKS {
            let id = format!("net/{}/b{b}/{prec}", r.id());
            let sample_id = format!("sample/{}/b{b}/{prec}", r.id());
            let is_ddgan = r.family == crate::models::Family::Ddgan;
            let is_cld = r.family == crate::models::Family::Cld;
            let sample_id = if is_cld {
                format!("sample/{}/sscs{}/b{b}/{prec}", r.id(), a.sscs_steps)
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
                let cfg = crate::samplers::cld::CldConfig::cifar10();
                let (net, noise, device, steps) =
                    (std::rc::Rc::clone(&net), &noise, &device, a.sscs_steps);
                cases.push((
                    sample_id.clone(),
                    Box::new(move || {
                        use crate::samplers::cld::{sample, CldSampler};
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
                let steps = crate::models::Config::from_json_str("released", r.config_json)?
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
            let name = model_name(spec);
            let (id, sample_id) = (
                format!("net/{name}/b{b}/{prec}"),
                format!("sample/{name}/b{b}/{prec}"),
            );
            if !wanted(&id) && !wanted(&sample_id) {
                continue;
            }
            let model = std::rc::Rc::new(crate::Model::load(spec, &device)?);
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
    let n = cases.len();
    for (i, (id, run)) in cases.iter_mut().enumerate() {
        // Said before the timing starts: a slow case (a whole sampling run on the CPU) is not silent.
        eprintln!(
            "[{}/{n}] {id}: timing for {min_seconds} s (at least 3 calls) ...",
            i + 1
        );
        let t = crate::bench::time(id, &device, min_seconds, run.as_mut())?;
        let memory = t.peak_device_bytes.map_or_else(String::new, |p| {
            let mib = p as f64 / (1u64 << 20) as f64;
            format!(
                ", peak {mib:.1} MiB = {:.2} MiB per sample",
                mib / b.max(1) as f64
            )
        });
        eprintln!("{id}: {:.3} ms ({} calls{memory})", t.median_ms, t.reps);
        timings.push(t);
    }
    let described = device.describe();
    print!(
        "{}",
        crate::bench::table(&described, &timings, baseline.as_ref())
    );
    if let Some(path) = &a.json {
        let tmp = path.with_extension("json.partial");
        std::fs::write(&tmp, crate::bench::to_json(&described, &timings))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|source| crate::Error::Io {
                path: path.clone(),
                source,
            })?;
    }
    Ok(())
}
