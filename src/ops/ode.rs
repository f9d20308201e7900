//! The ODE solvers' f64 vector arithmetic (`kernels/ode.cu`): a solver's state and derivatives are
//! [`WideVec`]s on the state's device; a combination comes back rounded to an f32 tensor for the
//! network (and in f64 when it is the next state), the error norm as one f64 on the host.

use super::dispatch::mixed;
use crate::backend::cpu::CpuStorage;
use crate::backend::cuda::{CudaStorage, CudaWide};
use crate::backend::{OdeCombination, OdeOps, OdeScaledNorm};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::kernels::params::TRI_ODE_MAX_TERMS;
use crate::tensor::{elem_count, Storage, Tensor, WideStorage, WideVec};

/// The most derivatives one combination or norm reads (Dormand–Prince's seven stages).
pub const MAX_TERMS: usize = TRI_ODE_MAX_TERMS as usize;

/// The vectors' storages as one backend's, or the device-mismatch error.
enum Wides<'a> {
    Cpu(Vec<&'a Vec<f64>>),
    Cuda(Vec<&'a CudaWide>),
}

fn wides<'a>(op: &'static str, vs: &[&'a WideVec]) -> Result<Wides<'a>> {
    let cpu: Option<Vec<_>> = vs
        .iter()
        .map(|v| match v.storage() {
            WideStorage::Cpu(c) => Some(c),
            WideStorage::Cuda(_) => None,
        })
        .collect();
    if let Some(cpu) = cpu {
        return Ok(Wides::Cpu(cpu));
    }
    let cuda: Option<Vec<_>> = vs
        .iter()
        .map(|v| match v.storage() {
            WideStorage::Cuda(c) => Some(c),
            WideStorage::Cpu(_) => None,
        })
        .collect();
    match cuda {
        Some(c)
            if c.iter()
                .all(|s| std::sync::Arc::ptr_eq(s.device(), c[0].device())) =>
        {
            Ok(Wides::Cuda(c))
        }
        _ => mixed(op),
    }
}

fn check_terms(op: &'static str, len: usize, terms: &[(f64, &WideVec)]) -> Result<()> {
    if terms.len() > MAX_TERMS {
        return Err(Error::InvalidParam {
            op,
            what: "terms",
            rule: "at most 7 derivatives",
            found: terms.len().to_string(),
        });
    }
    if let Some((_, k)) = terms.iter().find(|(_, k)| k.len() != len) {
        return Err(Error::ShapeMismatch {
            op,
            tensor: "derivative",
            expected: vec![len],
            found: vec![k.len()],
        });
    }
    if let Some((w, _)) = terms.iter().find(|(w, _)| !w.is_finite()) {
        return Err(Error::InvalidParam {
            op,
            what: "weight",
            rule: "finite",
            found: w.to_string(),
        });
    }
    Ok(())
}

/// An f32 tensor's values as an f64 vector on its device (exact).
pub fn widen(x: &Tensor) -> Result<WideVec> {
    const OP: &str = "ode widen";
    if x.dtype() != DType::F32 {
        return Err(Error::DTypeMismatch {
            op: OP,
            tensor: "x",
            expected: DType::F32,
            found: x.dtype(),
        });
    }
    Ok(WideVec::from_storage(match x.storage() {
        Storage::Cpu(s) => WideStorage::Cpu(CpuStorage::ode_widen(s)?),
        Storage::Cuda(s) => WideStorage::Cuda(CudaStorage::ode_widen(s)?),
    }))
}

/// `base + h · Σ_j w_j k_j` rounded to an f32 tensor of `shape` and, with `keep_wide`, in f64 too.
pub fn combine(
    base: &WideVec,
    h: f64,
    terms: &[(f64, &WideVec)],
    shape: &[usize],
    keep_wide: bool,
) -> Result<(Tensor, Option<WideVec>)> {
    const OP: &str = "ode combine";
    check_terms(OP, base.len(), terms)?;
    if elem_count(OP, shape)? != base.len() || !h.is_finite() {
        return Err(Error::InvalidParam {
            op: OP,
            what: "shape, h",
            rule: "the state's element count and a finite step",
            found: format!("{shape:?} for {} values, h = {h}", base.len()),
        });
    }
    let mut all = vec![base];
    all.extend(terms.iter().map(|t| t.1));
    let weights: Vec<f64> = terms.iter().map(|t| t.0).collect();
    let (narrow, wide) = match wides(OP, &all)? {
        Wides::Cpu(v) => {
            let (n, w) = combine_in::<CpuStorage>(&v, &weights, h, keep_wide)?;
            (Storage::Cpu(n), w.map(WideStorage::Cpu))
        }
        Wides::Cuda(v) => {
            let (n, w) = combine_in::<CudaStorage>(&v, &weights, h, keep_wide)?;
            (Storage::Cuda(n), w.map(WideStorage::Cuda))
        }
    };
    Ok((
        Tensor::from_storage(narrow, shape)?,
        wide.map(WideVec::from_storage),
    ))
}

/// `Σ_i (h · Σ_j w_j k_j[i] / (atol + rtol · max(|a_i|, |b_i|)))²` with `[a, b] = scale_of`, read back
/// to the host (one f64 from a GPU).
pub fn scaled_sq_sum(
    h: f64,
    terms: &[(f64, &WideVec)],
    scale_of: [&WideVec; 2],
    atol: f64,
    rtol: f64,
) -> Result<f64> {
    const OP: &str = "ode error norm";
    let [a, b] = scale_of;
    check_terms(OP, a.len(), terms)?;
    if b.len() != a.len() || !(atol >= 0.0 && rtol >= 0.0 && h.is_finite()) {
        return Err(Error::InvalidParam {
            op: OP,
            what: "scale vectors, tolerances, h",
            rule: "one length, tolerances ≥ 0, a finite step",
            found: format!(
                "{} and {} values, atol {atol}, rtol {rtol}, h {h}",
                a.len(),
                b.len()
            ),
        });
    }
    let mut all = vec![a, b];
    all.extend(terms.iter().map(|t| t.1));
    let weights: Vec<f64> = terms.iter().map(|t| t.0).collect();
    let tol = (h, atol, rtol);
    match wides(OP, &all)? {
        Wides::Cpu(v) => norm_in::<CpuStorage>(&v, &weights, tol),
        Wides::Cuda(v) => norm_in::<CudaStorage>(&v, &weights, tol),
    }
}

/// One backend's combination: `v` = [base, k_0, ...], `weights` the k's.
fn combine_in<S: OdeOps>(
    v: &[&S::Wide],
    weights: &[f64],
    h: f64,
    keep_wide: bool,
) -> Result<(S, Option<S::Wide>)> {
    let terms: Vec<(f64, &S::Wide)> = weights
        .iter()
        .copied()
        .zip(v[1..].iter().copied())
        .collect();
    S::ode_combine(
        &OdeCombination {
            base: v[0],
            h,
            terms: &terms,
        },
        keep_wide,
    )
}

/// One backend's norm: `v` = [a, b, k_0, ...], `weights` the k's, `(h, atol, rtol)`.
fn norm_in<S: OdeOps>(
    v: &[&S::Wide],
    weights: &[f64],
    (h, atol, rtol): (f64, f64, f64),
) -> Result<f64> {
    let terms: Vec<(f64, &S::Wide)> = weights
        .iter()
        .copied()
        .zip(v[2..].iter().copied())
        .collect();
    S::ode_scaled_sq_sum(&OdeScaledNorm {
        h,
        terms: &terms,
        scale_of: [v[0], v[1]],
        atol,
        rtol,
    })
}

/// `base + h · Σ_j w_j k_j` over host slices: the CPU backend's arithmetic for a solver on plain
/// vectors.
pub fn combine_host(base: &[f64], h: f64, terms: &[(f64, &Vec<f64>)]) -> Vec<f64> {
    crate::backend::cpu::ode::combine_f64(base, h, terms)
}

/// [`scaled_sq_sum`] over host slices of one length (checked by the caller).
pub fn scaled_sq_sum_host(
    h: f64,
    terms: &[(f64, &Vec<f64>)],
    scale_of: [&Vec<f64>; 2],
    atol: f64,
    rtol: f64,
) -> f64 {
    crate::backend::cpu::ode::scaled_sq_sum_f64(&OdeScaledNorm {
        h,
        terms,
        scale_of,
        atol,
        rtol,
    })
}
