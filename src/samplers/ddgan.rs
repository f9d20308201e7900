//! DDGAN's discretised VP schedule and the posterior q(x_i | x_{i+1}, x_0) it samples from
//! (`kernels/common/ddgan_schedule.h`, in the official code's float64-then-float32 precision).

use super::noise::{FiniteWatch, Noise};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::models::Ncsnpp;
use crate::ops;
use crate::rng::{NoiseKey, NoiseStream};
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
/// mean = coef1[i] * x0_hat + coef2[i] * x_{i+1}; the draw adds exp(log_var[i] / 2) * noise for i > 0.
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

/// What DDGAN's loop needs from a generator: x0 predicted from x_{i+1} (NHWC), the step index i and
/// z [B, nz]. The NCSN++ generator implements it; the tests use an exact stand-in for Gaussian data.
pub trait Generator {
    fn predict_x0(&self, x: &Tensor, i: usize, z: &Tensor) -> Result<Tensor>;
    /// (H, W, C) of the images.
    fn image_shape(&self) -> [usize; 3];
    /// The length of z.
    fn nz(&self) -> Result<usize>;
}

impl Generator for Ncsnpp {
    fn predict_x0(&self, x: &Tensor, i: usize, z: &Tensor) -> Result<Tensor> {
        self.forward_nhwc(x, &[i as f32], Some(z))
    }

    fn image_shape(&self) -> [usize; 3] {
        let a = self.arch();
        [a.image_size, a.image_size, a.in_channels]
    }

    fn nz(&self) -> Result<usize> {
        let a = self.arch();
        match a.zemb {
            Some((nz, _, _)) => Ok(nz),
            None => Err(Error::InvalidParam {
                op: "ddgan sample",
                what: "network",
                rule: "a DDGAN generator (with a z mapping)",
                found: format!("a {} network", a.family.name()),
            }),
        }
    }
}

/// DDGAN's sampling loop (test_ddgan.py `sample_from_model`): x_T ~ N(0, I); for i = T−1 down to 0,
/// x0 = G(x_{i+1}, i, z) with a fresh z, then x_i ~ q(x_i | x_{i+1}, x0), no noise at i = 0.
///
/// Draws, in the official order (j = 0..T−1 is the loop iteration, step i = T−1−j): `x_T` (Prior,
/// step 0), `z.{j}` (Latent, step j), `noise.{j}` for j < T−1 (Step, step j). Returns x_0, NCHW.
pub fn sample(
    generator: &dyn Generator,
    coefs: &PosteriorCoefficients,
    batch: usize,
    noise: &Noise<'_>,
    device: &Device,
) -> Result<Tensor> {
    let nz = generator.nz()?;
    if batch == 0 {
        return Err(Error::InvalidParam {
            op: "ddgan sample",
            what: "batch",
            rule: "at least 1",
            found: "0".into(),
        });
    }
    let [h, w, c] = generator.image_shape();
    let shape = [batch, h, w, c];
    let steps = coefs.steps();
    let mut x = noise.image("x_T", NoiseStream::Prior, 0, shape, device)?;
    let mut watch = FiniteWatch::new(&["x"]);
    for (j, i) in (0..steps).rev().enumerate() {
        let z = noise.plain(
            &format!("z.{j}"),
            NoiseStream::Latent,
            j as u32,
            &[batch, nz],
            device,
        )?;
        let x0 = generator.predict_x0(&x, i, &z)?;
        x = match (i, noise) {
            // Philox noise is drawn inside the step (one fused kernel on the GPU): the same values
            // as `noise.image` below would give.
            (1.., Noise::Philox { seed, first_sample }) => ops::ddgan_posterior_step_philox(
                coefs,
                i,
                &x0,
                &x,
                NoiseKey::new(*seed, NoiseStream::Step, j as u32),
                *first_sample,
            )?,
            _ => {
                let n = if i > 0 {
                    Some(noise.image(
                        &format!("noise.{j}"),
                        NoiseStream::Step,
                        j as u32,
                        shape,
                        device,
                    )?)
                } else {
                    None
                };
                ops::ddgan_posterior_step(coefs, i, &x0, &x, n.as_ref())?
            }
        };
        watch.check(&x, "x", j)?;
    }
    watch.finish()?;
    ops::nhwc_to_nchw(&x)
}
