//! Standard-normal noise keyed by (seed, stream, global sample index, step, element)
//! (`kernels/philox_normal.cu`).

use crate::backend::PhiloxNormalOps;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::rng::NoiseKey;
use crate::tensor::{Storage, Tensor};

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
    let elems_per_sample = rest.iter().product::<usize>() as u64;
    let p = key.draw(OP, num_samples, first_sample, elems_per_sample)?;
    match out.storage_mut() {
        Storage::Cpu(s) => s.randn_philox(&p),
        Storage::Cuda(s) => s.randn_philox(&p),
    }
}
