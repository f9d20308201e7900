//! Named weights for building layers: every tensor a layer asks for is checked (present, F32, the shape
//! the config implies) and marked used, so that after building, any tensor the config did not use is
//! reported too. Names are the official state_dict keys.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::io::safetensors::SafeTensors;
use crate::tensor::Tensor;

/// Where weights come from: a file, or deterministic random values (benchmarks of released
/// architectures without their checkpoints).
#[derive(Clone, Copy)]
enum Source<'a> {
    File(&'a SafeTensors),
    Random { seed: u64 },
}

pub struct Weights<'a> {
    source: Source<'a>,
    prefix: String,
    device: Device,
    /// Shared by every sub-view, so `finish` on the root sees what sub-views used.
    used: Rc<RefCell<BTreeSet<String>>>,
}

impl<'a> Weights<'a> {
    /// Weights named `{prefix}{key}` in `st`, placed on `device`.
    pub fn new(st: &'a SafeTensors, prefix: &str, device: &Device) -> Weights<'a> {
        Weights {
            source: Source::File(st),
            prefix: prefix.to_string(),
            device: device.clone(),
            used: Rc::new(RefCell::new(BTreeSet::new())),
        }
    }

    /// Deterministic random weights for any name and shape a layer asks for: fan-in-scaled uniform
    /// kernels, unit norm gains and running variances, zero biases and log weight norms. For timing
    /// released architectures whose checkpoints are not at hand; never for numerics.
    pub fn random(seed: u64, device: &Device) -> Weights<'static> {
        Weights {
            source: Source::Random { seed },
            prefix: String::new(),
            device: device.clone(),
            used: Rc::new(RefCell::new(BTreeSet::new())),
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The path of the weight file (a placeholder for random weights).
    pub fn file(&self) -> &std::path::Path {
        match self.source {
            Source::File(st) => st.file(),
            Source::Random { .. } => std::path::Path::new("<random weights>"),
        }
    }

    /// The fp32 values of `key` (host), which must have shape `shape`.
    pub fn host(&self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let name = format!("{}{key}", self.prefix);
        let st = match self.source {
            Source::File(st) => st,
            Source::Random { seed } => {
                self.used.borrow_mut().insert(name.clone());
                return Ok(random_values(seed, &name, shape));
            }
        };
        let e = st.entry(&name)?;
        if e.dtype != DType::F32.safetensors_name() {
            return Err(Error::TensorDType {
                file: st.file().to_path_buf(),
                tensor: name,
                expected: "F32".into(),
                found: e.dtype.clone(),
            });
        }
        if e.shape != shape {
            return Err(Error::TensorShape {
                file: st.file().to_path_buf(),
                tensor: name,
                expected: shape.to_vec(),
                found: e.shape.clone(),
            });
        }
        let bytes = st.bytes_of(&name)?;
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::BadModel {
                file: st.file().to_path_buf(),
                what: format!("tensor `{name}`"),
                reason: format!("non-finite value {} at element {i}", values[i]),
            });
        }
        self.used.borrow_mut().insert(name);
        Ok(values)
    }

    /// `key` as a device tensor of shape `shape`.
    pub fn tensor(&self, key: &str, shape: &[usize]) -> Result<Tensor> {
        let v = self.host(key, shape)?;
        self.upload(&v, shape)
    }

    /// Host values made into a device tensor (for weights transformed at load time).
    pub fn upload(&self, values: &[f32], shape: &[usize]) -> Result<Tensor> {
        Tensor::from_f32(values, shape, DType::F32, &self.device)
    }

    /// Whether `key` exists (for optional parameters such as biases).
    pub fn contains(&self, key: &str) -> bool {
        match self.source {
            Source::File(st) => st.entries().contains_key(&format!("{}{key}", self.prefix)),
            Source::Random { .. } => true,
        }
    }

    /// Marks `key` as deliberately unused (e.g. a stored alias of another tensor).
    pub fn skip(&self, key: &str) {
        let name = format!("{}{key}", self.prefix);
        if let Source::File(st) = self.source {
            if st.entries().contains_key(&name) {
                self.used.borrow_mut().insert(name);
            }
        }
    }

    /// Weights under `{prefix}{sub}.`.
    pub fn sub(&self, sub: impl std::fmt::Display) -> Weights<'a> {
        Weights {
            source: self.source,
            prefix: format!("{}{sub}.", self.prefix),
            device: self.device.clone(),
            used: Rc::clone(&self.used),
        }
    }

    /// Every tensor whose name starts with this view's prefix must have been used.
    pub fn finish(&self) -> Result<()> {
        let Source::File(st) = self.source else {
            return Ok(());
        };
        let used = self.used.borrow();
        let unused: Vec<String> = st
            .names()
            .filter(|n| n.starts_with(&self.prefix) && !used.contains(*n))
            .map(str::to_string)
            .collect();
        if unused.is_empty() {
            Ok(())
        } else {
            Err(Error::UnexpectedTensors {
                file: st.file().to_path_buf(),
                names: unused,
            })
        }
    }
}

/// Deterministic values for `name`: splitmix64 seeded by the seed and an FNV-1a hash of the name.
fn random_values(seed: u64, name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let leaf = name.rsplit('.').next().unwrap_or(name);
    if shape.len() <= 1 || leaf == "log_weight_norm" {
        let v = match leaf {
            "weight" | "running_var" => 1.0,
            _ => 0.0,
        };
        return vec![v; n];
    }
    let fan_in: usize = shape[1..].iter().product::<usize>().max(1);
    let bound = (3.0 / fan_in as f64).sqrt();
    let mut state = name.bytes().fold(0xcbf2_9ce4_8422_2325u64 ^ seed, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            let u = (z >> 11) as f64 / (1u64 << 53) as f64;
            ((2.0 * u - 1.0) * bound) as f32
        })
        .collect()
}
