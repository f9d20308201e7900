//! CLD's SSCS analytic half step on the whole batch: x' = e1 (cxx x + cxv v) + l11 z_x,
//! v' = e1 (cvx x + cvv v) + l21 z_x + l22 z_v, with z = [z_x; z_v] a [B, H, W, 2C] draw (a tensor, or
//! Philox noise made inside the step). The CPU runs the unfused sequence of axpby passes (the
//! reference); the GPU one fused kernel (kernels/cld_sscs.cu) repeating its rounded operations.

use super::check_same_device;
use crate::error::{Error, Result};
use crate::kernels::params::{TriSscsHalfStep, TriSscsStepParams};
use crate::rng::{NoiseKey, NoiseStream};
use crate::tensor::{DType, Storage, Tensor};

/// A draw shaped like CLD's u = [x; v], [B, H, W, 2C] (x half first), for SSCS half steps and
/// Euler–Maruyama steps: a tensor, or Philox noise made inside the step.
#[derive(Clone, Copy)]
pub enum UDraw<'a> {
    /// A [B, H, W, 2C] tensor (x half first).
    Tensor(&'a Tensor),
    /// The normals `ops::randn(&[B, H, W, 2C], .., key, first_sample)` would give.
    Philox { key: NoiseKey, first_sample: u32 },
}

/// The coefficients as the sampler rounds them to fp32: (a_xx, a_xv, a_vx, a_vv, l11, l21, l22).
fn rounded(k: &TriSscsHalfStep) -> [f32; 7] {
    [
        (k.e1 * k.cxx) as f32,
        (k.e1 * k.cxv) as f32,
        (k.e1 * k.cvx) as f32,
        (k.e1 * k.cvv) as f32,
        k.l11 as f32,
        k.l21 as f32,
        k.l22 as f32,
    ]
}

/// One half step of x and v (NHWC [B, H, W, C], f32, one device).
pub fn cld_sscs_half_step(
    x: &Tensor,
    v: &Tensor,
    k: &TriSscsHalfStep,
    noise: UDraw<'_>,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "sscs half step";
    let [b, h, w, c] = *x.shape() else {
        return Err(Error::InvalidParam {
            op: OP,
            what: "x",
            rule: "NHWC [B, H, W, C]",
            found: format!("{:?}", x.shape()),
        });
    };
    for (name, t) in [("x", x), ("v", v)] {
        if t.dtype() != DType::F32 {
            return Err(Error::DTypeMismatch {
                op: OP,
                tensor: name,
                expected: DType::F32,
                found: t.dtype(),
            });
        }
    }
    if v.shape() != x.shape() {
        return Err(Error::ShapeMismatch {
            op: OP,
            tensor: "v",
            expected: x.shape().to_vec(),
            found: v.shape().to_vec(),
        });
    }
    check_same_device(OP, x, v)?;
    let full = [b, h, w, 2 * c];
    if let UDraw::Tensor(z) = noise {
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
    let [axx, axv, avx, avv, l11, l21, l22] = rounded(k);
    match x.storage() {
        Storage::Cuda(xs) => {
            let Storage::Cuda(vs) = v.storage() else {
                return Err(Error::DeviceMismatch {
                    op: OP,
                    a: x.device().describe(),
                    b: v.device().describe(),
                });
            };
            // With a noise tensor the Philox fields are unused (has_noise = 1).
            let (key, first_sample, zs) = match noise {
                UDraw::Tensor(z) => match z.storage() {
                    Storage::Cuda(zs) => (NoiseKey::new(0, NoiseStream::Step, 0), 0, Some(zs)),
                    Storage::Cpu(_) => {
                        return Err(Error::DeviceMismatch {
                            op: OP,
                            a: x.device().describe(),
                            b: z.device().describe(),
                        })
                    }
                },
                UDraw::Philox { key, first_sample } => (key, first_sample, None),
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
            let p = TriSscsStepParams {
                noise: key.params(batch, first_sample, (h * w * 2 * c) as u64),
                pixels: (b * h * w) as u64,
                c: u32::try_from(c).map_err(|_| Error::InvalidParam {
                    op: OP,
                    what: "channels",
                    rule: "below 2^32",
                    found: c.to_string(),
                })?,
                has_noise: zs.is_some() as u32,
                a_xx: axx,
                a_xv: axv,
                a_vx: avx,
                a_vv: avv,
                l11,
                l21,
                l22,
                pad: 0,
            };
            let (xo, vo) = crate::backend::cuda::sscs_half_step(xs, vs, zs, &p)?;
            Ok((
                Tensor::from_storage(Storage::Cuda(xo), x.shape())?,
                Tensor::from_storage(Storage::Cuda(vo), x.shape())?,
            ))
        }
        Storage::Cpu(_) => {
            let generated;
            let z = match noise {
                UDraw::Tensor(z) => z,
                UDraw::Philox { key, first_sample } => {
                    generated = super::randn(&full, DType::F32, &x.device(), key, first_sample)?;
                    &generated
                }
            };
            let (zx, zv) = (
                super::slice_channels(z, 0, c)?,
                super::slice_channels(z, c, c)?,
            );
            let lin2 = |a: f32, p: &Tensor, bb: f32, q: &Tensor| -> Result<Tensor> {
                let mut out = q.to_device(&q.device())?;
                super::axpby(a, p, bb, &mut out)?;
                Ok(out)
            };
            let mut x2 = lin2(axx, x, axv, v)?;
            super::axpby(l11, &zx, 1.0, &mut x2)?;
            let mut v2 = lin2(avx, x, avv, v)?;
            super::axpby(l21, &zx, 1.0, &mut v2)?;
            super::axpby(l22, &zv, 1.0, &mut v2)?;
            Ok((x2, v2))
        }
    }
}
