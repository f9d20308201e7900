//! CLD's sampler steps on the whole batch, after the network call: the SSCS analytic half step and the
//! Euler–Maruyama step (also the final denoising step). Each takes a u-shaped draw ([B, H, W, 2C],
//! x half first) as a tensor or as Philox noise made inside the step. The CPU runs the unfused
//! sequences of axpby passes (the reference); the GPU one fused kernel per step
//! (kernels/cld_sscs.cu, kernels/cld_em.cu) repeating their rounded operations.

use super::check_same_device;
use crate::error::{Error, Result};
use crate::kernels::params::{TriCldEmParams, TriRandnParams, TriSscsHalfStep, TriSscsStepParams};
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

/// Checks the state tensors (all f32 NHWC of `x`'s shape, one device) and the draw; returns
/// [B, H, W, C].
fn check_state(
    op: &'static str,
    x: &Tensor,
    others: &[(&'static str, &Tensor)],
    noise: Option<UDraw<'_>>,
) -> Result<[usize; 4]> {
    let [b, h, w, c] = *x.shape() else {
        return Err(Error::InvalidParam {
            op,
            what: "x",
            rule: "NHWC [B, H, W, C]",
            found: format!("{:?}", x.shape()),
        });
    };
    for &(name, t) in [("x", x)].iter().chain(others) {
        if t.dtype() != DType::F32 {
            return Err(Error::DTypeMismatch {
                op,
                tensor: name,
                expected: DType::F32,
                found: t.dtype(),
            });
        }
        if t.shape() != x.shape() {
            return Err(Error::ShapeMismatch {
                op,
                tensor: name,
                expected: x.shape().to_vec(),
                found: t.shape().to_vec(),
            });
        }
        check_same_device(op, t, x)?;
    }
    if let Some(UDraw::Tensor(z)) = noise {
        let full = [b, h, w, 2 * c];
        if z.shape() != full || z.dtype() != DType::F32 {
            return Err(Error::ShapeMismatch {
                op,
                tensor: "noise",
                expected: full.to_vec(),
                found: z.shape().to_vec(),
            });
        }
        check_same_device(op, z, x)?;
    }
    Ok([b, h, w, c])
}

/// For the GPU kernels: the Philox description of the draw (placeholder when it is a tensor or
/// absent), the noise tensor's storage if any, and `c` as u32.
fn kernel_draw<'a>(
    op: &'static str,
    [b, h, w, c]: [usize; 4],
    x: &Tensor,
    noise: Option<UDraw<'a>>,
) -> Result<(
    TriRandnParams,
    Option<&'a crate::backend::cuda::CudaStorage>,
    u32,
)> {
    let (key, first_sample, zs) = match noise {
        None => (NoiseKey::new(0, NoiseStream::Step, 0), 0, None),
        Some(UDraw::Philox { key, first_sample }) => (key, first_sample, None),
        Some(UDraw::Tensor(z)) => match z.storage() {
            Storage::Cuda(zs) => (NoiseKey::new(0, NoiseStream::Step, 0), 0, Some(zs)),
            Storage::Cpu(_) => {
                return Err(Error::DeviceMismatch {
                    op,
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
            op,
            what: "first_sample + batch",
            rule: "at most 2^32",
            found: format!("{first_sample} + {b}"),
        })?;
    let c32 = u32::try_from(c).map_err(|_| Error::InvalidParam {
        op,
        what: "channels",
        rule: "below 2^32",
        found: c.to_string(),
    })?;
    Ok((
        key.params(batch, first_sample, (h * w * 2 * c) as u64),
        zs,
        c32,
    ))
}

/// For the CPU sequences: runs `f` on the draw as a tensor (Philox normals generated here).
fn with_draw<T>(
    noise: UDraw<'_>,
    full: [usize; 4],
    x: &Tensor,
    f: impl FnOnce(&Tensor) -> Result<T>,
) -> Result<T> {
    match noise {
        UDraw::Tensor(z) => f(z),
        UDraw::Philox { key, first_sample } => f(&super::randn(
            &full,
            DType::F32,
            &x.device(),
            key,
            first_sample,
        )?),
    }
}

/// a·p + b·q as a new tensor (one axpby pass).
fn lin2(a: f32, p: &Tensor, b: f32, q: &Tensor) -> Result<Tensor> {
    let mut out = q.to_device(&q.device())?;
    super::axpby(a, p, b, &mut out)?;
    Ok(out)
}

fn gpu_pair(
    x: &Tensor,
    (xo, vo): (
        crate::backend::cuda::CudaStorage,
        crate::backend::cuda::CudaStorage,
    ),
) -> Result<(Tensor, Tensor)> {
    Ok((
        Tensor::from_storage(Storage::Cuda(xo), x.shape())?,
        Tensor::from_storage(Storage::Cuda(vo), x.shape())?,
    ))
}

// ---- SSCS ---------------------------------------------------------------------------------------

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

/// One SSCS analytic half step: x' = e1 (cxx x + cxv v) + l11 z_x, v' = e1 (cvx x + cvv v) + l21 z_x +
/// l22 z_v, of x and v (NHWC [B, H, W, C], f32, one device).
pub fn cld_sscs_half_step(
    x: &Tensor,
    v: &Tensor,
    k: &TriSscsHalfStep,
    noise: UDraw<'_>,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "sscs half step";
    let [b, h, w, c] = check_state(OP, x, &[("v", v)], Some(noise))?;
    let [axx, axv, avx, avv, l11, l21, l22] = rounded(k);
    if let (Storage::Cuda(xs), Storage::Cuda(vs)) = (x.storage(), v.storage()) {
        let (draw, zs, c32) = kernel_draw(OP, [b, h, w, c], x, Some(noise))?;
        let p = TriSscsStepParams {
            noise: draw,
            pixels: (b * h * w) as u64,
            c: c32,
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
        return gpu_pair(x, crate::backend::cuda::sscs_half_step(xs, vs, zs, &p)?);
    }
    let (zx, zv) = with_draw(noise, [b, h, w, 2 * c], x, |z| {
        Ok((
            super::slice_channels(z, 0, c)?,
            super::slice_channels(z, c, c)?,
        ))
    })?;
    let mut x2 = lin2(axx, x, axv, v)?;
    super::axpby(l11, &zx, 1.0, &mut x2)?;
    let mut v2 = lin2(avx, x, avv, v)?;
    super::axpby(l21, &zx, 1.0, &mut v2)?;
    super::axpby(l22, &zv, 1.0, &mut v2)?;
    Ok((x2, v2))
}

// ---- Euler–Maruyama --------------------------------------------------------------------------------

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
    let [b, h, w, c] = check_state(OP, x, &[("v", v), ("alpha", alpha)], noise)?;
    if let (Storage::Cuda(xs), Storage::Cuda(vs), Storage::Cuda(als)) =
        (x.storage(), v.storage(), alpha.storage())
    {
        let (draw, zs, c32) = kernel_draw(OP, [b, h, w, c], x, noise)?;
        let mode = match (noise, zs) {
            (None, _) => 2,
            (Some(_), Some(_)) => 1,
            (Some(_), None) => 0,
        };
        let p = TriCldEmParams {
            noise: draw,
            pixels: (b * h * w) as u64,
            c: c32,
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
        return gpu_pair(x, crate::backend::cuda::cld_em_step(xs, vs, als, zs, &p)?);
    }
    let s = lin2(k.neg_ell, alpha, k.neg_inv_svv, v)?;
    let x2 = lin2(k.a_xv, v, 1.0, x)?;
    let mut v2 = lin2(k.c_vx, x, k.c_vv, v)?;
    super::axpby(k.c_vs, &s, 1.0, &mut v2)?;
    if let Some(noise) = noise {
        let zv = with_draw(noise, [b, h, w, 2 * c], x, |z| {
            super::slice_channels(z, c, c)
        })?;
        super::axpby(k.diffusion, &zv, 1.0, &mut v2)?;
    }
    Ok((x2, v2))
}
