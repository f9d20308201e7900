//! The probability-flow drifts the ODE samplers integrate (`kernels/ode_drift.cu`): the network's f32
//! output and state in, the solver's f64 derivative ([`WideVec`]) out, one fused pass.

use super::checks::{compatible, expect_shape, nhwc};
use super::dispatch::mixed;
use crate::backend::cpu::CpuStorage;
use crate::backend::cuda::CudaStorage;
use crate::backend::OdeDriftOps;
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::params::{TriCldOdeDriftParams, TriLsgmOdeDriftParams};
use crate::tensor::{Storage, Tensor, WideStorage, WideVec};

/// CLD's reverse-time drift scalars at one time (see TriCldOdeDriftParams): the mixed score's
/// (Σ_vv, −ℓ_t) in f32, and the f64 products M⁻¹β, −β, ΓM⁻¹β and 2Γβ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CldOdeDrift {
    pub svv: f32,
    pub neg_ell: f32,
    pub a_xv: f64,
    pub neg_b: f64,
    pub c_vv: f64,
    pub c_vs: f64,
}

/// LSGM's latent drift scalars at one time, in f32: f(t), g²(t)/2 and σ(t).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LsgmOdeDrift {
    pub ft: f32,
    pub half_g2: f32,
    pub sd: f32,
}

fn f32_input(op: &'static str, tensor: &'static str, x: &Tensor) -> Result<()> {
    if x.dtype() == DType::F32 {
        Ok(())
    } else {
        Err(Error::DTypeMismatch {
            op,
            tensor,
            expected: DType::F32,
            found: x.dtype(),
        })
    }
}

fn u32_of(op: &'static str, what: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::InvalidParam {
        op,
        what,
        rule: "below 2^32",
        found: v.to_string(),
    })
}

/// CLD's drift of NHWC u = [x; v] ([B, H, W, 2C]) with network output alpha ([B, H, W, C]), both f32
/// on one device: the derivative of u, [B·H·W·2C] f64.
pub fn cld_ode_drift(u: &Tensor, alpha: &Tensor, k: &CldOdeDrift) -> Result<WideVec> {
    const OP: &str = "cld ode drift";
    let s = nhwc(OP, "alpha", alpha)?;
    f32_input(OP, "alpha", alpha)?;
    compatible(OP, "u", u, alpha)?;
    expect_shape(OP, "u", u, &[s.n, s.h, s.w, 2 * s.c])?;
    let p = TriCldOdeDriftParams {
        pixels: (s.n * s.h * s.w) as u64,
        c: u32_of(OP, "channels", s.c)?,
        pad: 0,
        a_xv: k.a_xv,
        neg_b: k.neg_b,
        c_vv: k.c_vv,
        c_vs: k.c_vs,
        svv: k.svv,
        neg_ell: k.neg_ell,
    };
    Ok(WideVec::from_storage(
        match (u.storage(), alpha.storage()) {
            (Storage::Cpu(u), Storage::Cpu(a)) => {
                WideStorage::Cpu(CpuStorage::cld_ode_drift(u, a, &p)?)
            }
            (Storage::Cuda(u), Storage::Cuda(a)) => {
                WideStorage::Cuda(CudaStorage::cld_ode_drift(u, a, &p)?)
            }
            _ => return mixed(OP),
        },
    ))
}

/// LSGM's drift of the NHWC latent z with the network's eps (one shape, f32, one device) and the
/// per-channel mixing weights `mix` (\[C\], sigmoid of the mixing logits; 1 without mixing): \[numel\] f64.
pub fn lsgm_ode_drift(z: &Tensor, eps: &Tensor, mix: &Tensor, k: &LsgmOdeDrift) -> Result<WideVec> {
    const OP: &str = "lsgm ode drift";
    let s = nhwc(OP, "z", z)?;
    f32_input(OP, "z", z)?;
    compatible(OP, "eps", eps, z)?;
    compatible(OP, "mix", mix, z)?;
    expect_shape(OP, "eps", eps, z.shape())?;
    expect_shape(OP, "mix", mix, &[s.c])?;
    let p = TriLsgmOdeDriftParams {
        n: z.elem_count() as u64,
        c: u32_of(OP, "channels", s.c)?,
        ft: k.ft,
        half_g2: k.half_g2,
        sd: k.sd,
    };
    Ok(WideVec::from_storage(
        match (z.storage(), eps.storage(), mix.storage()) {
            (Storage::Cpu(z), Storage::Cpu(e), Storage::Cpu(m)) => {
                WideStorage::Cpu(CpuStorage::lsgm_ode_drift(z, e, m, &p)?)
            }
            (Storage::Cuda(z), Storage::Cuda(e), Storage::Cuda(m)) => {
                WideStorage::Cuda(CudaStorage::lsgm_ode_drift(z, e, m, &p)?)
            }
            _ => return mixed(OP),
        },
    ))
}
