//! One step of DDGAN's sampler after the generator call: x_i ~ q(x_i | x_{i+1}, x0_hat).

use super::check_same_device;
use crate::backend::BackendStorage;
use crate::error::{Error, Result};
use crate::kernels::params::TriDdganPosteriorParams;
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
