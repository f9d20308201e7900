//! One network call on named input tensors, as `trilemma forward` runs it: the numerics-validation entry
//! point. Names and shapes (NCHW, PyTorch's layout) are documented in docs/model-format.md:
//!
//! | family / part | inputs                                   | outputs                               |
//! |---------------|------------------------------------------|---------------------------------------|
//! | cld           | `u` [B, 2C, H, W], `t` [B]               | `alpha` [B, C, H, W]                  |
//! | ddgan         | `x_t` [B, C, H, W], `t` [B] index, `z` [B, nz] | `x0` [B, C, H, W]               |
//! | lsgm score    | `z_t` [B, C, H, W], `t` [B]              | `eps` [B, C, H, W] (ε′, unmixed)      |
//! | lsgm encoder  | `x` [B, C, H, W] in [−1, 1], `noise.{g}` | `mu.{g}`, `log_sigma.{g}`, `eps.{g}`  |
//! | lsgm decoder  | `eps.{g}` (first groups), `noise.{g}` (the rest), optional `temp` [1] | `logits` |

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

/// Named inputs read from a safetensors file, each taken at most once; the rest is an error.
struct Inputs<'a> {
    st: &'a SafeTensors,
    device: Device,
    taken: BTreeSet<String>,
}

impl<'a> Inputs<'a> {
    fn bad(&self, tensor: &str, reason: String) -> Error {
        Error::BadModel {
            file: self.st.file().to_path_buf(),
            what: format!("input `{tensor}`"),
            reason,
        }
    }

    fn has(&self, name: &str) -> bool {
        self.st.entries().contains_key(name)
    }

    /// `name` with `rank` dimensions, finite, as an fp32 tensor on the device.
    fn take(&mut self, name: &str, rank: usize) -> Result<Tensor> {
        let e = self.st.entry(name)?;
        if e.shape.len() != rank {
            return Err(self.bad(
                name,
                format!("has shape {:?}, expected {rank} dimensions", e.shape),
            ));
        }
        let host = self.st.load_any_shape(name, &Device::Cpu)?;
        let values = host.to_vec_f32()?;
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(self.bad(
                name,
                format!("non-finite value {} at element {i}", values[i]),
            ));
        }
        self.taken.insert(name.to_string());
        Tensor::from_f32(&values, &e.shape, crate::tensor::DType::F32, &self.device)
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
        let extra: Vec<&str> = self
            .st
            .names()
            .filter(|n| !self.taken.contains(*n))
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
    z: Option<&Tensor>,
) -> Result<Tensor> {
    let x = inp.take(x_name, 4)?;
    let t = inp.take_host("t")?;
    batch_times(inp, &t, x.shape()[0])?;
    net.forward(&x, &t, z)
}

/// Runs one call of `model` (for LSGM, of `part`) on the tensors of `inputs`; returns the named
/// outputs in NCHW.
pub fn forward(
    model: &Model,
    inputs: &SafeTensors,
    part: Option<Part>,
    device: &Device,
) -> Result<Vec<(String, Tensor)>> {
    let mut inp = Inputs {
        st: inputs,
        device: device.clone(),
        taken: BTreeSet::new(),
    };
    let wrong_part = |family: &str| Error::InvalidParam {
        op: "forward",
        what: "--part",
        rule: "only for LSGM models (encoder, decoder or score)",
        found: format!("given for a {family} model"),
    };
    let out = match &model.network {
        Network::Cld(net) => {
            if part.is_some() {
                return Err(wrong_part("cld"));
            }
            vec![("alpha".to_string(), run_ncsnpp(&mut inp, net, "u", None)?)]
        }
        Network::Ddgan(net) => {
            if part.is_some() {
                return Err(wrong_part("ddgan"));
            }
            let z = inp.take("z", 2)?;
            if let Ok(steps) = model.config.usize("num_timesteps") {
                let t = inputs.load_any_shape("t", &Device::Cpu)?.to_vec_f32()?;
                if let Some(&bad) = t
                    .iter()
                    .find(|&&v| v < 0.0 || v.fract() != 0.0 || v >= steps as f32)
                {
                    return Err(inp.bad(
                        "t",
                        format!("{bad} is not a step index in 0..{steps} (num_timesteps)"),
                    ));
                }
            }
            vec![(
                "x0".to_string(),
                run_ncsnpp(&mut inp, net, "x_t", Some(&z))?,
            )]
        }
        Network::Lsgm { vae, score } => match part {
            None => {
                return Err(Error::InvalidParam {
                    op: "forward",
                    what: "--part",
                    rule: "given for LSGM models: encoder, decoder or score",
                    found: "none".into(),
                })
            }
            Some(Part::Score) => {
                vec![("eps".to_string(), run_ncsnpp(&mut inp, score, "z_t", None)?)]
            }
            Some(Part::Encoder) => {
                let x = inp.take("x", 4)?;
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
