//! One step of DDGAN's sampler after the generator call: x_i ~ q(x_i | x_{i+1}, x0_hat)
//! (`kernels/ddgan_posterior.cu`), with the coefficients of the discretised VP schedule
//! (`kernels/common/ddgan_schedule.h`, in the official code's float64-then-float32 precision).

use super::dispatch::{check_same_device, dispatch};
use crate::backend::{DdganPosteriorOps, PosteriorDraw, PosteriorNoise};
use crate::error::{Error, Result};
use crate::kernels::params::TriDdganPosteriorParams;
use crate::rng::NoiseKey;
use crate::tensor::Tensor;

/// Largest number of denoising steps the schedule supports (released models use 2 and 4).
pub const MAX_STEPS: usize = 64;

mod ffi {
    extern "C" {
        pub fn trilemma_ddgan_posterior_coefficients(
            t: i32,
            beta_min: f64,
            beta_max: f64,
            coef1: *mut f32,
            coef2: *mut f32,
            log_var: *mut f32,
        ) -> i32;
    }
}

/// Per-step coefficients, indexed by the step index i = 0..T-1 (the generator's time input):
/// mean = coef1\[i\] * x0_hat + coef2\[i\] * x_{i+1}; the draw adds exp(log_var\[i\] / 2) * noise for i > 0.
#[derive(Clone, Debug, PartialEq)]
pub struct PosteriorCoefficients {
    pub coef1: Vec<f32>,
    pub coef2: Vec<f32>,
    /// ln(max(variance, 1e-20)).
    pub log_var: Vec<f32>,
}

impl PosteriorCoefficients {
    /// The coefficients of a T-step model with the linear VP schedule beta(t) in [beta_min, beta_max]
    /// (0.1 and 20 for every released model).
    pub fn new(steps: usize, beta_min: f64, beta_max: f64) -> Result<Self> {
        const OP: &str = "ddgan schedule";
        if steps == 0 || steps > MAX_STEPS {
            return Err(Error::InvalidParam {
                op: OP,
                what: "num_timesteps",
                rule: "between 1 and 64",
                found: steps.to_string(),
            });
        }
        if !(beta_min.is_finite() && beta_max.is_finite() && beta_min > 0.0 && beta_max > beta_min)
        {
            return Err(Error::InvalidParam {
                op: OP,
                what: "beta_min, beta_max",
                rule: "finite with 0 < beta_min < beta_max",
                found: format!("{beta_min}, {beta_max}"),
            });
        }
        let (mut coef1, mut coef2, mut log_var) =
            (vec![0f32; steps], vec![0f32; steps], vec![0f32; steps]);
        // SAFETY: the C function writes `steps` floats to each of the three pointers, which point at
        // vectors of exactly that length; it reads nothing else and keeps no pointer. `steps` <= 64
        // fits in i32 and is inside the range the function accepts.
        let rc = unsafe {
            ffi::trilemma_ddgan_posterior_coefficients(
                steps as i32,
                beta_min,
                beta_max,
                coef1.as_mut_ptr(),
                coef2.as_mut_ptr(),
                log_var.as_mut_ptr(),
            )
        };
        debug_assert_eq!(rc, 0, "steps was validated above");
        Ok(PosteriorCoefficients {
            coef1,
            coef2,
            log_var,
        })
    }

    pub fn steps(&self) -> usize {
        self.coef1.len()
    }

    /// The standard deviation of the draw at step i, exp(log_var / 2); the last step (i = 0) adds no noise.
    pub fn noise_std(&self, i: usize) -> f32 {
        if i == 0 {
            0.0
        } else {
            (0.5 * self.log_var[i]).exp()
        }
    }
}

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
    let storage = match noise {
        None => dispatch!(OP, [x0_hat, x_t], |x0, x_t| {
            let noise = PosteriorNoise::Zero;
            S::ddgan_posterior(PosteriorDraw { x0, x_t, noise }, &p)?
        }),
        Some(z) => dispatch!(OP, [x0_hat, x_t, z], |x0, x_t, z| {
            let noise = PosteriorNoise::Tensor(z);
            S::ddgan_posterior(PosteriorDraw { x0, x_t, noise }, &p)?
        }),
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
    let r = key.draw(
        OP,
        batch,
        first_sample,
        rest.iter().product::<usize>() as u64,
    )?;
    let p = TriDdganPosteriorParams {
        n: x_t.elem_count() as u64,
        coef1: coefs.coef1[step],
        coef2: coefs.coef2[step],
        noise_std: coefs.noise_std(step),
        pad: 0,
    };
    let storage = dispatch!(OP, [x0_hat, x_t], |x0, x_t| {
        let noise = PosteriorNoise::Philox(&r);
        S::ddgan_posterior(PosteriorDraw { x0, x_t, noise }, &p)?
    });
    Tensor::from_storage(storage, x_t.shape())
}
