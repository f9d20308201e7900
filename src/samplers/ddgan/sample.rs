//! DDGAN's sampling loop: the generator's x0 prediction, then a draw from the posterior
//! q(x_i | x_{i+1}, x_0) of the discretised VP schedule (`crate::ops::PosteriorCoefficients`).

use crate::device::Device;
use crate::error::{Error, Result};
use crate::models::Ncsnpp;
use crate::ops;
use crate::ops::{FiniteWatch, PosteriorCoefficients};
use crate::rng::{NoiseKey, NoiseStream};
use crate::samplers::noise::Noise;
use crate::tensor::Tensor;

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
    let (x, watch) = sample_watched(generator, coefs, batch, noise, device)?;
    watch.finish()?;
    Ok(x)
}

/// [`sample`]'s device work alone: x_0 (NCHW) and the unread watch of x, whose slots the caller
/// reads after the work ran (nothing here copies to or from the host for a Philox run on a GPU, so
/// a CUDA graph can capture it).
pub fn sample_watched(
    generator: &dyn Generator,
    coefs: &PosteriorCoefficients,
    batch: usize,
    noise: &Noise<'_>,
    device: &Device,
) -> Result<(Tensor, FiniteWatch)> {
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
    Ok((ops::nhwc_to_nchw(&x)?, watch))
}
