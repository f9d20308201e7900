//! One step of DDGAN's sampler after the generator call: x_i ~ q(x_i | x_{i+1}, x0_hat).

use super::check_same_device;
use crate::backend::BackendStorage;
use crate::error::{Error, Result};
use crate::kernels::params::TriDdganPosteriorParams;
use crate::rng::NoiseKey;
use crate::samplers::ddgan::PosteriorCoefficients;
use crate::tensor::{Storage, Tensor};

/// The draw at step `step` (0 = the last step, which adds no noise and may omit `noise`): every sample
/// of the batch is at the same step, as in the official sampler.
pub fn ddgan_posterior_step(
    coefs: &PosteriorCoefficients,
    step: usize,
    x0_hat: &Tensor,
    x_t: &Tensor,
    noise: Option<&Tensor>,
) -> Result<Tensor> {
    const OP: &str = "ddgan posterior";
    if step >= coefs.steps() {
        return Err(Error::InvalidParam {
            op: OP,
            what: "step",
            rule: "below the schedule's num_timesteps",
            found: step.to_string(),
        });
    }
    for (name, t) in [("x0_hat", Some(x0_hat)), ("noise", noise)] {
        let Some(t) = t else { continue };
        if t.shape() != x_t.shape() {
            return Err(Error::ShapeMismatch {
                op: OP,
                tensor: name,
                expected: x_t.shape().to_vec(),
                found: t.shape().to_vec(),
            });
        }
        if t.dtype() != x_t.dtype() {
            return Err(Error::DTypeMismatch {
                op: OP,
                tensor: name,
                expected: x_t.dtype(),
                found: t.dtype(),
            });
        }
        check_same_device(OP, t, x_t)?;
    }
    let noise_std = coefs.noise_std(step);
    if noise.is_none() && noise_std != 0.0 {
        return Err(Error::InvalidParam {
            op: OP,
            what: "noise",
            rule: "given for every step but the last",
            found: format!("none at step {step}"),
        });
    }
    let p = TriDdganPosteriorParams {
        n: x_t.elem_count() as u64,
        coef1: coefs.coef1[step],
        coef2: coefs.coef2[step],
        noise_std,
        pad: 0,
    };
    let storage = match (x0_hat.storage(), x_t.storage(), noise.map(Tensor::storage)) {
        (Storage::Cpu(a), Storage::Cpu(b), None) => {
            Storage::Cpu(BackendStorage::ddgan_posterior_step(a, b, None, &p)?)
        }
        (Storage::Cpu(a), Storage::Cpu(b), Some(Storage::Cpu(z))) => {
            Storage::Cpu(BackendStorage::ddgan_posterior_step(a, b, Some(z), &p)?)
        }
        (Storage::Cuda(a), Storage::Cuda(b), None) => {
            Storage::Cuda(BackendStorage::ddgan_posterior_step(a, b, None, &p)?)
        }
        (Storage::Cuda(a), Storage::Cuda(b), Some(Storage::Cuda(z))) => {
            Storage::Cuda(BackendStorage::ddgan_posterior_step(a, b, Some(z), &p)?)
        }
        _ => {
            return Err(Error::DeviceMismatch {
                op: OP,
                a: x0_hat.device().describe(),
                b: x_t.device().describe(),
            })
        }
    };
    Tensor::from_storage(storage, x_t.shape())
}

/// [`ddgan_posterior_step`] with the noise drawn from Philox (`key`, samples `first_sample ..` of the
/// run) inside the step: the values `ops::randn(x_t.shape(), .., key, first_sample)` would give. On the
/// GPU one fused kernel; on the CPU the unfused path, bit for bit.
pub fn ddgan_posterior_step_philox(
    coefs: &PosteriorCoefficients,
    step: usize,
    x0_hat: &Tensor,
    x_t: &Tensor,
    key: NoiseKey,
    first_sample: u32,
) -> Result<Tensor> {
    const OP: &str = "ddgan posterior (philox)";
    if step == 0 || step >= coefs.steps() {
        return Err(Error::InvalidParam {
            op: OP,
            what: "step",
            rule: "a noisy step: 1 to num_timesteps − 1 (the last step, 0, adds no noise)",
            found: step.to_string(),
        });
    }
    if x0_hat.shape() != x_t.shape() || x0_hat.dtype() != x_t.dtype() {
        return Err(Error::ShapeMismatch {
            op: OP,
            tensor: "x0_hat",
            expected: x_t.shape().to_vec(),
            found: x0_hat.shape().to_vec(),
        });
    }
    check_same_device(OP, x0_hat, x_t)?;
    let Some((&batch, rest)) = x_t.shape().split_first() else {
        return Err(Error::InvalidParam {
            op: OP,
            what: "x_t",
            rule: "[batch, ...]",
            found: "a scalar".into(),
        });
    };
    let num_samples = u32::try_from(batch)
        .ok()
        .filter(|&b| first_sample.checked_add(b).is_some())
        .ok_or_else(|| Error::InvalidParam {
            op: OP,
            what: "first_sample + batch",
            rule: "at most 2^32 (sample indices are one 32-bit counter word)",
            found: format!("{first_sample} + {batch}"),
        })?;
    let elems = rest.iter().product::<usize>() as u64;
    if elems > 4 << 32 {
        return Err(Error::InvalidParam {
            op: OP,
            what: "elements per sample",
            rule: "at most 4 * 2^32 (Philox blocks are one 32-bit counter word)",
            found: elems.to_string(),
        });
    }
    let r = key.params(num_samples, first_sample, elems);
    let p = TriDdganPosteriorParams {
        n: x_t.elem_count() as u64,
        coef1: coefs.coef1[step],
        coef2: coefs.coef2[step],
        noise_std: coefs.noise_std(step),
        pad: 0,
    };
    let storage = match (x0_hat.storage(), x_t.storage()) {
        (Storage::Cpu(a), Storage::Cpu(b)) => {
            Storage::Cpu(BackendStorage::ddgan_posterior_philox(a, b, &p, &r)?)
        }
        (Storage::Cuda(a), Storage::Cuda(b)) => {
            Storage::Cuda(BackendStorage::ddgan_posterior_philox(a, b, &p, &r)?)
        }
        _ => {
            return Err(Error::DeviceMismatch {
                op: OP,
                a: x0_hat.device().describe(),
                b: x_t.device().describe(),
            })
        }
    };
    Tensor::from_storage(storage, x_t.shape())
}
