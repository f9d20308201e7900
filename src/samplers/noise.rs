//! Where a sampler's randomness comes from: counter-based Philox noise (the default: a sample depends
//! only on the seed and its global index, so any split of a run into shards gives the same images), or
//! a replay file holding every draw of a run, for step-by-step comparison with another implementation.
//!
//! Philox draws are generated in the engine's activation layout: for an image draw the element index
//! within a sample is (h·W + w)·C + c (NHWC). Replay files hold PyTorch's layout (NCHW), as the recorder
//! in tools/ writes them; the names of each sampler's draws are listed in docs/sampling.md.

use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::io::safetensors::SafeTensors;
use crate::ops;
use crate::rng::{NoiseKey, NoiseStream};
use crate::tensor::Tensor;

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
