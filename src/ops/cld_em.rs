//! One Euler–Maruyama step of CLD's reverse SDE after the network call (or, without noise, the final
//! denoising step): the v-score from the network output α, the drift, and the diffusion noise. The CPU
//! runs the unfused sequence (the reference); the GPU one fused kernel (kernels/cld_em.cu) repeating
//! its rounded operations.

use super::check_same_device;
use super::cld_sscs::UDraw;
use crate::error::{Error, Result};
use crate::kernels::params::TriCldEmParams;
use crate::rng::{NoiseKey, NoiseStream};
use crate::tensor::{DType, Storage, Tensor};

/// The step's scalars, rounded to fp32 as the sampler rounds them (see TriCldEmParams).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CldEmCoefficients {
    /// −ℓ_t and −1/Σ_vv of the v-score s = −ℓ_t α − v/Σ_vv.
    pub neg_ell: f32,
    pub neg_inv_svv: f32,
    /// x' = a_xv v + x.
    pub a_xv: f32,
    /// v' = (c_vx x + c_vv v) + c_vs s (+ diffusion z_v).
    pub c_vx: f32,
    pub c_vv: f32,
    pub c_vs: f32,
    pub diffusion: f32,
}

/// One step of x, v with network output `alpha` (NHWC [B, H, W, C], f32, one device); `noise` None
/// for the noiseless denoising step.
pub fn cld_em_step(
    x: &Tensor,
    v: &Tensor,
    alpha: &Tensor,
    k: &CldEmCoefficients,
    noise: Option<UDraw<'_>>,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "cld em step";
    let [b, h, w, c] = *x.shape() else {
        return Err(Error::InvalidParam {
            op: OP,
            what: "x",
            rule: "NHWC [B, H, W, C]",
            found: format!("{:?}", x.shape()),
        });
    };
    for (name, t) in [("x", x), ("v", v), ("alpha", alpha)] {
        if t.dtype() != DType::F32 {
            return Err(Error::DTypeMismatch {
                op: OP,
                tensor: name,
                expected: DType::F32,
                found: t.dtype(),
            });
        }
        if t.shape() != x.shape() {
            return Err(Error::ShapeMismatch {
                op: OP,
                tensor: name,
                expected: x.shape().to_vec(),
                found: t.shape().to_vec(),
            });
        }
        check_same_device(OP, t, x)?;
    }
    let full = [b, h, w, 2 * c];
    if let Some(UDraw::Tensor(z)) = noise {
        if z.shape() != full || z.dtype() != DType::F32 {
            return Err(Error::ShapeMismatch {
                op: OP,
                tensor: "noise",
                expected: full.to_vec(),
                found: z.shape().to_vec(),
            });
        }
        check_same_device(OP, z, x)?;
    }
    match (x.storage(), v.storage(), alpha.storage()) {
        (Storage::Cuda(xs), Storage::Cuda(vs), Storage::Cuda(als)) => {
            let (mode, key, first_sample, zs) = match noise {
                None => (2, NoiseKey::new(0, NoiseStream::Step, 0), 0, None),
                Some(UDraw::Philox { key, first_sample }) => (0, key, first_sample, None),
                Some(UDraw::Tensor(z)) => match z.storage() {
                    Storage::Cuda(zs) => (1, NoiseKey::new(0, NoiseStream::Step, 0), 0, Some(zs)),
                    Storage::Cpu(_) => {
                        return Err(Error::DeviceMismatch {
                            op: OP,
                            a: x.device().describe(),
                            b: z.device().describe(),
                        })
                    }
                },
            };
            let batch = u32::try_from(b)
                .ok()
                .filter(|&n| first_sample.checked_add(n).is_some())
                .ok_or_else(|| Error::InvalidParam {
                    op: OP,
                    what: "first_sample + batch",
                    rule: "at most 2^32",
                    found: format!("{first_sample} + {b}"),
                })?;
            let p = TriCldEmParams {
                noise: key.params(batch, first_sample, (h * w * 2 * c) as u64),
                pixels: (b * h * w) as u64,
                c: u32::try_from(c).map_err(|_| Error::InvalidParam {
                    op: OP,
                    what: "channels",
                    rule: "below 2^32",
                    found: c.to_string(),
                })?,
                noise_mode: mode,
                neg_ell: k.neg_ell,
                neg_inv_svv: k.neg_inv_svv,
                a_xv: k.a_xv,
                c_vx: k.c_vx,
                c_vv: k.c_vv,
                c_vs: k.c_vs,
                diffusion: k.diffusion,
                pad: 0,
            };
            let (xo, vo) = crate::backend::cuda::cld_em_step(xs, vs, als, zs, &p)?;
            Ok((
                Tensor::from_storage(Storage::Cuda(xo), x.shape())?,
                Tensor::from_storage(Storage::Cuda(vo), x.shape())?,
            ))
        }
        _ => {
            let lin2 = |a: f32, p: &Tensor, bb: f32, q: &Tensor| -> Result<Tensor> {
                let mut out = q.to_device(&q.device())?;
                super::axpby(a, p, bb, &mut out)?;
                Ok(out)
            };
            let s = lin2(k.neg_ell, alpha, k.neg_inv_svv, v)?;
            let x2 = lin2(k.a_xv, v, 1.0, x)?;
            let mut v2 = lin2(k.c_vx, x, k.c_vv, v)?;
            super::axpby(k.c_vs, &s, 1.0, &mut v2)?;
            if let Some(noise) = noise {
                let generated;
                let z = match noise {
                    UDraw::Tensor(z) => z,
                    UDraw::Philox { key, first_sample } => {
                        generated =
                            super::randn(&full, DType::F32, &x.device(), key, first_sample)?;
                        &generated
                    }
                };
                super::axpby(k.diffusion, &super::slice_channels(z, c, c)?, 1.0, &mut v2)?;
            }
            Ok((x2, v2))
        }
    }
}
