//! Where a sampler's randomness comes from: counter-based Philox noise (the default: a sample depends
//! only on the seed and its global index, so any split of a run into shards gives the same images), or
//! a replay file holding every draw of a run, for step-by-step comparison with another implementation.
//!
//! Philox draws are generated in the engine's activation layout: for an image draw the element index
//! within a sample is (h·W + w)·C + c (NHWC). Replay files hold PyTorch's layout (NCHW), as the recorder
//! in tools/ writes them; the names of each sampler's draws are listed in docs/sampling.md.

use crate::backend::cpu::CpuStorage;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::io::safetensors::SafeTensors;
use crate::ops;
use crate::rng::{NoiseKey, NoiseStream};
use crate::tensor::{DType, Storage, Tensor};

pub enum Noise<'a> {
    /// Philox with `seed`; the batch is samples `first_sample ..` of the run.
    Philox { seed: u64, first_sample: u32 },
    /// Every draw read from a file, by name.
    Replay(&'a SafeTensors),
}

impl Noise<'_> {
    /// An image-shaped draw, returned NHWC: `shape_nhwc` = [B, H, W, C].
    pub fn image(
        &self,
        name: &str,
        stream: NoiseStream,
        step: u32,
        shape_nhwc: [usize; 4],
        device: &Device,
    ) -> Result<Tensor> {
        match self {
            Noise::Philox { seed, first_sample } => ops::randn(
                &shape_nhwc,
                DType::F32,
                device,
                NoiseKey::new(*seed, stream, step),
                *first_sample,
            ),
            Noise::Replay(st) => {
                let [b, h, w, c] = shape_nhwc;
                let t = replayed(st, name, &[b, c, h, w], device)?;
                ops::nchw_to_nhwc(&t)
            }
        }
    }

    /// A draw of shape `shape` with no layout (e.g. DDGAN's z [B, nz]).
    pub fn plain(
        &self,
        name: &str,
        stream: NoiseStream,
        step: u32,
        shape: &[usize],
        device: &Device,
    ) -> Result<Tensor> {
        match self {
            Noise::Philox { seed, first_sample } => ops::randn(
                shape,
                DType::F32,
                device,
                NoiseKey::new(*seed, stream, step),
                *first_sample,
            ),
            Noise::Replay(st) => replayed(st, name, shape, device),
        }
    }
}

/// `name` from a replay file: present, of `shape`, finite, fp32 on `device`.
fn replayed(st: &SafeTensors, name: &str, shape: &[usize], device: &Device) -> Result<Tensor> {
    let t = st.load(name, shape, &Device::Cpu)?;
    let v = t.to_vec_f32()?;
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::BadModel {
            file: st.file().to_path_buf(),
            what: format!("replayed draw `{name}`"),
            reason: format!("non-finite value {} at element {i}", v[i]),
        });
    }
    Tensor::from_f32(&v, shape, DType::F32, device)
}

/// Stops a run whose state stopped being finite, naming the tensor and the step. Host f32 storage is
/// scanned in place; other storage is read back (a device reduction belongs to the CUDA samplers).
pub fn check_finite(t: &Tensor, tensor: &str, step: usize) -> Result<()> {
    let finite = match t.storage() {
        Storage::Cpu(CpuStorage::F32(v)) => v.iter().all(|x| x.is_finite()),
        _ => t.to_vec_f32()?.iter().all(|x| x.is_finite()),
    };
    if finite {
        Ok(())
    } else {
        Err(Error::NonFinite {
            tensor: tensor.to_string(),
            step,
        })
    }
}

/// Watches a sampling loop's state for non-finite values and names the first tensor and step that
/// held one. On the CPU every check scans at once (the run stops at the bad step). On a GPU a check is
/// one kernel recording the first bad step in device memory; [`FiniteWatch::finish`] reads it once
/// after the loop, so no step waits on the host (the run finishes its steps, then fails).
pub struct FiniteWatch {
    names: Vec<&'static str>,
    slots: Vec<Option<crate::backend::cuda::CudaStorage>>,
}

impl FiniteWatch {
    pub fn new(names: &[&'static str]) -> FiniteWatch {
        FiniteWatch {
            names: names.to_vec(),
            slots: names.iter().map(|_| None).collect(),
        }
    }

    /// Checks `t`, the state called `name` (one of the watch's names) after step `step`.
    pub fn check(&mut self, t: &Tensor, name: &'static str, step: usize) -> Result<()> {
        let Some(k) = self.names.iter().position(|n| *n == name) else {
            return Err(Error::InvalidParam {
                op: "finite watch",
                what: "tensor name",
                rule: "one of the names the watch was made with",
                found: name.to_string(),
            });
        };
        match t.storage() {
            Storage::Cuda(s) if t.dtype() == DType::F32 => {
                use crate::backend::cuda::finite;
                let slot = match &mut self.slots[k] {
                    Some(slot) => slot,
                    empty => empty.insert(finite::new_slot(s.device())?),
                };
                let step = u32::try_from(step).unwrap_or(u32::MAX - 1);
                finite::watch(s, slot, step)
            }
            _ => check_finite(t, name, step),
        }
    }

    /// The first non-finite state the GPU checks recorded, as an error naming it; Ok if none.
    pub fn finish(self) -> Result<()> {
        let mut first: Option<(u32, &str)> = None;
        for (name, slot) in self.names.iter().zip(&self.slots) {
            if let Some(slot) = slot {
                let step = crate::backend::cuda::finite::read_slot(slot)?;
                let earlier = match first {
                    Some((s, _)) => step < s,
                    None => true,
                };
                if step != u32::MAX && earlier {
                    first = Some((step, name));
                }
            }
        }
        match first {
            Some((step, name)) => Err(Error::NonFinite {
                tensor: name.to_string(),
                step: step as usize,
            }),
            None => Ok(()),
        }
    }
}
