//! One network call on named input tensors, as `trilemma forward` runs it: the numerics-validation entry
//! point. Names and shapes (NCHW, PyTorch's layout) are documented in docs/model-format.md:
//!
//! | family / part | inputs                                   | outputs                               |
//! |---------------|------------------------------------------|---------------------------------------|
//! | cld           | `u` \[B, 2C, H, W\], `t` \[B\]               | `alpha` \[B, C, H, W\]                  |
//! | ddgan         | `x_t` \[B, C, H, W\], `t` \[B\] index, `z` \[B, nz\] | `x0` \[B, C, H, W\]               |
//! | lsgm score    | `z_t` \[B, C, H, W\], `t` \[B\]              | `eps` \[B, C, H, W\] (ε′, unmixed)      |
//! | lsgm encoder  | `x` [B, C, H, W] in [−1, 1], `noise.{g}` | `mu.{g}`, `log_sigma.{g}`, `eps.{g}`  |
//! | lsgm decoder  | `eps.{g}` (first groups), `noise.{g}` (the rest), optional `temp` \[1\] | `logits` |

use std::collections::BTreeSet;

use super::model::{Model, Network};
use super::ncsnpp::Ncsnpp;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::io::safetensors::SafeTensors;
use crate::tensor::Tensor;

/// Which network of an LSGM model to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Score,
    Encoder,
    Decoder,
}

impl Part {
    pub fn parse(s: &str) -> Option<Part> {
        match s {
            "score" => Some(Part::Score),
            "encoder" => Some(Part::Encoder),
            "decoder" => Some(Part::Decoder),
            _ => None,
        }
    }
}

/// How a network reads its `t` input.
#[derive(Clone, Copy)]
enum Times {
    /// A continuous time (CLD, LSGM score), floating point only; the family names it in errors.
    Continuous(&'static str),
    /// DDGAN's step index in 0..num_timesteps (when the config gives it): I64 or I32, as the official
    /// sampler passes it (`torch.full((B,), i, dtype=torch.int64)`), or integral floats.
    StepIndex(Option<usize>),
}

/// Where a call's named inputs come from: a safetensors file (`trilemma forward`) or tensors in
/// memory ([`Model::forward`]).
trait InputSource {
    /// How errors name the source: the file, or `inputs`.
    fn origin(&self) -> String;
    fn names(&self) -> Vec<String>;
    /// The shape of `name`, None when absent.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// The integer dtype of `name` (`I64`, `I32`), None for a floating-point one.
    fn integer_dtype(&self, name: &str) -> Option<String>;
    /// `name`'s values as f32 on the host (any floating dtype).
    fn floats(&self, name: &str) -> Result<Vec<f32>>;
    /// `name`'s values as integers (an integer dtype).
    fn integers(&self, name: &str) -> Result<Vec<i64>>;
}

impl InputSource for SafeTensors {
    fn origin(&self) -> String {
        self.file().display().to_string()
    }
    fn names(&self) -> Vec<String> {
        SafeTensors::names(self).map(str::to_string).collect()
    }
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.entries().get(name).map(|e| e.shape.clone())
    }
    fn integer_dtype(&self, name: &str) -> Option<String> {
        let e = self.entries().get(name)?;
        matches!(e.dtype.as_str(), "I64" | "I32").then(|| e.dtype.clone())
    }
    fn floats(&self, name: &str) -> Result<Vec<f32>> {
        self.load_any_shape(name, &Device::Cpu)?.to_vec_f32()
    }
    fn integers(&self, name: &str) -> Result<Vec<i64>> {
        Ok(SafeTensors::integers(self, name)?.0)
    }
}

/// Tensors passed in memory, by name.
struct InMemory<'a>(&'a [(&'a str, &'a Tensor)]);

impl InMemory<'_> {
    fn get(&self, name: &str) -> Option<&Tensor> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }
}

impl InputSource for InMemory<'_> {
    fn origin(&self) -> String {
        "inputs".into()
    }
    fn names(&self) -> Vec<String> {
        self.0.iter().map(|(n, _)| n.to_string()).collect()
    }
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.get(name).map(|t| t.shape().to_vec())
    }
    fn integer_dtype(&self, _: &str) -> Option<String> {
        None
    }
    fn floats(&self, name: &str) -> Result<Vec<f32>> {
        match self.get(name) {
            Some(t) => t.to_vec_f32(),
            None => Err(missing(self, name)),
        }
    }
    fn integers(&self, name: &str) -> Result<Vec<i64>> {
        Err(missing(self, name))
    }
}

fn missing(src: &dyn InputSource, name: &str) -> Error {
    Error::BadInput {
        origin: src.origin(),
        tensor: name.to_string(),
        reason: format!(
            "missing (given: {})",
            match src.names() {
                n if n.is_empty() => "none".to_string(),
                n => n.join(", "),
            }
        ),
    }
}

/// Named inputs, each taken at most once; the rest is an error.
struct Inputs<'a> {
    src: &'a dyn InputSource,
    device: Device,
    taken: BTreeSet<String>,
}

impl Inputs<'_> {
    fn bad(&self, tensor: &str, reason: String) -> Error {
        Error::BadInput {
            origin: self.src.origin(),
            tensor: tensor.to_string(),
            reason,
        }
    }

    fn has(&self, name: &str) -> bool {
        self.src.shape(name).is_some()
    }

    /// `name` with `rank` dimensions, finite, as an fp32 tensor on the device.
    fn take(&mut self, name: &str, rank: usize) -> Result<Tensor> {
        let Some(shape) = self.src.shape(name) else {
            return Err(missing(self.src, name));
        };
        if shape.len() != rank {
            return Err(self.bad(
                name,
                format!("has shape {shape:?}, expected {rank} dimensions"),
            ));
        }
        if let Some(dtype) = self.src.integer_dtype(name) {
            return Err(self.bad(
                name,
                format!("has dtype {dtype}, expected a floating-point one"),
            ));
        }
        let values = self.src.floats(name)?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(self.bad(
                name,
                format!("non-finite value {} at element {i}", values[i]),
            ));
        }
        self.taken.insert(name.to_string());
        Tensor::from_f32(&values, &shape, crate::dtype::DType::F32, &self.device)
    }

    /// [`Inputs::take`] of an input whose shape the network fixes: `want` in the user's layout (NCHW),
    /// None where any size goes (the batch). A mismatch names the tensor, the source and both shapes.
    fn take_shaped(&mut self, name: &str, want: &[Option<usize>]) -> Result<Tensor> {
        if let Some(shape) = self.src.shape(name) {
            let fits = shape.len() == want.len()
                && shape
                    .iter()
                    .zip(want)
                    .all(|(&d, w)| w.map_or(true, |w| w == d));
            if !fits {
                let expected: Vec<String> = want
                    .iter()
                    .zip(["B", "C", "H", "W"].iter().chain(std::iter::repeat(&"?")))
                    .map(|(w, axis)| w.map_or_else(|| axis.to_string(), |d| d.to_string()))
                    .collect();
                let layout = if want.len() == 4 { " (NCHW)" } else { "" };
                return Err(self.bad(
                    name,
                    format!(
                        "has shape {shape:?}, expected [{}]{layout}",
                        expected.join(", ")
                    ),
                ));
            }
        }
        self.take(name, want.len())
    }

    /// `t` as host values, read as `times` says (see [`Times`]).
    fn take_times(&mut self, times: Times) -> Result<Vec<f32>> {
        const NAME: &str = "t";
        let steps = match times {
            Times::StepIndex(steps) => steps,
            Times::Continuous(family) => {
                if let Some(dtype) = self.src.integer_dtype(NAME) {
                    return Err(self.bad(
                        NAME,
                        format!(
                            "has dtype {dtype}: integer timesteps are DDGAN step indices; {family} \
                             networks take a continuous time (F32, BF16 or F16)"
                        ),
                    ));
                }
                return self.take_host(NAME);
            }
        };
        // Indices above 2^24 would not survive the f32 the embedding is computed in.
        let limit = steps.map_or(1i64 << 24, |n| n as i64);
        let in_range = |v: f64| v >= 0.0 && v.fract() == 0.0 && v < limit as f64;
        let rule = match steps {
            Some(n) => format!("a step index in 0..{n} (num_timesteps)"),
            None => "a non-negative integer step index".to_string(),
        };
        if self.src.integer_dtype(NAME).is_some() {
            let shape = self.src.shape(NAME).unwrap_or_default();
            let values = self.src.integers(NAME)?;
            if shape.len() != 1 {
                return Err(self.bad(NAME, format!("has shape {shape:?}, expected 1 dimension")));
            }
            if let Some(bad) = values.iter().find(|&&v| !(0..limit).contains(&v)) {
                return Err(self.bad(NAME, format!("{bad} is not {rule}")));
            }
            self.taken.insert(NAME.to_string());
            return Ok(values.into_iter().map(|v| v as f32).collect());
        }
        let t = self.take_host(NAME)?;
        // Float indices are checked against num_timesteps when the config gives it (without it the
        // network is defined for any time the embedding takes).
        if steps.is_some() {
            if let Some(bad) = t.iter().find(|&&v| !in_range(f64::from(v))) {
                return Err(self.bad(NAME, format!("{bad} is not {rule}")));
            }
        }
        Ok(t)
    }

    fn take_host(&mut self, name: &str) -> Result<Vec<f32>> {
        self.take(name, 1)?.to_vec_f32()
    }

    /// `{prefix}.0`, `{prefix}.1`, ... while present.
    fn take_numbered(&mut self, prefix: &str, rank: usize) -> Result<Vec<Tensor>> {
        let mut out = Vec::new();
        while self.has(&format!("{prefix}.{}", out.len())) {
            out.push(self.take(&format!("{prefix}.{}", out.len()), rank)?);
        }
        Ok(out)
    }

    fn finish(&self) -> Result<()> {
        let extra: Vec<String> = self
            .src
            .names()
            .into_iter()
            .filter(|n| !self.taken.contains(n))
            .collect();
        if extra.is_empty() {
            Ok(())
        } else {
            Err(self.bad(
                &extra.join("`, `"),
                "not an input of this network (see docs/model-format.md for the names)".into(),
            ))
        }
    }
}

fn batch_times(inp: &Inputs<'_>, t: &[f32], batch: usize) -> Result<()> {
    if t.len() == batch || t.len() == 1 {
        Ok(())
    } else {
        Err(inp.bad(
            "t",
            format!(
                "has {} entries for batch {batch} (one per sample, or one shared)",
                t.len()
            ),
        ))
    }
}

fn run_ncsnpp(
    inp: &mut Inputs<'_>,
    net: &Ncsnpp,
    x_name: &str,
    times: Times,
    z: Option<&Tensor>,
) -> Result<Tensor> {
    let a = net.arch();
    let (c, s) = (a.in_channels, a.image_size);
    let x = inp.take_shaped(x_name, &[None, Some(c), Some(s), Some(s)])?;
    let b = x.shape()[0];
    if let Some(z) = z {
        if z.shape()[0] != b {
            return Err(inp.bad(
                "z",
                format!("has batch {}, but `{x_name}` has {b}", z.shape()[0]),
            ));
        }
    }
    let t = inp.take_times(times)?;
    batch_times(inp, &t, b)?;
    net.forward(&x, &t, z)
}

impl Model {
    /// One network call on named tensors (NCHW, the official input names of docs/model-format.md);
    /// returns the named outputs on the model's device. `part` picks an LSGM model's network
    /// (`encoder`, `decoder` or `score`) and must be None for the other families.
    ///
    /// | family / part | inputs | outputs |
    /// |---|---|---|
    /// | cld | `u` \[B, 2C, H, W\], `t` \[B\] | `alpha` \[B, C, H, W\] |
    /// | ddgan | `x_t` \[B, C, H, W\], `t` \[B\] (step indices), `z` \[B, nz\] | `x0` \[B, C, H, W\] |
    /// | lsgm score | `z_t` \[B, C, H, W\], `t` \[B\] | `eps` \[B, C, H, W\] |
    /// | lsgm encoder | `x` [B, C, H, W] in [−1, 1], `noise.{g}` | `mu.{g}`, `log_sigma.{g}`, `eps.{g}` |
    /// | lsgm decoder | `eps.{g}`, `noise.{g}`, optional `temp` \[1\] | `logits` |
    ///
    /// ```
    /// use trilemma::{DType, Device, Model, Tensor};
    /// # fn main() -> trilemma::Result<()> {
    /// let dev = Device::Cpu;
    /// let model = Model::load("ddgan-digits", &dev)?;
    /// let x_t = Tensor::full(0.1, &[2, 1, 16, 16], DType::F32, &dev)?;
    /// let t = Tensor::from_f32(&[3.0, 1.0], &[2], DType::F32, &dev)?;
    /// let nz = model.config.usize("nz")?;
    /// let z = Tensor::full(0.5, &[2, nz], DType::F32, &dev)?;
    /// let out = model.forward(&[("x_t", &x_t), ("t", &t), ("z", &z)], None)?;
    /// assert_eq!(out[0].0, "x0");
    /// # Ok(()) }
    /// ```
    pub fn forward(
        &self,
        inputs: &[(&str, &Tensor)],
        part: Option<Part>,
    ) -> Result<Vec<(String, Tensor)>> {
        forward_from(self, &InMemory(inputs), part, &self.device)
    }

    /// [`Model::forward`] on the tensors of a safetensors file (what `trilemma forward --inputs`
    /// reads): any floating dtype, NCHW, the same names; errors name the file and the tensor.
    ///
    /// ```no_run
    /// # fn main() -> trilemma::Result<()> {
    /// let model = trilemma::Model::load("cld-digits", &trilemma::Device::Cpu)?;
    /// let inputs = trilemma::SafeTensors::open("inputs.safetensors")?;
    /// for (name, out) in model.forward_safetensors(&inputs, None)? {
    ///     println!("{name} {:?}", out.shape());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn forward_safetensors(
        &self,
        inputs: &SafeTensors,
        part: Option<Part>,
    ) -> Result<Vec<(String, Tensor)>> {
        forward_from(self, inputs, part, &self.device)
    }
}

fn forward_from(
    model: &Model,
    inputs: &dyn InputSource,
    part: Option<Part>,
    device: &Device,
) -> Result<Vec<(String, Tensor)>> {
    let mut inp = Inputs {
        src: inputs,
        device: device.clone(),
        taken: BTreeSet::new(),
    };
    let wrong_part = |family: &str| Error::InvalidParam {
        op: "forward",
        what: "part",
        rule: "only for LSGM models (encoder, decoder or score)",
        found: format!("given for a {family} model"),
    };
    let out = match &model.network {
        Network::Cld(net) => {
            if part.is_some() {
                return Err(wrong_part("cld"));
            }
            vec![(
                "alpha".to_string(),
                run_ncsnpp(&mut inp, net, "u", Times::Continuous("cld"), None)?,
            )]
        }
        Network::Ddgan(net) => {
            if part.is_some() {
                return Err(wrong_part("ddgan"));
            }
            let nz = net.arch().zemb.map(|(nz, _, _)| nz);
            let z = inp.take_shaped("z", &[None, nz])?;
            let steps = model.config.usize("num_timesteps").ok();
            vec![(
                "x0".to_string(),
                run_ncsnpp(&mut inp, net, "x_t", Times::StepIndex(steps), Some(&z))?,
            )]
        }
        Network::Lsgm { vae, score } => match part {
            None => {
                return Err(Error::InvalidParam {
                    op: "forward",
                    what: "part",
                    rule: "given for LSGM models: encoder, decoder or score",
                    found: "none".into(),
                })
            }
            Some(Part::Score) => {
                vec![(
                    "eps".to_string(),
                    run_ncsnpp(&mut inp, score, "z_t", Times::Continuous("lsgm"), None)?,
                )]
            }
            Some(Part::Encoder) => {
                let a = vae.arch();
                let (c, s) = (a.image_channels, a.image_size);
                let x = inp.take_shaped("x", &[None, Some(c), Some(s), Some(s)])?;
                let noise = inp.take_numbered("noise", 4)?;
                let p = vae.encode_nchw(&x, &noise)?;
                let mut out = Vec::new();
                for (g, ((mu, ls), eps)) in p.mu.into_iter().zip(p.log_sigma).zip(p.eps).enumerate()
                {
                    out.push((format!("mu.{g}"), mu));
                    out.push((format!("log_sigma.{g}"), ls));
                    out.push((format!("eps.{g}"), eps));
                }
                out
            }
            Some(Part::Decoder) => {
                let eps = inp.take_numbered("eps", 4)?;
                let noise = inp.take_numbered("noise", 4)?;
                let temp = if inp.has("temp") {
                    let t = inp.take_host("temp")?;
                    match t.as_slice() {
                        [v] => *v,
                        _ => {
                            return Err(
                                inp.bad("temp", format!("has {} entries, expected 1", t.len()))
                            )
                        }
                    }
                } else {
                    1.0
                };
                vec![("logits".to_string(), vae.decode_nchw(&eps, &noise, temp)?)]
            }
        },
    };
    inp.finish()?;
    Ok(out)
}
