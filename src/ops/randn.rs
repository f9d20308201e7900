//! Standard-normal noise keyed by (seed, stream, global sample index, step, element).

use crate::backend::BackendStorage;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::rng::NoiseKey;
use crate::tensor::{DType, Storage, Tensor};

/// Largest elements per sample: the Philox block index (4 elements each) is one 32-bit counter word.
pub const MAX_ELEMS_PER_SAMPLE: u64 = 4 << 32;

/// A `[num_samples, ...]` tensor of normals for samples `first_sample ..` of a run.
pub fn randn(
    shape: &[usize],
    dtype: DType,
    device: &Device,
    key: NoiseKey,
    first_sample: u32,
) -> Result<Tensor> {
    let mut t = Tensor::uninit(shape, dtype, device)?;
    randn_into(&mut t, key, first_sample)?;
    Ok(t)
}

/// Overwrites `out` (`[num_samples, ...]`) with the normals of samples `first_sample ..`.
pub fn randn_into(out: &mut Tensor, key: NoiseKey, first_sample: u32) -> Result<()> {
    const OP: &str = "randn";
    let shape = out.shape();
    let Some((&num_samples, rest)) = shape.split_first() else {
        return Err(Error::InvalidParam {
            op: OP,
            what: "shape",
            rule: "at least 1-D ([num_samples, ...])",
            found: "[]".into(),
        });
    };
    let num_samples = u32::try_from(num_samples).map_err(|_| Error::InvalidParam {
        op: OP,
        what: "num_samples",
        rule: "at most 2^32 - 1",
        found: num_samples.to_string(),
    })?;
    if first_sample.checked_add(num_samples).is_none() {
        return Err(Error::InvalidParam {
            op: OP,
            what: "first_sample + num_samples",
            rule: "at most 2^32 (sample indices are one 32-bit counter word)",
            found: format!("{first_sample} + {num_samples}"),
        });
    }
    let elems_per_sample = rest.iter().product::<usize>() as u64;
    if elems_per_sample > MAX_ELEMS_PER_SAMPLE {
        return Err(Error::InvalidParam {
            op: OP,
            what: "elements per sample",
            rule: "at most 4 * 2^32",
            found: elems_per_sample.to_string(),
        });
    }
    let p = key.params(num_samples, first_sample, elems_per_sample);
    match out.storage_mut() {
        Storage::Cpu(s) => s.randn_philox(&p),
        Storage::Cuda(s) => s.randn_philox(&p),
    }
}
